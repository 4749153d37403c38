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
        (dict(proxies="params", repeats=0), RunError, "--repeats must be at least 1"),
        (dict(proxies="params", repeats=2, vary="seeds"), RunError, "--vary takes both, init, batch"),
        (dict(proxies="params", protocol="naslib"), RunError, "--protocol takes zcnas or suite-zero"),
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


# -- repeats (issue 12) ---------------------------------------------------------------------
from zcnas.bench import open_benchmark  # noqa: E402
from zcnas.bench.probe import augmented_batch  # noqa: E402
from zcnas.run.runner import batch_seed, init_seed  # noqa: E402
from zcnas.run.store import repeat_design  # noqa: E402

NOISY = "synflow,grad_norm,nwot,params"


def _register_batch_probes(monkeypatch):
    """Two test proxies that read the batch a task got: its class spread and a fingerprint."""

    def class_spread(ctx):
        counts = np.bincount(ctx.y.cpu().numpy(), minlength=10)
        return ProxyResult(float(counts.max() - counts.min()))

    def fingerprint(ctx):
        return ProxyResult(float(ctx.x.double().sum()) + 1e-3 * float(ctx.y.double() @ torch_arange(len(ctx.y))))

    _register(monkeypatch, "class_spread", class_spread)
    _register(monkeypatch, "fingerprint", fingerprint)


def torch_arange(n):
    import torch

    return torch.arange(n, dtype=torch.float64)


def test_repeat_design_fills_an_init_by_batch_grid_diagonal_first():
    assert [repeat_design(r, "init") for r in range(3)] == [(0, 0), (1, 0), (2, 0)]
    assert [repeat_design(r, "batch") for r in range(3)] == [(0, 0), (0, 1), (0, 2)]
    both = [repeat_design(r, "both") for r in range(16)]
    assert both[:5] == [(0, 0), (1, 1), (0, 1), (1, 0), (2, 2)]
    assert len(set(both)) == 16 and set(both) == {(i, b) for i in range(4) for b in range(4)}
    for k in range(1, 5):  # the first k*k repeats are the whole k x k grid
        assert set(both[: k * k]) == {(i, b) for i in range(k) for b in range(k)}
    with pytest.raises(RunError, match="--vary"):
        repeat_design(1, "seed")


def test_repeat_seeds_derive_from_job_seed_index_and_repeat_alone():
    assert init_seed(3, 17, 0) == arch_seed(3, 17)  # repeat 0 is the single-repeat run
    seeds = {init_seed(3, 17, i) for i in range(5)} | {init_seed(3, 18, 1), init_seed(4, 17, 1)}
    assert len(seeds) == 7
    assert batch_seed(3, 0) == 3 and batch_seed(3, 1) != batch_seed(3, 2) != batch_seed(4, 2)
    assert batch_seed(3, 0, index=17) != batch_seed(3, 0, index=18) != batch_seed(3, 1, index=18)


@pytest.mark.parametrize("vary", ["init", "batch", "both"])
def test_repeat_zero_is_the_single_repeat_run_bit_for_bit(bench12, tmp_path, vary):
    one = run_job(bench12, tmp_path / "one.h5", JobOptions(proxies=NOISY, batch_size=8, sample=6))
    three = run_job(bench12, tmp_path / "three.h5", JobOptions(proxies=NOISY, batch_size=8, sample=6, repeats=3, vary=vary))
    reopened = RunStore.open(tmp_path / "three.h5")
    assert reopened.spec.repeats == 3 and reopened.spec.vary == vary and reopened.spec.protocol == "zcnas"
    for name in one.spec.proxies:
        np.testing.assert_array_equal(reopened.repeat_scores[name][:, 0], one.scores[name], err_msg=name)
        np.testing.assert_array_equal(reopened.repeat_scores[name], three.repeat_scores[name], err_msg=name)
        # the aggregate is the mean of the repeats (all succeeded here)
        np.testing.assert_allclose(reopened.scores[name], reopened.repeat_scores[name].mean(axis=1), rtol=1e-12, err_msg=name)
    _, cube = reopened.repeat_layer_cube("grad_norm")
    _, single = one.layer_matrix("grad_norm")
    np.testing.assert_array_equal(cube[:, 0, :], single)
    params = reopened.repeat_scores["params"]
    assert (params == params[:, :1]).all()  # params depends on neither init nor batch
    synflow = reopened.repeat_scores["synflow"]  # data-free: changes with the init only
    grad_norm = reopened.repeat_scores["grad_norm"]
    inits = [repeat_design(r, vary)[0] for r in range(3)]
    for r in range(1, 3):
        assert (synflow[:, r] == synflow[:, 0]).all() == (inits[r] == 0), (vary, r)
        assert not (grad_norm[:, r] == grad_norm[:, 0]).all()


def test_repeats_are_identical_for_any_number_of_workers(bench12, tmp_path):
    options = dict(proxies="grad_norm,nwot", batch_size=8, sample=6, repeats=3, seed=4)
    one = run_job(bench12, tmp_path / "w1.h5", JobOptions(**options, workers=1))
    two = run_job(bench12, tmp_path / "w2.h5", JobOptions(**options, workers=2))
    for name in one.spec.proxies:
        np.testing.assert_array_equal(one.repeat_scores[name], two.repeat_scores[name], err_msg=name)


def test_resume_with_repeats_is_per_architecture_and_repeat(bench12, tmp_path, monkeypatch):
    options = dict(proxies="grad_norm,params", batch_size=8, sample=5, repeats=3)
    full = run_job(bench12, tmp_path / "full.h5", JobOptions(**options))
    out = tmp_path / "run.h5"
    calls = []
    original = runner.score_architecture

    def stop_after_seven(task, payload):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append((task.row, task.repeat))
        return original(task, payload)

    monkeypatch.setattr(runner, "score_architecture", stop_after_seven)
    with pytest.raises(KeyboardInterrupt):
        run_job(bench12, out, JobOptions(**options))
    stopped = RunStore.open(out)
    assert len(stopped.pending_tasks()) == 15 - 7
    assert stopped.done_count() == 2  # rows 0 and 1 have all 3 repeats; row 2 only one
    assert np.isnan(stopped.scores["grad_norm"][2]) and stopped.repeat_status["grad_norm"][2, 0] == OK
    done_before = set(calls)
    calls.clear()
    monkeypatch.setattr(runner, "score_architecture", lambda t, p: (calls.append((t.row, t.repeat)), original(t, p))[1])
    resumed = run_job(bench12, out, JobOptions(**options, resume=True))
    assert len(calls) == 8 and not done_before & set(calls)  # nothing recomputed
    for name in full.spec.proxies:
        np.testing.assert_array_equal(full.repeat_scores[name], resumed.repeat_scores[name], err_msg=name)
        np.testing.assert_array_equal(full.scores[name], resumed.scores[name], err_msg=name)


@pytest.mark.parametrize(
    "changed, match",
    [(dict(repeats=2), "repeats"), (dict(vary="init"), "vary"), (dict(protocol="suite-zero", batch_size=8), "protocol")],
)
def test_resume_refuses_other_repeats_vary_or_protocol(bench12, tmp_path, changed, match):
    out = tmp_path / "run.h5"
    base = dict(proxies="params", batch_size=8, sample=3, repeats=3, vary="both")
    run_job(bench12, out, JobOptions(**base))
    with pytest.raises(RunError, match=match):
        run_job(bench12, out, JobOptions(**{**base, **changed, "resume": True}))


def test_one_repeat_ignores_vary_on_resume(bench12, tmp_path):
    out = tmp_path / "run.h5"
    run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3, vary="init"))
    assert run_job(bench12, out, JobOptions(proxies="params", batch_size=8, sample=3, resume=True)).done_count() == 3


def test_files_from_before_repeats_read_as_one_repeat_and_resume_with_their_draw(bench12, tmp_path):
    """A run file written before repeats and protocols existed: R = 1, the uniform draw; --resume
    without --protocol finishes it with that draw, as it was started."""
    import json

    import h5py

    out = tmp_path / "old.h5"
    legacy = run_job(bench12, tmp_path / "legacy.h5", JobOptions(proxies=PROXIES, batch_size=8, protocol="zcnas-random"))
    balanced = run_job(bench12, tmp_path / "balanced.h5", JobOptions(proxies=PROXIES, batch_size=8))
    assert not np.array_equal(legacy.scores["grad_norm"], balanced.scores["grad_norm"])
    fresh = RunStore.create(
        out, legacy.spec, encodings=legacy.encodings, index=legacy.index, arch_seeds=legacy.arch_seeds, targets=legacy.targets
    )
    for row in range(4):  # an old run stopped after 4 architectures
        fresh._apply(row, {name: _outcome(legacy, name, row) for name in legacy.spec.proxies})
    fresh.checkpoint()
    with h5py.File(out, "r+") as f:
        spec = json.loads(f.attrs["spec"])
        for key in ("repeats", "vary", "protocol"):
            del spec[key]
        f.attrs["spec"] = json.dumps(spec)
    old = RunStore.open(out)
    assert (old.spec.repeats, old.spec.protocol) == (1, "zcnas-random") and old.repeats == 1
    assert old.repeat_scores["grad_norm"].shape == (12, 1) and len(old.pending_tasks()) == 8
    resumed = run_job(bench12, out, JobOptions(proxies=PROXIES, batch_size=8, resume=True))
    assert resumed.spec.protocol == "zcnas-random"
    assert_same_scores(legacy, resumed)


def _outcome(store, name, row):
    from zcnas.proxies import ProxyOutcome

    error = store.errors[name][row] or None
    return ProxyOutcome(float(store.scores[name][row]), store.layers[name].get(row, {}), float(store.seconds[name][row]), error)


def test_the_probe_batch_is_class_balanced_for_every_seed_and_repeat(tmp_path, monkeypatch):
    """The default protocol's batches (one per repeat) hold every class as evenly as the batch
    size allows, whatever the seed; the uniform draw of before does not."""
    bench = make_tiny_benchmark(tmp_path / "b.h5", n_archs=4, probe_size=200)
    _register_batch_probes(monkeypatch)
    opened = open_benchmark(bench)
    spreads = []
    for seed in range(20):
        _, labels = opened.probe_batch(30, seed=seed)
        counts = np.bincount(labels.numpy(), minlength=10)
        assert counts.max() - counts.min() == 0, seed
        _, labels = opened.probe_batch(30, seed=seed, draw="random")
        spreads.append(np.ptp(np.bincount(labels.numpy(), minlength=10)))
    assert max(spreads) >= 3  # 3 per class is rarely what a uniform draw gives
    store = run_job(bench, tmp_path / "run.h5", JobOptions(proxies="class_spread,fingerprint", batch_size=25, repeats=3, vary="batch"))
    assert (store.repeat_scores["class_spread"] == 1).all()  # 25 = 5 classes of 3, 5 of 2: a spread of 1
    fingerprints = store.repeat_scores["fingerprint"]
    assert (fingerprints == fingerprints[:1]).all()  # one batch per repeat, shared by every architecture
    assert len(set(fingerprints[0])) == 3  # a new batch in every repeat


def test_suite_zero_gives_each_architecture_and_repeat_its_own_augmented_batch(tmp_path, monkeypatch):
    bench = make_tiny_benchmark(tmp_path / "b.h5", n_archs=5, probe_size=64)
    _register_batch_probes(monkeypatch)
    store = run_job(bench, tmp_path / "sz.h5", JobOptions(proxies="fingerprint", repeats=2, vary="batch", protocol="suite-zero"))
    assert store.spec.protocol == "suite-zero" and store.spec.batch_size == 32
    fingerprints = store.repeat_scores["fingerprint"]
    assert len(set(fingerprints.ravel())) == 10  # a fresh batch per architecture and per repeat
    again = run_job(bench, tmp_path / "sz2.h5", JobOptions(proxies="fingerprint", repeats=2, vary="batch", protocol="suite-zero"))
    np.testing.assert_array_equal(again.repeat_scores["fingerprint"], fingerprints)  # fixed by the seeds
    init_only = run_job(bench, tmp_path / "szi.h5", JobOptions(proxies="fingerprint", repeats=2, vary="init", protocol="suite-zero"))
    np.testing.assert_array_equal(init_only.repeat_scores["fingerprint"][:, 1], init_only.repeat_scores["fingerprint"][:, 0])
    np.testing.assert_array_equal(init_only.repeat_scores["fingerprint"][:, 0], fingerprints[:, 0])
    # Each batch is the pool's images cropped and flipped as RandomCrop(padding=4) + flip do.
    opened = open_benchmark(bench)
    row = 3
    x, y = augmented_batch(
        opened.probe_images, opened.probe_labels, opened.probe_mean, opened.probe_std, 32,
        batch_seed(0, 0, int(store.index[row])),
    )
    expected = float(x.astype(np.float64).sum()) + 1e-3 * float(y.astype(np.float64) @ np.arange(32))
    assert store.repeat_scores["fingerprint"][row, 0] == pytest.approx(expected, rel=1e-6)


def test_augmented_batch_crops_with_zero_padding_and_flips_like_torchvision():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(50, 8, 8, 3), dtype=np.uint8)  # no zero pixel of its own
    labels = np.arange(50) % 10
    x, y = augmented_batch(images, labels, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 40, seed=7, padding=2)
    assert x.shape == (40, 3, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    # Replay the draws: the chosen images, offsets (0..2p each way) and flips.
    replay = np.random.default_rng(7)
    chosen = replay.choice(50, size=40, replace=False)
    offsets = replay.integers(0, 5, size=(40, 2))
    flips = replay.random(40) < 0.5
    np.testing.assert_array_equal(y, labels[chosen])
    for i in range(40):
        padded = np.zeros((12, 12, 3), dtype=np.uint8)
        padded[2:10, 2:10] = images[chosen[i]]
        crop = padded[offsets[i, 0] : offsets[i, 0] + 8, offsets[i, 1] : offsets[i, 1] + 8]
        if flips[i]:
            crop = crop[:, ::-1]
        np.testing.assert_allclose(x[i].transpose(1, 2, 0), crop / 255.0, rtol=1e-6)
    zero_rows = [(x[i] == 0).all(axis=(0, 2)).sum() for i in range(40)]  # padding shows as black rows
    assert set(zero_rows) <= {0, 1, 2} and max(zero_rows) == 2
    assert 0.2 < flips.mean() < 0.8 and set(offsets.ravel()) == {0, 1, 2, 3, 4}


def test_token_benchmarks_repeat_with_their_own_draws_and_refuse_suite_zero(tmp_path):
    from test_token_probe import write_tokens

    tok = write_tokens(tmp_path / "tok.h5")
    with pytest.raises(RunError, match="suite-zero crops and flips probe images"):
        run_job(tok, tmp_path / "sz.h5", JobOptions(proxies="params", protocol="suite-zero", batch_size=4))
    store = run_job(tok, tmp_path / "run.h5", JobOptions(proxies="params", batch_size=4, repeats=2, vary="batch"))
    assert (store.repeat_status["params"] == OK).all() and store.spec.repeats == 2
