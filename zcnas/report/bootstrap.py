"""Bootstrap intervals of the report's metrics, vectorised over resamples.

A bootstrap resample of n architectures draws n of them with replacement. Instead of building
each resample's arrays, we keep the architectures in place and give each a *count*: how many
times the resample drew it (a row of `resample_counts`). Every metric of a resample is then a
weighted statistic of the original data, and the weights of many resamples form one matrix
``W`` (resamples x architectures), so each step below is one numpy operation on the whole
matrix. Nothing is approximated: a resample's value is exactly the value the plain formula
gives on the materialised resample (tests/test_report_bootstrap.py checks this against
scipy on ``np.repeat``-ed arrays), including its ties — the copies of one architecture tie
with each other.

* Ranks: a variable is sorted once (its order does not change between resamples). In a
  resample, the midrank of a tie group is (weight of all smaller groups) + (its own weight
  + 1) / 2 — a cumulative sum of the weights in sorted order. So every resample gets its own
  ranks at the cost of one cumulative sum.
* Spearman ρ: Pearson r of those midranks, weighted by the counts.
* Kendall τ-b: τ-b = (n0 - n1 - n2 + n3 - 2D) / sqrt((n0 - n1)(n0 - n2)) where n0 counts
  pairs, n1/n2/n3 pairs tied in x / y / both (sums of g(g-1)/2 over the tie groups' weights,
  which the ranks above give) and D the discordant pairs: the weighted inversions of y in
  (x, y) order, D = sum over positions p < q of w_p w_q [y_p > y_q]. D is split by cutting the
  positions into x-blocks and the y-ranks into y-blocks (about 1.5 sqrt(n) each, tie groups
  never split): pairs in different x- and y-blocks are counted from the block totals with two
  cumulative sums; pairs inside one x-block, and inside one y-block, are one batched matrix
  product (torch.bmm) per block family. That is O(n sqrt(n)) flops per resample, not O(n^2).
* Pearson r: three matrix-vector products (weighted sums of x, x^2 and x y).
* Top-k precision and Kendall within the true top k: the same tie-group sums, restricted to
  the architectures that are in the true top k of at least one resample.

Proxies that share the same usable architectures share the target's half of the work, and
the proxies of a chunk of resamples run on one thread per core (numpy and torch release the
GIL in the heavy calls).

The counts come from a generator seeded by (report seed, resample number), so the intervals
are reproducible and do not depend on how the work is chunked.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Iterator, Mapping, Sequence

import numpy as np

from zcnas.report.metrics import metric_names, top_k_metric_names

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
# Weights handled per step (128 resamples of 15,625 architectures): fewer make the batched
# matrix products of Kendall's tau inefficient (measured 4x slower per resample at 16),
# more only add memory.
CHUNK_ELEMENTS = 2_000_000


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) counts: row b says how often resample b drew each architecture."""
    counts = np.empty((resamples, n), dtype=np.uint16)
    for b in range(resamples):
        drawn = np.random.default_rng([int(seed), b]).integers(0, n, size=n)
        counts[b] = np.bincount(drawn, minlength=n)
    return counts


def chunks(counts: np.ndarray, mask: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Float64 weight matrices of `CHUNK_ELEMENTS` at most, zero where `mask` is False."""
    resamples, n = counts.shape
    step = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, step):
        weights = counts[start : start + step].astype(np.float64)
        if mask is not None:
            weights *= mask
        yield weights


def percentile_interval(replicates: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float | None, float | None]:
    """The percentile bootstrap interval; None when no resample gave a defined value."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return None, None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------
# Weighted ranks of one variable


class Ranked:
    """One variable sorted once, with its tie groups, for the weighted ranks of any resample.

    `keep` marks the values that can carry weight; ties are looked for among those only (the
    others get weight 0 in every resample, so they never change a rank).
    """

    def __init__(self, values: np.ndarray, keep: np.ndarray | None = None):
        values = np.asarray(values, dtype=float)
        keep = np.ones(len(values), dtype=bool) if keep is None else keep
        self.n = len(values)
        self.order = np.argsort(values, kind="stable")
        ordered = values[self.order]
        new_group = np.ones(self.n, dtype=bool)
        new_group[1:] = ordered[1:] != ordered[:-1]
        kept = np.sort(values[keep])
        self.ties = bool(np.any(kept[1:] == kept[:-1]))
        if self.ties:
            self.ends = np.append(np.flatnonzero(new_group)[1:] - 1, self.n - 1)
            group_sorted = np.cumsum(new_group) - 1
        else:  # every architecture its own group: skip the group bookkeeping
            group_sorted = np.arange(self.n)
        self.group_of = np.empty(self.n, dtype=np.intp)
        self.group_of[self.order] = group_sorted

    def state(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(through, group), each (c, groups) in ascending order: the weight up to and including
        each tie group, and the group's own weight."""
        ordered = np.take(weights, self.order, axis=1)
        through = np.cumsum(ordered, axis=1)
        if not self.ties:
            return through, ordered
        through = np.take(through, self.ends, axis=1)
        return through, np.diff(through, axis=1, prepend=0.0)


def _midranks(through: np.ndarray, group: np.ndarray) -> np.ndarray:
    """A tie group's midrank in a resample: weight through it - (its weight - 1) / 2."""
    rank = np.multiply(group, -0.5)
    rank += through
    rank += 0.5
    return rank


def _pairs_within(group: np.ndarray) -> np.ndarray:
    """Pairs tied inside the groups: sum of g (g - 1) / 2, per resample."""
    return (np.einsum("ij,ij->i", group, group) - group.sum(axis=1)) / 2


def _rank_sum_of_squares(group: np.ndarray, total: np.ndarray) -> np.ndarray:
    """sum of w (midrank - mean midrank)^2 per resample: (N^3 - sum of g^3) / 12 over tie groups."""
    return (total**3 - np.einsum("ij,ij,ij->i", group, group, group)) / 12


def _top_count(total: np.ndarray, percent: float) -> np.ndarray:
    """`top_k_count` for every resample's total weight at once, in exact integer arithmetic."""
    fraction = Fraction(str(float(percent))) / 100
    n = np.rint(total).astype(np.int64)
    k = (n * fraction.numerator + fraction.denominator - 1) // fraction.denominator
    return np.maximum(k, 1).astype(np.float64)


def _share(above: np.ndarray, group: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Chance of being in the top k with ties broken at random, from the weight strictly above
    and the tie group's weight (the weighted twin of `metrics.selection_share`)."""
    inside = np.clip(k[:, None] - above, 0.0, group)
    return np.divide(inside, group, out=np.zeros_like(inside), where=group > 0)


# ---------------------------------------------------------------------------------------
# Kendall tau-b of weighted pairs


def _float32_with_zero_column(weights: np.ndarray) -> np.ndarray:
    """(c, n + 1) float32 copy with a zero last column, which padded block slots point at."""
    out = np.zeros((weights.shape[0], weights.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = weights
    return out


class KendallPlan:
    """Everything about (x, y) that does not depend on the resample, for weighted tau-b.

    Discordant pairs are counted on blocks: x-blocks of `block` consecutive architectures in
    x order, y-blocks of about as many in y order (tie groups kept whole). For each x-block one
    matrix product of the weights with [U | E] gives the discordant pairs inside the block (U)
    and the block's weight in each y-block (E, one-hot); pairs inside one y-block but across
    x-blocks are one more product per y-block (V); all other pairs are counted from the
    (x-block, y-block) weight grid with two cumulative sums.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, block: int | None = None):
        import torch

        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n = self.n = len(x)
        order = np.lexsort((y, x))  # by x, ties by y: the inversions of y are the discordant pairs
        xs, ys = x[order], y[order]
        self.x_ranked, self.y_ranked = Ranked(x), Ranked(y)
        change_xy = np.ones(n, dtype=bool)
        change_xy[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
        self.xy_order = order
        self.xy_ends = np.append(np.flatnonzero(change_xy)[1:] - 1, n - 1)
        y_values, y_rank = np.unique(ys, return_inverse=True)
        y_rank = y_rank.ravel()  # dense y rank of each position in x order
        y_sizes = np.bincount(y_rank, minlength=len(y_values))

        s = self.block = block or int(np.clip(round(1.5 * np.sqrt(max(n, 1))), 8, 512))
        positions = np.arange(n)
        x_block = positions // s
        self.x_blocks = x_blocks = max(1, -(-n // s))

        # y-blocks: whole tie groups packed up to s; a tie group larger than s is a block alone
        # (no pair inside it is discordant, so it only takes part in the grid term).
        oversized: list[int] = []
        if len(y_sizes) == 0 or y_sizes.max() == 1:  # no ties in y: plain blocks of s
            block_of_group = np.arange(len(y_sizes)) // s
            current = int(block_of_group[-1]) if len(y_sizes) else 0
        else:
            block_of_group = np.empty(len(y_sizes), dtype=np.intp)
            current, filled = -1, s
            for g, size in enumerate(y_sizes.tolist()):
                if size > s:
                    current += 1
                    block_of_group[g] = current
                    oversized.append(current)
                    filled = s
                    continue
                if filled + size > s:
                    current += 1
                    filled = 0
                block_of_group[g] = current
                filled += size
        self.y_blocks = y_blocks = max(1, current + 1)
        y_block = block_of_group[y_rank]

        later = np.triu(np.ones((s, s), dtype=bool), 1)
        padded = x_blocks * s
        rank_padded = np.full(padded, -1, dtype=np.int64)
        rank_padded[:n] = y_rank
        r = rank_padded.reshape(x_blocks, s)
        index = np.full(padded, n, dtype=np.intp)  # n = the zero column
        index[:n] = order
        self.x_index = index.reshape(x_blocks, s)
        within = (r[:, :, None] > r[:, None, :]) & later
        cell = np.zeros((x_blocks, s, y_blocks), dtype=bool)
        cell[x_block, positions % s, y_block] = True
        self.x_pairs = torch.from_numpy(np.concatenate([within, cell], axis=2).astype(np.float32))

        members = np.lexsort((positions, y_block))
        members_block = y_block[members]
        keep = ~np.isin(members_block, oversized)
        members, members_block = members[keep], members_block[keep]
        if len(members):
            blocks, first, counts = np.unique(members_block, return_index=True, return_counts=True)
            slot = np.arange(len(members)) - np.repeat(first, counts)
            row = np.repeat(np.arange(len(blocks)), counts)
            index = np.full((len(blocks), s), n, dtype=np.intp)
            index[row, slot] = order[members]
            rk = np.full((len(blocks), s), -1, dtype=np.int64)
            rk[row, slot] = y_rank[members]
            xb = np.full((len(blocks), s), -1, dtype=np.int64)
            xb[row, slot] = x_block[members]
            # members are in x order inside a block, so "before" is slot i < slot j
            pairs = (rk[:, :, None] > rk[:, None, :]) & (xb[:, :, None] != xb[:, None, :]) & later
            self.y_index = index
            self.y_pairs = torch.from_numpy(pairs.astype(np.float32))
        else:
            self.y_index = self.y_pairs = None

    def discordant(self, extended: np.ndarray) -> np.ndarray:
        """Weighted discordant pairs per resample; `extended` from `_float32_with_zero_column`.

        float32 is exact here: every quantity is an integer below 2^24 as long as no block
        weighs 4096 or more (checked; float64 otherwise). Only the final sums are float64.
        """
        import torch

        s = self.block
        exact = float(extended.max(initial=0.0)) * s < 4096 and float(extended.sum(axis=1).max(initial=0.0)) < 2**24
        dtype = np.float32 if exact else np.float64
        by_x = np.take(extended, self.x_index, axis=1).transpose(1, 0, 2).astype(dtype, copy=False)  # (blocks, c, s)
        pairs = self.x_pairs if exact else self.x_pairs.double()
        with torch.no_grad():
            product = torch.bmm(torch.from_numpy(np.ascontiguousarray(by_x)), pairs).numpy()
        total = np.einsum("gcs,gcs->gc", product[:, :, :s], by_x).sum(axis=0, dtype=np.float64)
        # grid[a, c, b]: resample c's weight in x-block a and y-block b. Pairs in different
        # blocks both ways are discordant when the later x-block has the lower y-block:
        # sum over (a, b) of (weight in x-blocks before a, in y-block b) x (weight in a, below b).
        grid = np.ascontiguousarray(product[:, :, s:])
        earlier = np.cumsum(grid, axis=0)
        earlier -= grid
        below = np.cumsum(grid, axis=2)
        below -= grid
        total += np.einsum("acb,acb->c", earlier, below, dtype=np.float64)
        if self.y_index is not None:
            by_y = np.ascontiguousarray(np.take(extended, self.y_index, axis=1).transpose(1, 0, 2), dtype=dtype)
            pairs = self.y_pairs if exact else self.y_pairs.double()
            with torch.no_grad():
                product = torch.bmm(torch.from_numpy(by_y), pairs).numpy()
            total += np.einsum("gcs,gcs->gc", product, by_y).sum(axis=0, dtype=np.float64)
        return total

    def tau_b(
        self,
        weights: np.ndarray,
        *,
        extended: np.ndarray | None = None,
        x_tied: np.ndarray | None = None,
        y_tied: np.ndarray | None = None,
        both_tied: np.ndarray | None = None,
    ) -> np.ndarray:
        """Kendall tau-b of each resample (NaN where x or y is constant in it).

        tau-b = (n0 - n1 - n2 + n3 - 2 D) / sqrt((n0 - n1)(n0 - n2)): n0 pairs, n1/n2/n3 pairs
        tied in x / y / both (copies of one architecture tie in both), D discordant pairs.
        Counts the caller already has may be passed in.
        """
        if self.n == 0:
            return np.full(weights.shape[0], np.nan)
        total = weights.sum(axis=1)
        n0 = total * (total - 1) / 2
        n1 = _pairs_within(self.x_ranked.state(weights)[1]) if x_tied is None else x_tied
        n2 = _pairs_within(self.y_ranked.state(weights)[1]) if y_tied is None else y_tied
        if both_tied is None:
            if self.x_ranked.ties and self.y_ranked.ties:
                through = np.take(np.cumsum(np.take(weights, self.xy_order, axis=1), axis=1), self.xy_ends, axis=1)
                both_tied = _pairs_within(np.diff(through, axis=1, prepend=0.0))
            else:
                both_tied = _pairs_within(weights)
        d = self.discordant(_float32_with_zero_column(weights) if extended is None else extended)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (n0 - n1 - n2 + both_tied - 2 * d) / np.sqrt((n0 - n1) * (n0 - n2))


def weighted_kendall(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kendall tau-b per resample (rows of `weights`)."""
    return KendallPlan(x, y).tau_b(np.asarray(weights, dtype=float))


# ---------------------------------------------------------------------------------------
# Every metric of a report: many proxies against one target


def _dot(weights: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """weights @ vector; einsum, as threaded BLAS gemv is 4x slower at these sizes here."""
    return np.einsum("ij,j->i", weights, vector)


def _standardised(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Affine rescaling (Pearson r does not change) so 1e40-sized scores neither overflow nor cancel."""
    out = np.zeros(len(values))
    v = values[keep]
    if len(v):
        centre = np.median(v)
        scale = np.max(np.abs(v - centre)) or 1.0
        out[keep] = (v - centre) / scale
    return out


class _TargetSide:
    """The target under one mask of usable architectures: what every proxy sharing it reuses."""

    def __init__(self, target: np.ndarray, keep: np.ndarray, counts: np.ndarray, top_k: Sequence[float]):
        self.keep = keep
        self.value = np.where(keep, target, 0.0)
        self.ranked = Ranked(self.value, keep)
        self.standard = _standardised(target, keep)
        self.standard_squared = self.standard**2
        self.top_k = tuple(top_k)
        # The architectures in the true top k% of at least one resample: the top-k metrics of
        # every resample only involve these (each resample weighs its own top, 0 elsewhere).
        in_any = {p: np.zeros(self.ranked.n, dtype=bool) for p in self.top_k}
        if self.top_k:
            for weights in chunks(counts, keep):
                total = weights.sum(axis=1)
                through, group = self.ranked.state(weights)
                for p in self.top_k:
                    in_top = ((total[:, None] - through) < _top_count(total, p)[:, None]) & (group > 0)
                    in_any[p] |= np.any(in_top, axis=0)[self.ranked.group_of]
        self.candidates = {p: np.flatnonzero(in_any[p] & keep) for p in self.top_k}

    def per_chunk(self, weights: np.ndarray) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):  # a proxy with nothing scored yet: 0/0
            return self._per_chunk(weights)

    def _per_chunk(self, weights: np.ndarray) -> dict:
        total = weights.sum(axis=1)
        through, group = self.ranked.state(weights)
        centre = (total + 1) / 2
        state = {
            "weights": weights,
            "extended": _float32_with_zero_column(weights),
            "total": total,
            "centre": centre,
            "rank": np.take(_midranks(through, group), self.ranked.group_of, axis=1),
            "rank_ss": _rank_sum_of_squares(group, total),
            "tied": _pairs_within(group),
            "copies": _pairs_within(weights),
            "mean": _dot(weights, self.standard) / total,
            "top": {},
        }
        state["ss"] = _dot(weights, self.standard_squared) - total * state["mean"] ** 2
        for p, cand in self.candidates.items():
            k = _top_count(total, p)
            columns = self.ranked.group_of[cand]
            above = total[:, None] - np.take(through, columns, axis=1)
            cand_group = np.take(group, columns, axis=1)
            state["top"][p] = {
                "k": k,
                "weights": np.take(weights, cand, axis=1),
                "share": _share(above, cand_group, k),
                "in_top": above < k[:, None],
            }
        return state


class _ProxySide:
    def __init__(self, score: np.ndarray, side: _TargetSide):
        keep = side.keep
        self.value = np.where(keep, score, 0.0)
        self.ranked = Ranked(self.value, keep)
        self.standard = _standardised(score, keep)
        self.standard_squared = self.standard**2
        self.cross = self.standard * side.standard
        self.kendall = KendallPlan(self.value, side.value)
        self.within = {p: KendallPlan(self.value[cand], side.value[cand]) for p, cand in side.candidates.items()}

    def evaluate(self, t: dict, side: _TargetSide) -> dict[str, np.ndarray]:
        weights, total, centre = t["weights"], t["total"], t["centre"]
        through, group = self.ranked.state(weights)
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            rank = np.take(_midranks(through, group), self.ranked.group_of, axis=1)
            cross = np.einsum("ij,ij,ij->i", weights, rank, t["rank"]) - total * centre**2
            out["spearman"] = cross / np.sqrt(_rank_sum_of_squares(group, total) * t["rank_ss"])
            both = None if (self.ranked.ties and side.ranked.ties) else t["copies"]
            out["kendall"] = self.kendall.tau_b(
                weights, extended=t["extended"], x_tied=_pairs_within(group), y_tied=t["tied"], both_tied=both
            )
            mean = _dot(weights, self.standard) / total
            ss = _dot(weights, self.standard_squared) - total * mean**2
            cov = _dot(weights, self.cross) - total * mean * t["mean"]
            out["pearson"] = cov / np.sqrt(ss * t["ss"])
            for p, cand in side.candidates.items():
                precision, within = top_k_metric_names(p)
                top = t["top"][p]
                columns = self.ranked.group_of[cand]
                above = total[:, None] - np.take(through, columns, axis=1)
                share = _share(above, np.take(group, columns, axis=1), top["k"])
                out[precision] = np.einsum("ij,ij,ij->i", top["weights"], share, top["share"]) / top["k"]
                out[within] = self.within[p].tau_b(top["weights"] * top["in_top"])
        return out


def bootstrap_many(
    scores: Mapping[str, np.ndarray],
    target: np.ndarray,
    counts: np.ndarray,
    top_k: Sequence[float],
) -> dict[str, dict[str, np.ndarray]]:
    """Every metric of `metric_names(top_k)` on every resample, for several proxies and one target.

    Returns proxy -> metric -> (resamples,) replicates. `counts` comes from `resample_counts`
    over the report's architectures; where a proxy or the target is not finite the architecture
    gets weight 0 (the resample keeps its other draws). Proxies with the same usable
    architectures share the target's side of the work.
    """
    target = np.asarray(target, dtype=float)
    names = metric_names(top_k)
    sides: dict[bytes, tuple[_TargetSide, dict[str, _ProxySide]]] = {}
    for proxy, score in scores.items():
        score = np.asarray(score, dtype=float)
        keep = np.isfinite(score) & np.isfinite(target)
        key = np.packbits(keep).tobytes()
        if key not in sides:
            sides[key] = (_TargetSide(target, keep, counts, top_k), {})
        side, proxies = sides[key]
        proxies[proxy] = _ProxySide(score, side)
    parts = {proxy: {name: [] for name in names} for proxy in scores}
    with _threads() as pool:
        for side, proxies in sides.values():
            for weights in chunks(counts, side.keep):
                t = side.per_chunk(weights)
                results = pool.map(lambda item: (item[0], item[1].evaluate(t, side)), proxies.items())
                for proxy, metrics in results:
                    for name, values in metrics.items():
                        parts[proxy][name].append(values)
    return {
        proxy: {name: np.concatenate(values) if values else np.zeros(0) for name, values in metrics.items()}
        for proxy, metrics in parts.items()
    }


@contextlib.contextmanager
def _threads():
    """A pool of one thread per core for the proxies of a chunk (numpy and torch release the
    GIL in the heavy calls); torch's own intra-op threads off meanwhile, as they only add
    contention at these matrix sizes, and restored after."""
    import torch

    workers = max(1, min(4, os.cpu_count() or 1))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield pool
    finally:
        torch.set_num_threads(previous)


def bootstrap_metrics(score: np.ndarray, target: np.ndarray, counts: np.ndarray, top_k: Sequence[float]) -> dict[str, np.ndarray]:
    """`bootstrap_many` for one proxy: metric -> (resamples,) replicates."""
    return bootstrap_many({"proxy": score}, target, counts, top_k)["proxy"]


def seed_agreement_replicates(columns: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Mean pairwise Spearman, Kendall and Pearson between the columns (n x S), per resample."""
    columns = np.asarray(columns, dtype=float)
    width = columns.shape[1]
    sums = {name: np.zeros(counts.shape[0]) for name in ("spearman", "kendall", "pearson")}
    defined = {name: np.zeros(counts.shape[0]) for name in sums}
    for i in range(width):
        others = {j: columns[:, j] for j in range(i + 1, width)}
        if not others:
            continue
        for replicates in bootstrap_many(others, columns[:, i], counts, top_k=()).values():
            for name in sums:
                ok = np.isfinite(replicates[name])
                sums[name][ok] += replicates[name][ok]
                defined[name] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.where(defined[name] > 0, sums[name] / defined[name], np.nan) for name in sums}
