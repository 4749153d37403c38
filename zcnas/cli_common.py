"""What every CLI module shares: the console and the one way user errors are shown."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

import typer
from rich.console import Console
from rich.text import Text

from zcnas.errors import ZcnasError

# No console markup: what zcnas prints is data (messages, paths, names, "[low, high]",
# "pip install 'zcnas[dask]'"), and rich would take any "[word]" in it for a style tag and drop
# it. Styles are given as such: `styled("error:", "bold red")`, Text, or a column's style.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style`, then `rest` as plain text: a line to print with a coloured lead."""
    return Text.assemble((label, style), rest)


# Seeds reach numpy (which takes no negative seed) and the run file; one range everywhere.
MAX_SEED = 2**32 - 1


def check_seed(value: int, option: str = "--seed") -> int:
    """`value` if it is a usable seed (0 to 2**32 - 1), else a one-sentence error naming `option`."""
    if not 0 <= value <= MAX_SEED:
        raise ZcnasError(f"{option} must be a whole number from 0 to {MAX_SEED}; got {value}.")
    return value


def warn(message: str) -> None:
    """One yellow `warning:` line on stderr; the command goes on."""
    err_console.print(styled("warning:", "yellow", f" {message}"), highlight=False, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit, `kill`), handled like Ctrl-C: the run file is
    checkpointed and the workers stopped on the way out."""


_stop = threading.Event()


def _request_stop(signum, frame):
    # Not raised here: an exception raised from a signal handler lands wherever the main
    # thread happens to be (a weakref callback that swallows it, joblib's dispatch code that
    # turns it into another error). The job stops at its next result instead, where
    # `raise_if_stopped` is called (every progress callback), finished work all kept.
    _stop.set()


def raise_if_stopped() -> None:
    """Raise `Terminated` if SIGTERM arrived; long jobs call it between results."""
    if _stop.is_set():
        raise Terminated()


@contextlib.contextmanager
def _sigterm_stops():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop.clear()
    previous = signal.signal(signal.SIGTERM, _request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _stop_workers_on_error():
    """A command that stops on an error leaves no worker processes that `zcnas.pools.start_workers`
    started to wait for (they may still be importing torch)."""
    try:
        yield
    except BaseException:
        pools = sys.modules.get("zcnas.pools")
        if pools is not None:
            pools.stop_workers()
        raise


def user_errors(command):
    """Turn a `ZcnasError` into one red sentence on stderr and its exit code; no traceback.
    Ctrl-C and SIGTERM stop the command cleanly (finished results kept), exit 130 and 143;
    SIGTERM takes effect at the job's next result (see `raise_if_stopped`)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with _sigterm_stops(), _stop_workers_on_error():
                return command(*args, **kwargs)
        except ZcnasError as error:
            err_console.print(styled("error:", "bold red", f" {error}"), highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except PermissionError as error:
            # Outputs are checked up front (zcnas.files.check_writable); this is the net for
            # what changes under a running command, or an input that may not be read.
            where = f"on {error.filename}" if error.filename else f"({error})"
            message = f" permission denied {where}; use files and folders you may read and write."
            err_console.print(styled("error:", "bold red", message), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as interrupt:
            err_console.print(
                styled("interrupted:", "yellow", " finished results are kept; rerun the same command with --resume to finish.")
            )
            sys.exit(128 + signal.SIGTERM if isinstance(interrupt, Terminated) else 130)

    return wrapper


@contextlib.contextmanager
def progress_bar(label: str, unit: str, *, show: bool = True):
    """Yield an `on_progress(done, total)` callback drawing a rich bar (rate, ETA) on stderr
    (nothing drawn with `show=False`); every call first checks for SIGTERM (`raise_if_stopped`).

    The bar opens at the first call, after the job has checked its options (so a user error
    prints its one sentence alone); that call's `done` is what a resumed job already had, and
    the rate counts only what is done from then on.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
    )
    state: dict = {"task": None, "start_done": 0}

    def on_progress(done: int, total: int) -> None:
        raise_if_stopped()
        if not show:
            return
        if state["task"] is None:
            progress.start()
            state["task"] = progress.add_task(label, total=total, completed=done, rate="")
            state["start_done"] = done
            return
        elapsed = progress.tasks[0].elapsed or 0.0
        rate = f"{(done - state['start_done']) / elapsed:.2f} {unit}/s" if elapsed > 0 else ""
        progress.update(state["task"], completed=done, rate=rate)

    try:
        yield on_progress
    finally:
        if state["task"] is not None:
            progress.stop()
