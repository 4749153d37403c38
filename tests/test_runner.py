"""The scoring job: determinism across workers and backends, failures, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tiny_benchmark
from zcnas.errors import ProxyError, RunError
from zcnas.proxies import registry
from zcnas.proxies.registry import ProxyInfo, ProxyResult
from zcnas.run import runner
from zcnas.run.runner import JobOptions, arch_seed, run_job, sample_rows
from zcnas.run.store import FAILED, OK, RunStore

PROXIES = "synflow,nwot,grad_norm,params,flops"


def scores_of(store: RunStore) -> dict[str, np.ndarray]:
    return {name: store.scores[name].copy() for name in store.spec.proxies}


def assert_same_scores(a: RunStore, b: RunStore) -> None:
    assert a.encodings == b.encodings
    for name in a.spec.proxies:
        # bit-identical, NaN where failed in both
        np.testing.assert_array_equal(a.scores[name], b.scores[name], err_msg=name)
        np.testing.assert_array_equal(a.status[name], b.status[name], err_msg=name)


@pytest.fixture
def bench12(tmp_path):
    return make_tiny_benchmark(tmp_path / "bench12.h5", n_archs=12)


def test_sample_and_seeds_derive_from_the_job_seed_alone():
    assert list(sample_rows(100, 10, 3)) == list(sample_rows(100, 10, 3))
    assert list(sample_rows(100, 10, 3)) != list(sample_rows(100, 10, 4))
    assert list(sample_rows(5, None, 0)) == [0, 1, 2, 3, 4]
    assert arch_seed(0, 17) == arch_seed(0, 17) != arch_seed(1, 17)
    with pytest.raises(RunError, match="larger than the benchmark"):
        sample_rows(5, 6, 0)


def test_run_scores_every_architecture_and_keeps_per_layer_statistics(bench12, tmp_path):
    out = tmp_path / "run.h5"
    store = run_job(bench12, out, JobOptions(proxies=PROXIES, batch_size=8))
    reopened = RunStore.open(out)
    assert len(reopened) == 12 and reopened.pending_rows() == []
    assert_same_scores(store, reopened)
    slots, matrix = reopened.layer_matrix("grad_norm")
    assert matrix.shape == (12, len(slots)) and "classifier" in slots
    ok = reopened.status["grad_norm"] == OK
    np.testing.assert_allclose(np.nansum(matrix[ok], axis=1), reopened.scores["grad_norm"][ok], rtol=1e-9)
    assert not (out.parent / "run.h5.journal").exists()


def test_scores_are_identical_for_any_number_of_workers(bench12, tmp_path):
    one = run_job(bench12, tmp_path / "w1.h5", JobOptions(proxies=PROXIES, batch_size=8, seed=5, workers=1))
    two = run_job(bench12, tmp_path / "w2.h5", JobOptions(proxies=PROXIES, batch_size=8, seed=5, workers=2))
    assert_same_scores(one, two)


def test_dask_cluster_gives_the_same_scores(bench12, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    local = run_job(bench12, tmp_path / "local.h5", JobOptions(proxies=PROXIES, batch_size=8, seed=2, sample=6))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = run_job(
            bench12,
            tmp_path / "dask.h5",
            JobOptions(proxies=PROXIES, batch_size=8, seed=2, sample=6, scheduler=cluster.scheduler_address),
        )
    assert_same_scores(local, remote)


def _register(monkeypatch, name, function):
    info = ProxyInfo(
        name=name, family="test", function=function, passes=("weights",), needs_labels=False,
        needs_data=False, aggregation="none", reference="test", summary="",
    )
    monkeypatch.setitem(registry._REGISTRY, name, info)


def test_a_failing_architecture_is_recorded_and_the_run_goes_on(bench12, tmp_path, monkeypatch):
    def explode_on_pool(ctx):
        if any(type(m).__name__ == "Zero" for m in ctx.model.modules()):
            raise RuntimeError("boom on none")
        return ProxyResult(1.0)

    def nan_on_odd_seed(ctx):
        return ProxyResult(float("nan") if ctx.seed % 2 else 2.0)

    _register(monkeypatch, "explode", explode_on_pool)
    _register(monkeypatch, "nanny", nan_on_odd_seed)
    store = run_job(bench12, tmp_path / "run.h5", JobOptions(proxies="explode,nanny,params", batch_size=8))
    failed = store.status["explode"] == FAILED
    assert failed.any() and (~failed).any()
    assert all("boom on none" in store.errors["explode"][i] for i in np.flatnonzero(failed))
    assert (store.status["nanny"] == FAILED).any()
    assert any("non-finite" in e for e in store.errors["nanny"])
    assert (store.status["params"] == OK).all()  # the other proxies were not affected


def test_resume_skips_what_is_done(bench12, tmp_path, monkeypatch):
    out = tmp_path / "run.h5"
    full = run_job(bench12, tmp_path / "full.h5", JobOptions(proxies=PROXIES, batch_size=8))

    calls = []
    original = runner.score_architecture

    def stop_after_five(task, payload):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(task.row)
        return original(task, payload)

    monkeypatch.setattr(runner, "score_architecture", stop_after_five)
    with pytest.raises(KeyboardInterrupt):
        run_job(bench12, out, JobOptions(proxies=PROXIES, batch_size=8))
    assert RunStore.open(out).done_count() == 5

    calls.clear()
    monkeypatch.setattr(runner, "score_architecture", lambda t, p: (calls.append(t.row), original(t, p))[1])
    resumed = run_job(bench12, out, JobOptions(proxies=PROXIES, batch_size=8, resume=True))
    assert len(calls) == 12 - 5  # nothing recomputed
    assert_same_scores(full, resumed)


def test_journal_line_cut_by_a_kill_is_ignored(bench12, tmp_path):
    out = tmp_path / "run.h5"
    store = run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=4))
    # Simulate a crash after two journaled results and a half-written third line.
    fresh = RunStore.create(
        out, store.spec, encodings=store.encodings, index=store.index, arch_seeds=store.arch_seeds,
        targets=store.targets,
    )
    from zcnas.proxies import ProxyOutcome

    fresh.record(0, {"params": ProxyOutcome(1.5)})
    fresh.record(1, {"params": ProxyOutcome(2.5)})
    with open(str(out) + ".journal", "a") as journal:
        journal.write('{"row": 2, "outcomes": {"par')
    reopened = RunStore.open(out)
    assert reopened.done_count() == 2 and reopened.scores["params"][1] == 2.5


def test_existing_run_file_needs_resume_or_overwrite(bench12, tmp_path):
    out = tmp_path / "run.h5"
    run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3))
    with pytest.raises(RunError, match="--resume"):
        run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3))
    with pytest.raises(RunError, match="seed"):
        run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3, seed=9, resume=True))
    run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3, overwrite=True))


def test_ntk_samples_is_part_of_the_run_spec(bench12, tmp_path):
    out = tmp_path / "run.h5"
    default = run_job(bench12, tmp_path / "default.h5", JobOptions(proxies="ntk_trace", batch_size=8, sample=3))
    four = run_job(bench12, out, JobOptions(proxies="ntk_trace", batch_size=8, sample=3, ntk_samples=4))
    assert default.spec.ntk_samples == 16 and RunStore.open(out).spec.ntk_samples == 4
    # A 4-sample kernel's trace sums 4 squared gradient norms, the default's all 8 of the batch.
    assert (four.scores["ntk_trace"] < default.scores["ntk_trace"]).all()
    with pytest.raises(RunError, match="ntk_samples"):
        run_job(bench12, out, JobOptions(proxies="ntk_trace", batch_size=8, sample=3, resume=True))


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(proxies="no_such_proxy"), ProxyError, "Unknown proxy 'no_such_proxy'"),
        (dict(proxies="params", batch_size=999), Exception, "999"),
        (dict(proxies="params", device="cuda:0"), RunError, "no CUDA|cuda"),
        (dict(proxies="params", sample=10_000), RunError, "larger than"),
        (dict(proxies="params", workers=0), RunError, "--workers"),
        (dict(proxies="ntk_cond", ntk_samples=1), RunError, "--ntk-samples"),
    ],
)
def test_bad_job_options_are_refused_before_any_work(bench12, tmp_path, options, error, match):
    import torch

    if options.get("device") == "cuda:0" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run.h5"
    with pytest.raises(error, match=match):
        run_job(bench12, out, JobOptions(**{"batch_size": 8, **options}))
    assert not out.exists()


def test_out_folder_is_created(bench12, tmp_path):
    out = tmp_path / "runs" / "nested" / "run.h5"
    run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=2))
    assert RunStore.open(out).done_count() == 2
