"""Input-Jacobian proxies: how differently the network responds to the samples of a batch.

Both read the Jacobian J (N × D) of the sum of logits with respect to the input from the
shared train-mode pass (the reference backpropagates `ones_like(logits)`), and correlate its
rows (samples) with each other in float64.
"""

from __future__ import annotations

import torch

from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy

# The regulariser both references add before log / inverse (k in their code).
JACOBIAN_K = 1e-5


def _jacobian_rows(ctx: ProbeContext) -> torch.Tensor:
    jacobian = ctx.train_pass().input_jacobian
    return jacobian.reshape(jacobian.shape[0], -1).to(torch.float64)


def _correlation(rows: torch.Tensor, proxy_name: str) -> torch.Tensor:
    """Pearson correlation between rows, as np.corrcoef; refuse undefined ones loudly."""
    corr = torch.corrcoef(rows)
    if not bool(torch.isfinite(corr).all()):
        raise FloatingPointError(
            f"{proxy_name}: a sample's input Jacobian is constant (zero variance), so its correlation "
            "is undefined; the network's output does not depend on its input"
        )
    return corr


@proxy(
    "jacob_cov",
    applies_to=("image", "tokens"),
    family="jacobian",
    passes=("input_jacobian",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    min_batch=2,
    layer_keys="none",
    reference=(
        "Mellor et al. 2020 (NASWOT v1); SamsungLabs/zero-cost-nas foresight/pruners/measures/jacob_cov.py, "
        "NASLib pruners/measures/jacov.py"
    ),
)
def jacob_cov(ctx: ProbeContext) -> ProxyResult:
    """−Σ_i [log(λ_i + k) + 1/(λ_i + k)], λ the eigenvalues of the samples' Jacobian correlation.

    k = 1e-5 as in the reference. Departure: eigenvalues from `torch.linalg.eigvalsh` (the
    symmetric solver) where the reference calls `np.linalg.eig`, the general one, which can
    return complex values on this symmetric matrix; for real symmetric input both give the same
    spectrum up to rounding. A constant Jacobian row (an architecture whose output ignores its
    input) fails the proxy with a message instead of the reference's silent NaN.
    Needs at least 2 samples. No per-layer statistics.

    Token networks: token ids are not differentiable, so J is taken w.r.t. the input embeddings
    (the output of the word-embedding lookup, the network's `get_input_embeddings()`), each
    sample's row spanning its L x E values.
    """
    corr = _correlation(_jacobian_rows(ctx), "jacob_cov")
    eigenvalues = torch.linalg.eigvalsh(corr)
    shifted = eigenvalues + JACOBIAN_K
    return ProxyResult(float(-(torch.log(shifted) + 1.0 / shifted).sum()), {})


@proxy(
    "epe_nas",
    not_for="it groups the input Jacobian by class, and a token probe carries no task labels (only random surrogate labels, which have no class structure)",
    family="jacobian",
    passes=("input_jacobian",),
    needs_labels=True,
    needs_data=True,
    aggregation="none",
    min_batch=2,
    layer_keys="none",
    reference="Lopes et al., ICANN 2021 (EPE-NAS); NASLib naslib/predictors/utils/pruners/measures/epe_nas.py",
)
def epe_nas(ctx: ProbeContext) -> ProxyResult:
    """Per-class Jacobian correlations: s_c = Σ log(|corr_c| + k) over each class's matrix.

    With at most 100 classes (the logits' width) the score is Σ_c |s_c|. With more, s_c is
    divided by the class's sample count and the score is Σ_c Σ_c' |s_c − s_c'| / (number of
    classes seen). As in the reference: a class with one sample has the 1×1 matrix [1] (so
    s_c = log(1 + k)) under the ≤100 rule, and is skipped under the >100 rule (the reference's
    `len()` of a 0-d array raises and its `except` skips the class). Departure: a class whose
    correlation is undefined fails the proxy with a message instead of yielding NaN.
    No per-layer statistics.
    """
    if ctx.y is None:
        raise ValueError("epe_nas needs labels")
    rows = _jacobian_rows(ctx)
    n_classes = int(ctx.train_pass().logits.shape[-1])
    labels = ctx.y.detach().cpu().tolist()
    per_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        per_class.setdefault(int(label), []).append(i)

    class_scores = []
    for members in per_class.values():
        if len(members) == 1 and n_classes > 100:
            continue
        corr = _correlation(rows[members], "epe_nas")  # a single sample gives 1 (a 0-d tensor)
        s = float(torch.log(corr.abs() + JACOBIAN_K).sum())
        if n_classes > 100:
            s /= len(members)
        class_scores.append(s)

    if n_classes <= 100:
        score = sum(abs(s) for s in class_scores)
    else:
        score = sum(abs(a - b) for a in class_scores for b in class_scores)
        if class_scores:
            score /= len(class_scores)
    return ProxyResult(float(score), {})
