"""Worker pools: results from every task, and no worker restarts mid-run."""

from __future__ import annotations

import os
import time

import pytest

from zcnas.pools import execute

_HELD: list[bytearray] = []


def _square(task: int, payload: int) -> int:
    return task * task + payload


def _grow_and_report_pid(task: int, payload: None) -> int:
    # After a worker's first task, hold 400 MB more: what a bigger architecture's activations
    # do to a worker's resident memory (the allocator keeps it).
    if task > 0:
        block = bytearray(400 * 1024 * 1024)
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page so it is resident
        _HELD.append(block)
    time.sleep(1.2)  # loky checks a worker's memory at most once a second
    return os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_every_task_returns_once(workers):
    assert sorted(execute(_square, list(range(7)), 1, workers=workers)) == sorted(t * t + 1 for t in range(7))


def test_workers_are_not_restarted_when_memory_grows():
    pytest.importorskip("psutil", reason="loky checks worker memory only where psutil is installed")
    pids = list(execute(_grow_and_report_pid, list(range(6)), None, workers=2))
    assert len(pids) == 6
    assert len(set(pids)) <= 2, f"workers were restarted mid-run: {len(set(pids))} processes for 2 workers"
