"""Activation-pattern proxies."""

from __future__ import annotations

import torch

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy


@proxy(
    "nwot",
    family="activation",
    passes=("relu_codes",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    reference=(
        "Mellor et al., ICML 2021 (NASWOT); BayesWatch/nas-without-training score_networks.py, "
        "NASLib pruners/measures/nwot.py"
    ),
)
def nwot(ctx: ProbeContext) -> ProxyResult:
    """log|det K|, K the Hamming-agreement kernel of the ReLU input codes over the batch.

    Follows NASLib's port: every nn.ReLU contributes (the original's visited-in-backward
    filter changes nothing on NB201, where every ReLU lies on the output's path). Train-mode
    BN, as the reference (eval mode with untrained running stats was a bug there).
    No per-layer statistics.
    """
    kernel = ctx.train_pass().relu_kernel
    sign, logabsdet = torch.linalg.slogdet(kernel)
    return ProxyResult(float(logabsdet), {})
