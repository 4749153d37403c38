"""Gradient-agreement proxies: do the loss gradients of different samples (GradSign) or of
different batches (ZiCo) point the same way?

Both read gradients of the cross-entropy w.r.t. each conv/linear weight from passes of
their own (`passes.py`): one gradient per sample, forwarded alone (`per_sample_gradient`),
or one per half of the probe batch (`half_batch_gradient`). Per-layer statistics are keyed
by conv/linear layer and add up to the score.
"""

from __future__ import annotations

import math

import torch

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy


def _summed(per_layer: dict[str, float]) -> ProxyResult:
    return ProxyResult(float(sum(per_layer.values())), per_layer)


def sign_agreement(per_sample: torch.Tensor) -> float:
    """Σ_p |Σ_i sign(g_ip)| over the elements p of one layer; NaN elements are left out."""
    return float(torch.nansum(per_sample.sign().sum(dim=0).abs()))


@proxy(
    "gradsign",
    applies_to=("image", "tokens"),
    family="gradient_agreement",
    passes=("per_sample_gradient",),
    needs_labels=True,
    needs_data=True,
    reference=(
        "Zhang & Jia, ICLR 2022 (GradSign); cmu-catalyst/GradSign "
        "zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py, naswot-code/gradsign.py"
    ),
)
def gradsign(ctx: ProbeContext) -> ProxyResult:
    """Σ_p |Σ_i sign(∂L_i/∂θ_p)| over conv/linear weights: per-weight sign agreement of samples.

    As `get_grad_conflict`: each sample i forwarded alone (a batch of 1, train mode, so BN
    normalises over the sample's spatial positions), cross-entropy L_i on its label, the
    gradient of every conv/linear weight (zeros where a weight gets none), the sign of each
    element summed over the samples, its absolute value summed over the elements (`nansum`,
    the variant of grad_conflict.py; the `nanmean` one divides by the weight count, which
    leaves ranks on one space unchanged). Per-layer statistics: the same sum per layer.

    Departure: the per-sample gradients come from one torch.func vmap pass (vmap of the
    gradient of a batch-1 forward; 1.4x faster than the loop on CPU, see
    `persample.py`), not from N forward/backward passes; the reference's loop is kept as
    `persample.per_sample_loss_gradients(vectorised=False)` and the tests hold the two
    equal (float64: the same score). In float32 they differ by rounding, which BN over one
    sample's positions amplifies where a channel is nearly constant, so elements near zero
    can change sign: on C=16 NB201 networks, batch 64, the scores differed by up to 0.02%.
    """
    grads = ctx.per_sample_pass()
    return _summed({layer: sign_agreement(g) for layer, g in grads.items()})


def inverse_coefficient_of_variation(per_batch: torch.Tensor) -> float:
    """log Σ_{p: σ_p ≠ 0} μ_p/σ_p over one layer's elements, μ = mean_b |g_bp|, σ = std_b g_bp
    (population std, as np.std); 0.0 where the sum is 0 (ZiCo skips the layer)."""
    g = per_batch.to(torch.float64).reshape(per_batch.shape[0], -1)
    mean_abs = g.abs().mean(dim=0)
    std = g.std(dim=0, unbiased=False)
    nonzero = std != 0
    total = float((mean_abs[nonzero] / std[nonzero]).sum())
    return math.log(total) if total != 0.0 else 0.0


@proxy(
    "zico",
    applies_to=("image", "tokens"),
    family="gradient_agreement",
    passes=("half_batch_gradient",),
    needs_labels=True,
    needs_data=True,
    min_batch=2,
    reference="Li et al., ICLR 2023 (ZiCo); SLDGroup/ZiCo ZeroShotProxy/compute_zico.py",
)
def zico(ctx: ProbeContext) -> ProxyResult:
    """Σ_layers log Σ_p mean_b|g_bp| / std_b(g_bp): gradients' inverse coefficient of variation.

    As `getzico` + `caculate_zico` (the repository's HEAD, which zeroes the gradients before
    each batch; its first commit did not): per batch b, train-mode forward, cross-entropy,
    the gradient g_b of every conv/linear weight; per element, μ = mean over batches of |g|
    and σ = their population std; per layer, log of Σ μ/σ over the elements with σ ≠ 0,
    a layer whose sum is 0 contributing nothing (recorded as 0.0). The per-layer statistics
    are these layer terms; they add up to the score.

    Departures: the two batches are the two halves of the one probe batch (the original
    takes two batches of the loader, `--maxbatch 2`), each forwarded on its own with fresh
    gradients, unlike MeCo's port, which lets the second half's gradients accumulate onto
    the first's; with an odd batch the second half has the extra sample. Statistics in
    float64 (the reference: float32 numpy); a weight that gets no gradient counts as zeros
    (the reference fails on it). Needs at least 2 samples.
    """
    grads = ctx.half_batch_pass()
    return _summed({layer: inverse_coefficient_of_variation(g) for layer, g in grads.items()})
