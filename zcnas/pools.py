"""Worker pools: run one picklable task function over many tasks, results as they finish.

The one place zcnas starts workers, for `score` (zcnas.run) and `bench build` (zcnas.bench)
alike: in-process for one worker, joblib's loky processes for several, a Dask cluster when a
scheduler address is given. Results come back in completion order; callers that need
determinism make each task a pure function of its own seed.
"""

from __future__ import annotations

import os
import re
from collections import deque
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

# A worker process that has sat idle this long exits (the next job starts a new one).
_IDLE_SECONDS = 300
# What the first task of a scoring job imports in a worker (torch with it): most of a worker's
# start-up, which `start_workers` moves off the critical path.
_WARM_MODULE = "zcnas.run.runner"
_STARTED = None  # the executor `start_workers` started, until `stop_workers`
_DASK_CLIENT = None  # (scheduler address, Client) `start_workers` connected, until a job takes it


# The payload of the job a worker process last ran a task of: (token, payload).
_WORKER_PAYLOAD: tuple[str, object] | None = None


def _in_loky_worker(function, task, token: str, payload_file: str):
    """Run one task in a worker, reading the job's payload from its file on the worker's first
    task of the job only: the payload (the probe batch, or a whole probe pool) crosses to each
    worker once instead of with every task."""
    global _WORKER_PAYLOAD
    if _WORKER_PAYLOAD is None or _WORKER_PAYLOAD[0] != token:
        import pickle

        _relax_leak_limit()
        _restore_malloc_adaptivity()
        _WORKER_PAYLOAD = None  # free the previous job's payload before reading this one
        with open(payload_file, "rb") as handle:
            _WORKER_PAYLOAD = (token, pickle.load(handle))
    return function(task, _WORKER_PAYLOAD[1])


def _relax_leak_limit() -> None:
    try:
        from joblib.externals.loky import process_executor
    except ImportError:  # joblib without its vendored loky: nothing to relax
        return
    if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
        process_executor._MAX_MEMORY_LEAK_SIZE = _LOKY_LEAK_LIMIT_BYTES


# glibc's malloc adapts its thresholds to the program (a freed large block raises the size
# below which blocks come from the heap), unless MALLOC_TRIM_THRESHOLD_ or
# MALLOC_MMAP_THRESHOLD_ fix them. Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in every
# worker, and then each of torch's activation buffers (MBs) is a fresh mmap, page-faulted
# and zeroed, then unmapped: Dask workers spent 1.9 times the CPU of loky workers on the same
# NB201 networks (docs/performance.md). Workers set what glibc's adaptation would reach instead.
_MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's adaptive maximum on 64-bit
_MALLOC_TRIM_THRESHOLD = 64 << 20  # twice that, as glibc keeps it
_malloc_checked = False


def _restore_malloc_adaptivity() -> None:
    global _malloc_checked
    if _malloc_checked:
        return
    _malloc_checked = True
    if not any(os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to restore
        return
    mallopt(-3, _MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    mallopt(-1, _MALLOC_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD


def _in_dask_worker(function, task, payload):
    _restore_malloc_adaptivity()
    return function(task, payload)


def _kill(executor) -> None:
    """Stop a loky pool now, its workers mid-task. Task ids still queued for its manager thread
    are taken out first: killing with work queued behind the workers otherwise makes that
    thread fail on them (a KeyError traceback on stderr, loky 3.6)."""
    import queue

    work_ids = getattr(executor, "_work_ids", None)
    while work_ids is not None:
        try:
            work_ids.get(block=False)
        except queue.Empty:
            break
    executor.shutdown(wait=True, kill_workers=True)


def _warm_up(module: str) -> None:
    import importlib

    _relax_leak_limit()
    importlib.import_module(module)


async def _warm_up_on_dask_worker(module: str) -> None:
    # A coroutine (what `Client.run(..., wait=False)` takes), importing in a thread so that the
    # worker's event loop goes on meanwhile.
    import asyncio

    _restore_malloc_adaptivity()
    await asyncio.get_running_loop().run_in_executor(None, _warm_up, module)


def _executor(workers: int):
    """loky's reusable pool of `workers` processes: the same one for `start_workers` and every
    job of this process that asks for as many (the arguments must match for loky to reuse it)."""
    from joblib.externals.loky import get_reusable_executor

    # Outside torch (whose threads each task sets to one), native libraries get an equal share
    # of the cores, as joblib's loky backend gave them.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return get_reusable_executor(max_workers=workers, timeout=_IDLE_SECONDS, env=env)


def start_workers(workers: int, module: str = _WARM_MODULE, scheduler: str | None = None) -> None:
    """Start the workers of a coming `execute(..., workers=workers, scheduler=scheduler)` now,
    each importing `module`, and return at once. A caller that has not imported torch yet (the
    CLI, before its own imports) then overlaps the workers' start-up with its own: importing
    torch, most of a worker's start, leaves the job's critical path where there are cores for
    both (docs/performance.md). With a Dask scheduler, its running workers import `module` and
    the job reuses the connection. Nothing happens for one worker and no scheduler."""
    global _STARTED, _DASK_CLIENT
    if scheduler:
        try:
            client = _connect(scheduler)
        except RunError as error:  # the job raises it, in its place
            _DASK_CLIENT = (scheduler, error)
            return
        _DASK_CLIENT = (scheduler, client)
        client.run(_warm_up_on_dask_worker, module, wait=False)
        return
    if workers <= 1:
        return
    _STARTED = _executor(workers)
    for _ in range(workers):
        _STARTED.submit(_warm_up, module)


def stop_workers() -> None:
    """Stop at once the processes `start_workers` started, even mid-import (and drop its Dask
    connection): a command that fails before its job has run then exits without waiting."""
    global _STARTED, _DASK_CLIENT
    executor, _STARTED = _STARTED, None
    if executor is not None:
        _kill(executor)
    started, _DASK_CLIENT = _DASK_CLIENT, None
    if started is not None and not isinstance(started[1], RunError):
        started[1].close()


def _loky(function, tasks: list, payload, workers: int) -> Iterator:
    """Each worker keeps two tasks (one running, one queued behind it), so none waits for the
    main process between tasks. The payload is written once to a private temporary file that
    each worker reads on its first task, rather than pickled and unpickled with every task
    (a 30 MB probe pool for the suite-zero protocol; tests/perf/bench_workers.py)."""
    import pickle
    import shutil
    import tempfile
    import uuid
    from concurrent.futures import FIRST_COMPLETED, wait

    global _STARTED
    folder = tempfile.mkdtemp(prefix="zcnas-payload-")
    running: set = set()
    finished = False
    try:
        payload_file = os.path.join(folder, "payload.pickle")
        with open(payload_file, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        token = uuid.uuid4().hex
        executor, _STARTED = _executor(workers), None  # started ahead or not, the job's pool now
        waiting = deque(tasks)
        while waiting or running:
            while waiting and len(running) < 2 * workers:
                running.add(executor.submit(_in_loky_worker, function, waiting.popleft(), token, payload_file))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield _result(future, workers)
        finished = True
    finally:
        if not finished and running:
            # The caller stopped early (Ctrl-C, SIGTERM, a failed write) or a task raised:
            # stop the workers mid-task rather than finish what they hold (loky fails the
            # futures itself; cancelling them first trips its manager thread).
            _kill(executor)
        shutil.rmtree(folder, ignore_errors=True)


def _result(future, workers: int):
    """A task's result; a worker the system killed (most often for memory) is one sentence."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as error:  # loky's TerminatedWorkerError is one
        codes = re.search(r"\{([^}]*)\}", str(error))
        how = f" ({codes.group(1)})" if codes else ""
        raise RunError(
            f"A worker process was killed{how}, most often by the system for lack of memory; the results "
            f"finished so far are saved: rerun with --resume, and with fewer workers than {workers} or a smaller "
            "--batch-size if it happens again."
        ) from None


def _connect(scheduler: str):
    try:
        from dask.distributed import Client
    except ImportError:
        raise RunError("--scheduler needs Dask: pip install 'zcnas[dask]'.") from None
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise RunError(f"Cannot reach the Dask scheduler at {scheduler} ({error}).") from None


def _dask(function, tasks: list, payload, scheduler: str) -> Iterator:
    global _DASK_CLIENT
    started, _DASK_CLIENT = _DASK_CLIENT, None
    if started is not None and started[0] == scheduler:  # connected by start_workers
        if isinstance(started[1], RunError):
            raise started[1]
        client = started[1]
    else:
        if started is not None and not isinstance(started[1], RunError):
            started[1].close()
        client = _connect(scheduler)
    from dask.distributed import as_completed

    try:
        shared = client.scatter(payload, broadcast=True)
        futures = [client.submit(_in_dask_worker, function, task, shared, pure=False) for task in tasks]
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
