"""How far three documented departures from the reference code move the scores (docs/proxies.md,
docs/validation.md): MeCo's and Dextr's module tree, Dextr's curve, TE-NAS's linear regions.

    python examples/reference_protocols.py --data ../shared/data --archs 200 --dextr-archs 40

On `--archs` NB201 architectures drawn uniformly (seed 0) from nb201_accuracies.csv, each
built at its benchmark width (C=16, N=5, CIFAR-10 head) and scored on a class-balanced probe
batch of 64 CIFAR-10 training images, the script prints Spearman and Kendall against
`cifar10valid_test_acc` (and between variants) for:

- meco as zcnas computes it, and re-weighted as on the reference's module tree (MeCo and
  Dextr score NB201 on the foresight `NAS201Model`, where every ReLU-conv-BN op's BN output,
  the stem's BN output, every avg-pool edge and the last cell of each stage are recorded once
  more than on zcnas's tree; see `zcnas.proxies.spectral.meco`);
- dextr (first `--dextr-archs` architectures only: about 10 CPU-seconds each) as zcnas
  computes it, with the reference's NB201 curve (`curve_points=1, curve_size=(64, 64),
  logit_draws=10`), and with that curve and the reference's module tree for the SVD term
  (the extra records above, plus the bias the reference's cell convs add to their outputs,
  drawn as PyTorch's default init does);
- linear_regions as zcnas computes it (TE-NAS's 3 × 1000 3×3 patches, Kaiming re-init), and
  the count under AZ-NAS's rerun of TE-NAS (the "gaussian" region pass; AZ-NAS
  NB201/ZeroShotProxy/compute_te_nas_score.py, the [AZ] numbers in docs/validation.md): one
  batch of 64 Gaussian 32×32 inputs through the network at its own initialisation; how many
  architectures reach the maximum (every input in a region of its own) under each; and
  TE-NAS's aggregation (the sum of the ranks of ntk_cond, 16 samples, and the count) with
  either count, next to ntk_cond alone.

Single-threaded torch, so it can share the machine: 11 minutes with the defaults above (2 shared cores).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zcnas.bench.probe import load_probe_npz
from zcnas.combine import Features, create_method
from zcnas.proxies import ProbeContext, compute_proxies
from zcnas.proxies import spectral
from zcnas.report.metrics import correlations
from zcnas.spaces import get_space

TARGET = "cifar10valid_test_acc"


def probe_batch(data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    probe = load_probe_npz(data / "cifar10_train10k_jpeg.npz", size=64, seed=0, mean="cifar10")
    x = torch.from_numpy(probe.images).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(probe.mean).view(1, 3, 1, 1), torch.tensor(probe.std).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(probe.labels).long()


def extra_reference_records(model: nn.Module) -> tuple[set[str], set[str]]:
    """(names recorded once more on the reference's tree, cell convs that carry a bias there)."""
    extra, biased = {"stem.bn"}, set()
    types = {name: type(m).__name__ for name, m in model.named_modules()}
    for name, kind in types.items():
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if kind == "BatchNorm2d" and types.get(parent) == "ReLUConvBN":
            extra.add(name)
        if kind == "AvgPool2d" and ".edges." in name:
            extra.add(name)
        if kind == "Conv2d" and ".edges." in name:
            biased.add(name)
    cells = [(name, kind) for name, kind in types.items() if name.count(".") == 1 and name.startswith("cells.")]
    for (name, kind), following in zip(cells, cells[1:] + [("", "end")]):
        if kind == "Cell" and following[1] != "Cell":  # the last cell of a stage
            extra.add(name)
    return extra, biased


def reference_tree_sum(features, term, extra: set[str], biased: dict[str, int], generator: torch.Generator) -> float:
    """Σ term over the records as the reference's tree makes them: the `extra` ones twice, and the
    outputs of the `biased` convs (name -> fan_in) shifted by a bias per channel."""
    total = 0.0
    for feature in features:
        matrix = feature.matrix
        if feature.name in biased:  # nn.Conv2d's default bias init: U(−1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(biased[feature.name])
            matrix = matrix + (torch.rand(matrix.shape[0], 1, generator=generator, dtype=matrix.dtype) * 2 - 1) * bound
        value = term(matrix)
        total += value * (2 if feature.name in extra else 1)
    return total


def te_nas(ntk_cond: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """TE-NAS's aggregation, the sum of the two ranks (`zcnas combine --method rank_average`)."""
    features = Features.from_arrays({"ntk_cond": ntk_cond, "linear_regions": regions})
    model = create_method("rank_average", proxies=["ntk_cond", "linear_regions"])
    model.fit(features, np.zeros(len(ntk_cond)))
    return model.predict(features)


def _f(value) -> str:
    return "undefined (constant)" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--dextr-archs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with open(args.data / "nb201_accuracies.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = np.random.default_rng(args.seed).choice(len(rows), size=args.archs, replace=False)
    x, y = probe_batch(args.data)
    space = get_space("nb201")
    names = ("acc", "meco", "meco_ref", "lr", "lr_az", "ntk_cond", "dextr", "dextr_refcurve", "dextr_ref")
    columns = {k: [] for k in names}
    start = time.perf_counter()
    for i, row in enumerate(chosen):
        arch = rows[row]["arch_str"]
        torch.manual_seed(args.seed * 100_000 + int(rows[row]["index"]))
        model = space.build(arch, num_classes=10)
        extra, biased_names = extra_reference_records(model)
        biased = {n: m.weight[0].numel() for n, m in model.named_modules() if n in biased_names}
        seed = int(rows[row]["index"])
        outcomes = compute_proxies(model, x, y, ["meco", "linear_regions", "ntk_cond"], num_classes=10, seed=seed)
        ctx = ProbeContext(model, x, y, num_classes=10, passes=("weights",), seed=seed)
        features = spectral.first_sample_features(ctx)
        bias_draws = torch.Generator().manual_seed(seed)
        columns["acc"].append(float(rows[row][TARGET]))
        columns["meco"].append(outcomes["meco"].score)
        columns["meco_ref"].append(
            reference_tree_sum(features, spectral.correlation_min_eigenvalue, extra, {}, bias_draws)
        )
        columns["lr"].append(outcomes["linear_regions"].score)
        columns["lr_az"].append(ctx.relu_pattern_pass("gaussian"))
        columns["ntk_cond"].append(outcomes["ntk_cond"].score if outcomes["ntk_cond"].ok else math.nan)
        dextr = [math.nan] * 3
        if i < args.dextr_archs:
            try:
                dextr[0] = spectral.dextr(ctx).score
                reference = dict(curve_points=1, curve_size=(64, 64), logit_draws=10)
                dextr[1] = spectral.dextr(ctx, **reference).score
                kappa = spectral.curve_curvatures(ctx, points=1, size=(64, 64), logit_draws=10)
                # + 1: the reference's `top` module records the pooled features, one value per channel.
                svd = math.log1p(
                    reference_tree_sum(features, spectral.inverse_condition_number, extra, biased, bias_draws) + 1
                )
                curvature = math.log1p(float(kappa.mean()))
                dextr[2] = svd * curvature / (svd + curvature) if svd + curvature > 0 else 0.0
            except FloatingPointError:  # logits that ignore the input: the proxy fails, as in a run
                pass
        for key, value in zip(("dextr", "dextr_refcurve", "dextr_ref"), dextr):
            columns[key].append(value)
        if (i + 1) % 20 == 0:
            print(f"{i + 1}/{args.archs} architectures, {time.perf_counter() - start:.0f} s", flush=True)

    data = {k: np.array(v, dtype=float) for k, v in columns.items()}
    data["te_nas"] = te_nas(data["ntk_cond"], data["lr"])
    data["te_nas_az"] = te_nas(data["ntk_cond"], data["lr_az"])
    print(f"\n{args.archs} NB201 architectures (seed {args.seed}), target {TARGET}\n")
    print("| score | n | ρ vs accuracy | τ vs accuracy |")
    print("|---|---:|---:|---:|")
    for key in ("meco", "meco_ref", "lr", "lr_az", "ntk_cond", "te_nas", "te_nas_az", *names[-3:]):
        finite = np.isfinite(data[key])
        c = correlations(data[key][finite], data["acc"][finite])
        print(f"| {key} | {int(finite.sum())} | {_f(c['spearman'])} | {_f(c['kendall'])} |")
    print("\n| pair | n | ρ between them | τ between them |")
    print("|---|---:|---:|---:|")
    pairs = (
        ("meco", "meco_ref"), ("lr", "lr_az"), ("te_nas_az", "ntk_cond"),
        ("dextr", "dextr_refcurve"), ("dextr", "dextr_ref"),
    )  # fmt: skip
    for a, b in pairs:
        finite = np.isfinite(data[a]) & np.isfinite(data[b])
        c = correlations(data[a][finite], data[b][finite])
        print(f"| {a} / {b} | {int(finite.sum())} | {_f(c['spearman'])} | {_f(c['kendall'])} |")
    print(
        f"\nlinear regions at the maximum: zcnas {int((data['lr'] == 3000).sum())} of {args.archs} at 3000 "
        f"(median {np.median(data['lr']):.0f}); AZ-NAS protocol {int((data['lr_az'] == 64).sum())} of "
        f"{args.archs} at 64 (values {sorted(set(data['lr_az'].astype(int).tolist()))})"
    )
    below = [rows[row]["arch_str"] for row, value in zip(chosen, data["lr_az"]) if value < 64]
    print("below 64 under AZ-NAS's protocol:", *below, sep="\n  ")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
