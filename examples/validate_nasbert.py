"""The NAS-Bench-BERT tables of docs/validation.md, from run files made with `zcnas score`.

    zcnas bench import nasbert ../shared/data/nas_bench_bert_benchmark.json --as-scored \\
        --reference-scores ../shared/data/nas_bench_bert_reference_scores.csv --out nasbert.h5
    zcnas bench import nasbert ../shared/data/nas_bench_bert_benchmark.json --as-scored \\
        --probe-text random --out nasbert-random.h5
    T=activation_distance,activation_distance_normalized,synaptic_diversity,synaptic_diversity_normalized,\\
    synaptic_saliency,synaptic_saliency_normalized,jacobian_score,jacobian_cosine,num_parameters,\\
    head_importance,head_importance_normalized,head_confidence,head_confidence_normalized,\\
    head_softmax_confidence,head_softmax_confidence_normalized
    zcnas score nasbert.h5 -p $T -b 32 --seed 0 --workers 2 --out text-b32.h5
    zcnas score nasbert-random.h5 -p $T -b 32 --seed 0 -n 100 --out random-b32-n100.h5
    python examples/validate_nasbert.py --text text-b32.h5 --authors nasbert.authors.h5 \\
        --random random-b32-n100.h5 --benchmark-json ../shared/data/nas_bench_bert_benchmark.json

Prints three Markdown tables:

1. per-architecture agreement: Spearman between zcnas's value and the authors' value of the
   same architecture, for each of the 15 metrics; for activation_distance also against the
   authors' value divided by their hook count (the layers of the models their notebook had
   scored up to and including that id, in the JSON's order, plus 26 hooks left from an earlier
   run for ids 0-364; the kernel was restarted at id 365; see the activation_distance
   docstring), which removes their bug;
2. Spearman and Kendall with GLUE of zcnas's values and of the authors' on the same
   architectures;
3. text probe vs random ids on the architectures both runs hold: each probe's Spearman with
   GLUE and the Spearman between the two probes' values.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from zcnas.report import metrics
from zcnas.run.store import OK, RunStore

# Found from the authors' table (ratio of "Activation Distance" to its normalized twin, divided
# by the activation calls per model): 26 stale hooks before id 0, and a fresh kernel from id 365.
HOOKS_BEFORE_FIRST_MODEL = 26
RESTART_ID = 365


def column(store: RunStore, proxy: str) -> np.ndarray:
    values = np.array(store.scores[proxy], dtype=float)
    values[np.asarray(store.status[proxy]) != OK] = np.nan
    return values


def aligned(store: RunStore, other: RunStore) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the architectures both runs hold (matched by id)."""
    position = {int(i): k for k, i in enumerate(other.index)}
    mine = [k for k, i in enumerate(store.index) if int(i) in position]
    return np.array(mine), np.array([position[int(store.index[k])] for k in mine])


def rho(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return metrics.spearman(a[ok], b[ok])


def tau(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return metrics.kendall(a[ok], b[ok])


def hook_counts(benchmark_json: Path) -> dict[int, int]:
    """id -> how many hooks the authors' shared GELU held when that id was scored."""
    records = json.loads(benchmark_json.read_text())
    counts, layers = {}, 0
    for record in records:
        if int(record["id"]) == RESTART_ID:
            layers = -HOOKS_BEFORE_FIRST_MODEL
        layers += len(record["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"])
        counts[int(record["id"])] = HOOKS_BEFORE_FIRST_MODEL + layers
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, required=True, help="zcnas run on the text-probe benchmark.")
    parser.add_argument("--authors", type=Path, required=True, help="The reference run of the authors' table.")
    parser.add_argument("--random", type=Path, help="zcnas run on the random-ids benchmark (a subset).")
    parser.add_argument("--benchmark-json", type=Path, help="nas_bench_bert_benchmark.json, for the hook counts.")
    args = parser.parse_args()

    text, authors = RunStore.open(args.text), RunStore.open(args.authors)
    rows, their_rows = aligned(text, authors)
    proxies = [p for p in text.spec.proxies if p in authors.scores]
    glue = np.asarray(text.targets["glue"])[rows]
    print(f"## 1-2. zcnas ({text.spec.batch_size} sequences, {len(rows)} architectures) against the authors\n")
    print("| metric | ρ(zcnas, authors) | ρ zcnas vs GLUE | τ zcnas | ρ authors vs GLUE | τ authors |")
    print("|---|---:|---:|---:|---:|---:|")
    for proxy in sorted(proxies, key=lambda p: -abs(rho(column(authors, p)[their_rows], glue))):
        ours, theirs = column(text, proxy)[rows], column(authors, proxy)[their_rows]
        print(
            f"| {proxy} | {rho(ours, theirs):.3f} | {rho(ours, glue):.3f} | {tau(ours, glue):.3f} "
            f"| {rho(theirs, glue):.3f} | {tau(theirs, glue):.3f} |"
        )
    if args.benchmark_json is not None:
        counts = hook_counts(args.benchmark_json)
        hooks = np.array([counts[int(i)] for i in np.asarray(authors.index)[their_rows]], dtype=float)
        corrected = column(authors, "activation_distance")[their_rows] / hooks
        ours = column(text, "activation_distance")[rows]
        print(
            f"\nactivation_distance against the authors' value / hook count: ρ(zcnas, authors) {rho(ours, corrected):.3f}; "
            f"the corrected authors' value vs GLUE ρ {rho(corrected, glue):.3f}, τ {tau(corrected, glue):.3f}"
        )
    if args.random is None:
        return
    random = RunStore.open(args.random)
    r_rows, t_rows = aligned(random, text)
    glue = np.asarray(random.targets["glue"])[r_rows]
    print(f"\n## 3. Text probe vs random ids ({len(r_rows)} architectures)\n")
    print("| metric | ρ text vs GLUE | ρ random vs GLUE | ρ(text, random) |")
    print("|---|---:|---:|---:|")
    for proxy in [p for p in random.spec.proxies if p in text.scores]:
        r, t = column(random, proxy)[r_rows], column(text, proxy)[t_rows]
        print(f"| {proxy} | {rho(t, glue):.3f} | {rho(r, glue):.3f} | {rho(t, r):.3f} |")


if __name__ == "__main__":
    main()
