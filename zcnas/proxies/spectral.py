"""Spectral and activation-pattern proxies: MeCo, Dextr, SWAP and AZ-NAS's three components.

None of them needs labels or a loss. Each works on a private copy of the network
(`ctx.fresh_copy()`), and the forward/backward passes they share are computed here, cached
on the context under a ``spectral.`` key:

- ``spectral.first_sample``: the probe batch's first image forwarded alone through a
  train-mode copy, with a forward hook on every module (meco, meco_opt, dextr's SVD term);
- ``spectral.curvature``: Dextr's curve of inputs and the curvature of its image;
- ``spectral.az``: AZ-NAS's Kaiming-initialised copy, one forward of a Gaussian batch and
  the backward of a Rademacher tensor through each cell (the three az_* components).

These passes live here, not in `passes.py`, because no other proxy family reads them; the
proxies declare the no-computation ``weights`` pass for the registry. Every random draw comes
from `ctx.generator(purpose)`, so a score depends on the architecture's seed alone, and a
proxy gives the same value whether or not the others share its pass.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from zcnas.errors import ProxyError
from zcnas.proxies.passes import (
    WEIGHTED_LAYERS,
    ProbeContext,
    forward_hooks,
    gaussian_init,
    kaiming_fan_in_init,
    network_method,
    relu_feature_patterns,
)
from zcnas.proxies.registry import ProxyResult, proxy

# meco_opt's channel sample (MeCo `correlation/NAS_Bench_201.py`: random.sample(range(n), 8)).
MECO_OPT_CHANNELS = 8
# SWAP's samples: the first 16 probe images (SWAP correlation.py `--input_samples` default).
SWAP_SAMPLES = 16
# Points on Dextr's input curve, at θ = 2πk/CURVE_POINTS (the reference passes a curve of 1).
CURVE_POINTS = 16
# AZ-NAS's constants (compute_az_nas_score.py): inside the entropy's log, and in 1/(σ + ε).
AZ_ENTROPY_EPS = 1e-8
AZ_SIGMA_EPS = 1e-6
# The score of a cell pair whose input gradient equals its output gradient (an identity cell):
# the reference's −inf, made finite: below every other pair, the dead one (σ = 0, ≈ −1e6 + 2)
# included, so the ranks the reference gives are kept wherever they are defined.
AZ_IDENTITY_PAIR = -1e6

SPECTRAL = "spectral"
# Why MeCo and MeCo_opt refuse token networks.
MECO_NOT_FOR = (
    "it reads every module's output as channels x positions, and a token network's outputs have no one such "
    "layout (channels last for linear maps, first for convolutions, heads for attention)"
)
MECO_REFERENCE = (
    "Jiang et al., NeurIPS 2023 (MeCo); HamsterMimi/MeCo correlation/NAS_Bench_201.py get_score, "
    "correlation/foresight/pruners/measures/meco.py"
)
AZ_REFERENCE = "Lee & Ham, CVPR 2024 (AZ-NAS); cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_az_nas_score.py"


# ---------------------------------------------------------------------------------------------
# The per-feature quantities (public so that the formula tests can call them on tiny tensors)
# ---------------------------------------------------------------------------------------------
def correlation_min_eigenvalue(feature: torch.Tensor) -> float:
    """Smallest eigenvalue of the Pearson correlation between the rows (channels) of C × P.

    Undefined correlations (a constant channel) are set to 0, as MeCo does; with one channel
    the matrix is [1] (or [0] when that channel is constant). With one value per channel
    (P = 1: pooled features, logits) every correlation is undefined, so the matrix is 0.
    """
    channels = feature.shape[0]
    if feature.shape[1] < 2:
        return 0.0
    corr = torch.corrcoef(feature.to(torch.float64)).reshape(channels, channels)
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    return float(torch.linalg.eigvalsh(corr).min())


def inverse_condition_number(feature: torch.Tensor) -> float:
    """σ_min / σ_max of a C × P matrix (min(C, P) singular values); 0 where undefined (all zero)."""
    singular = torch.linalg.svdvals(feature.to(torch.float64))
    ratio = float(singular.min() / singular.max())
    return ratio if math.isfinite(ratio) else 0.0


def extrinsic_curvature(
    function: Callable[[torch.Tensor], torch.Tensor],
    basis: torch.Tensor,
    thetas: torch.Tensor,
    input_shape: Sequence[int],
) -> torch.Tensor:
    """κ(θ) of the curve θ ↦ function(basis · [cos θ, sin θ]) at each θ, in float64.

    `basis` is D × 2 (D = prod(input_shape)); `function` maps a batch (K, *input_shape) to
    (K, ...) and must treat the K points independently (the derivatives of point k are taken
    with respect to θ_k through the whole batch). κ = sqrt(|v|²|a|² − (v·a)²) / |v|³ with v, a
    the first and second derivatives of the flattened output with respect to θ, computed
    exactly by forward-mode AD nested twice (torch.func.jvp). The radicand, ≥ 0 by
    Cauchy-Schwarz, is clamped at 0 against rounding; |v| = 0 gives NaN.
    """
    shape = tuple(input_shape)

    def curve_output(theta: torch.Tensor) -> torch.Tensor:
        points = (basis @ torch.stack([torch.cos(theta), torch.sin(theta)])).T
        return function(points.reshape(len(theta), *shape)).reshape(len(theta), -1)

    def velocity(theta: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(curve_output, (theta,), (torch.ones_like(theta),))[1]

    with torch.no_grad(), warnings.catch_warnings():
        # torch scripts its forward-AD decompositions on first use and warns that
        # torch.jit.script is deprecated: torch's own business, not the user's.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=DeprecationWarning)
        v, a = torch.func.jvp(velocity, (thetas,), (torch.ones_like(thetas),))
    v, a = v.to(torch.float64), a.to(torch.float64)
    vv, aa, va = (v * v).sum(1), (a * a).sum(1), (v * a).sum(1)
    return torch.sqrt(torch.clamp(vv * aa - va**2, min=0.0)) / vv**1.5


def distinct_columns(codes: torch.Tensor) -> int:
    """Number of distinct columns of a (samples × neurons) 0/1 matrix.

    Each column is packed into int64 words of 62 bits (one word for up to 62 samples), so the
    count is a `torch.unique` over integers rather than over rows of a large matrix.
    """
    return _count_distinct_rows(_pack_columns(codes))


def _count_distinct_rows(words: torch.Tensor) -> int:
    """Distinct rows of an (n × w) int64 matrix, by 1-D uniques (torch.unique(dim=0) is slow)."""
    if words.shape[0] == 0:
        return 0
    key = torch.unique(words[:, 0], return_inverse=True)[1]
    for column in words.T[1:]:
        values, ids = torch.unique(column, return_inverse=True)
        # key < n and ids < n, so the pair's code stays below n² (no int64 overflow below n = 3e9)
        key = torch.unique(key * len(values) + ids, return_inverse=True)[1]
    return int(key.max()) + 1


def _pack_columns(codes: torch.Tensor) -> torch.Tensor:
    """(samples × neurons) 0/1 -> (neurons × words) int64, bit j of word w = sample 62w + j."""
    words = []
    for start in range(0, codes.shape[0], 62):
        word = torch.zeros(codes.shape[1], dtype=torch.int64, device=codes.device)
        for bit, row in enumerate(codes[start : start + 62]):
            word |= row.to(torch.int64) << bit
        words.append(word)
    return torch.stack(words, dim=1)


def eigen_entropy(feature: torch.Tensor) -> float:
    """AZ-NAS expressivity of one feature map (B, C, ...): entropy of its channel covariance spectrum.

    The map is flattened to (B·H·W) × C and centred; λ are the eigenvalues of the C × C
    covariance (divided by B·H·W), p = λ / Σλ and the entropy is −Σ p log(p + 1e-8).
    Departures: float64; eigenvalues clamped at 0 (the covariance is PSD, a negative value is
    rounding, and would make the reference's log NaN); a map with no variance at all (e.g. the
    output of a cell of `none` edges) has entropy 0, where the reference's 0/0 makes the whole
    expressivity NaN and then −inf.
    """
    channels = feature.shape[1]
    flat = feature.detach().to(torch.float64).movedim(1, -1).reshape(-1, channels)
    flat = flat - flat.mean(dim=0, keepdim=True)
    covariance = flat.T @ flat / flat.shape[0]
    eigenvalues = torch.clamp(torch.linalg.eigvalsh(covariance), min=0.0)
    total = eigenvalues.sum()
    if not total > 0:
        return 0.0
    p = eigenvalues / total
    return float(-(p * torch.log(p + AZ_ENTROPY_EPS)).sum())


def trainability_pair(g_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """AZ-NAS score of one cell: −σ − 1/(σ + 1e-6) + 2, σ the top singular value of g_inᵀ g_out / n.

    g_out (B, C_out, H, W) is the Rademacher tensor backpropagated through the cell and g_in
    what reached its input. When the cell changes the resolution, g_in is pixel-unshuffled to
    the output's (C_in·s², H, W). Rows are the B·H·W positions of the output, n their number.
    An identity cell (g_in == g_out exactly) scores `AZ_IDENTITY_PAIR` (the reference: −inf).
    """
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return AZ_IDENTITY_PAIR
    if g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if stride < 1 or tuple(g_in.shape[2:]) != tuple(s * stride for s in g_out.shape[2:]):
            raise ValueError(
                f"AZ-NAS trainability: a cell maps a {tuple(g_in.shape[2:])} input to a {tuple(g_out.shape[2:])} "
                "output, which is not a whole-number downsampling"
            )
        g_in = F.pixel_unshuffle(g_in, stride)
    positions = g_out.shape[0] * math.prod(g_out.shape[2:])
    rows_in = g_in.to(torch.float64).movedim(1, -1).reshape(positions, -1)
    rows_out = g_out.to(torch.float64).movedim(1, -1).reshape(positions, -1)
    sigma = float(torch.linalg.svdvals(rows_in.T @ rows_out / positions).max())
    return -sigma - 1.0 / (sigma + AZ_SIGMA_EPS) + 2.0


# ---------------------------------------------------------------------------------------------
# Passes (cached on the context)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleFeature:
    """The first sample's output of one module call, as a C × (H·W) float64 matrix."""

    name: str
    weighted: bool  # a conv/linear layer: its term is also a per-layer statistic
    matrix: torch.Tensor


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def first_sample_features(ctx: ProbeContext) -> list[ModuleFeature]:
    """Every module's output for the probe batch's first image, forwarded alone.

    As MeCo's and Dextr's correlation scripts (batch size 1 of real data, a freshly built so
    train-mode network, a forward hook on every `named_modules()` entry, root and containers
    included): a train-mode copy (BatchNorm normalises over the image's positions), no_grad,
    one record per module call, in the order the hooks fire. A module returning a tuple gives
    its first tensor; outputs without a sample dimension are skipped.
    """

    def compute() -> list[ModuleFeature]:
        net = ctx.fresh_copy().train()
        x = ctx.x[:1].detach().clone().to(_float_dtype(ctx.x))
        records: list[ModuleFeature] = []

        def record(name: str, weighted: bool):
            def hook(module, inputs, output):
                first = _first_tensor(output)
                if first is not None and first.dim() >= 2:
                    sample = first[0].detach()
                    records.append(ModuleFeature(name, weighted, sample.reshape(sample.shape[0], -1).to(torch.float64)))

            return hook

        hooks = ((module, record(name, isinstance(module, WEIGHTED_LAYERS))) for name, module in net.named_modules())
        with forward_hooks(hooks), torch.no_grad():
            net(x)
        return records

    return ctx._cached("first_sample_features", compute)


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


class _PerSampleBatchNorm(nn.Module):
    """A train-mode BatchNorm2d applied to each sample as if it were a batch of one.

    Written with elementary ops: torch's forward-mode derivative of its fused batch_norm and
    layer_norm kernels is exact to first order only (checked against finite differences in
    torch 2.13), and the curvature needs the second.
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)  # biased, as BatchNorm normalises
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


_OTHER_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def _per_sample_copy(ctx: ProbeContext) -> nn.Module:
    """A train-mode copy whose BatchNorm2d layers normalise each sample on its own."""
    net = ctx.fresh_copy().train()
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                setattr(parent, child_name, _PerSampleBatchNorm(child))
    other = sorted({type(m).__name__ for m in net.modules() if isinstance(m, _OTHER_NORMS)})
    if other:
        raise ProxyError(
            f"dextr's curvature supports BatchNorm2d as the only normalisation layer; this network also has "
            f"{', '.join(other)}."
        )
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def curve_curvatures(
    ctx: ProbeContext,
    *,
    points: int = CURVE_POINTS,
    size: tuple[int, int] | None = None,
    logit_draws: int | None = None,
) -> torch.Tensor:
    """Dextr's extrinsic curvature κ at each of the `points` points θ = 2πk/points of its input curve.

    `size`: the curve's (H, W) (default: the probe images'); `logit_draws`: how many output
    coordinates to draw, uniformly with replacement, from the context's generator for
    "dextr.logits" (default: every logit once). The reference's NB201 script is
    ``points=1, size=(64, 64), logit_draws=10``.
    """
    if points < 1 or (logit_draws is not None and logit_draws < 1):
        raise ProxyError(f"dextr's curve needs at least one point and one logit; got {points} and {logit_draws}.")
    options = (points, None if size is None else tuple(size), logit_draws)
    key = "input_curve" if options == (CURVE_POINTS, None, None) else f"input_curve{options}"

    def compute() -> torch.Tensor:
        net = _per_sample_copy(ctx)
        shape = tuple(ctx.x.shape[1:]) if size is None else (ctx.x.shape[1], *size)
        dtype, device = _float_dtype(ctx.x), ctx.x.device
        generator = ctx.generator("dextr.curve")
        plane = torch.randn((math.prod(shape), 2), generator=generator, dtype=torch.float64, device=device)
        basis = torch.linalg.svd(plane, full_matrices=False)[0].to(dtype)
        thetas = 2 * math.pi * torch.arange(points, dtype=dtype, device=device) / points
        function: Callable[[torch.Tensor], torch.Tensor] = net
        if logit_draws is not None:
            with torch.no_grad():
                width = net(basis[:, 0].reshape(1, *shape)).reshape(1, -1).shape[1]
            drawn = torch.randint(0, width, (logit_draws,), generator=ctx.generator("dextr.logits"), device=device)
            function = lambda x: net(x).reshape(len(x), -1)[:, drawn]  # noqa: E731
        return extrinsic_curvature(function, basis, thetas, shape)

    return ctx._cached(key, compute)


@dataclass(frozen=True)
class AZPass:
    """AZ-NAS's per-feature entropies (stem output first, then every cell) and per-pair scores."""

    entropies: list[float]
    pair_scores: list[float]


def az_pass(ctx: ProbeContext) -> AZPass:
    """The one AZ-NAS pass the three az_* components share.

    As compute_az_nas_score.py: a private copy re-initialised Kaiming-normal (fan_in, ReLU
    gain; biases 0, BN γ=1, β=0), train mode, a Gaussian input of the probe batch's shape
    (AZ-NAS scores NB201 on random inputs; the probe images are not used). The features are
    the stem output (the network's `stem` module, as AZ-NAS's extract_cell_features starts
    with it) followed by `cell_features(x)`, every cell and reduction block in order.
    Departure: every draw (weights, input, Rademacher tensors) comes from the context's
    generator for "az_nas", not the global RNG.
    """

    def compute() -> AZPass:
        net = ctx.fresh_copy()
        cell_features = network_method(net, "cell_features", "AZ-NAS", "the output of every cell")
        generator = ctx.generator("az_nas")
        # Draw order (fixed, so a test can replay it): weights in module order, the input,
        # then one Rademacher tensor per cell pair, last pair first (as the reference loops).
        kaiming_fan_in_init(net, generator, norms=(nn.BatchNorm2d, nn.GroupNorm))
        net.train()
        dtype, device = _float_dtype(ctx.x), ctx.x.device
        x = torch.randn(ctx.x.shape, generator=generator, dtype=dtype, device=device)
        stem_output: list[torch.Tensor] = []
        stem = getattr(net, "stem", None)
        hooks = [(stem, lambda module, inputs, output: stem_output.append(output))] if isinstance(stem, nn.Module) else []
        with forward_hooks(hooks):
            cells = list(cell_features(x))
        features = stem_output[:1] + cells
        if len(features) < 2:
            raise ProxyError("AZ-NAS needs at least two cell features (stem and one cell) to compare.")
        entropies = [eigen_entropy(feature) for feature in features]
        pair_scores: dict[int, float] = {}
        for i in reversed(range(1, len(features))):
            f_out, f_in = features[i], features[i - 1]
            g_out = torch.randint(0, 2, f_out.shape, generator=generator, device=device).to(f_out.dtype) * 2 - 1
            (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)
            if g_in is None:  # the cell ignores its input altogether
                g_in = torch.zeros_like(f_in)
            pair_scores[i] = trainability_pair(g_in.detach(), g_out)
        return AZPass(entropies, [pair_scores[i] for i in range(1, len(features))])

    return ctx._cached("az_features", compute)


# ---------------------------------------------------------------------------------------------
# Proxies
# ---------------------------------------------------------------------------------------------
def _terms(features: list[ModuleFeature], term: Callable[[ModuleFeature], float]) -> tuple[float, dict[str, float]]:
    """(sum of every module's term, {conv/linear module: its term})."""
    total, layers = 0.0, {}
    for feature in features:
        value = term(feature)
        total += value
        if feature.weighted:
            layers[feature.name] = layers.get(feature.name, 0.0) + value
    return total, layers


@proxy(
    "meco",
    not_for=MECO_NOT_FOR,
    family=SPECTRAL,
    passes=("first_sample_features",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    reference=MECO_REFERENCE,
)
def meco(ctx: ProbeContext) -> ProxyResult:
    """MeCo: Σ over module calls of the smallest eigenvalue of the channel correlation matrix.

    As the reference's correlation script: the first probe image forwarded alone (it uses a
    batch of 1 real image; the rest of our probe batch is not used) through a train-mode
    network with a hook on every module, root and containers included; per call, the output's
    C × (H·W) matrix, its Pearson correlation between channels with NaN/inf set to 0, and the
    smallest eigenvalue. Outputs with one value per channel (pooling, classifier, logits) give
    the all-zero matrix and 0.

    Departures: eigenvalues from `torch.linalg.eigvalsh` (the matrix is symmetric) in float64,
    where the reference takes the smallest real part from the general `torch.linalg.eig` in
    float32; the same spectrum up to rounding.

    The module tree weighs the terms, since the sum runs over the hook calls of the network it
    is given. The reference scores NB201 on the foresight `NAS201Model`
    (correlation/foresight/models/nasbench2.py, nasbench2_ops.py; Dextr uses the same files),
    not on AutoDL's tree, which zcnas's NB201 follows. There every ReLU-conv-BN op (in cells
    and reduction blocks) wraps an nn.Sequential, so its BN output is recorded three times
    (zcnas: twice); the stem's BN output three times (twice); an avg-pool edge twice, a
    wrapper around nn.AvgPool2d (once); and the last cell of each stage twice, also as the
    output of the stage's nn.Sequential (once). Every other record appears as often in both.
    Its cells' BatchNorms are affine-free (affine=False, track_running_stats=False) and their
    convs carry a bias (bias=not affine); at initialisation neither changes a term (an affine
    BN starts at γ = 1, β = 0, and a constant per channel leaves a correlation unchanged),
    only which random numbers the weights get. So on NB201 the reference's score is zcnas's
    plus one more copy of those BN, avg-pool and stage-output terms. On 200 NB201
    architectures the two rank alike (Spearman 0.999 with each other; 0.899 and 0.895 with
    CIFAR-10 accuracy; examples/reference_protocols.py), so zcnas keeps the tree it is given
    and offers no reweighting. Per-layer statistics: the term of each conv/linear layer (the
    score also counts every other module, hence aggregation "none").
    """
    score, layers = _terms(first_sample_features(ctx), lambda f: correlation_min_eigenvalue(f.matrix))
    return ProxyResult(float(score), layers)


@proxy(
    "meco_opt",
    not_for=MECO_NOT_FOR,
    family=SPECTRAL,
    passes=("first_sample_features",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    reference=MECO_REFERENCE,
)
def meco_opt(ctx: ProbeContext) -> ProxyResult:
    """MeCo_opt: meco on 8 random channels per module call, scaled by C / 8.

    The reference's cheaper variant: per hooked output, 8 channels drawn without replacement,
    the smallest eigenvalue of their correlation, times C / 8. Departures: the channels come
    from the context's generator for "meco_opt" (in hook order), not Python's global `random`;
    an output with fewer than 8 channels uses all of them (scale 1), where `random.sample`
    raises. Everything else (first image alone, train mode, every module) as `meco`.
    """
    generator = ctx.generator("meco_opt")

    def term(feature: ModuleFeature) -> float:
        channels = feature.matrix.shape[0]
        k = min(MECO_OPT_CHANNELS, channels)
        chosen = torch.randperm(channels, generator=generator, device=feature.matrix.device)[:k]
        return correlation_min_eigenvalue(feature.matrix[chosen]) * channels / k

    score, layers = _terms(first_sample_features(ctx), term)
    return ProxyResult(float(score), layers)


@proxy(
    "dextr",
    not_for="its curvature follows a curve of input images, and token ids are not continuous",
    family=SPECTRAL,
    passes=("first_sample_features", "input_curve"),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    reference=(
        "Asthana et al. 2025 (Dextr); rohanasthana/Dextr NASBench201/correlation/NAS_Bench_201.py get_score, "
        ".../foresight/pruners/measures/dextr.py, .../no_free_lunch_architectures/length.py"
    ),
)
def dextr(
    ctx: ProbeContext,
    *,
    curve_points: int = CURVE_POINTS,
    curve_size: tuple[int, int] | None = None,
    logit_draws: int | None = None,
) -> ProxyResult:
    """Dextr: S·C / (S + C), S = log(1 + Σ σ_min/σ_max of each module's output), C = log(1 + κ).

    SVD term, as the reference: the first probe image alone through a train-mode copy, a hook
    on every module (the same features as `meco`); per call σ_min/σ_max of the C × (H·W)
    output (NaN/inf, i.e. an all-zero output, set to 0); S = log(1 + sum). The reference's
    NB201 module tree weighs these terms as described under `meco`, with two more
    differences: its `top` wrapper adds one record of the pooled features (a term of 1), and
    σ_min/σ_max, unlike a correlation, changes when a constant is added to a channel, so the
    bias of its cell convs changes those convs' own terms.

    Curvature term: a train-mode copy; a circle of unit radius in a random 2-D plane of input
    space (the plane spanned by the left singular vectors of a D × 2 Gaussian matrix, drawn
    from the context's generator for "dextr.curve"), x(θ) = U [cos θ, sin θ];
    κ(θ) = sqrt(|v|²|a|² − (v·a)²) / |v|³ with v, a the first and second derivative of the
    output coordinates with respect to θ; κ is their mean over the curve's points.

    What the reference computes for NB201 (NASBench201/correlation/NAS_Bench_201.py, whose
    `get_extrinsic_curvature` is in no_free_lunch_architectures/length.py): the curve has
    size_curve=(1, 3, 64, 64), i.e. one point, θ = 0 (linspace(0, 2π, 1)), in a 64×64 input
    space whatever the data's size (its SVD term reads the 32×32 CIFAR image); the output
    coordinates are 10 indices drawn by `np.random.randint(0, C)`, with replacement, so on
    NB201's 10 logits a draw repeats some and misses others (6.5 distinct on average);
    v and a by double backward per drawn index. Its NASLib and foresight `dextr` measures
    take the curve at the input's own size (1, C, H, W), again one point and 10 draws.

    Departures, each on purpose (the defaults):
    - 16 points, θ = 2πk/16 (the reference's linspace would repeat θ = 0 at 2π), and the
      mean κ over them: an average of the reference's one-point statistic over the circle.
    - The curve at the probe images' size (32×32 on CIFAR), as the NASLib/foresight measure,
      not the NB201 script's fixed 64×64.
    - Every logit once, not 10 draws with replacement.
    - Every draw from the context's generator, not the global RNG.
    The keyword arguments give the reference's NB201 curve from Python:
    ``dextr(ctx, curve_points=1, curve_size=(64, 64), logit_draws=10)`` (the indices drawn
    from the context's generator for "dextr.logits"); the defaults keep the scores above. On
    40 NB201 architectures the reference's curve ranks like the default (Spearman 0.978;
    0.968 with the reference's module tree and conv biases as well), with CIFAR-10 accuracy
    at ρ 0.822 (0.799) against the default's 0.838 (examples/reference_protocols.py; 40
    architectures, so differences of this size are within their noise).
    Also on purpose, whatever the options:
    - Each point is evaluated as a batch of one, as in the reference: the copy's BatchNorm2d
      layers normalise each curve point over its own positions (what train-mode BatchNorm does
      on a batch of one), so the points run as one batch without coupling each other.
    - v and a are exact forward-mode derivatives (torch.func.jvp nested), not the reference's
      double backward per logit; the same numbers (the tests hold them to double backward).
    - Fallback: where the reference falls back to S alone (curvature NaN or an exception) or,
      in its NASLib/foresight measure, returns the sentinel 12345, a network whose logits do
      not move along the curve (|v| = 0, e.g. every path to the output cut by `none` edges)
      fails this proxy with a message. S + C = 0 gives 0, the harmonic mean's limit.
    Per-layer statistics: σ_min/σ_max of each conv/linear layer's output (aggregation "none").
    """
    features = first_sample_features(ctx)
    total, layers = _terms(features, lambda f: inverse_condition_number(f.matrix))
    svd_term = math.log1p(total)
    kappa = curve_curvatures(ctx, points=curve_points, size=curve_size, logit_draws=logit_draws)
    if not bool(torch.isfinite(kappa).all()):
        raise FloatingPointError(
            "dextr: the network's logits do not change along the input curve (zero velocity), so the "
            "curvature is undefined; the output does not depend on the input"
        )
    curvature_term = math.log1p(float(kappa.mean()))
    denominator = svd_term + curvature_term
    score = svd_term * curvature_term / denominator if denominator > 0 else 0.0
    return ProxyResult(float(score), layers)


@proxy(
    "swap",
    not_for="it reads ReLUs on 4-D feature maps, and a token network has GELUs on sequences",
    family="activation",
    passes=("swap_codes",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    layer_keys="none",
    reference="Peng et al., ICLR 2024 (SWAP); pym1024/SWAP src/metrics/swap.py, correlation.py",
)
def swap(ctx: ProbeContext) -> ProxyResult:
    """SWAP: number of distinct per-neuron activation patterns across the probe batch.

    As the reference: a hook on every nn.ReLU whose input is 4-D records the sign of its
    output (1 where the unit is active) for each sample; the records are concatenated into A
    (samples × neurons) and the score is the number of distinct rows of Aᵀ (distinct columns
    of A), at most 2^samples. Train mode (the reference never calls eval on its freshly built
    network), no_grad. The samples are the first 16 probe images (all of them in a smaller
    batch), the reference's 16 real images, so the score's range does not depend on
    --batch-size. Weights re-initialised as
    the reference does before each repeat (`network_weight_gaussian_init`: conv/linear N(0, 1),
    bias 0, BN/GroupNorm γ=1, β=0), on a private copy.

    Departures: one repeat, drawn from the context's generator for "swap", where the
    reference averages 32 repeats drawn from the global RNG (so the score is an integer; the
    run-to-run spread is that of one re-initialisation, as for zen); the optional parameter
    regulariser exp(−(#params − μ)²/σ) is not applied (it is off by default there too).
    No per-layer statistics (the patterns span all layers).
    """
    net = ctx.fresh_copy()
    gaussian_init(net, ctx.generator("swap"))
    net.train()
    x = ctx.x[:SWAP_SAMPLES].detach().clone().to(_float_dtype(ctx.x))
    samples = x.shape[0]
    # Each ReLU's pattern is packed as it is read, so the whole boolean matrix is never held.
    packed = ctx._cached(
        "swap_codes", lambda: relu_feature_patterns(net, x, lambda on: _pack_columns(on.reshape(samples, -1)))
    )
    if not packed:
        raise ValueError("swap: the network has no nn.ReLU on a 4-D feature map to read activation patterns from")
    return ProxyResult(float(_count_distinct_rows(torch.cat(packed))), {})


@proxy(
    "az_expressivity",
    not_for="it reads the output of every CNN cell (cell_features) for Gaussian input images",
    family="az_nas",
    passes=("az_features",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    layer_keys="none",
    reference=AZ_REFERENCE,
)
def az_expressivity(ctx: ProbeContext) -> ProxyResult:
    """AZ-NAS expressivity: Σ over the cell features of the entropy of their channel covariance spectrum.

    Per feature see `eigen_entropy` (float64, eigenvalues clamped at 0, a feature without
    variance scores 0 rather than the reference's NaN → −inf). Setup (Kaiming re-init, train
    mode, Gaussian input, stem + cell features) in `az_pass`, shared by the three components.
    A component of the AZ-NAS score, which ranks it against the other architectures: combine
    the components with `zcnas combine --method az_nas`. No per-layer statistics.
    """
    return ProxyResult(float(sum(az_pass(ctx).entropies)), {})


@proxy(
    "az_progressivity",
    not_for="it reads the output of every CNN cell (cell_features) for Gaussian input images",
    family="az_nas",
    passes=("az_features",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    layer_keys="none",
    reference=AZ_REFERENCE,
)
def az_progressivity(ctx: ProbeContext) -> ProxyResult:
    """AZ-NAS progressivity: the smallest entropy increase from one cell feature to the next.

    min over consecutive features of (entropy of feature i+1 − entropy of feature i), the
    entropies of `az_expressivity` (setup in `az_pass`). No per-layer statistics.
    """
    entropies = az_pass(ctx).entropies
    return ProxyResult(float(min(b - a for a, b in zip(entropies, entropies[1:]))), {})


@proxy(
    "az_trainability",
    not_for="it reads the output of every CNN cell (cell_features) for Gaussian input images",
    family="az_nas",
    passes=("az_features",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    layer_keys="none",
    reference=AZ_REFERENCE,
)
def az_trainability(ctx: ProbeContext) -> ProxyResult:
    """AZ-NAS trainability: mean over consecutive cell features of −σ − 1/(σ + 1e-6) + 2.

    For each pair (input feature, output feature), last pair first as the reference: a
    Rademacher tensor (±1) of the output's shape is backpropagated to the input, and σ is the
    top singular value of the cross matrix of the two gradients (see `trainability_pair`;
    pixel-unshuffle where the cell halves the resolution).

    Departure: a pair whose input gradient equals its output gradient exactly (an identity
    cell, e.g. a lone skip-connect to the output) scores −1e6 (`AZ_IDENTITY_PAIR`) instead of
    the reference's −inf, so the score stays finite and such architectures still rank below
    every other, as in the reference. Setup in `az_pass`. No per-layer statistics.
    """
    scores = az_pass(ctx).pair_scores
    return ProxyResult(float(sum(scores) / len(scores)), {})
