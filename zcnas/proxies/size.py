"""Size proxies: parameter count, FLOPs and weight magnitude (no data, no labels)."""

from __future__ import annotations

from zcnas.proxies.passes import ProbeContext, tensorwatch_flops, weighted_layers
from zcnas.proxies.registry import ProxyResult, proxy

SUITE_ZERO = "NAS-Bench-Suite-Zero (Krishnakumar et al. 2022); "


@proxy(
    "params",
    applies_to=("image", "tokens"),
    family="size",
    passes=("weights",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    reference=SUITE_ZERO + "NASLib pruners/measures/model_stats.py (tensorwatch)",
)
def params(ctx: ProbeContext) -> ProxyResult:
    """Number of trainable parameters, in millions (all of them, BN included).

    Per-layer values are the conv/linear parameters of each layer (M); they do not add up to
    the score, which also counts BatchNorm's affine parameters, as the reference does.
    tensorwatch counts the parameters of the leaf modules the forward calls; for networks
    whose every module is used (NB201) that is all trainable parameters, counted here
    directly (equal to NASLib's values on all 725 NB201 archs of the Suite-Zero subset).
    """
    total = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
    layers = {
        name: sum(p.numel() for p in module.parameters()) / 1e6 for name, module in weighted_layers(ctx.model)
    }
    return ProxyResult(total / 1e6, layers)


@proxy(
    "flops",
    not_for="it counts FLOPs by tensorwatch's per-module rules for CNN layers, and a transformer's attention products and Fourier/cosine transforms are not modules, so they would go uncounted",
    family="size",
    passes=("shape",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    reference=SUITE_ZERO + "NASLib pruners/measures/model_stats.py (tensorwatch torchstat, batch 1)",
)
def flops(ctx: ProbeContext) -> ProxyResult:
    """FLOPs of one input image in millions, counted as tensorwatch's model statistics count them.

    Every leaf module the eval-mode forward calls contributes (conv, BN, ReLU, pooling,
    linear; see `passes.tensorwatch_flops` for the exact rules and tensorwatch's quirks, kept
    on purpose so that values equal NASLib's: identical on all 725 NB201 archs of the
    Suite-Zero subset). Per-layer values are the conv/linear FLOPs (M); they do not add up
    to the score, which also counts BN, ReLU and pooling.
    """
    sizes = ctx.shape_pass()
    modules = dict(ctx.model.named_modules())
    total = 0
    layers = {}
    weighted = {name for name, _ in weighted_layers(ctx.model)}
    for name, shape in sizes.items():
        count = tensorwatch_flops(modules[name], shape["input"], shape["output"])
        total += count
        if name in weighted:
            layers[name] = count / 1e6
    return ProxyResult(total / 1e6, layers)


@proxy(
    "l2_norm",
    applies_to=("image", "tokens"),
    family="size",
    passes=("weights",),
    needs_labels=False,
    needs_data=False,
    reference=SUITE_ZERO + "NASLib pruners/measures/l2_norm.py; SamsungLabs/zero-cost-nas .../l2_norm.py",
)
def l2_norm(ctx: ProbeContext) -> ProxyResult:
    """Σ over conv/linear layers of the Frobenius norm of the layer's weight (biases left out).

    The reference returns one `weight.norm()` per layer and sums them: a sum of per-layer
    norms, not the norm of all weights. Grows with width and depth like a size measure.
    """
    per_layer = {name: float(w.norm()) for name, w in ctx.weights().items()}
    return ProxyResult(float(sum(per_layer.values())), per_layer)
