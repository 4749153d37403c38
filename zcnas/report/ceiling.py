"""The noise ceiling: how well any score that only sees the architecture can agree with a target.

A trained accuracy is the architecture's quality plus training noise (seed, data order, …).
A training-free proxy sees only the architecture, so the noise is as unpredictable to it as to
anyone: the best it can do is to rank the architectures by their noise-free quality, and even
that agrees with the measured target only as far as the target agrees with itself.

We measure that self-agreement two ways:

* **seeds**: the benchmark has the target measured under S training seeds
  (`targets/<metric>_seeds`, n x S). The *agreement* is the mean, over the S(S-1)/2 pairs
  of seed columns, of the rank correlation between two columns: how well one training run
  ranks the architectures the way another run does.
* **pair** (`--ceiling-pair A:B`): two targets that measure the same thing (e.g. the same
  accuracy from two benchmark releases). The agreement is their rank correlation.

The agreement is *not* yet the ceiling. Write a measured target T = q + e (quality plus noise
independent of the architecture's score p). Then corr(p, T) = corr(p, q) * corr(q, T) <=
corr(q, T), with equality only for a perfect proxy (p = q). And corr(q, T) is sqrt of the
target's *reliability* — which is the agreement r between two independent measurements if T is
one measurement, and the Spearman–Brown reliability k r / (1 + (k - 1) r) if T is the mean of
k seeds. Hence the ceiling = sqrt(reliability), always at least the agreement.

That chain is exact for Pearson r. For Spearman ρ and Kendall τ we go through the Pearson
r that a bivariate normal would have (Greiner: r = sin(π τ / 2); r = 2 sin(π ρ / 6)), apply
the same formula, and map back. So for ranks the ceiling is an estimate under a Gaussian-copula
model of the noise, not a theorem; docs/report-format.md says so next to the numbers.

The bootstrap interval of the agreement uses the same resamples of architectures as the
proxies' intervals; the ceiling's interval is the same transform of each resample (the
transform is increasing, so percentiles map onto percentiles).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from zcnas.errors import ZcnasError
from zcnas.report import bootstrap
from zcnas.report.metrics import METRICS

CEILING_METRICS = tuple(METRICS)  # spearman, kendall, pearson


def parse_ceiling_pair(text: str, known: Sequence[str]) -> tuple[str, str]:
    """'A:B' -> ("A", "B"), both targets of the run."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ZcnasError(f"--ceiling-pair takes two different targets as A:B, e.g. test_acc:valid_acc; got {text!r}.")
    for name in parts:
        if name not in known:
            raise ZcnasError(
                f"--ceiling-pair names target {name!r}, which the run does not have; its targets: {', '.join(known)}."
            )
    return parts[0], parts[1]


def to_pearson_equivalent(metric: str, value):
    """The Pearson r a bivariate normal with this Spearman ρ / Kendall τ has (r for Pearson)."""
    value = np.asarray(value, dtype=float)
    if metric == "kendall":
        return np.sin(np.pi * value / 2)
    if metric == "spearman":
        return 2 * np.sin(np.pi * value / 6)
    return value


def from_pearson_equivalent(metric: str, r):
    r = np.asarray(r, dtype=float)
    if metric == "kendall":
        return 2 / np.pi * np.arcsin(r)
    if metric == "spearman":
        return 6 / np.pi * np.arcsin(r / 2)
    return r


def ceiling_from_agreement(metric: str, agreement, averaged: float):
    """The ceiling for a target that averages `averaged` measurements whose pairwise agreement
    is `agreement` (in `metric`'s own scale); 0 where the measurements do not agree at all."""
    r = np.clip(to_pearson_equivalent(metric, agreement), 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        reliability = averaged * r / (1 + (averaged - 1) * r)
    return from_pearson_equivalent(metric, np.sqrt(reliability))


def _interval(value: float | None, replicates: np.ndarray | None, confidence: float) -> dict:
    low = high = None
    if replicates is not None and value is not None:
        low, high = bootstrap.percentile_interval(replicates, confidence)
    return {"value": value, "low": low, "high": high}


def _mean_pairwise(columns: np.ndarray) -> dict[str, float | None]:
    from zcnas.report.metrics import correlations

    values = {name: [] for name in CEILING_METRICS}
    for i, j in itertools.combinations(range(columns.shape[1]), 2):
        for name, value in correlations(columns[:, i], columns[:, j]).items():
            if value is not None:
                values[name].append(value)
    return {name: float(np.mean(v)) if v else None for name, v in values.items()}


def how_target_uses_seeds(target: np.ndarray, seeds: np.ndarray) -> tuple[str, float]:
    """What the target is in terms of its seed columns: (description, seeds averaged in it)."""
    rows = np.all(np.isfinite(seeds), axis=1) & np.isfinite(target)
    if not rows.any():
        return "unknown (no architecture has every seed)", float(seeds.shape[1])
    t, s = target[rows], seeds[rows]
    scale = max(float(np.max(np.abs(t))), 1e-12)
    if np.allclose(t, s.mean(axis=1), rtol=1e-6, atol=1e-6 * scale):
        return "mean of the seed columns", float(seeds.shape[1])
    for j in range(s.shape[1]):
        if np.allclose(t, s[:, j], rtol=1e-6, atol=1e-6 * scale):
            return f"seed column {j}", 1.0
    return "not the mean of the seed columns; assumed an average of all of them", float(seeds.shape[1])


def _ceiling_entry(point: dict, replicates: dict | None, averaged: float, confidence: float) -> dict:
    metrics = {}
    for name in CEILING_METRICS:
        value = point[name]
        reps = None if replicates is None else replicates[name]
        ceiling = None if value is None else float(ceiling_from_agreement(name, value, averaged))
        metrics[name] = {
            "agreement": _interval(value, reps, confidence),
            "ceiling": _interval(ceiling, None if reps is None else ceiling_from_agreement(name, reps, averaged), confidence),
        }
    return metrics


def seed_ceiling(target: np.ndarray, seeds: np.ndarray, counts: np.ndarray | None, confidence: float) -> dict | None:
    """The noise ceiling of a target from its training seeds (None with fewer than 2 seeds)."""
    seeds = np.asarray(seeds, dtype=float)
    if seeds.ndim != 2 or seeds.shape[1] < 2:
        return None
    described, averaged = how_target_uses_seeds(np.asarray(target, dtype=float), seeds)
    point = _mean_pairwise(seeds)
    replicates = None if counts is None else bootstrap.seed_agreement_replicates(seeds, counts)
    return {
        "source": "seeds",
        "seeds": int(seeds.shape[1]),
        "n": int(np.sum(np.sum(np.isfinite(seeds), axis=1) >= 2)),
        "target_is": described,
        "averaged_measurements": averaged,
        "metrics": _ceiling_entry(point, replicates, averaged, confidence),
    }


def pair_ceiling(a: np.ndarray, b: np.ndarray, names: tuple[str, str], counts: np.ndarray | None, confidence: float) -> dict:
    """The noise ceiling from two targets that measure the same thing (assumed equally reliable)."""
    columns = np.column_stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    point = _mean_pairwise(columns)
    replicates = None if counts is None else bootstrap.seed_agreement_replicates(columns, counts)
    return {
        "source": "pair",
        "pair": list(names),
        "n": int(np.sum(np.all(np.isfinite(columns), axis=1))),
        "target_is": "one of two measurements of the same quantity, assumed equally reliable",
        "averaged_measurements": 1.0,
        "metrics": _ceiling_entry(point, replicates, 1.0, confidence),
    }


def noise_ceilings(
    targets: Sequence[str],
    values: dict[str, np.ndarray],
    seeds: dict[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    counts: np.ndarray | None,
    confidence: float,
) -> dict[str, dict | None]:
    """target -> its ceiling, or None with the reason left to the renderers.

    A `--ceiling-pair` naming a target takes precedence over the target's seeds: the user asked
    for it. Otherwise seeds are used where the benchmark has at least 2.
    """
    out: dict[str, dict | None] = {}
    by_pair = {}
    for a, b in pairs:
        by_pair.setdefault(a, (a, b))
        by_pair.setdefault(b, (a, b))
    computed_pairs: dict[tuple[str, str], dict] = {}
    for target in targets:
        if target in by_pair:
            pair = by_pair[target]
            if pair not in computed_pairs:
                computed_pairs[pair] = pair_ceiling(values[pair[0]], values[pair[1]], pair, counts, confidence)
            out[target] = computed_pairs[pair]
        elif target in seeds:
            out[target] = seed_ceiling(values[target], seeds[target], counts, confidence)
        else:
            out[target] = None
    return out
