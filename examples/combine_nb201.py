"""Held-out table of every combine method on a scored NB201 run (docs/combine.md).

    python examples/combine_nb201.py validation/nb201-cifar10-validation1000-b64-s0.h5 \
        --target cifar10_test_acc --train-sizes 100,500 --repeats 5 --out-dir validation/combine

For each train size K and method it runs `zcnas combine RUN --method M --train-size K
--repeats R --seed 0` (fit on K architectures drawn by the split seed, evaluate on all the
others), then prints one Markdown table: held-out Kendall and Spearman (mean ± std over the
splits, min–max) next to the best single proxy on the same splits (chosen by its Kendall on
each split's training architectures, so the comparison uses no held-out information).
Existing summaries in --out-dir are reused (delete them to refit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METHODS = ("rank_average", "ridge", "robot", "parzc")


def fmt(stats: dict) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f} ({stats['min']:.3f}–{stats['max']:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--target", default="cifar10_test_acc")
    parser.add_argument("--train-sizes", default="100,500")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out-dir", type=Path, default=Path("combine"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    rows = [
        "| K (train) | method | held-out Kendall τ | held-out Spearman ρ | best single proxy τ (chosen on train) |",
        "|---:|---|---|---|---|",
    ]
    for size in (int(k) for k in args.train_sizes.split(",")):
        for method in args.methods.split(","):
            model = args.out_dir / f"{method}-k{size}.npz"
            summary_path = args.out_dir / f"{method}-k{size}.json"
            if not summary_path.exists():
                command = [
                    sys.executable, "-m", "zcnas", "combine", str(args.run), "--method", method, "--target", args.target,
                    "--train-size", str(size), "--seed", "0", "--repeats", str(args.repeats), "--out", str(model), "-q",
                ]
                print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
                subprocess.run(command, check=True)
            summary = json.loads(summary_path.read_text())["summary"]
            test_size = json.loads(summary_path.read_text())["splits"][0]["n_test"]
            rows.append(
                f"| {size} (test {test_size}) | {method} | {fmt(summary['method']['kendall'])} "
                f"| {fmt(summary['method']['spearman'])} | {fmt(summary['best_single']['kendall'])} |"
            )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
