"""`evaluate_combine` keeps its splits apart: what is chosen or fitted sees the training rows
only, and the held-out metrics see the held-out rows only.

Each test builds a run whose scores and targets are written by hand around a known split, so
a leak in either direction changes a number the test pins.
"""

from __future__ import annotations

import numpy as np
import pytest

from zcnas.combine import Features, evaluate_combine, split_rows
from zcnas.proxies.compute import ProxyOutcome
from zcnas.report.metrics import correlations
from zcnas.run.store import RunSpec, RunStore

N, TRAIN, SEED = 40, 10, 5


def make_run(path, scores: dict[str, np.ndarray], target: np.ndarray) -> RunStore:
    """A run file holding exactly these scores (no per-layer statistics) and one target, "acc"."""
    n = len(target)
    spec = RunSpec(
        benchmark="synthetic.h5", benchmark_name="synthetic", search_space="synthetic", dataset="none",
        num_classes=10, proxies=tuple(scores), seed=0, sample=n, batch_size=8,
    )  # fmt: skip
    store = RunStore.create(
        path, spec, encodings=[f"arch{i}" for i in range(n)], index=np.arange(100, 100 + n),
        arch_seeds=np.arange(n), targets={"acc": np.asarray(target, dtype=float)},
    )  # fmt: skip
    for row in range(n):
        store.record(row, {name: ProxyOutcome(float(values[row]), {}, 0.0) for name, values in scores.items()})
    store.checkpoint()
    return RunStore.open(path)


def the_split() -> tuple[np.ndarray, np.ndarray]:
    """The split evaluate_combine draws for seed SEED (every row's target is finite)."""
    return split_rows(np.arange(N), TRAIN, SEED)


def test_best_single_proxy_is_chosen_on_the_training_rows_only(tmp_path):
    train, test = the_split()
    target = np.random.default_rng(0).permutation(N).astype(float)
    # train_fit orders the training rows exactly and the held-out rows backwards; test_fit the
    # opposite. On all rows (and on the held-out ones) test_fit is the better proxy.
    train_fit, test_fit = target.copy(), target.copy()
    train_fit[test], test_fit[train] = -target[test], -target[train]
    assert correlations(test_fit, target)["kendall"] > correlations(train_fit, target)["kendall"]
    run = make_run(tmp_path / "run.h5", {"train_fit": train_fit, "test_fit": test_fit}, target)

    split = evaluate_combine(run, "rank_average", "acc", TRAIN, seed=SEED, resamples=0).summary["splits"][0]
    assert split["train_index"] == [int(i) for i in run.index[train]]
    assert split["best_single"]["proxy"] == "train_fit"
    assert split["best_single"]["train_kendall"] == pytest.approx(1.0)
    assert split["best_single"]["metrics"]["kendall"] == pytest.approx(-1.0)  # its held-out rows, backwards
    assert split["single_proxies"]["test_fit"]["kendall"] == pytest.approx(1.0)  # the oracle's pick, kept visible


def test_training_rows_never_enter_the_held_out_metrics(tmp_path):
    """Poison every training row (target and all scores + 1e6: the order within the training
    rows, hence the chosen proxy, is kept): every held-out number stays exactly the same."""
    train, _ = the_split()
    rng = np.random.default_rng(1)
    target = 80 + rng.normal(size=N)
    scores = {name: target * weight + rng.normal(size=N) for name, weight in (("a", 1.0), ("b", 0.5), ("c", 0.0))}
    clean = make_run(tmp_path / "clean.h5", scores, target)
    poisoned_scores = {name: values.copy() for name, values in scores.items()}
    poisoned_target = target.copy()
    for values in (*poisoned_scores.values(), poisoned_target):
        values[train] += 1e6
    poisoned = make_run(tmp_path / "poisoned.h5", poisoned_scores, poisoned_target)

    options = dict(seed=SEED, proxies=["a", "b"], resamples=40, top_k=(10, 50))  # one split: the poisoned one
    before = evaluate_combine(clean, "rank_average", "acc", TRAIN, **options).summary["splits"]
    after = evaluate_combine(poisoned, "rank_average", "acc", TRAIN, **options).summary["splits"]
    for first, second in zip(before, after):
        assert first["train_index"] == second["train_index"]
        for key in ("metrics", "intervals", "single_proxies", "best_single"):
            assert second[key] == first[key], key
    # The poison is large enough to show: the same metrics over all rows would move.
    pearson = [correlations(s["c"], t)["pearson"] for s, t in ((poisoned_scores, poisoned_target), (scores, target))]
    assert pearson[0] > 0.9 > pearson[1]


def test_held_out_targets_never_enter_the_fit_or_the_choice(tmp_path):
    """The other direction: scramble the held-out targets; the fitted model (its predictions for
    every row) and the proxy chosen as best single are the same."""
    train, test = the_split()
    rng = np.random.default_rng(2)
    target = 80 + rng.normal(size=N)
    scores = {"a": target + rng.normal(0, 0.3, N), "b": -target + rng.normal(size=N), "c": rng.normal(size=N)}
    scrambled = target.copy()
    scrambled[test] = -1000 * rng.permutation(target[test])
    clean = make_run(tmp_path / "clean.h5", scores, target)
    other = make_run(tmp_path / "scrambled.h5", scores, scrambled)

    results = [evaluate_combine(store, "ridge", "acc", TRAIN, seed=SEED, resamples=0) for store in (clean, other)]
    features = Features.from_run(clean, proxies=["a", "b", "c"])
    np.testing.assert_array_equal(results[0].model.predict(features), results[1].model.predict(features))
    chosen = [r.summary["splits"][0]["best_single"] for r in results]
    assert chosen[0]["proxy"] == chosen[1]["proxy"] == "a"
    assert chosen[0]["train_kendall"] == chosen[1]["train_kendall"]
    # ... while the held-out metrics, which read those targets, do change.
    assert results[0].summary["splits"][0]["metrics"] != results[1].summary["splits"][0]["metrics"]
