"""A run killed with SIGKILL leaves a readable run file and resumes without recomputing;
SIGTERM stops a run and its workers cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_tiny_benchmark
from zcnas.run import runner
from zcnas.run.runner import JobOptions, run_job
from zcnas.run.store import RunStore

PROXIES = "synflow,nwot,grad_norm,params"


def start_run_and_wait(bench, out, *extra: str, done: int = 4) -> subprocess.Popen:
    """`zcnas score` in a subprocess (checkpoint after every result), returned once `done`
    architectures are in the run file (so a signal may land mid-checkpoint: the file must
    stay readable all the same)."""
    command = [
        sys.executable, "-m", "zcnas", "score", str(bench), "--proxies", PROXIES, "--batch-size", "16",
        "--out", str(out), "--quiet", "--checkpoint-seconds", "0", *extra,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists():
            try:
                if RunStore.open(out).done_count() >= done:
                    break
            except Exception:
                pass
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be stopped: " + process.stderr.read().decode()
    return process


def test_kill_9_then_resume(tmp_path, monkeypatch):
    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=40, probe_size=16)
    out = tmp_path / "run.h5"
    process = start_run_and_wait(bench, out)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    killed = RunStore.open(out)  # readable: no half-written file
    done_before = killed.done_count()
    assert 4 <= done_before < 40

    calls = []
    original = runner.score_architecture
    monkeypatch.setattr(runner, "score_architecture", lambda t, p: (calls.append(t.row), original(t, p))[1])
    resumed = run_job(bench, out, JobOptions(proxies=PROXIES, batch_size=16, resume=True))
    assert len(calls) == 40 - done_before
    assert resumed.pending_rows() == []

    monkeypatch.setattr(runner, "score_architecture", original)
    straight = run_job(bench, tmp_path / "straight.h5", JobOptions(proxies=PROXIES, batch_size=16))
    for name in straight.spec.proxies:
        np.testing.assert_array_equal(straight.scores[name], resumed.scores[name], err_msg=name)


def test_sigterm_stops_the_run_and_its_workers_cleanly(tmp_path):
    psutil = pytest.importorskip("psutil", reason="finding the worker processes needs psutil")
    bench = make_tiny_benchmark(tmp_path / "bench.h5", n_archs=60, probe_size=16)
    out = tmp_path / "run.h5"
    process = start_run_and_wait(bench, out, "--workers", "2")
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers, "no worker processes found"
    process.send_signal(signal.SIGTERM)
    try:
        stderr = process.communicate(timeout=60)[1].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("zcnas score did not stop within 60 s of SIGTERM")
    assert process.returncode == 128 + signal.SIGTERM
    assert "interrupted" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"{len(alive)} worker processes outlived the run"
    stopped = RunStore.open(out)
    assert 4 <= stopped.done_count() < 60
