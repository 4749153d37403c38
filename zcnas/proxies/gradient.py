"""Gradient-based proxies (pruning-at-initialisation family)."""

from __future__ import annotations

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy

SAMSUNG = "Abdelfattah et al., ICLR 2021; SamsungLabs/zero-cost-nas foresight/pruners/measures/"


def _summed(per_layer: dict[str, float]) -> ProxyResult:
    return ProxyResult(float(sum(per_layer.values())), per_layer)


@proxy(
    "grad_norm",
    family="gradient",
    passes=("loss_gradient",),
    needs_labels=True,
    needs_data=True,
    reference=SAMSUNG + "grad_norm.py",
)
def grad_norm(ctx: ProbeContext) -> ProxyResult:
    """Sum over conv/linear layers of the Frobenius norm of the loss gradient of its weight."""
    grads = ctx.train_pass().grads
    return _summed({name: float(g.norm()) for name, g in grads.items()})


@proxy(
    "synflow",
    family="gradient",
    passes=("synflow",),
    needs_labels=False,
    needs_data=False,
    reference="Tanaka et al., NeurIPS 2020; " + SAMSUNG + "synflow.py (bn=False)",
)
def synflow(ctx: ProbeContext) -> ProxyResult:
    """Sum of |θ ⊙ ∂R/∂θ|, R the output sum of a |θ| float64 copy without BN on an all-ones input.

    Raw value (not NASLib's signed log, which leaves ranks unchanged); it can reach 1e60, which
    float64 holds.
    """
    products = ctx.synflow_pass()
    return _summed({name: float(p.sum()) for name, p in products.items()})
