"""Validate zcnas on NAS-Bench-101 and the DARTS space against NAS-Bench-Suite-Zero's own scores.

    python examples/validate_spaces.py nb101 --data ../shared/data --workers 2 --out-dir validation
    python examples/validate_spaces.py darts --data ../shared/data --sample 200 --workers 2 --out-dir validation

Needs the real-data folder (../shared/data in the project's CI and developer machines):
naslib_zc_nasbench101_22280f7.json / naslib_zc_nasbench301_6639fd1.json and
cifar10_train10k_jpeg.npz. Steps, each a zcnas command a user can run by hand:

1. `zcnas bench import naslib-zc TABLE --probe cifar10_train10k_jpeg.npz` -> a benchmark of the
   table's architectures (duplicate keys collapsed) with a class-balanced CIFAR-10 probe set,
   plus Suite-Zero's scores as a reference run;
2. `zcnas score` of the benchmark (or a --sample of it) with the classic suite at batch 32,
   Suite-Zero's batch size (--resume: an interrupted run continues);
3. with --retest SEED, a second zcnas run with another job seed: zcnas's own run-to-run
   agreement (fresh initialisation and probe batch), which says how much of a gap to the
   reference is noise;
4. prints (and writes as Markdown) one table: per proxy, the per-architecture Spearman of our
   scores with Suite-Zero's (`zcnas compare`), our run-to-run Spearman, and the Spearman of
   ours and of Suite-Zero's scores with the table's val_accuracy on the same architectures, and
   Suite-Zero's agreement with itself where its table scored a network under two keys (NB101:
   46 networks; docs/benchmark-format.md "The reference against itself").

With `--suite newer` it scores the newer proxies instead (GradSign, ZiCo, the NTK family,
MeCo, Dextr, SWAP, the AZ-NAS components and FLOPs; batch 64, zcnas's default, as on NB201)
and prints, per proxy and for the papers' two rank aggregations (AZ-NAS, TE-NAS), Spearman
and Kendall with val_accuracy (95% bootstrap intervals) next to the numbers the papers report
for the space (PUBLISHED below, each with its source):

    python examples/validate_spaces.py nb101 --suite newer --sample 200 --data ../shared/data --out-dir validation

For DARTS, val_accuracy is NAS-Bench-301's surrogate prediction, not a trained accuracy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from validate_new_proxies import AGGREGATIONS, NEW, aggregated_scores
from zcnas.report import bootstrap, metrics
from zcnas.report.compare import compare_runs
from zcnas.run.store import OK, PENDING, RunStore

TABLES = {"nb101": "naslib_zc_nasbench101_22280f7.json", "darts": "naslib_zc_nasbench301_6639fd1.json"}
CLASSIC = "params,flops,grad_norm,snip,grasp,fisher,synflow,jacob_cov,nwot,zen,plain,l2_norm,epe_nas"
# What the papers report for these spaces (CIFAR-10), each with its source; "not reported"
# where none was found. Sources:
# [ZiCo] Li et al., ICLR 2023, Sec. 4.3 and Fig. 3: all ~423k NB101 architectures, two batches of
#        128 (the architecture count from the author's answer in SLDGroup/ZiCo issue #1).
# [L-SWAG] Casarin et al., CVPR 2025, Table 1: the proxies rerun on 1,000 architectures of each
#        benchmark with the NAS-Bench-Suite-Zero code, batch 64, 5 runs ("as in the original
#        papers many experiments were run only for NB201").
# [note] a secondary reading note of the paper's table, not checked against the PDF (MeCo
#        NeurIPS 2023 Table 2 / supplement Table 4; Dextr TMLR 2025 Table 1): treat as unverified.
# [APD]  Kang, Lin & Wang, "Revolutionizing Training-Free NAS: Towards Efficient Automatic Proxy
#        Discovery via Large Language Models", Table 2 (Spearman "with all candidate
#        architectures"); it does not say whether SWAP's row is quoted or rerun. SWAP's own paper
#        (ICLR 2024) reports NB101/NB301 in a part of the paper no stored copy reached.
# [SWAP-X] the SWAP authors' extension (arXiv 2605.07378, abstract): 1,000 DARTS-space networks
#        they trained themselves, not NAS-Bench-301's surrogate accuracies.
PUBLISHED: dict[str, dict[str, str]] = {
    "nb101": {
        "zico": "ρ 0.63, τ 0.46 [ZiCo]",
        "flops": "ρ 0.44, τ 0.31 [ZiCo]",
        "meco": "ρ 0.44 [note, unverified]",
        "dextr": "ρ 0.65 ± 0.01 [note, unverified]",
        "swap": "ρ 0.44 in a follow-up's table [APD]",
        "az_nas": "not in the paper; ρ 0.54 rerun [L-SWAG]",
        "te_nas": "not in the paper; ρ 0.12 rerun [L-SWAG]",
    },
    "darts": {
        "meco": "ρ 0.70 ± 0.01 [note, unverified]",
        "meco_opt": "ρ 0.71 ± 0.01 [note, unverified]",
        "dextr": "ρ 0.44 ± 0.007 [note, unverified]",
        "swap": "NB301 not found; ρ 0.93 on trained DARTS networks [SWAP-X]",
        "az_nas": "not in the paper; ρ 0.70 rerun [L-SWAG]",
        "te_nas": "not in the paper; ρ 0.37 rerun [L-SWAG]",
    },
}


def zcnas(*args) -> None:
    command = [sys.executable, "-m", "zcnas", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)


def usable(store: RunStore, proxy: str) -> np.ndarray:
    return np.where(store.status[proxy] == OK, store.scores[proxy], np.nan)


def accuracy_correlation(store: RunStore, proxy: str, keys: list[str], target: str) -> float:
    """Spearman of a run's proxy with its target, on the architectures `keys` (canonical)."""
    row = {k: i for i, k in enumerate(store.encodings)}
    rows = [row[k] for k in keys if k in row]
    return metrics.spearman(*metrics.paired_finite(usable(store, proxy)[rows], store.targets[target][rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("space", choices=sorted(TABLES))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out-dir", type=Path, default=Path("validation"))
    parser.add_argument("--sample", type=int, default=None, help="score this many architectures (default: all)")
    parser.add_argument(
        "--suite", choices=("classic", "newer"), default="classic",
        help="classic: Suite-Zero's 13 against its scores; newer: the newer proxies against the papers",
    )
    parser.add_argument("--proxies", default=None, help="default: the suite's proxies")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 (classic, Suite-Zero's) or 64 (newer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retest", type=int, default=None, help="job seed of a second run (run-to-run agreement)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--tables-only", action="store_true",
        help="do not score: tabulate the run files already in --out-dir (finished or not)",
    )
    args = parser.parse_args()

    newer = args.suite == "newer"
    if args.proxies is None:
        args.proxies = NEW if newer else CLASSIC
    if args.batch_size is None:
        args.batch_size = 64 if newer else 32
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    bench = out / f"{args.space}-suitezero.h5"
    reference = out / f"{args.space}-suitezero.suitezero.h5"
    if not bench.exists() or not reference.exists():
        zcnas("bench", "import", "naslib-zc", args.data / TABLES[args.space], "--probe",
              args.data / "cifar10_train10k_jpeg.npz", "--out", bench, "--run-out", reference, "--force")

    def score(seed: int) -> Path:
        run = out / (f"{args.space}-newer-{args.sample or 'all'}-s{seed}.h5" if newer else f"{args.space}-zcnas-s{seed}.h5")
        if args.tables_only:
            return run
        sample = ["--sample", args.sample] if args.sample else []
        resume = ["--resume"] if run.exists() else []
        zcnas("score", bench, "--proxies", args.proxies, "--batch-size", args.batch_size, "--seed", seed,
              *sample, "--workers", args.workers, "--out", run, "--quiet", *resume)
        return run

    if newer:
        table = newer_table(RunStore.open(score(args.seed)), args.space)
        print(table)
        (out / f"{args.space}-newer.md").write_text(table)
        return
    ours = RunStore.open(score(args.seed))
    retest = RunStore.open(score(args.retest)) if args.retest is not None else None
    ref = RunStore.open(reference)
    agreement = {e["proxy"]: e for e in compare_runs(ours, ref)["proxies"]}
    again = {e["proxy"]: e for e in compare_runs(ours, retest, resamples=0)["proxies"]} if retest else {}
    target = "val_accuracy"
    done = ours.status[ours.spec.proxies[0]] == OK
    keys = [k for k, finished in zip(ours.encodings, done) if finished]

    def fmt(entry: dict | None, metric: str = "spearman") -> str:
        if entry is None:
            return "—"
        value = entry[metric]
        if value.get("value") is None:
            return "—"
        text = f"{value['value']:.3f}"
        if value.get("low") is not None:
            text += f" [{value['low']:.2f}, {value['high']:.2f}]"
        return text

    lines = [
        f"| proxy | ours vs Suite-Zero (ρ per architecture) | Suite-Zero vs itself (networks under 2 keys) | ours vs ours, seed {args.retest} | ρ ours vs {target} | ρ Suite-Zero vs {target} |",
        "|---|---|---|---|---|---|",
    ]
    for proxy in ours.spec.proxies:
        in_ref = proxy in ref.spec.columns
        ref_acc = accuracy_correlation(ref, proxy, keys, target) if in_ref else float("nan")
        lines.append(
            f"| {proxy} | {fmt(agreement.get(proxy))} | {fmt(agreement.get(proxy, {}).get('reference_retest'))} | "
            f"{fmt(again.get(proxy)) if retest else '—'} | "
            f"{accuracy_correlation(ours, proxy, keys, target):.3f} | "
            f"{'—' if not in_ref else f'{ref_acc:.3f}'} |"
        )
    header = (
        f"{args.space}: {len(keys)} of {len(ours.encodings)} architectures scored, classic suite at batch {args.batch_size}, job seed {args.seed}; "
        f"reference: NAS-Bench-Suite-Zero ({TABLES[args.space]})."
    )
    table = "\n".join([header, "", *lines, ""])
    print(table)
    (out / f"{args.space}-validation.md").write_text(table)


def newer_table(store: RunStore, space: str) -> str:
    """ρ and τ with val_accuracy of each newer proxy and of the papers' aggregations, on the
    architectures scored so far, with 95% bootstrap intervals, beside the papers' numbers."""
    target = "val_accuracy"
    rows = np.flatnonzero(store.status[store.spec.proxies[0]] != PENDING)
    scores = {p: usable(store, p)[rows] for p in store.spec.proxies}
    scores.update({name: values[rows] for name, values in aggregated_scores(store, rows).items()})
    truth = store.targets[target][rows]
    counts = bootstrap.resample_counts(len(rows), 1000, seed=0)
    replicates = bootstrap.bootstrap_many(scores, truth, counts, top_k=())
    point = {name: metrics.correlations(values, truth) for name, values in scores.items()}

    def cell(name: str, metric: str) -> str:
        if point[name][metric] is None:
            return "—"
        low, high = bootstrap.percentile_interval(replicates[name][metric])
        return f"{point[name][metric]:.3f} [{low:.2f}, {high:.2f}]"

    lines = [
        f"{space}: newer proxies on {len(rows)} of {len(store)} architectures (batch {store.spec.batch_size}, "
        f"job seed {store.spec.seed}); against {target}.",
        "",
        f"| proxy | ρ [95%] | τ [95%] | failed | paper ({space}, CIFAR-10) |",
        "|---|---|---|---:|---|",
    ]
    order = sorted(scores, key=lambda name: -(point[name]["spearman"] if point[name]["spearman"] is not None else -2))
    for name in order:
        failed = int(np.sum(~np.isfinite(scores[name])))
        label = f"**{name}** (aggregation)" if name in AGGREGATIONS else name
        lines.append(
            f"| {label} | {cell(name, 'spearman')} | {cell(name, 'kendall')} | {failed} | "
            f"{PUBLISHED[space].get(name, 'not reported')} |"
        )
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
