"""What every CLI module shares: the console and the one way user errors are shown."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from zcnas.errors import ZcnasError

console = Console()
err_console = Console(stderr=True)


def user_errors(command):
    """Turn a `ZcnasError` into one red sentence on stderr and its exit code; no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ZcnasError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err_console.print(
                "[yellow]interrupted:[/] finished results are kept; rerun the same command with --resume to finish."
            )
            sys.exit(130)

    return wrapper
