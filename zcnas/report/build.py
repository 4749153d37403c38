"""A report: every proxy of a run against every target, as plain data (then rendered).

The dict `build_report` returns is the JSON document of docs/report-format.md (schema_version
2): metrics with bootstrap intervals, top-k precision, the noise ceiling, failures and time,
and the rank pairs the HTML scatter plots draw. Renderers (`render`, `html`) and `check` read
only this dict, so a report can be re-rendered or checked without the run file.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
from scipy import stats

from zcnas import __version__
from zcnas.errors import ZcnasError
from zcnas.report import bootstrap
from zcnas.report.ceiling import noise_ceilings, parse_ceiling_pair
from zcnas.report.metrics import DEFAULT_TOP_K, correlations, metric_names, point_metrics_with_reasons, top_k_count, top_k_metric_names
from zcnas.report.reliability import above_bound, attenuation_bound, run_reliability
from zcnas.run.store import FAILED, OK, RunStore

REPORT_SCHEMA_VERSION = 2
REPORT_KIND = "zcnas-report"
DEFAULT_SCATTER_POINTS = 400


def run_provenance(store: RunStore) -> dict:
    """Where a document made from a run comes from (a report, a combine summary): zcnas
    version, creation time (UTC), the run file and its benchmark, search space and dataset."""
    return {
        "zcnas_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": str(store.path),
        "benchmark": store.spec.benchmark_name,
        "search_space": store.spec.search_space,
        "dataset": store.spec.dataset,
    }


def build_report(
    store: RunStore,
    targets: list[str] | None = None,
    *,
    top_k: Sequence[float] = DEFAULT_TOP_K,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    confidence: float = bootstrap.DEFAULT_CONFIDENCE,
    ceiling_pairs: Sequence[str | tuple[str, str]] = (),
    scatter_points: int = DEFAULT_SCATTER_POINTS,
) -> dict:
    """Metrics of each proxy against each target with bootstrap intervals, noise ceilings,
    failures and time per proxy, as a JSON-ready dict.

    `resamples=0` skips the bootstrap (intervals are then null). The resamples are drawn once
    from `bootstrap_seed` and shared by every proxy, target and ceiling, so intervals of two
    proxies come from the same resampled architecture sets.
    """
    known = sorted(store.targets)
    targets = list(targets or known)
    for target in targets:
        if target not in store.targets:
            raise ZcnasError(f"The run has no target {target!r}; its targets: {', '.join(known)}.")
    if resamples < 0:
        raise ZcnasError(f"--bootstrap takes a number of resamples >= 0 (0: no intervals); got {resamples}.")
    if not 0 < confidence < 1:
        raise ZcnasError(f"The confidence level must be between 0 and 1; got {confidence}.")
    pairs = [p if isinstance(p, tuple) else parse_ceiling_pair(p, known) for p in ceiling_pairs]
    top_k = tuple(float(p) for p in top_k)
    names = metric_names(top_k)
    n = len(store)

    started = time.perf_counter()
    counts = bootstrap.resample_counts(n, resamples, bootstrap_seed) if resamples and n else None
    scores = {
        proxy: np.where(store.status[proxy] == OK, store.scores[proxy], np.nan) for proxy in store.spec.columns
    }
    rng = np.random.default_rng([int(bootstrap_seed), 1])  # which points the scatter plots show
    per_target: dict[str, dict[str, dict]] = {}
    for target in targets:
        values = store.targets[target]
        replicates = bootstrap.bootstrap_many(scores, values, counts, top_k) if counts is not None else None
        per_target[target] = {}
        for proxy, score in scores.items():
            point, reasons = point_metrics_with_reasons(score, values, top_k)
            keep = np.isfinite(score) & np.isfinite(values)
            pairs_n = int(keep.sum())
            entry: dict = {"n": pairs_n}
            for name in names:
                low = high = None
                if replicates is not None and point[name] is not None:
                    low, high = bootstrap.percentile_interval(replicates[proxy][name], confidence)
                entry[name] = {"value": point[name], "low": low, "high": high}
                if name in reasons:
                    entry[name]["reason"] = reasons[name]
            for percent in top_k:
                for name in top_k_metric_names(percent):
                    entry[name]["k"] = top_k_count(percent, pairs_n) if pairs_n else 0
            entry["scatter"] = _scatter(score[keep], values[keep], scatter_points, rng)
            per_target[target][proxy] = entry

    ceilings = noise_ceilings(
        targets,
        {t: store.targets[t] for t in known},
        {t: store.target_seeds[t] for t in targets if t in store.target_seeds},
        pairs,
        counts,
        confidence,
    )
    repeats = max(1, int(store.spec.repeats))
    reliability = run_reliability(store, counts, confidence) if repeats > 1 else {}
    if repeats > 1:
        for target in targets:
            for proxy, entry in per_target[target].items():
                _add_reliability(entry, store, proxy, target, reliability.get(proxy), ceilings.get(target))
    seconds = time.perf_counter() - started

    proxies = []
    for proxy in store.spec.columns:
        ok = store.status[proxy] == OK
        spent = store.seconds[proxy][ok]
        proxies.append(
            {
                "proxy": proxy,
                "scored": int(ok.sum()),
                "failed": int((store.status[proxy] == FAILED).sum()),
                "pending": int((store.status[proxy] == 0).sum()),
                "median_seconds": float(np.median(spent)) if len(spent) else None,
                "first_errors": sorted({e for e in store.errors[proxy] if e})[:3],
                **({"reliability": reliability.get(proxy)} if repeats > 1 else {}),
                "targets": {target: per_target[target][proxy] for target in targets},
            }
        )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": REPORT_KIND,
        **run_provenance(store),
        "seed": store.spec.seed,
        "batch_size": store.spec.batch_size,
        "repeats": repeats,
        "vary": store.spec.vary,
        "protocol": store.spec.protocol,
        "architectures": n,
        "pending": len(store.pending_rows()),  # architectures some proxy has not finished yet
        "metrics": names,
        "top_k_percent": [float(p) for p in top_k],
        "bootstrap": {
            "method": "percentile",
            "unit": "architecture",
            "resamples": int(resamples),
            "confidence": confidence,
            "seed": int(bootstrap_seed),
            "seconds": round(seconds, 3),
        },
        "targets": targets,
        "run_targets": known,
        "primary_target": primary_target(targets, store.primary_target),
        "noise_ceiling": ceilings,
        "proxies": proxies,
    }


def _add_reliability(entry: dict, store: RunStore, proxy: str, target: str, reliability: dict | None, ceiling: dict | None) -> None:
    """What a run with repeats adds to a proxy x target entry: the attenuation bound its
    reliability and the target's noise ceiling allow, whether its ρ lies above it, and the
    Spearman ρ of each repeat alone (what one scoring would have given)."""
    bound = attenuation_bound(reliability, ceiling)
    entry["reliability_bound"] = bound
    entry["above_reliability_bound"] = above_bound(entry, bound)
    if proxy in store.repeat_scores:
        ok = store.repeat_status[proxy] == OK
        values = store.targets[target]
        entry["repeat_spearman"] = [
            correlations(np.where(ok[:, r], store.repeat_scores[proxy][:, r], np.nan), values)["spearman"]
            for r in range(store.repeat_scores[proxy].shape[1])
        ]


def primary_target(targets: Sequence[str], declared: str | None) -> str | None:
    """The target a report leads with: the run's primary target (the benchmark's
    `primary_target` attribute, else its first target; docs/benchmark-format.md) when the report
    has it, else the report's first target (runs from before zcnas recorded it, or a --target
    list that leaves it out)."""
    if declared in targets:
        return declared
    return targets[0] if targets else None


def _scatter(score: np.ndarray, target: np.ndarray, limit: int, rng: np.random.Generator) -> dict:
    """Ranks (1 = best, ties averaged) of the proxy and the target over all usable architectures,
    for at most `limit` of them drawn at random (a plot of 15,625 points shows no more)."""
    n = len(score)
    proxy_rank = stats.rankdata(-score) if n else np.zeros(0)
    target_rank = stats.rankdata(-target) if n else np.zeros(0)
    shown = np.arange(n) if n <= limit else np.sort(rng.choice(n, size=limit, replace=False))
    return {"n": n, "proxy_rank": proxy_rank[shown].tolist(), "target_rank": target_rank[shown].tolist()}


def metric_value(entry: dict, metric: str) -> float | None:
    """The point value of `metric` in a proxy x target entry of any schema version (1: a number)."""
    value = entry.get(metric)
    if isinstance(value, dict):
        value = value.get("value")
    return None if value is None else float(value)

