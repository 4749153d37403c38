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


# -- the payload crosses to each worker once; workers started ahead are the job's ------------
class CountedPayload:
    """A payload that counts, in each process, how many times it was unpickled there."""

    loads = 0

    def __init__(self, size: int):
        self.data = bytes(size)

    def __setstate__(self, state):
        type(self).loads += 1
        self.__dict__.update(state)


def _pid_and_payload_loads(task: int, payload: CountedPayload) -> tuple[int, int]:
    return os.getpid(), type(payload).loads


def test_the_payload_is_read_once_per_worker_not_once_per_task():
    results = list(execute(_pid_and_payload_loads, list(range(12)), CountedPayload(1_000_000), workers=2))
    assert len(results) == 12
    for pid in {pid for pid, _ in results}:
        assert max(loads for p, loads in results if p == pid) == 1, results


def _pid_and_module(task: int, module: str) -> tuple[int, bool]:
    import sys

    return os.getpid(), module in sys.modules


def test_started_workers_are_the_ones_the_job_uses():
    from zcnas.pools import start_workers

    module = "xml.dom.minidom"  # imported by the warm-up only
    start_workers(2, module=module)
    results = list(execute(_pid_and_module, list(range(8)), module, workers=2))
    assert len({pid for pid, _ in results}) <= 2
    assert any(imported for _, imported in results), "the job ran in other processes than the started ones"


def test_stop_workers_does_not_wait_for_a_slow_start(tmp_path, monkeypatch):
    psutil = pytest.importorskip("psutil")
    from zcnas.pools import start_workers, stop_workers

    (tmp_path / "zcnas_test_slow_import.py").write_text("import time\ntime.sleep(60)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    start_workers(2, module="zcnas_test_slow_import")
    started = time.monotonic()
    stop_workers()
    assert time.monotonic() - started < 20
    _, alive = psutil.wait_procs([p for p in psutil.Process().children(recursive=True) if p.pid not in before], timeout=10)
    assert not [p for p in alive if "loky" in " ".join(p.cmdline())]


def test_score_that_fails_after_starting_workers_says_one_sentence(tmp_path):
    """`zcnas score --workers 2` starts its workers before its own imports; a user error found
    after that stops them at once, with no traceback from the pool's threads."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "zcnas", "score", str(tmp_path / "missing.h5"), "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "does not exist" in result.stderr, result.stderr


_FAULTS = """
import resource, sys
import numpy as np
from zcnas import pools
if sys.argv[1] == "worker":
    pools._restore_malloc_adaptivity()  # what every loky or Dask worker does on its first task
for _ in range(5):
    block = np.ones((4 << 20) // 8)
    del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # 4 MB buffers, as torch's activations are allocated and freed
    block = np.ones((4 << 20) // 8)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_workers_undo_dasks_malloc_trim_setting():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes every large
    buffer a fresh page-faulted mapping (1.9 times the CPU on NB201's networks); a worker
    restores glibc's behaviour, so reusing freed buffers costs no page faults."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc malloc thresholds")
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    faults = {}
    for mode in ("plain", "worker"):
        result = subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        faults[mode] = int(result.stdout.split()[-1])
    assert faults["plain"] > 10_000, faults  # the setting's cost, as Dask's workers have it
    assert faults["worker"] < 1_000, faults


def _killed_on_three(task: int, payload: None) -> int:
    if task == 3:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
    return task


def test_a_worker_killed_by_the_system_is_one_sentence_after_the_finished_results():
    from zcnas.errors import RunError

    seen = []
    with pytest.raises(RunError, match=r"A worker process was killed \(.*SIGKILL.*\), most often by the system for lack of memory"):
        for result in execute(_killed_on_three, list(range(4)), None, workers=1 + 1):
            seen.append(result)
    assert set(seen) <= {0, 1, 2}  # what finished before came back; the run records and saves it
