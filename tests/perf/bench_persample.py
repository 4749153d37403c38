"""Vectorised (torch.func vmap) vs loop per-sample gradients. Prints figures; asserts nothing.

    python tests/perf/bench_persample.py [--archs 3] [--batch-size 64] [--ntk-batch 16] [--chunk-size N] [--repeats 1]
                                         [--float64]

For a fixed sample of NB201 architectures (C=16, N=5, CIFAR-sized input, one torch thread,
CPU), it times on a fresh copy of each network:
  - gradsign's pass: one cross-entropy gradient per sample, each sample forwarded alone
    (`persample.per_sample_loss_gradients`, vectorised and loop),
  - the NTK pass: one forward of the first `--ntk-batch` samples and the gradient of each
    sample's sum of logits (`persample.logit_sum_gradients`, vectorised and loop),
  - one forward+backward of the whole batch (the unit of cost),
and prints seconds per architecture (after a warm-up call of each path: torch.func's first
vmap in a process costs seconds), the loop/vmap speed-up, and the largest difference
between the two paths' gradients and their GradSign scores.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def _best_of(repeats: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def measure_persample(
    n_archs: int = 3,
    batch_size: int = 64,
    ntk_batch: int = 16,
    repeats: int = 1,
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """Seconds per architecture for each path; also callable from another bench script."""
    from zcnas.proxies.passes import weighted_layers
    from zcnas.proxies.persample import logit_sum_gradients, per_sample_loss_gradients
    from zcnas.spaces import get_space

    torch.set_num_threads(1)
    space = get_space("nb201")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=generator).to(dtype)
    y = torch.randint(0, 10, (batch_size,), generator=generator)
    rows = []
    for i, arch in enumerate(space.sample(n_archs, np.random.default_rng(0))):
        torch.manual_seed(i)
        model = space.build(arch, num_classes=10).to(dtype)
        names = [f"{name}.weight" for name, _ in weighted_layers(model)]
        ntk_names = [n for n, _ in model.named_parameters() if "weight" in n]

        def unit():
            net = copy.deepcopy(model).train()
            F.cross_entropy(net(x), y).backward()

        # Warm-up: torch.func's first vmap call in a process costs seconds of set-up.
        for vectorised in (True, False):
            per_sample_loss_gradients(copy.deepcopy(model), x[:2], y[:2], names, vectorised=vectorised)
            logit_sum_gradients(copy.deepcopy(model), x[:2], ntk_names, vectorised=vectorised)
        row = {"arch": arch, "unit": _best_of(repeats, unit)[0]}
        for vectorised, key in ((True, "gradsign_vmap"), (False, "gradsign_loop")):
            row[key], grads = _best_of(
                repeats, lambda: per_sample_loss_gradients(
                    copy.deepcopy(model), x, y, names, vectorised=vectorised, chunk_size=chunk_size
                )
            )
            row[key + "_score"] = sum(float(g.sign().sum(0).abs().sum()) for g in grads.values())
            row[key + "_grads"] = grads
        row["gradsign_max_abs_diff"] = max(
            float((row["gradsign_vmap_grads"][n] - row["gradsign_loop_grads"][n]).abs().max()) for n in names
        )
        row["gradsign_max_abs_grad"] = max(float(row["gradsign_loop_grads"][n].abs().max()) for n in names)
        del row["gradsign_vmap_grads"], row["gradsign_loop_grads"]
        for vectorised, key in ((True, "ntk_vmap"), (False, "ntk_loop")):
            row[key], row[key + "_rows"] = _best_of(
                repeats,
                lambda: logit_sum_gradients(copy.deepcopy(model), x[:ntk_batch], ntk_names, vectorised=vectorised),
            )
        row["ntk_max_abs_diff"] = float((row.pop("ntk_vmap_rows") - row.pop("ntk_loop_rows")).abs().max())
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ntk-batch", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=None, help="vmap chunk size for gradsign (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--float64", action="store_true", help="run both paths in float64 (their gap is rounding)")
    args = parser.parse_args()

    dtype = torch.float64 if args.float64 else torch.float32
    rows = measure_persample(args.archs, args.batch_size, args.ntk_batch, args.repeats, args.chunk_size, dtype)
    print(f"{args.archs} NB201 architectures (C=16, N=5, 32x32), CPU, 1 thread, {dtype}, best of {args.repeats}")
    print(f"  vmap chunk size for gradsign: {args.chunk_size or 'none (whole batch)'}")
    for row in rows:
        print(f"  {row['arch']}")
        print(f"    one forward+backward, batch {args.batch_size}: {row['unit']:7.2f} s")
        print(
            f"    gradsign, batch {args.batch_size}: loop {row['gradsign_loop']:7.2f} s"
            f"   vmap {row['gradsign_vmap']:7.2f} s"
            f"   speed-up {row['gradsign_loop'] / row['gradsign_vmap']:5.2f}x   scores {row['gradsign_loop_score']:.0f}"
            f" / {row['gradsign_vmap_score']:.0f}   max |Δg| {row['gradsign_max_abs_diff']:.1e}"
            f" (of max |g| {row['gradsign_max_abs_grad']:.1e})"
        )
        print(
            f"    ntk, batch {args.ntk_batch}:      loop {row['ntk_loop']:7.2f} s   vmap {row['ntk_vmap']:7.2f} s"
            f"   speed-up {row['ntk_loop'] / row['ntk_vmap']:5.2f}x   max |ΔG| {row['ntk_max_abs_diff']:.1e}"
        )
    for key in ("gradsign", "ntk"):
        ratio = statistics.median(row[f"{key}_loop"] / row[f"{key}_vmap"] for row in rows)
        print(f"  median {key} speed-up (loop / vmap): {ratio:.2f}x")


if __name__ == "__main__":
    main()
