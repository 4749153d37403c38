"""Rank metrics: the one registry of how a proxy is compared with a target.

Two kinds of metric live here:

* `METRICS`: the plain correlations (Spearman ρ, Kendall τ-b, Pearson r) of a proxy with a
  target over every architecture where both are finite.
* the top-k metrics, one pair per k% (`top_k_metric_names`): the precision of the proxy's top
  k% (`top10_precision`) and Kendall τ-b within the true top k% (`top10_kendall`).

`metric_names(top_k)` gives the full ordered list a report carries; the report, the renderers,
`check` and the tests read metric names from there. The bootstrap versions of the same
definitions (weights instead of index resamples) are in `zcnas.report.bootstrap`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np
from scipy import stats

DEFAULT_TOP_K = (10.0, 1.0)

# A top-k metric over fewer architectures is not reported (undefined, with the reason): Kendall's
# τ among 2 or 3 architectures can only be ±1 or ±1/3, a precision over 3 only 0, 1/3, 2/3 or 1,
# numbers that look like measurements and are coin flips.
MIN_TOP_K_ARCHITECTURES = 10


def spearman(score: np.ndarray, target: np.ndarray) -> float:
    return float(stats.spearmanr(score, target).statistic)


def kendall(score: np.ndarray, target: np.ndarray) -> float:
    """Kendall tau-b (ties counted as the field's references do)."""
    return float(stats.kendalltau(score, target, variant="b").statistic)


def pearson(score: np.ndarray, target: np.ndarray) -> float:
    """Signed Pearson r (NASLib reports |r|; the sign matters when a proxy runs backwards)."""
    return float(stats.pearsonr(score, target).statistic)


METRICS = {"spearman": spearman, "kendall": kendall, "pearson": pearson}

# What a person reads in tables and charts, for every metric name a report can carry.
LABELS = {"spearman": "Spearman ρ", "kendall": "Kendall τ", "pearson": "Pearson r"}


def percent_label(percent: float) -> str:
    """`10.0` -> "10", `0.5` -> "0.5": the k of a top-k metric name."""
    return f"{float(percent):g}"


def top_k_metric_names(percent: float) -> tuple[str, str]:
    """The names of the two top-k metrics for one k%: (precision, kendall within)."""
    label = percent_label(percent)
    return f"top{label}_precision", f"top{label}_kendall"


def metric_names(top_k: Sequence[float] = DEFAULT_TOP_K) -> list[str]:
    """Every metric a report with these top-k percents carries, in display order."""
    names = list(METRICS)
    names += [top_k_metric_names(p)[0] for p in top_k]
    names += [top_k_metric_names(p)[1] for p in top_k]
    return names


def metric_label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    if name.startswith("top") and name.endswith("_precision"):
        return f"top-{name[3:-len('_precision')]}% precision"
    if name.startswith("top") and name.endswith("_kendall"):
        return f"τ in true top-{name[3:-len('_kendall')]}%"
    return name


def parse_top_k(text: str | Sequence[float]) -> tuple[float, ...]:
    """'10,1' -> (10.0, 1.0); each k must be a percent in (0, 100]."""
    from zcnas.errors import ZcnasError

    items = text.split(",") if isinstance(text, str) else list(text)
    percents = []
    for item in items:
        try:
            value = float(str(item).strip().rstrip("%"))
        except ValueError:
            raise ZcnasError(f"--top-k takes percents separated by commas, e.g. 10,1; got {item!r}.") from None
        if not 0 < value <= 100:
            raise ZcnasError(f"--top-k percents must be in (0, 100]; got {value:g}.")
        if value not in percents:
            percents.append(value)
    if not percents:
        raise ZcnasError("--top-k needs at least one percent, e.g. 10,1.")
    return tuple(percents)


def top_k_count(percent: float, n: int | float) -> int:
    """How many architectures "the top k%" of n is: ceil(k% of n), at least 1.

    Computed exactly (10% of 15 is 1.5 -> 2; 1% of 100 is exactly 1, not 1.0000000002 -> 2).
    """
    return max(1, math.ceil(Fraction(str(float(percent))) * Fraction(n) / 100))


def paired_finite(score: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The architectures where both the proxy and the target have a finite value."""
    score, target = np.asarray(score, dtype=float), np.asarray(target, dtype=float)
    keep = np.isfinite(score) & np.isfinite(target)
    return score[keep], target[keep]


def correlations(score: np.ndarray, target: np.ndarray) -> dict[str, float | None]:
    """Every metric of METRICS; None where it is undefined (fewer than 3 pairs, a constant)."""
    score, target = paired_finite(score, target)
    if len(score) < 3 or np.ptp(score) == 0 or np.ptp(target) == 0:
        return {name: None for name in METRICS}
    return {name: metric(score, target) for name, metric in METRICS.items()}


def selection_share(values: np.ndarray, k: int) -> np.ndarray:
    """Each item's chance of being among the k highest when ties are broken uniformly at random.

    1 for items strictly inside the top k, 0 below it, and for the tie group that straddles the
    k-th place the share of its places that fall inside (e.g. 3 tied items for 1 place: 1/3).
    The shares always sum to exactly k.
    """
    values = np.asarray(values, dtype=float)
    _, group, size = np.unique(values, return_inverse=True, return_counts=True)
    greater = len(values) - np.cumsum(size)  # items strictly above each tie group
    return np.clip((k - greater) / size, 0.0, 1.0)[group.ravel()]


def top_k_precision(score: np.ndarray, target: np.ndarray, percent: float) -> float | None:
    """Share of the proxy's top k% that is also in the true top k% (k = `top_k_count`).

    With ties at the k-th place either side, the expected overlap when ties are broken at
    random (`selection_share`), so a proxy that gives every architecture the same score gets
    exactly k/n, the precision of a random pick, and not 0 or 1 depending on the sort order.
    """
    score, target = paired_finite(score, target)
    if len(score) == 0:
        return None
    k = top_k_count(percent, len(score))
    return float(np.sum(selection_share(score, k) * selection_share(target, k)) / k)


def true_top_k(target: np.ndarray, percent: float) -> np.ndarray:
    """The mask of the true top k%: every item whose target is at least the k-th highest."""
    target = np.asarray(target, dtype=float)
    k = top_k_count(percent, len(target))
    threshold = np.sort(target)[::-1][k - 1]
    return target >= threshold


def kendall_in_top_k(score: np.ndarray, target: np.ndarray, percent: float) -> float | None:
    """Kendall τ-b between proxy and target among the true top k% only (ties at the edge included).

    Asks whether the proxy orders the good architectures among themselves, which is what a
    search that has already found the right neighbourhood needs. Undefined (None) with fewer
    than 2 architectures in the set or a constant there.
    """
    score, target = paired_finite(score, target)
    if len(score) == 0:
        return None
    top = true_top_k(target, percent)
    s, t = score[top], target[top]
    if len(s) < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return None
    return kendall(s, t)


def point_metrics(score: np.ndarray, target: np.ndarray, top_k: Sequence[float] = DEFAULT_TOP_K) -> dict[str, float | None]:
    """Every metric of `metric_names(top_k)` for one proxy and one target (None where undefined;
    `point_metrics_with_reasons` also says why)."""
    return point_metrics_with_reasons(score, target, top_k)[0]


def point_metrics_with_reasons(
    score: np.ndarray, target: np.ndarray, top_k: Sequence[float] = DEFAULT_TOP_K
) -> tuple[dict[str, float | None], dict[str, str]]:
    """`point_metrics`, and a reason (a clause) for each metric it leaves undefined."""
    results = _evaluate(score, target, top_k)
    return {name: value for name, (value, _) in results.items()}, {name: why for name, (_, why) in results.items() if why}


def _evaluate(score, target, top_k: Sequence[float]) -> dict[str, tuple[float | None, str | None]]:
    """(value, None) or (None, reason) for every metric of `metric_names(top_k)`."""
    paired_score, paired_target = paired_finite(score, target)
    n = len(paired_score)
    if n < 3:
        common = f"fewer than 3 architectures with a finite score and target ({n})"
    elif np.ptp(paired_score) == 0:
        common = "the proxy gives every architecture the same score"
    elif np.ptp(paired_target) == 0:
        common = "the target is the same for every architecture"
    else:
        common = None
    results: dict[str, tuple[float | None, str | None]] = {}
    for name, value in correlations(paired_score, paired_target).items():
        results[name] = (value, None) if value is not None else (None, common or "undefined")
    for percent in top_k:
        precision, within = top_k_metric_names(percent)
        if n == 0:
            results[precision] = results[within] = (None, "no architecture with a finite score and target")
            continue
        k = top_k_count(percent, n)
        if k < MIN_TOP_K_ARCHITECTURES:
            reason = (
                f"the top {percent_label(percent)}% of {n} architectures is {k}, fewer than "
                f"{MIN_TOP_K_ARCHITECTURES}: too few to measure"
            )
            results[precision] = results[within] = (None, reason)
            continue
        results[precision] = (top_k_precision(paired_score, paired_target, percent), None)
        value = kendall_in_top_k(paired_score, paired_target, percent)
        reason = None if value is not None else f"the proxy or the target is constant within the true top {percent_label(percent)}%"
        results[within] = (value, reason)
    return {name: results[name] for name in metric_names(top_k)}
