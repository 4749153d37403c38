"""Activation proxies: what the features themselves look like, without a loss gradient."""

from __future__ import annotations

import torch

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy


@proxy(
    "nwot",
    applies_to=("image", "tokens"),
    family="activation",
    passes=("relu_codes",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    layer_keys="none",
    reference=(
        "Mellor et al., ICML 2021 (NASWOT); BayesWatch/nas-without-training score_networks.py, "
        "NASLib pruners/measures/nwot.py"
    ),
)
def nwot(ctx: ProbeContext) -> ProxyResult:
    """log|det K|, K the Hamming-agreement kernel of the ReLU input codes over the batch.

    Follows NASLib's port: every nn.ReLU contributes its input's binary code c = 1[input > 0],
    K += c cᵀ + (1−c)(1−c)ᵀ, score from slogdet (the original's visited-in-backward filter
    changes nothing on NB201, where every ReLU lies on the output's path). Train-mode BN, as
    the reference (eval mode with untrained running stats was a bug there). K is accumulated
    in float64 (the reference: float32 products, float64 sum; exact either way, as entries are
    integer counts). No per-layer statistics.

    Token networks: their GELUs take the ReLUs' place (the code is the sign of the
    pre-activation, as in NASWOT), each sample's code spanning all its positions; this is the
    NASWOT kernel that Serianni & Kalita's activation distance sums over positions instead.
    """
    kernel = ctx.train_pass().relu_kernel
    sign, logabsdet = torch.linalg.slogdet(kernel)
    return ProxyResult(float(logabsdet), {})


@proxy(
    "zen",
    not_for="it feeds Gaussian images and reads the features before global pooling (forward_pre_gap), neither of which a network of token ids has",
    family="activation",
    passes=("zen",),
    needs_labels=False,
    needs_data=False,
    layer_keys="batchnorm",
    reference=(
        "Lin et al., ICCV 2021 (Zen-NAS); idstcv/ZenNAS ZeroShotProxy/compute_zen_score.py, "
        "NASLib pruners/measures/zen.py"
    ),
)
def zen(ctx: ProbeContext) -> ProxyResult:
    """Zen-score: log Δ + Σ_BN log sqrt(mean running_var), on a N(0, 1)-re-initialised copy.

    As NASLib's zen.py (the ZenNAS port that made the Suite-Zero values): conv/linear weights
    drawn from N(0, 1) with zero biases, BN/GroupNorm γ=1, β=0 (norm layers without affine
    parameters left alone); Gaussian x and ε of the probe batch's shape (the data is not
    used); Δ = mean over the batch of Σ_{c,h,w} |f(x) − f(x + γε)|, γ = 1e-2, f the features
    before global pooling (`forward_pre_gap`); train mode and no_grad, so each BatchNorm2d's
    running_var has been updated by both forwards (momentum included) when it is read; one
    repeat. Per-layer statistics: one log-sqrt-var term per BatchNorm2d (by module path)
    and a "delta" term (log Δ); they add up to the score.

    Departures: the random draws come from the context's generator for "zen" (seeded by the
    architecture's seed), not the global RNG, so a score does not depend on what ran before;
    a BatchNorm2d without running statistics is skipped where the reference would fail.
    """
    result = ctx.zen_pass()
    layers = dict(result.bn_log_scales)
    layers["delta"] = result.log_delta
    return ProxyResult(float(sum(layers.values())), layers)
