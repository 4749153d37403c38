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
kernel costs about 13 times the 16-sample one (4 times the backward passes, each through a
graph 4 times larger): 31 s per architecture and worker against 2.3 (2 workers, 2 cores);
the script prints both.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from zcnas.bench import open_benchmark
from zcnas.combine import create_method
from zcnas.combine.features import Features
from zcnas.report import bootstrap
from zcnas.report.metrics import correlations
from zcnas.run.runner import ArchTask, ScoringPayload, sample_rows, score_architecture
from zcnas.run.store import OK, RunStore

PROXIES = ("ntk_cond", "ntk_trace", "lga")
TARGETS = ("cifar10valid_test_acc", "cifar10_test_acc")
RESAMPLES = 1000


def _score(task: ArchTask, payload: ScoringPayload) -> tuple[int, list[float]]:
    row, outcomes = score_architecture(task, payload)
    return row, [outcomes[name].score for name in PROXIES]


def te_nas(ntk_cond: np.ndarray, linear_regions: np.ndarray) -> np.ndarray:
    """TE-NAS's aggregation (the sum of the two ranks), as validate_new_proxies.py applies it."""
    features = Features.from_arrays({"ntk_cond": ntk_cond, "linear_regions": linear_regions})
    model = create_method("rank_average", proxies=["ntk_cond", "linear_regions"])
    return model.fit(features, np.zeros(len(ntk_cond))).predict(features)


def comparison_table(store: RunStore, chosen: np.ndarray, rescored: np.ndarray, samples: int) -> list[str]:
    """Both kernels' correlations on the chosen rows, and the Kendall difference with a paired
    percentile-bootstrap interval (the report's resampling: the same architectures drawn for
    both, `zcnas.report.bootstrap`)."""
    base = {name: np.where(store.status[name] == OK, store.scores[name], np.nan)[chosen] for name in PROXIES}
    base["te_nas"] = te_nas(base["ntk_cond"], store.scores["linear_regions"][chosen])
    more = {name: rescored[:, j] for j, name in enumerate(PROXIES)}
    more["te_nas"] = te_nas(more["ntk_cond"], store.scores["linear_regions"][chosen])
    counts = bootstrap.resample_counts(len(chosen), RESAMPLES, seed=0)
    lines = [
        f"| target | proxy | ρ, 16 | τ, 16 | ρ, {samples} | τ, {samples} | τ difference [95%, paired] |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for target in TARGETS:
        accuracy = store.targets[target][chosen]
        for name in base:
            keep = np.isfinite(base[name]) & np.isfinite(more[name])  # both kernels on the same rows
            pair = {"16": np.where(keep, base[name], np.nan), "more": np.where(keep, more[name], np.nan)}
            replicates = bootstrap.bootstrap_many(pair, accuracy, counts, top_k=())
            low, high = bootstrap.percentile_interval(replicates["more"]["kendall"] - replicates["16"]["kendall"])
            point = {key: correlations(score, accuracy) for key, score in pair.items()}
            difference = point["more"]["kendall"] - point["16"]["kendall"]
            lines.append(
                f"| {target} | {name} | {point['16']['spearman']:.3f} | {point['16']['kendall']:.3f} "
                f"| {point['more']['spearman']:.3f} | {point['more']['kendall']:.3f} "
                f"| {difference:+.3f} [{low:+.3f}, {high:+.3f}] |"
            )
    return lines


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
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rescored = dict(pool.map(_score, tasks, [payload] * len(tasks)))
    seconds = (time.perf_counter() - started) * args.workers / len(chosen)
    before = sum(store.seconds[name][chosen] for name in PROXIES)

    print(f"{len(chosen)} architectures; NTK on 16 samples (the run) vs {args.samples} (rescored)")
    print(
        f"seconds per architecture and worker for the 3 NTK proxies: {np.median(before):.1f} with 16 samples "
        f"(median, from the run), {seconds:.1f} with {args.samples} (wall time here x workers / architectures)"
    )
    print("\n".join(comparison_table(store, chosen, np.array([rescored[int(r)] for r in chosen]), args.samples)))


if __name__ == "__main__":
    main()
