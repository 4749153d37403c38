"""How reliable a proxy is: test-retest agreement between its repeats, and what that permits.

A proxy's score depends on the random initialisation and the probe batch, not on the
architecture alone. A run with repeats (`zcnas score --repeats R`) scores every architecture
R times (docs/run-format.md says which init and batch each repeat uses), and the report
measures, per proxy, how well the repeats agree with each other over the architectures:

* **Mean pairwise Spearman** between repeat columns: how well one scoring ranks the
  architectures the way another does (the test-retest reliability of a single scoring, on
  the scale every rank metric of the report uses).
* **ICC(2,1)** (Shrout & Fleiss 1979: two-way random effects, absolute agreement, a single
  measurement) of the repeats' within-repeat ranks, and **ICC(2,k)**, the same for the mean
  of the k repeats. On ranks, because raw scores span up to 60 orders of magnitude (synflow)
  and a raw-value ICC would measure only the few largest architectures. Ranks give every
  repeat the same mean, so the two-way model's repeat effect is zero and ICC(2,1) is close to
  ICC(1,1) and to the mean pairwise Spearman: it is the pooled, variance-ratio form of the
  same agreement, and ICC(2,k) is the reliability of the aggregate score the report judges.
* **By source**: each pair of repeats differs in the init, in the batch or in both
  (`zcnas.run.store.repeat_design`); the agreement of the pairs of each kind, when the run
  has them (--vary both with R >= 3 has all three).
* **The aggregate's reliability**: the Spearman–Brown projection of the single-scoring
  agreement to the mean of R repeats, k r / (1 + (k - 1) r) with r the Pearson equivalent
  of the mean pairwise Spearman (the Gaussian-copula step of `report.ceiling`).

**The attenuation bound.** Write a proxy's aggregate P = p + e (its noise-free value plus
init/batch noise) and the target T = q + f (quality plus training noise). Then
|corr(P, T)| <= sqrt(rel(P) rel(T)) (Spearman 1904): no proxy can agree with a target better
than its own repeats and the target's own seeds permit. rel(T) is the noise ceiling's
reliability (`report.ceiling`; 1 without one); rel(P) the aggregate's above. In Spearman terms
through the same Pearson equivalents. A proxy above the bound's interval is flagged: its
correlation is not explained by what it measures reliably (a leak, a bug, or too few repeats
or architectures to measure its reliability).

Intervals are percentile bootstrap intervals over architectures, from the report's shared
resamples (`report.bootstrap`); a resample's ranks are its own (copies tie), so every
replicate is the exact value on the materialised resample. Reliability uses the architectures
on which every repeat of the proxy succeeded.
"""

from __future__ import annotations

import itertools
import numpy as np

from zcnas.report import bootstrap
from zcnas.report.ceiling import from_pearson_equivalent, to_pearson_equivalent
from zcnas.run.store import OK, PENDING, RunStore, repeat_design

SOURCES = ("init", "batch", "both")


def pair_kind(a: int, b: int, vary: str) -> str:
    """Which source of noise separates repeats a and b: init, batch or both."""
    init_a, batch_a = repeat_design(a, vary)
    init_b, batch_b = repeat_design(b, vary)
    if init_a != init_b and batch_a != batch_b:
        return "both"
    return "init" if init_a != init_b else "batch"


def weighted_ranks(columns: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """Midranks of every column in every resample: k arrays (resamples, n) from (n, k) values
    and (resamples, n) weights (copies of an architecture tie with each other)."""
    out = []
    for j in range(columns.shape[1]):
        ranked = bootstrap.Ranked(columns[:, j])
        through, group = ranked.state(weights)
        out.append(np.take(bootstrap._midranks(through, group), ranked.group_of, axis=1))
    return out


def icc(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICC(2,1) and ICC(2,k) of (resamples, n, k) values whose rows carry (resamples, n)
    weights (a weight w is w copies of the row): the two-way ANOVA of Shrout & Fleiss."""
    k = values.shape[2]
    total = weights.sum(axis=1)  # N per resample
    grand = np.einsum("bn,bnk->b", weights, values) / (total * k)
    row_mean = values.mean(axis=2)
    column_mean = np.einsum("bn,bnk->bk", weights, values) / total[:, None]
    ss_rows = k * np.einsum("bn,bn->b", weights, (row_mean - grand[:, None]) ** 2)
    ss_columns = total * ((column_mean - grand[:, None]) ** 2).sum(axis=1)
    ss_total = np.einsum("bn,bnk->b", weights, (values - grand[:, None, None]) ** 2)
    ss_error = ss_total - ss_rows - ss_columns
    with np.errstate(invalid="ignore", divide="ignore"):
        ms_rows = ss_rows / (total - 1)
        ms_columns = ss_columns / (k - 1)
        ms_error = ss_error / ((total - 1) * (k - 1))
        single = (ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error + k * (ms_columns - ms_error) / total)
        average = (ms_rows - ms_error) / (ms_rows + (ms_columns - ms_error) / total)
    return single, average


def _icc_from_cross(cross: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICC(2,1) and ICC(2,k) of k rank columns from their (resamples, k, k) weighted cross
    products about the centre (N + 1) / 2. Every column of midranks has exactly that weighted
    mean, so the columns' sum of squares is 0 and the ANOVA needs only these products: total
    SS = trace, rows SS = (sum of all entries) / k (the same numbers `icc` gets the long way)."""
    k = cross.shape[1]
    ss_total = np.trace(cross, axis1=1, axis2=2)
    ss_rows = cross.sum(axis=(1, 2)) / k
    with np.errstate(invalid="ignore", divide="ignore"):
        ms_rows = ss_rows / (total - 1)
        ms_error = (ss_total - ss_rows) / ((total - 1) * (k - 1))
        single = (ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error - k * ms_error / total)
        average = (ms_rows - ms_error) / (ms_rows - ms_error / total)
    return single, average


def _statistics(
    columns: np.ndarray, weights: np.ndarray, vary: str, indices: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Every reliability statistic for each row of `weights`; column j is repeat indices[j]
    (default: j), which says what separates two columns."""
    k = columns.shape[1]
    indices = tuple(range(k)) if indices is None else indices
    total = weights.sum(axis=1)
    centre = ((total + 1) / 2)[:, None]
    centred = [np.subtract(ranks, centre, out=ranks) for ranks in weighted_ranks(columns, weights)]
    weighted = [weights * column for column in centred]
    cross = np.empty((weights.shape[0], k, k))
    for a in range(k):
        for b in range(a, k):
            cross[:, a, b] = cross[:, b, a] = np.einsum("bn,bn->b", weighted[a], centred[b])
    out: dict[str, np.ndarray] = {}
    out["icc"], out["icc_average"] = _icc_from_cross(cross, total)
    by_kind: dict[str, list[np.ndarray]] = {}
    icc_by_kind: dict[str, list[np.ndarray]] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for a, b in itertools.combinations(range(k), 2):
            kind = pair_kind(indices[a], indices[b], vary)
            by_kind.setdefault(kind, []).append(cross[:, a, b] / np.sqrt(cross[:, a, a] * cross[:, b, b]))
            icc_by_kind.setdefault(kind, []).append(_icc_from_cross(cross[:, [a, b]][:, :, [a, b]], total)[0])
    every = [value for kind in by_kind for value in by_kind[kind]]
    out["spearman"] = np.mean(every, axis=0)
    for kind in by_kind:
        out[f"{kind}:spearman"] = np.mean(by_kind[kind], axis=0)
        out[f"{kind}:icc"] = np.mean(icc_by_kind[kind], axis=0)
    return out


def spearman_brown(agreement, repeats: int):
    """The Spearman-scale agreement between two independent means of `repeats` scorings, from
    the single-scoring agreement (through the Pearson equivalent; 0 for no agreement)."""
    r = np.clip(to_pearson_equivalent("spearman", agreement), 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        projected = repeats * r / (1 + (repeats - 1) * r)
    return from_pearson_equivalent("spearman", projected)


def _cell(value, replicates: np.ndarray | None, confidence: float) -> dict:
    value = None if value is None or not np.isfinite(value) else float(value)
    low = high = None
    if replicates is not None and value is not None:
        low, high = bootstrap.percentile_interval(replicates, confidence)
    return {"value": value, "low": low, "high": high}


def proxy_reliability(
    repeat_scores: np.ndarray,
    repeat_status: np.ndarray,
    vary: str,
    counts: np.ndarray | None,
    confidence: float = bootstrap.DEFAULT_CONFIDENCE,
    indices: tuple[int, ...] | None = None,
) -> dict | None:
    """The reliability entry of one proxy (docs/report-format.md), from its (n, R) repeats;
    None with a single repeat. `indices`: the repeat index of each column when the columns
    are a subset of a run's repeats (default 0..R-1)."""
    repeats = repeat_scores.shape[1]
    indices = tuple(range(repeats)) if indices is None else tuple(indices)
    if repeats < 2:
        return None
    done = np.all(repeat_status != PENDING, axis=1)
    complete = np.all((repeat_status == OK) & np.isfinite(repeat_scores), axis=1)
    failed = int(np.sum((repeat_status != OK) & (repeat_status != PENDING)))
    n = int(complete.sum())
    entry: dict = {
        "repeats": repeats,
        "vary": vary,
        "n": n,
        "repeat_failed": failed,
        "architectures_with_a_failed_repeat": int(np.sum(done & ~complete)),
    }
    columns = repeat_scores[complete]
    if n >= 3:
        point = _statistics(columns, np.ones((1, n)), vary, indices)
        point = {name: float(values[0]) for name, values in point.items()}
    else:
        point = {}
    replicates = None
    if counts is not None and n >= 3:
        parts: dict[str, list[np.ndarray]] = {}
        for weights in bootstrap.chunks(counts[:, complete]):
            for name, values in _statistics(columns, weights, vary, indices).items():
                parts.setdefault(name, []).append(values)
        replicates = {name: np.concatenate(values) for name, values in parts.items()}

    def cell(name: str) -> dict:
        return _cell(point.get(name), None if replicates is None else replicates.get(name), confidence)

    aggregate_value = None if "spearman" not in point else float(spearman_brown(point["spearman"], repeats))
    aggregate_replicates = None if replicates is None else spearman_brown(replicates["spearman"], repeats)
    entry["agreement"] = {"spearman": cell("spearman"), "icc": cell("icc")}
    entry["aggregate"] = {
        "spearman": _cell(aggregate_value, aggregate_replicates, confidence),
        "icc": cell("icc_average"),
    }
    pairs = [pair_kind(a, b, vary) for a, b in itertools.combinations(indices, 2)]
    entry["sources"] = {
        kind: {
            "pairs": pairs.count(kind),
            "spearman": cell(f"{kind}:spearman"),
            "icc": cell(f"{kind}:icc"),
        }
        for kind in SOURCES
        if kind in pairs
    }
    return entry


def run_reliability(store: RunStore, counts: np.ndarray | None, confidence: float) -> dict[str, dict | None]:
    """proxy -> its reliability entry (None for a single repeat or a derived column)."""
    return {
        proxy: (
            proxy_reliability(store.repeat_scores[proxy], store.repeat_status[proxy], store.spec.vary, counts, confidence)
            if proxy in store.repeat_scores
            else None
        )
        for proxy in store.spec.columns
    }


def attenuation_bound(reliability: dict | None, ceiling: dict | None) -> dict | None:
    """The most |Spearman ρ| a proxy with this reliability can reach with a target of this noise
    ceiling: from_pearson(sqrt(rel_proxy) · sqrt(rel_target)), both reliabilities from their
    Spearman agreements; rel_target = 1 without a ceiling. The interval combines the ends of the
    two intervals (low with low, high with high): wider than a joint bootstrap would give, so a
    flag against its upper end is conservative."""
    if not reliability:
        return None
    proxy_cell = reliability["aggregate"]["spearman"]
    if proxy_cell["value"] is None:
        return None
    target_cell = (ceiling or {}).get("metrics", {}).get("spearman", {}).get("ceiling") if ceiling else None

    def bound(proxy_value, target_value):
        if proxy_value is None:
            return None
        root_proxy = np.sqrt(max(float(to_pearson_equivalent("spearman", proxy_value)), 0.0))
        root_target = 1.0 if target_value is None else max(float(to_pearson_equivalent("spearman", target_value)), 0.0)
        return float(from_pearson_equivalent("spearman", min(root_proxy * root_target, 1.0)))

    target = target_cell or {"value": None, "low": None, "high": None}
    if ceiling and target["value"] is None:
        return None
    return {
        "value": bound(proxy_cell["value"], target["value"]),
        "low": bound(proxy_cell["low"], target["low"] if target["low"] is not None else target["value"]),
        "high": bound(proxy_cell["high"], target["high"] if target["high"] is not None else target["value"]),
        "target_reliability": "noise ceiling" if ceiling else "1 (no noise ceiling)",
    }


def above_bound(cells: dict, bound: dict | None) -> bool:
    """Whether a proxy's |Spearman ρ| lies above its attenuation bound's interval."""
    if not bound:
        return False
    value = (cells.get("spearman") or {}).get("value")
    limit = bound["high"] if bound.get("high") is not None else bound.get("value")
    return value is not None and limit is not None and abs(value) > limit + 1e-12

