"""Rank metrics: the one registry of how a proxy is compared with a target."""

from __future__ import annotations

import numpy as np
from scipy import stats


def spearman(score: np.ndarray, target: np.ndarray) -> float:
    return float(stats.spearmanr(score, target).statistic)


def kendall(score: np.ndarray, target: np.ndarray) -> float:
    """Kendall tau-b (ties counted as the field's references do)."""
    return float(stats.kendalltau(score, target, variant="b").statistic)


def pearson(score: np.ndarray, target: np.ndarray) -> float:
    """Signed Pearson r (NASLib reports |r|; the sign matters when a proxy runs backwards)."""
    return float(stats.pearsonr(score, target).statistic)


METRICS = {"spearman": spearman, "kendall": kendall, "pearson": pearson}


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
