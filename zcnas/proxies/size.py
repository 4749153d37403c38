"""Size proxies: parameter count and FLOPs (no data, no labels)."""

from __future__ import annotations

import math

from zcnas.proxies.passes import ProbeContext, weighted_layers
from zcnas.proxies.registry import ProxyResult, proxy


@proxy(
    "params",
    family="size",
    passes=("weights",),
    needs_labels=False,
    needs_data=False,
    aggregation="none",
    reference="NAS-Bench-Suite-Zero (Krishnakumar et al. 2022); NASLib pruners/measures/model_stats.py",
)
def params(ctx: ProbeContext) -> ProxyResult:
    """Number of trainable parameters, in millions (all of them, BN included).

    Per-layer values are the conv/linear parameters of each layer (M); they do not add up to
    the score, which also counts BatchNorm's affine parameters, as the reference does.
    """
    total = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
    layers = {
        name: sum(p.numel() for p in module.parameters()) / 1e6 for name, module in weighted_layers(ctx.model)
    }
    return ProxyResult(total / 1e6, layers)


@proxy(
    "flops",
    family="size",
    passes=("shape",),
    needs_labels=False,
    needs_data=False,
    reference="NAS-Bench-Suite-Zero; NASLib pruners/measures/model_stats.py (tensorwatch, batch 1)",
)
def flops(ctx: ProbeContext) -> ProxyResult:
    """Multiply-accumulates of the conv and linear layers for one input image, in millions.

    Departure: the reference counts through tensorwatch's model statistics; this counts the
    conv/linear multiply-accumulates (plus bias adds) directly from the layer shapes.
    """
    sizes = ctx.shape_pass()
    layers = {}
    for name, module in weighted_layers(ctx.model):
        out_shape = sizes[name]["output"]
        outputs = math.prod(out_shape[1:])
        if hasattr(module, "kernel_size"):
            per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        else:
            per_output = module.in_features
        macs = outputs * per_output + (outputs if module.bias is not None else 0)
        layers[name] = macs / 1e6
    return ProxyResult(float(sum(layers.values())), layers)
