"""Agreement of two runs' scores: does zcnas's proxy rank architectures as a reference does?

`compare_runs` matches the architectures two runs both scored by their canonical encoding
(the runs may hold different samples, in different orders), and for every proxy both runs
have gives Spearman ρ and Kendall τ-b between the two runs' scores of that proxy, over the
architectures both scored successfully, with percentile bootstrap intervals over those
architectures (`zcnas.report.bootstrap`, the same resampling as the report's). A proxy that
only one run has is named in a note. The result is a JSON-ready dict; `zcnas compare`
renders it.

A typical use: `zcnas bench import naslib-zc` writes NAS-Bench-Suite-Zero's scores as a
reference run, `zcnas score` scores the same benchmark, and `zcnas compare` says per proxy
how far zcnas's implementation agrees with NASLib's (1.0: the same ranking).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from zcnas import __version__
from zcnas.errors import ZcnasError
from zcnas.report import bootstrap
from zcnas.report.metrics import kendall, paired_finite, spearman
from zcnas.run.store import FAILED, OK, PENDING, RunStore

COMPARE_KIND = "zcnas-compare"
COMPARE_METRICS = ("spearman", "kendall")


def compare_runs(
    run_a: RunStore,
    run_b: RunStore,
    *,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    confidence: float = bootstrap.DEFAULT_CONFIDENCE,
) -> dict:
    """Per-proxy rank agreement of two runs of one search space, as a JSON-ready dict.

    `ZcnasError` (one sentence) when the runs are of different spaces, share no
    architecture or share no proxy. `resamples=0` skips the intervals.
    """
    name_a, name_b = str(run_a.path), str(run_b.path)
    if run_a.spec.search_space != run_b.spec.search_space:
        raise ZcnasError(
            f"Runs {name_a} and {name_b} are of different search spaces ({run_a.spec.search_space} and "
            f"{run_b.spec.search_space}); compare two runs of one space."
        )
    if resamples < 0:
        raise ZcnasError(f"--bootstrap takes a number of resamples >= 0 (0: no intervals); got {resamples}.")
    if not 0 < confidence < 1:
        raise ZcnasError(f"The confidence level must be between 0 and 1; got {confidence}.")
    keys_a = _canonical_keys(run_a)
    keys_b = _canonical_keys(run_b)
    row_of_b = {key: row for row, key in enumerate(keys_b)}
    rows_a = [row for row, key in enumerate(keys_a) if key in row_of_b]
    rows_b = [row_of_b[keys_a[row]] for row in rows_a]
    if not rows_a:
        raise ZcnasError(
            f"Runs {name_a} and {name_b} share no architecture (matched by canonical encoding: "
            f"{len(keys_a)} and {len(keys_b)} architectures); compare runs of the same benchmark or sample."
        )
    columns_a, columns_b = list(run_a.spec.columns), list(run_b.spec.columns)
    shared = [p for p in columns_a if p in columns_b]
    if not shared:
        raise ZcnasError(
            f"Runs {name_a} and {name_b} share no proxy ({name_a} has {', '.join(columns_a) or 'none'}; "
            f"{name_b} has {', '.join(columns_b) or 'none'})."
        )

    index_a, index_b = np.asarray(rows_a), np.asarray(rows_b)
    n_common = len(index_a)
    counts = bootstrap.resample_counts(n_common, resamples, bootstrap_seed) if resamples else None
    own = {p: e for run in (run_a, run_b) for p, e in _self_agreement(run).items()}
    proxies = []
    for proxy in shared:
        a = _usable(run_a, proxy)[index_a]
        b = _usable(run_b, proxy)[index_b]
        entry = {
            "proxy": proxy,
            "n": int(np.sum(np.isfinite(a) & np.isfinite(b))),
            "unusable_a": int(np.sum(~np.isfinite(a))),
            "unusable_b": int(np.sum(~np.isfinite(b))),
            **agreement(a, b, counts, confidence),
        }
        if proxy in own:
            entry["reference_retest"] = own[proxy]
        for side, store, index, other in (("a", run_a, index_a, b), ("b", run_b, index_b, a)):
            repeats = _repeat_agreement(store, proxy, index, other, counts, confidence)
            if repeats is not None:
                entry[f"repeats_{side}"] = repeats
        proxies.append(entry)

    notes = []
    only_a = [p for p in columns_a if p not in columns_b]
    only_b = [p for p in columns_b if p not in columns_a]
    if only_a:
        notes.append(f"only in {name_a}: {', '.join(only_a)}")
    if only_b:
        notes.append(f"only in {name_b}: {', '.join(only_b)}")
    if run_a.spec.dataset != run_b.spec.dataset:
        notes.append(
            f"the runs name different datasets ({run_a.spec.dataset}, {run_b.spec.dataset}): "
            "data-dependent proxies saw different probe images"
        )
    return {
        "kind": COMPARE_KIND,
        "zcnas_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "search_space": run_a.spec.search_space,
        "runs": [_describe(run_a), _describe(run_b)],
        "common_architectures": n_common,
        "metrics": list(COMPARE_METRICS),
        "bootstrap": {
            "method": "percentile",
            "unit": "architecture",
            "resamples": int(resamples),
            "confidence": confidence,
            "seed": int(bootstrap_seed),
        },
        "proxies": proxies,
        "only_in_a": only_a,
        "only_in_b": only_b,
        "notes": notes,
    }


def agreement(a: np.ndarray, b: np.ndarray, counts: np.ndarray | None, confidence: float) -> dict:
    """Spearman and Kendall of two aligned score vectors (NaN: unusable), each as
    {value, low, high} with percentile intervals over `counts`' resamples (None: no intervals),
    or with a `reason` when undefined."""
    values, reason = _point(a, b)
    replicates = None
    if counts is not None and reason is None:
        replicates = bootstrap.bootstrap_many({"a": a}, b, counts, top_k=())["a"]
    result = {}
    for metric in COMPARE_METRICS:
        low = high = None
        if replicates is not None:
            low, high = bootstrap.percentile_interval(replicates[metric], confidence)
        result[metric] = {"value": values.get(metric), "low": low, "high": high}
        if reason:
            result[metric]["reason"] = reason
    return result


def _repeat_agreement(
    store: RunStore, proxy: str, index: np.ndarray, other: np.ndarray, counts: np.ndarray | None, confidence: float
) -> dict | None:
    """For a run scored R >= 2 times (`score --repeats`): the like-for-like numbers, on the
    shared architectures whose every repeat is done and which the other run scored (NaN
    elsewhere, so every number here stands on one set). `one_repeat`: Spearman of one
    repeat's scores with the other run's score (its mean over repeats, if it has several),
    the mean over this run's usable repeats (one scoring against one scoring, as a reference
    was made; the interval: percentiles of that mean over the same resamples); a repeat with
    fewer than 3 usable scores is left out and counted in `repeats_left_out`. `retest`: the
    run's agreement with itself, the mean Spearman between two of its usable repeats
    (`zcnas.report.reliability`, on the architectures where each of them succeeded). None for
    a run of one repeat, or when no repeat is usable."""
    from zcnas.report.reliability import proxy_reliability

    if proxy not in store.repeat_scores or store.repeat_scores[proxy].shape[1] < 2:
        return None
    values, status = store.repeat_scores[proxy][index], store.repeat_status[proxy][index]
    done = np.all(status != PENDING, axis=1) & np.isfinite(other)
    usable = np.where(done[:, None] & (status == OK) & np.isfinite(values), values, np.nan)
    target = np.where(done, other, np.nan)
    points = {}
    for r in range(usable.shape[1]):
        value, reason = _point(usable[:, r], target)
        if reason is None:
            points[r] = value["spearman"]
    if not points:
        return None
    low = high = None
    if counts is not None:  # every usable repeat in one call: they share the target's side
        replicates = bootstrap.bootstrap_many({r: usable[:, r] for r in points}, target, counts, top_k=())
        mean = np.mean([replicates[r]["spearman"] for r in points], axis=0)
        low, high = bootstrap.percentile_interval(mean, confidence)
    left_out = usable.shape[1] - len(points)
    kept = sorted(points)  # the retest over the usable repeats: a repeat failed everywhere would empty it
    own = None
    if len(kept) >= 2:
        own = proxy_reliability(
            values[done][:, kept], status[done][:, kept], store.spec.vary,
            None if counts is None else counts[:, done], confidence, indices=tuple(kept),
        )
    if own is None:  # one usable repeat: nothing to retest against
        retest = {"n": 0, "spearman": {"value": None, "low": None, "high": None}}
    else:
        retest = {"n": own["n"], "spearman": own["agreement"]["spearman"]}
    return {
        "repeats": int(usable.shape[1]),
        "repeats_left_out": left_out,
        "vary": store.spec.vary,
        "n": int(done.sum()),
        "one_repeat": {"spearman": {"value": float(np.mean(list(points.values()))), "low": low, "high": high}},
        "retest": retest,
    }


def _self_agreement(store: RunStore) -> dict[str, dict]:
    """A reference run's agreement with itself, where its importer measured one (NAS-Bench-
    Suite-Zero scored some networks under several keys: `zcnas.bench.naslib_zc`)."""
    found = (store.spec.reference or {}).get("self_agreement") or {}
    return {
        proxy: {**entry, "run": str(store.path), "measured": found.get("measured", "")}
        for proxy, entry in (found.get("proxies") or {}).items()
    }


def _canonical_keys(store: RunStore) -> list[str]:
    """The run's encodings in canonical form (as stored, when the space cannot be loaded here)."""
    from zcnas.spaces import get_space

    try:
        space = get_space(store.spec.search_space)
    except ZcnasError:
        return list(store.encodings)
    keys = []
    for encoding in store.encodings:
        try:
            keys.append(space.canonical(encoding))
        except ZcnasError:
            keys.append(encoding)
    return keys


def _usable(store: RunStore, proxy: str) -> np.ndarray:
    """Scores where the proxy succeeded, NaN elsewhere (failed or not yet scored)."""
    ok = store.status[proxy] == OK
    return np.where(ok & np.isfinite(store.scores[proxy]), store.scores[proxy], np.nan)


def _point(a: np.ndarray, b: np.ndarray) -> tuple[dict[str, float], str | None]:
    x, y = paired_finite(a, b)
    if len(x) < 3:
        return {}, f"fewer than 3 architectures both runs scored ({len(x)})"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {}, "one run gives every shared architecture the same score"
    return {"spearman": spearman(x, y), "kendall": kendall(x, y)}, None


def _describe(store: RunStore) -> dict:
    reference = store.spec.reference or {}
    return {
        "run": str(store.path),
        "benchmark": store.spec.benchmark_name,
        "dataset": store.spec.dataset,
        "architectures": len(store),
        "failed": {p: int((store.status[p] == FAILED).sum()) for p in store.spec.columns},
        "reference": reference.get("origin"),
    }
