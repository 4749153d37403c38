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

For DARTS, val_accuracy is NAS-Bench-301's surrogate prediction, not a trained accuracy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from zcnas.report import metrics
from zcnas.report.compare import compare_runs
from zcnas.run.store import OK, RunStore

TABLES = {"nb101": "naslib_zc_nasbench101_22280f7.json", "darts": "naslib_zc_nasbench301_6639fd1.json"}
CLASSIC = "params,flops,grad_norm,snip,grasp,fisher,synflow,jacob_cov,nwot,zen,plain,l2_norm,epe_nas"


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
    parser.add_argument("--proxies", default=CLASSIC)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retest", type=int, default=None, help="job seed of a second run (run-to-run agreement)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--tables-only", action="store_true",
        help="do not score: tabulate the run files already in --out-dir (finished or not)",
    )
    args = parser.parse_args()

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    bench = out / f"{args.space}-suitezero.h5"
    reference = out / f"{args.space}-suitezero.suitezero.h5"
    if not bench.exists() or not reference.exists():
        zcnas("bench", "import", "naslib-zc", args.data / TABLES[args.space], "--probe",
              args.data / "cifar10_train10k_jpeg.npz", "--out", bench, "--run-out", reference, "--force")

    def score(seed: int) -> Path:
        run = out / f"{args.space}-zcnas-s{seed}.h5"
        if args.tables_only:
            return run
        sample = ["--sample", args.sample] if args.sample else []
        resume = ["--resume"] if run.exists() else []
        zcnas("score", bench, "--proxies", args.proxies, "--batch-size", args.batch_size, "--seed", seed,
              *sample, "--workers", args.workers, "--out", run, "--quiet", *resume)
        return run

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


if __name__ == "__main__":
    main()
