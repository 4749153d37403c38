"""How reliable are the classic proxies? Test-retest agreement on real NB201 architectures.

    python examples/proxy_reliability.py --data ../shared/data --out-dir validation --archs 60 --repeats 3

builds an NB201/CIFAR-10 benchmark from the project's real-data folder (as the README's
"Real NAS-Bench-201 data" does), scores `--archs` architectures (drawn by seed 0) with the
NAS-Bench-Suite-Zero 13 proxies `--repeats` times, once varying only the probe batch and once
only the initialisation (`zcnas score --repeats R --vary batch|init`, resumable), and prints
the Markdown table of docs/validation.md: per proxy, the mean pairwise Spearman between repeats
and ICC(2,1) (with 95% bootstrap intervals over architectures) for each source of noise, and
the Spearman with CIFAR-10 accuracy of one repeat (the mean over repeats), of the mean of the
repeats' values (zcnas's score) and of the mean of their within-repeat ranks (the alternative
aggregate docs/run-format.md weighs).

`--protocol suite-zero` scores with NAS-Bench-Suite-Zero's protocol (a fresh augmented batch
of 32 per architecture and repeat) instead of zcnas's (one class-balanced batch of 64 per
repeat, shared by every architecture); `--vary both` adds the split of its noise by source:

    python examples/proxy_reliability.py --data ../shared/data --out-dir validation --protocol suite-zero --vary both
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from zcnas.report import build_report
from zcnas.report.metrics import correlations
from zcnas.run.store import OK, RunStore

CLASSIC = "params,flops,grad_norm,snip,grasp,fisher,synflow,jacob_cov,nwot,zen,plain,l2_norm,epe_nas"
TARGET = "cifar10valid_test_acc"


def zcnas(*args: str) -> None:
    command = [sys.executable, "-m", "zcnas", *args]
    print("$ zcnas", " ".join(args), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def benchmark(args: argparse.Namespace) -> Path:
    bench = args.out_dir / "nb201.h5"
    if not bench.exists():
        zcnas(
            "bench", "import", "csv", str(args.data / "nb201_accuracies.csv"), "--dataset", "cifar10",
            "--probe", str(args.data / "cifar10_train10k_jpeg.npz"), "--exclude", "params_M", "--out", str(bench),
        )
    return bench


def score(bench: Path, vary: str, args: argparse.Namespace) -> RunStore:
    suffix = "" if args.protocol == "zcnas" else f"-{args.protocol}"
    run = args.out_dir / f"nb201-{args.archs}-{vary}{suffix}.h5"
    zcnas(
        "score", str(bench), "--proxies", args.proxies, "--sample", str(args.archs), "--seed", "0",
        "--repeats", str(args.repeats), "--vary", vary, "--protocol", args.protocol, "--workers", str(args.workers),
        "--out", str(run), "--quiet", "--resume",
    )
    return RunStore.open(run)


def mean_rank_aggregate(store: RunStore, proxy: str) -> np.ndarray:
    """The alternative aggregate: the mean of each repeat's ranks (NaN where a repeat failed)."""
    values = np.where(store.repeat_status[proxy] == OK, store.repeat_scores[proxy], np.nan)
    ranks = np.column_stack([stats.rankdata(values[:, r], nan_policy="omit") for r in range(values.shape[1])])
    return ranks.mean(axis=1)


def cell(entry: dict | None) -> str:
    if not entry or entry["value"] is None:
        return "—"
    if entry["low"] is None:
        return f"{entry['value']:.2f}"
    return f"{entry['value']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out-dir", type=Path, default=Path("validation"))
    parser.add_argument("--archs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--proxies", default=CLASSIC)
    parser.add_argument("--protocol", default="zcnas", choices=("zcnas", "suite-zero"))
    parser.add_argument("--vary", default="batch,init", help="comma-separated sources, each a run")
    args = parser.parse_args()
    if not (args.data / "nb201_accuracies.csv").exists():
        sys.exit(f"error: the real-data folder {args.data} is missing; pass --data.")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    bench = benchmark(args)
    varies = [v.strip() for v in args.vary.split(",") if v.strip()]
    runs = {vary: score(bench, vary, args) for vary in varies}
    reports = {vary: build_report(store, targets=[TARGET], resamples=1000) for vary, store in runs.items()}
    proxies = [p["proxy"] for p in reports[varies[0]]["proxies"]]

    head = ["proxy"]
    for vary in varies:
        head += [f"retest ρ, {vary} varies", f"ICC(2,1), {vary}"]
        if vary == "both":  # the grid's pairs that differ in one source only, and in both
            head += ["retest ρ, init only", "retest ρ, batch only", "retest ρ, init and batch"]
    first = varies[0]
    head += [f"ρ with accuracy: one repeat ({first})", f"mean of {args.repeats} values", f"mean of {args.repeats} ranks"]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    store = runs[first]
    target = store.targets[TARGET]
    for proxy in proxies:
        row = [proxy]
        for vary in varies:
            entry = next(p for p in reports[vary]["proxies"] if p["proxy"] == proxy)
            reliability = entry["reliability"] or {}
            row += [cell(reliability.get("agreement", {}).get("spearman")), cell(reliability.get("agreement", {}).get("icc"))]
            if vary == "both":
                sources = reliability.get("sources", {})
                row += [cell((sources.get(kind) or {}).get("spearman")) for kind in ("init", "batch", "both")]
        entry = next(p for p in reports[first]["proxies"] if p["proxy"] == proxy)
        single = [v for v in entry["targets"][TARGET]["repeat_spearman"] if v is not None]
        by_rank = correlations(mean_rank_aggregate(store, proxy), target)["spearman"]
        row += [
            f"{np.mean(single):.3f}" if single else "—",
            f"{entry['targets'][TARGET]['spearman']['value']:.3f}" if entry["targets"][TARGET]["spearman"]["value"] is not None else "—",
            f"{by_rank:.3f}" if by_rank is not None else "—",
        ]
        print("| " + " | ".join(row) + " |")
    failed = {p["proxy"]: p["reliability"]["repeat_failed"] for p in reports[first]["proxies"] if p.get("reliability")}
    print(f"\nfailed (architecture, repeat) pairs in the {first} run: " + ", ".join(f"{k} {v}" for k, v in failed.items() if v))


if __name__ == "__main__":
    main()
