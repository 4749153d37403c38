"""Point metrics of a report: top-k sizes for small n, top-k precision with ties, Kendall in the top."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from zcnas.errors import ZcnasError
from zcnas.report.metrics import (
    kendall_in_top_k,
    metric_names,
    parse_top_k,
    point_metrics,
    point_metrics_with_reasons,
    selection_share,
    top_k_count,
    top_k_precision,
    true_top_k,
)


@pytest.mark.parametrize(
    ("percent", "n", "k"),
    [(10, 15625, 1563), (1, 15625, 157), (10, 100, 10), (1, 100, 1), (10, 15, 2), (10, 6, 1), (1, 6, 1), (50, 3, 2), (100, 7, 7), (0.5, 1000, 5)],
)
def test_top_k_count_is_ceil_of_k_percent_and_at_least_one(percent, n, k):
    assert top_k_count(percent, n) == k


def test_metric_names_follow_the_top_k_percents():
    assert metric_names((10, 1)) == [
        "spearman", "kendall", "pearson", "top10_precision", "top1_precision", "top10_kendall", "top1_kendall",
    ]
    assert metric_names((0.5,)) == ["spearman", "kendall", "pearson", "top0.5_precision", "top0.5_kendall"]


def test_parse_top_k():
    assert parse_top_k("10,1") == (10.0, 1.0)
    assert parse_top_k("5%, 0.5") == (5.0, 0.5)
    for bad in ("0", "ten", "150", ""):
        with pytest.raises(ZcnasError):
            parse_top_k(bad)


def test_top_k_precision_perfect_reversed_and_random():
    target = np.arange(100.0)
    assert top_k_precision(target * 3 + 1, target, 10) == 1.0
    assert top_k_precision(-target, target, 10) == 0.0
    # a constant proxy picks at random: expected precision k/n, whatever the sort order
    assert top_k_precision(np.zeros(100), target, 10) == pytest.approx(10 / 100)


def test_top_k_precision_breaks_ties_at_the_edge_fairly():
    target = np.array([5.0, 4, 3, 2, 1])
    proxy = np.array([9.0, 7, 7, 7, 0])  # top-2 (40%): arch 0 sure, 1 of 3 tied for the 2nd place
    # expected overlap with the true top-2 {0, 1}: 1 + 1/3
    assert top_k_precision(proxy, target, 40) == pytest.approx((1 + 1 / 3) / 2)
    share = selection_share(proxy, 2)
    assert share.sum() == pytest.approx(2)
    assert list(share) == pytest.approx([1, 1 / 3, 1 / 3, 1 / 3, 0])


def test_top_k_precision_ignores_non_finite_pairs():
    target = np.array([1.0, 2, 3, 4, np.nan, 6])
    proxy = np.array([1.0, 2, 3, np.inf, 5, 6])
    assert top_k_precision(proxy, target, 25) == 1.0  # n = 4 usable, k = 1: both pick arch 5


def test_true_top_k_includes_ties_at_the_edge():
    assert list(true_top_k(np.array([1.0, 3, 3, 2]), 25)) == [False, True, True, False]


def test_kendall_in_top_k_is_kendall_among_the_true_best():
    rng = np.random.default_rng(0)
    target = rng.normal(size=200)
    proxy = target + rng.normal(0, 0.5, 200)
    top = np.argsort(target)[-20:]
    expected = stats.kendalltau(proxy[top], target[top]).statistic
    assert kendall_in_top_k(proxy, target, 10) == pytest.approx(expected)
    assert kendall_in_top_k(proxy[:5], target[:5], 10) is None  # k = 1: no pair to rank


def test_point_metrics_has_every_metric_and_none_where_undefined():
    values = point_metrics(np.array([1.0, 1, 1]), np.array([1.0, 2, 3]))
    assert list(values) == metric_names()
    assert values["spearman"] is None and values["kendall"] is None
    assert values["top10_precision"] is None  # the top 10% of 3 is 1 architecture: too few


def test_a_top_k_metric_over_fewer_than_10_architectures_is_undefined_with_its_reason():
    rng = np.random.default_rng(0)
    target = rng.normal(size=240)
    score = target + rng.normal(0, 1, 240)
    # Kendall among the true top 1% of 240 = 3 architectures could only be ±1 or ±1/3
    assert kendall_in_top_k(score, target, 1) is not None
    values, reasons = point_metrics_with_reasons(score, target, (10, 1))
    assert values["top1_kendall"] is None and values["top1_precision"] is None
    assert reasons["top1_kendall"] == "the top 1% of 240 architectures is 3, fewer than 10: too few to measure"
    assert values["top10_kendall"] == pytest.approx(kendall_in_top_k(score, target, 10))  # 24: kept
    assert values["top10_precision"] == pytest.approx(top_k_precision(score, target, 10))
    assert set(reasons) == {"top1_kendall", "top1_precision"}
    _, reasons = point_metrics_with_reasons(np.ones(240), target, (10,))
    assert reasons["spearman"] == "the proxy gives every architecture the same score"
    assert reasons["top10_kendall"] == "the proxy or the target is constant within the true top 10%"
    assert "top10_precision" not in reasons  # a constant proxy's precision is defined: k/n
