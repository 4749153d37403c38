"""What every CLI module shares: the console and the one way user errors are shown."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

import typer
from rich.console import Console

from zcnas.errors import ZcnasError

console = Console()
err_console = Console(stderr=True)


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


def user_errors(command):
    """Turn a `ZcnasError` into one red sentence on stderr and its exit code; no traceback.
    Ctrl-C and SIGTERM stop the command cleanly (finished results kept), exit 130 and 143;
    SIGTERM takes effect at the job's next result (see `raise_if_stopped`)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with _sigterm_stops():
                return command(*args, **kwargs)
        except ZcnasError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt as interrupt:
            err_console.print(
                "[yellow]interrupted:[/] finished results are kept; rerun the same command with --resume to finish."
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
