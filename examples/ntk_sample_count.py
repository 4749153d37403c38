"""How the NTK proxies rank with the kernel on more samples (docs/validation.md, TE-NAS gap).

    python examples/ntk_sample_count.py validation/nb201-cifar10-validation1000-new-all-b64-s0.h5 \
        --samples 64 --archs 120 --workers 2

zcnas's NTK pass uses the first min(N, 16) probe samples by default (`zcnas score
--ntk-samples`, TE-NAS's default `--batch_size`); TE-NAS's NB201 launcher uses 72 and AZ-NAS's
rerun of TE-NAS 64. This script
rescores ntk_cond, ntk_trace and lga with the kernel on `--samples` samples for the first
`--archs` architectures of the seed-0 sample of 200 (`zcnas score --sample 200 --seed 0`
picks the same ones), each architecture with its own seed as in the run, and prints Spearman
and Kendall of both kernels against accuracy on those architectures, with a paired bootstrap
interval of the difference in Kendall. The 16-sample scores are read from RUN (made by
examples/validate_new_proxies.py), the other ones recomputed here. On CPU the 64-sample
kernel costs about 16 times the 16-sample one (4 times the backward passes, each through a
graph 4 times larger): about 35 s per architecture and worker.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import stats

from zcnas.bench import open_benchmark
from zcnas.run.runner import ArchTask, ScoringPayload, sample_rows, score_architecture
from zcnas.run.store import OK, RunStore

PROXIES = ("ntk_cond", "ntk_trace", "lga")
TARGETS = ("cifar10valid_test_acc", "cifar10_test_acc")


def _score(task: ArchTask, payload: ScoringPayload) -> tuple[int, list[float]]:
    row, outcomes = score_architecture(task, payload)
    return row, [outcomes[name].score for name in PROXIES]


def paired_kendall_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray, resamples: int = 1000) -> tuple[float, float, float]:
    """τ(b, y) − τ(a, y) and its 95% percentile-bootstrap interval (architectures resampled)."""
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(resamples):
        i = rng.integers(0, len(y), len(y))
        differences.append(stats.kendalltau(b[i], y[i]).statistic - stats.kendalltau(a[i], y[i]).statistic)
    low, high = np.percentile(differences, [2.5, 97.5])
    return stats.kendalltau(b, y).statistic - stats.kendalltau(a, y).statistic, float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the run of examples/validate_new_proxies.py (16-sample NTK scores)")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--archs", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    store = RunStore.open(args.run)
    bench = open_benchmark(store.spec.benchmark)
    chosen = sample_rows(len(store), 200, 0)[: args.archs]
    x, y = bench.probe_batch(store.spec.batch_size, seed=store.spec.seed)
    payload = ScoringPayload(
        store.spec.search_space, {}, store.spec.num_classes, x.numpy(), y.numpy(), PROXIES, ntk_samples=args.samples
    )
    tasks = [ArchTask(int(r), store.encodings[r], int(store.arch_seeds[r])) for r in chosen]
    rescored = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for row, scores in pool.map(_score, tasks, [payload] * len(tasks)):
            rescored[row] = scores
    more = np.array([rescored[int(r)] for r in chosen])

    print(f"{len(chosen)} architectures; NTK on 16 samples (the run) vs {args.samples} (rescored)")
    print(f"| target | proxy | ρ, 16 | τ, 16 | ρ, {args.samples} | τ, {args.samples} | τ difference [95%] |")
    print("|---|---|---:|---:|---:|---:|---|")
    for target in TARGETS:
        accuracy = store.targets[target][chosen]
        for j, name in enumerate(PROXIES):
            base = np.where(store.status[name] == OK, store.scores[name], np.nan)[chosen]
            keep = np.isfinite(base) & np.isfinite(more[:, j]) & np.isfinite(accuracy)
            a, b, t = base[keep], more[keep, j], accuracy[keep]
            difference, low, high = paired_kendall_difference(a, b, t)
            print(
                f"| {target} | {name} | {stats.spearmanr(a, t).statistic:.3f} | {stats.kendalltau(a, t).statistic:.3f} "
                f"| {stats.spearmanr(b, t).statistic:.3f} | {stats.kendalltau(b, t).statistic:.3f} "
                f"| {difference:+.3f} [{low:+.3f}, {high:+.3f}] |"
            )


if __name__ == "__main__":
    main()
