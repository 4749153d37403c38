"""Validate zcnas's proxies on real NAS-Bench-201 data (the tables of docs/validation.md).

    python examples/validate_nb201.py --data ../shared/data --workers 2 --out-dir validation

Needs the real-data folder (../shared/data in the project's CI and developer machines):
nb201_accuracies.csv, cifar10_train10k_jpeg.npz, nb201_zc_naslib_subset725.csv,
nb201_naswot_v1_score_cifar10.csv, nb201_zen_naslib_all.csv.

1. Builds a benchmark of 1,000 NB201 architectures: the 725 of NAS-Bench-Suite-Zero's
   CIFAR-10 subset (itself a uniform random draw) plus 275 more drawn with seed 0, with a
   class-balanced probe set from the CIFAR-10 training images.
2. Scores them with every proxy (`zcnas score`, batch 64, seed 0), the way a user would.
3. Prints (and writes as Markdown) two tables:
   a. per-architecture agreement: Spearman between our score and the reference's score of
      the same architecture (Suite-Zero's 12 proxies on the 725; NASWOT v1 = jacob_cov and
      Suite-Zero's zen on all 1,000);
   b. correlation with accuracy on the 1,000: Spearman and Kendall against CIFAR-10 accuracy
      (cifar10-valid test accuracy, Abdelfattah et al.'s target, and Suite-Zero's
      validation accuracy), next to the published values.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from zcnas.bench import open_benchmark, write_benchmark
from zcnas.bench.importers import import_csv
from zcnas.bench.probe import load_probe_npz
from zcnas.report import metrics
from zcnas.run.store import OK, RunStore

# Our proxy name -> column in Suite-Zero's subset CSV.
SUITE_ZERO_COLUMNS = {
    "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm", "grasp": "grasp", "fisher": "fisher",
    "jacob_cov": "jacov", "nwot": "nwot", "epe_nas": "epe_nas", "l2_norm": "l2_norm", "plain": "plain",
    "flops": "flops", "params": "params",
}
CLASSIC = "epe_nas,fisher,flops,grad_norm,grasp,jacob_cov,l2_norm,nwot,params,plain,snip,synflow,zen"
# Proxies zcnas negates at the source so that higher = better (compared with -reference).
NEGATED = {"plain"}
# Abdelfattah et al. ICLR 2021, Table 1 (CIFAR-10, all 15,625 archs, vs cifar10-valid test acc).
ABDELFATTAH = {"grad_norm": 0.594, "snip": 0.596, "grasp": 0.514, "fisher": 0.360, "synflow": 0.737, "jacob_cov": 0.731}
# Spearman of Suite-Zero's own scores vs its validation accuracy on its 725-arch CIFAR-10 subset
# (recomputed from the data; ../shared/data/README.md).
SUITE_ZERO_SUBSET = {
    "synflow": 0.736, "snip": 0.608, "grad_norm": 0.606, "grasp": 0.539, "fisher": 0.509, "jacob_cov": 0.766,
    "nwot": 0.787, "epe_nas": 0.667, "l2_norm": 0.725,
    "plain": 0.257,  # of -plain: zcnas negates plain
    "flops": 0.711, "params": 0.738,
    "zen": 0.355,
}


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def build_validation_benchmark(data: Path, out_dir: Path, extra: int, seed: int) -> Path:
    full_path = out_dir / "nb201-cifar10-full.h5"
    if not full_path.exists():
        probe = load_probe_npz(data / "cifar10_train10k_jpeg.npz", size=1024, seed=0, mean="cifar10")
        import_csv(data / "nb201_accuracies.csv", full_path, probe=probe, dataset="cifar10", exclude_columns=("params_M",))
    full = open_benchmark(full_path)
    subset = {int(r["nb201_index"]) for r in read_rows(data / "nb201_zc_naslib_subset725.csv") if r["dataset"] == "cifar10"}
    rows_of = {int(i): row for row, i in enumerate(full.index)}
    chosen = sorted(rows_of[i] for i in subset)
    others = sorted(set(range(full.n_archs)) - set(chosen))
    chosen = sorted(chosen + list(np.random.default_rng(seed).choice(others, size=extra, replace=False)))
    path = out_dir / f"nb201-cifar10-validation{len(chosen)}.h5"
    if path.exists():  # deterministic from the data and the seed: reuse it
        return path
    write_benchmark(
        path,
        name=f"nb201-cifar10-validation{len(chosen)}",
        search_space="nb201",
        dataset="cifar10",
        num_classes=10,
        encodings=[full.encodings[r] for r in chosen],
        index=full.index[chosen],
        targets={k: v[chosen] for k, v in full.targets.items()},
        probe_images=full.probe_images,
        probe_labels=full.probe_labels,
        probe_mean=full.probe_mean,
        probe_std=full.probe_std,
        source=f"{full.source}; rows: Suite-Zero's 725 CIFAR-10 archs + {extra} drawn with seed {seed}",
    )
    return path


def spearman(a, b) -> tuple[float, int]:
    """Spearman over the architectures where both are finite, and their number."""
    a, b = metrics.paired_finite(a, b)
    return metrics.spearman(a, b), len(a)


def kendall(a, b) -> float:
    return metrics.kendall(*metrics.paired_finite(a, b))


def agreement_table(store: RunStore, data: Path) -> list[str]:
    by_index = {int(i): row for row, i in enumerate(store.index)}
    lines = ["| proxy | Spearman(ours, reference) per architecture | n | reference |", "|---|---:|---:|---|"]
    suite = [r for r in read_rows(data / "nb201_zc_naslib_subset725.csv") if r["dataset"] == "cifar10"]
    for name, column in SUITE_ZERO_COLUMNS.items():
        if name not in store.scores:
            continue
        ours, theirs = [], []
        for r in suite:
            row = by_index[int(r["nb201_index"])]
            ours.append(store.scores[name][row] if store.status[name][row] == OK else np.nan)
            value = float(r[column]) if r[column] not in ("", "nan") else np.nan
            theirs.append(-value if name in NEGATED else value)
        rho, n = spearman(ours, theirs)
        lines.append(f"| {name} | {rho:.4f} | {n} | NAS-Bench-Suite-Zero `{column}` |")
    extra_refs = [
        ("jacob_cov", "nb201_naswot_v1_score_cifar10.csv", "index", "naswot_v1_score", None, "NASWOT v1 score (= jacob_cov)"),
        ("zen", "nb201_zen_naslib_all.csv", "nb201_index", "zen", ("dataset", "cifar10"), "NAS-Bench-Suite-Zero `zen`"),
    ]
    for name, file, key, column, where, label in extra_refs:
        if name not in store.scores:
            continue
        reference = {}
        for r in read_rows(data / file):
            if where and r[where[0]] != where[1]:
                continue
            reference[int(r[key])] = float(r[column]) if r[column] not in ("", "nan") else np.nan
        ours = [store.scores[name][row] if store.status[name][row] == OK else np.nan for row in range(len(store))]
        theirs = [reference.get(int(i), np.nan) for i in store.index]
        rho, n = spearman(ours, theirs)
        lines.append(f"| {name} | {rho:.4f} | {n} | {label} |")
    return lines


def accuracy_table(store: RunStore) -> list[str]:
    lines = [
        "| proxy | ρ vs cifar10-valid test acc | τ | published ρ (Abdelfattah 2021, all 15,625) "
        "| ρ vs Suite-Zero val acc | Suite-Zero's own scores, ρ on its 725 | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in store.spec.proxies:
        score = np.where(store.status[name] == OK, store.scores[name], np.nan)
        rho, _ = spearman(score, store.targets["cifar10valid_test_acc"])
        tau = kendall(score, store.targets["cifar10valid_test_acc"])
        rho_val, _ = spearman(score, store.targets["naslib_cifar10_val_acc"])
        published = ABDELFATTAH.get(name)
        suite = SUITE_ZERO_SUBSET.get(name)
        failed = int((store.status[name] != OK).sum())
        lines.append(
            f"| {name} | {rho:.3f} | {tau:.3f} | {'' if published is None else f'{published:.3f}'} "
            f"| {rho_val:.3f} | {'' if suite is None else f'{suite:.3f}'} | {failed} |"
        )
    return lines


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every NB201 validation script takes."""
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out-dir", type=Path, default=Path("validation"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--protocol",
        default=None,
        help="zcnas score --protocol (default: zcnas, a class-balanced batch; docs/validation.md's tables were "
        "made with zcnas-random, the uniform draw of before)",
    )


def check_data(args: argparse.Namespace) -> None:
    if not (args.data / "nb201_accuracies.csv").exists():
        sys.exit(f"error: the real-data folder {args.data} is missing; pass --data.")
    args.out_dir.mkdir(parents=True, exist_ok=True)


def score(bench: Path, run: Path, proxies: str, args: argparse.Namespace, sample: int | None = None) -> RunStore:
    """`zcnas score` as a user runs it (resumable: an interrupted run goes on where it stopped)."""
    command = [
        sys.executable, "-m", "zcnas", "score", str(bench), "--proxies", proxies, "--seed", str(args.seed),
        "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--out", str(run), "--quiet",
        "--resume",
    ]
    if sample:
        command += ["--sample", str(sample)]
    if getattr(args, "protocol", None):
        command += ["--protocol", args.protocol]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return RunStore.open(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--extra", type=int, default=275, help="random architectures added to Suite-Zero's 725")
    parser.add_argument("--proxies", default=CLASSIC, help="default: the NAS-Bench-Suite-Zero 13")
    args = parser.parse_args()
    check_data(args)

    bench = build_validation_benchmark(args.data, args.out_dir, args.extra, args.seed)
    run = args.out_dir / f"{bench.stem}-b{args.batch_size}-s{args.seed}.h5"
    store = score(bench, run, args.proxies, args)
    text = "\n".join(
        [f"## Per-architecture agreement with the reference scores ({run.name})", ""]
        + agreement_table(store, args.data)
        + ["", f"## Correlation with CIFAR-10 accuracy, {len(store)} architectures ({run.name})", ""]
        + accuracy_table(store)
    )
    (args.out_dir / "validation.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
