"""Worker pools: run one picklable task function over many tasks, results as they finish.

The one place zcnas starts workers, for `score` (zcnas.run) and `bench build` (zcnas.bench)
alike: in-process for one worker, joblib's loky processes for several, a Dask cluster when a
scheduler address is given. Results come back in completion order; callers that need
determinism make each task a pure function of its own seed.
"""

from __future__ import annotations

import warnings
from typing import Iterator

from zcnas.errors import RunError

def _in_process(function, tasks: list, payload) -> Iterator:
    for task in tasks:
        yield function(task, payload)


# loky restarts a worker whose memory grew by 300 MB after its first task, taking it for a
# leak (only where psutil is installed). A proxy's peak memory follows the architecture (a
# network of convolutions holds more activations than one of skips), so that growth is the
# normal case here, and each restart re-imports torch and re-sends the payload mid-run, with a
# "worker stopped" warning. The worker's footprint stays bounded by the largest task.
_LOKY_LEAK_LIMIT_BYTES = 1 << 40

# joblib's UserWarning when a generator of results is closed before its end ("... tasks which
# were still being processed by the workers have been cancelled. You could benefit from ...").
_CANCELLED_WARNING = r"(?s).*(have been cancelled|successfully executed +but not used)"


def _in_loky_worker(function, task, payload):
    try:
        from joblib.externals.loky import process_executor
    except ImportError:  # joblib without its vendored loky: nothing to relax
        pass
    else:
        if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
            process_executor._MAX_MEMORY_LEAK_SIZE = _LOKY_LEAK_LIMIT_BYTES
    return function(task, payload)


def _loky(function, tasks: list, payload, workers: int) -> Iterator:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered", batch_size=1)
    results = parallel(delayed(_in_loky_worker)(function, task, payload) for task in tasks)
    try:
        for result in results:  # not `yield from`: that would close `results` before we can
            yield result
    except GeneratorExit:
        # The caller stopped early (Ctrl-C, SIGTERM, a failed write): cancelling the tasks
        # still queued is the point, so joblib's warning that it did so is noise there.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CANCELLED_WARNING, category=UserWarning)
            results.close()
        raise


def _dask(function, tasks: list, payload, scheduler: str) -> Iterator:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise RunError("--scheduler needs Dask: pip install 'zcnas[dask]'.") from None
    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise RunError(f"Cannot reach the Dask scheduler at {scheduler} ({error}).") from None
    try:
        shared = client.scatter(payload, broadcast=True)
        futures = [client.submit(function, task, shared, pure=False) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()


def execute(function, tasks: list, payload, *, workers: int = 1, scheduler: str | None = None) -> Iterator:
    """Run `function(task, payload)` for every task, yielding results as they finish (any order).

    In-process for one worker, joblib's loky processes for several, a Dask cluster when a
    scheduler address is given. `function` must be a top-level (picklable) function.
    """
    if scheduler:
        return _dask(function, tasks, payload, scheduler)
    if workers <= 1 or len(tasks) <= 1:
        return _in_process(function, tasks, payload)
    return _loky(function, tasks, payload, workers)
