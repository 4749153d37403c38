"""Bootstrap intervals: the vectorised weighted formulas equal the plain ones on each resample."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from zcnas.report import bootstrap
from zcnas.report.metrics import metric_names, point_metrics

TOP_K = (10, 1, 50)


def materialised(values: np.ndarray, counts_row: np.ndarray) -> np.ndarray:
    return np.repeat(values, counts_row)


def assert_matches_naive(score, target, counts, top_k=TOP_K):
    replicates = bootstrap.bootstrap_metrics(score, target, counts, top_k)
    assert set(replicates) == set(metric_names(top_k))
    for b in range(counts.shape[0]):
        expected = point_metrics(materialised(score, counts[b]), materialised(target, counts[b]), top_k)
        for name, value in expected.items():
            got = replicates[name][b]
            if value is None:
                continue  # undefined on this resample (constant, < 3 pairs): the interval skips it
            assert got == pytest.approx(value, abs=1e-9), (name, b)


@pytest.mark.parametrize("n", [5, 37, 400])
def test_every_metric_equals_the_plain_formula_on_each_resample(n):
    rng = np.random.default_rng(n)
    target = rng.normal(size=n)
    score = target + rng.normal(size=n)
    assert_matches_naive(score, target, bootstrap.resample_counts(n, 25, seed=1))


def test_ties_failures_and_big_tie_groups():
    rng = np.random.default_rng(3)
    n = 300
    target = np.round(rng.normal(size=n) * 2) / 2  # a dozen values: tie groups bigger than a block
    score = np.round(target + rng.normal(size=n), 1)
    score[[3, 50, 77]] = np.nan
    target[[10, 11]] = np.nan
    assert_matches_naive(score, target, bootstrap.resample_counts(n, 20, seed=2))


def test_kendall_blocks_of_any_size_give_the_same_tau():
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=500), 1)
    y = np.round(x + rng.normal(size=500), 1)
    counts = bootstrap.resample_counts(500, 10, seed=0).astype(float)
    expected = [stats.kendalltau(np.repeat(x, c.astype(int)), np.repeat(y, c.astype(int))).statistic for c in counts]
    for block in (8, 23, 64, 500):
        plan = bootstrap.KendallPlan(x, y, block=block)
        assert plan.tau_b(counts) == pytest.approx(expected, abs=1e-12)


def test_large_counts_fall_back_to_float64_and_stay_exact():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=50), rng.normal(size=50)
    weights = rng.integers(0, 3000, size=(3, 50)).astype(float)  # blocks heavier than float32 holds
    expected = [stats.kendalltau(np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))).statistic for w in weights]
    assert bootstrap.weighted_kendall(x, y, weights) == pytest.approx(expected, abs=1e-12)


def test_resamples_are_reproducible_and_do_not_depend_on_chunking(monkeypatch):
    rng = np.random.default_rng(7)
    target = rng.normal(size=300)
    score = target + rng.normal(size=300)
    counts = bootstrap.resample_counts(300, 40, seed=11)
    assert np.array_equal(counts, bootstrap.resample_counts(300, 40, seed=11))
    assert not np.array_equal(counts, bootstrap.resample_counts(300, 40, seed=12))
    assert np.array_equal(counts[:10], bootstrap.resample_counts(300, 10, seed=11))
    assert np.all(counts.sum(axis=1) == 300)
    whole = bootstrap.bootstrap_metrics(score, target, counts, (10,))
    monkeypatch.setattr(bootstrap, "CHUNK_ELEMENTS", 300 * 3)  # 3 resamples a chunk
    chunked = bootstrap.bootstrap_metrics(score, target, counts, (10,))
    for name in whole:
        assert np.array_equal(whole[name], chunked[name], equal_nan=True), name


def test_percentile_interval():
    values = np.arange(1001, dtype=float)
    assert bootstrap.percentile_interval(values, 0.95) == pytest.approx((25.0, 975.0))
    assert bootstrap.percentile_interval(np.array([np.nan, np.nan])) == (None, None)


def test_many_proxies_share_resamples_and_match_one_at_a_time():
    rng = np.random.default_rng(8)
    target = rng.normal(size=200)
    scores = {"a": target + rng.normal(size=200), "b": -target, "c": target + rng.normal(size=200)}
    scores["c"][:5] = np.nan  # another mask: its own target side
    counts = bootstrap.resample_counts(200, 30, seed=0)
    together = bootstrap.bootstrap_many(scores, target, counts, (10,))
    for name, score in scores.items():
        alone = bootstrap.bootstrap_metrics(score, target, counts, (10,))
        for metric in alone:
            assert np.allclose(together[name][metric], alone[metric], equal_nan=True, atol=1e-12)
    assert np.all(together["b"]["spearman"] == pytest.approx(-1.0))


def test_speed_smoke():
    """A 2,000 x 3 bootstrap with 200 resamples stays well under a few seconds (the full-size
    figure comes from examples/report_speed.py)."""
    rng = np.random.default_rng(9)
    target = rng.normal(size=2000)
    scores = {f"p{i}": target + rng.normal(size=2000) for i in range(3)}
    counts = bootstrap.resample_counts(2000, 200, seed=0)
    start = time.perf_counter()
    bootstrap.bootstrap_many(scores, target, counts, (10, 1))
    assert time.perf_counter() - start < 20


@pytest.mark.slow
def test_full_size_report_takes_seconds_not_minutes():
    """15,625 architectures x 13 proxies x 1000 resamples (examples/report_speed.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from report_speed import time_report

    result = time_report()
    print(f"full-size report: {result['report_seconds']:.1f} s wall, {result['report_cpu_seconds']:.1f} s CPU")
    assert result["report_seconds"] < 120
