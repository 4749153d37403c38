"""Gradient-based proxies (pruning-at-initialisation family).

All of them follow the zero-cost-NAS convention: a per-weight saliency over the conv and
linear layers, summed over the elements of each layer (the per-layer statistics) and then
over the layers (the score, `sum_arr`). The loss-based ones read one shared train-mode pass
(`passes.py`): BN uses batch statistics, the loss is the mean cross-entropy of the batch.
"""

from __future__ import annotations

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy

SAMSUNG = "Abdelfattah et al., ICLR 2021; SamsungLabs/zero-cost-nas foresight/pruners/measures/"
NASLIB = "NASLib naslib/predictors/utils/pruners/measures/"


def _summed(per_layer: dict[str, float]) -> ProxyResult:
    return ProxyResult(float(sum(per_layer.values())), per_layer)


@proxy(
    "grad_norm",
    applies_to=("image", "tokens"),
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
    "snip",
    applies_to=("image", "tokens"),
    family="gradient",
    passes=("loss_gradient",),
    needs_labels=True,
    needs_data=True,
    reference="Lee et al., ICLR 2019 (SNIP); " + SAMSUNG + "snip.py, " + NASLIB + "snip.py",
)
def snip(ctx: ProbeContext) -> ProxyResult:
    """Σ |θ ⊙ ∂L/∂θ| over conv/linear weights (connection sensitivity).

    The reference multiplies each weight by a ones mask and takes |∂L/∂mask|, which equals
    |θ ⊙ ∂L/∂θ|; this reads θ and ∂L/∂θ from the shared loss pass instead of patching the
    layers' forward methods.
    """
    train = ctx.train_pass()
    return _summed({name: float((train.weights[name] * g).abs().sum()) for name, g in train.grads.items()})


@proxy(
    "grasp",
    applies_to=("image", "tokens"),
    family="gradient",
    passes=("hessian_gradient",),
    needs_labels=True,
    needs_data=True,
    reference="Wang et al., ICLR 2020 (GraSP); " + SAMSUNG + "grasp.py, " + NASLIB + "grasp.py",
)
def grasp(ctx: ProbeContext) -> ProxyResult:
    """Σ −θ ⊙ (H g) over conv/linear weights, g = ∂L/∂θ and H the Hessian of the loss.

    Sign as the reference returns it: `-theta * Hg` per element (the zero-cost-NAS authors
    negated GraSP's own ordering because accuracy correlated negatively with it), so higher
    is predicted better. One forward serves g and H·g (the reference runs two forwards of the
    same batch, T=1, one iteration; train-mode BN makes them identical).
    """
    train = ctx.train_pass()
    return _summed(
        {name: float((-train.weights[name] * hg).sum()) for name, hg in train.hessian_grads.items()}
    )


@proxy(
    "fisher",
    applies_to=("image", "tokens"),
    family="gradient",
    passes=("activation_gradient",),
    needs_labels=True,
    needs_data=True,
    reference="Turner et al., ICLR 2020 / Theis et al. 2018; " + SAMSUNG + "fisher.py, " + NASLIB + "fisher.py",
)
def fisher(ctx: ProbeContext) -> ProxyResult:
    """Channel-wise Fisher: ½·mean_n (Σ_spatial a ⊙ ∂L/∂a)² per output channel, |·|, summed.

    a is the output of each conv/linear layer (the reference's dummy identity sits right
    after the layer) and ∂L/∂a its loss gradient. The reference broadcasts each channel's
    value to all the channel's weights (`p_utils.reshape_elements` over `weight.shape[1:]`)
    before summing, so each channel counts fan-in = C_in/groups·k_h·k_w times; kept here,
    as a multiplication, so scores equal the reference's.

    Token networks: a linear map's output (N, L, C) has its channels last; they are moved to
    dimension 1 and the sequence summed as a conv's spatial positions are.
    """
    train = ctx.train_pass()
    per_layer = {}
    for name, act in train.activations.items():
        grad = train.activation_grads[name]
        products = act * grad
        if products.dim() > 2 and train.weights[name].dim() == 2:
            products = products.movedim(-1, 1)
        if products.dim() > 2:
            products = products.sum(dim=tuple(range(2, products.dim())))
        per_channel = products.pow(2).mean(0).mul(0.5).abs()
        fan_in = train.weights[name][0].numel()
        per_layer[name] = float(per_channel.sum()) * fan_in
    return _summed(per_layer)


@proxy(
    "plain",
    applies_to=("image", "tokens"),
    family="gradient",
    passes=("loss_gradient",),
    needs_labels=True,
    needs_data=True,
    reference="Mozer & Smolensky 1989 (first-order Taylor); " + SAMSUNG + "plain.py, " + NASLIB + "plain.py",
)
def plain(ctx: ProbeContext) -> ProxyResult:
    """−Σ θ ⊙ ∂L/∂θ over conv/linear weights (signed): the weights' relevance, higher is better.

    The sign comes from the definition the reference cites, Mozer & Smolensky's relevance:
    how much the loss would rise if the weights were removed, L(without) − L(with),
    estimated to first order as −dL(α·θ)/dα at α = 1, which is −Σ θ ⊙ ∂L/∂θ. Higher means
    the weights matter more to the fit, as a larger snip or synflow saliency does. The sign
    follows from this definition, not from a correlation with accuracy; the tests pin it by
    hand (a classifier whose weights fit the batch scores 2/(e² + 1) > 0, one that misfits it
    scores below 0) and by finite differences in α.

    Departure: the reference code returns the derivative itself, +Σ θ ⊙ ∂L/∂θ, without the
    definition's minus sign; compare with reference values via −plain.
    """
    train = ctx.train_pass()
    return _summed({name: -float((train.weights[name] * g).sum()) for name, g in train.grads.items()})


@proxy(
    "synflow",
    applies_to=("image", "tokens"),
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

    Token networks: the all-ones input is a sequence of token id 1 (the probe's length, no
    mask), the embedding tables taken in absolute value like every weight; only BatchNorm is
    removed, as in the reference, so a transformer's LayerNorms stay.
    """
    products = ctx.synflow_pass()
    return _summed({name: float(p.sum()) for name, p in products.items()})
