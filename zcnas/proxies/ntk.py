"""Neural-tangent-kernel proxies, and TE-NAS's companion count of linear regions.

The three NTK proxies read one shared pass (`ntk_gradient`, `passes.py`): the first
min(N, ntk_samples) samples of the probe batch (16 unless `zcnas score --ntk-samples`)
forwarded together through a train-mode copy (BN batch statistics), the gradient of each
sample's sum of logits with respect to every parameter whose name contains "weight" (TE-NAS
`get_ntk_n`), and the empirical NTK
Θ = G Gᵀ of those gradient rows, accumulated in float64. They are whole-network scalars:
no per-layer statistics.

`linear_regions` is TE-NAS's other indicator (family "activation"); it lives here because
the two are defined, and usually used, together.
"""

from __future__ import annotations

import torch

from zcnas.errors import ProxyError
from zcnas.proxies.passes import ProbeContext
from zcnas.proxies.registry import ProxyResult, proxy

TENAS = "Chen, Gong & Wang, ICLR 2021 (TE-NAS); VITA-Group/TENAS "


def _checked_kernel(ctx: ProbeContext, proxy_name: str) -> torch.Tensor:
    kernel = ctx.ntk_pass().kernel
    if not bool(torch.isfinite(kernel).all()):
        raise FloatingPointError(f"{proxy_name}: the NTK has non-finite entries (the gradients overflowed)")
    return kernel


def ntk_eigenvalues(kernel: torch.Tensor, proxy_name: str = "ntk_cond") -> torch.Tensor:
    """Ascending eigenvalues of a float64 NTK, the smallest floored at the solver's resolution.

    Θ is positive semi-definite, but `eigvalsh` only resolves eigenvalues to about
    n·ε·λ_max (ε of float64): anything below is rounding, and can come out zero or negative.
    So λ_min is floored at n·ε·λ_max, which caps κ at 1/(n·ε) (2.8e14 for n = 16): kernels
    that are numerically singular (duplicate samples, rank-deficient gradients) all rank
    last, tied, rather than by the sign and size of their rounding error. A kernel with
    λ_max <= 0 (the logits depend on no weight) has no condition number; it fails the proxy.
    """
    eigenvalues = torch.linalg.eigvalsh(kernel.to(torch.float64))
    largest = float(eigenvalues[-1])
    if not largest > 0.0:
        raise FloatingPointError(
            f"{proxy_name}: the NTK is zero (the logits depend on no weight), so it has no condition number"
        )
    floor = kernel.shape[0] * torch.finfo(torch.float64).eps * largest
    return eigenvalues.clamp(min=floor)


@proxy(
    "ntk_cond",
    applies_to=("image", "tokens"),
    family="ntk",
    passes=("ntk_gradient",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    min_batch=2,
    layer_keys="none",
    reference=TENAS + "lib/procedures/ntk.py (get_ntk_n), prune_tenas.py",
)
def ntk_cond(ctx: ProbeContext) -> ProxyResult:
    """−κ, κ = λ_max/λ_min of the empirical NTK; negated, since TE-NAS prefers a low κ.

    As `get_ntk_n(train_mode=True, num_batch=1)`: one train-mode forward of the batch, the
    backward of each sample's logits with a ones cotangent, the gradients of all parameters
    named "weight" (BN scales included) concatenated per sample, Θ = G Gᵀ, κ from its
    extreme eigenvalues. Batch: the first min(N, ntk_samples) probe samples, 16 by default
    (TE-NAS's default `--batch_size 16`; its NB201 launcher uses 72; `zcnas score
    --ntk-samples`). Needs at least 2 samples (a 1×1 kernel has κ = 1 for every network).

    The sample count matters: on NB201 CIFAR-10 the kernel of 64 samples ranks clearly
    better (Kendall 0.545 against 0.422 on 120 architectures, the papers' TE-NAS value;
    examples/ntk_sample_count.py, docs/validation.md) but costs about 13 times as much on
    CPU, so 16 is kept by default, a departure from the NB201 runs of TE-NAS and AZ-NAS.

    Departures, each on purpose:
    - Init: the network's own, like every other proxy here. TE-NAS *names* a Kaiming-normal
      fan_out re-init, but its launcher passes `--init kaiming_normal`, `init_model` then
      receives "kaiming_normal_fanout" while it tests for "kaiming_norm_fanout", and no
      re-init happens; the AZ-NAS and ZenNAS ports do not re-init either.
    - One repeat: TE-NAS's `--repeat 3` (with the no-op re-init) averages over three loader
      batches; zcnas has one probe batch, on which repeats would be identical.
    - Numerics: Θ accumulated in float64 and `eigvalsh` (TE-NAS: a float32 einsum and the
      deprecated `symeig`); ill-conditioning follows `ntk_eigenvalues` (λ_min floored at
      n·ε·λ_max, a zero or non-finite kernel fails the proxy) instead of TE-NAS's NaN → 1e5.
    - The rows come from TE-NAS's loop of N backwards through one retained graph on CPU
      (where it measured faster) and from one batched backward (vmap over the one-hot
      cotangents) on accelerators (`persample.logit_sum_gradients`); the tests hold the two
      equal.
    """
    eigenvalues = ntk_eigenvalues(_checked_kernel(ctx, "ntk_cond"), "ntk_cond")
    return ProxyResult(-float(eigenvalues[-1] / eigenvalues[0]), {})


@proxy(
    "ntk_trace",
    applies_to=("image", "tokens"),
    family="ntk",
    passes=("ntk_gradient",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    layer_keys="none",
    reference="Shu et al., ICLR 2022 (NASI, NTK trace norm); kernel as " + TENAS + "lib/procedures/ntk.py",
)
def ntk_trace(ctx: ProbeContext) -> ProxyResult:
    """trace Θ = Σ_i ‖∂(Σ_c f_ic)/∂θ‖²: the NTK's trace (its nuclear norm), higher better.

    The trace, not the Frobenius norm of Θ (DemystifyingNTK's "NTK norm"): NASI scores
    trainability by the NTK's trace norm, since under NTK dynamics a larger trace means a
    faster decrease of the training loss at a fixed learning rate, so higher is predicted
    better. The kernel is `ntk_cond`'s (same samples, parameters, init and BN mode). There
    is no reference implementation of this exact statistic to follow; its sign is the NASI
    argument's, to be checked against accuracy in a correlation report. Works with one sample.
    """
    return ProxyResult(float(torch.trace(_checked_kernel(ctx, "ntk_trace"))), {})


@proxy(
    "lga",
    not_for="it aligns the NTK with the labels' class structure, and a token probe carries no task labels (only random surrogate labels, which have no class structure)",
    family="ntk",
    passes=("ntk_gradient",),
    needs_labels=True,
    needs_data=True,
    aggregation="none",
    min_batch=2,
    layer_keys="none",
    reference=(
        "Mok et al., CVPR 2022 (DemystifyingNTK; nutellamok/DemystifyingNTK has no code); "
        "definition as a third-party re-implementation's label_gradient_alignment (found by code search; "
        "its repository could not be identified), written out in full below"
    ),
)
def lga(ctx: ProbeContext) -> ProxyResult:
    """Label-gradient alignment ⟨Θ̃, Ỹ⟩ / (‖Θ̃‖_F ‖Ỹ‖_F), higher better.

    Θ̃ = Θ − mean(Θ) (its scalar mean), Y_ij = +1 for two samples of the same class and −1
    otherwise, Ỹ = Y − mean(Y): the centred kernel-target alignment of the reference
    re-implementation. Θ is `ntk_cond`'s kernel, so the labels are those of the same first
    min(N, ntk_samples) probe samples. The official repository has no code, so the choice of
    kernel (TE-NAS's gradients of the sum of logits, all "weight" parameters) is zcnas's.

    Fails with a message where the alignment is undefined: a probe batch whose first samples
    are all of one class (Ỹ = 0; a ProxyError, since every architecture would fail) or an
    architecture whose kernel is constant (Θ̃ = 0).
    """
    kernel = _checked_kernel(ctx, "lga")
    labels = ctx.ntk_pass().labels
    if labels is None:
        raise ProxyError("lga needs labels, but the probe batch has none.")
    same = labels[:, None] == labels[None, :]
    target = torch.where(same, 1.0, -1.0).to(torch.float64)
    target = target - target.mean()
    if not bool(target.abs().max() > 0):
        raise ProxyError(
            f"lga needs two classes among the first {labels.shape[0]} probe samples; they are all of one class."
        )
    centred = kernel - kernel.mean()
    norm = torch.linalg.norm(centred)
    if not bool(norm > 0):
        raise FloatingPointError("lga: the NTK is constant, so its alignment with the labels is undefined")
    return ProxyResult(float((centred * target).sum() / (norm * torch.linalg.norm(target))), {})


@proxy(
    "linear_regions",
    not_for="it counts ReLU patterns over 3x3 patches cut from the probe images",
    family="activation",
    passes=("relu_patterns",),
    needs_labels=False,
    needs_data=True,
    aggregation="none",
    layer_keys="none",
    reference=TENAS + "lib/procedures/linear_region_counter.py, prune_tenas.py",
)
def linear_regions(ctx: ProbeContext, *, inputs: str = "patches") -> ProxyResult:
    """Number of distinct ReLU on/off patterns over 3 × 1000 random 3×3 patches, higher better.

    As TE-NAS's `Linear_Region_Collector(input_size=(1000, 1, 3, 3), sample_batch=3)`: a
    Kaiming-normal fan_in re-initialised copy (biases 0, BN γ=1, β=0) in train mode, three
    no-grad forwards of 1000 patches cut at random from the data, the sign of the output
    of every nn.ReLU whose input is a 4-D feature map, concatenated per patch; the count of
    distinct patterns over the 3000 patches is the number of linear regions the patches
    fall in. The re-init and the patches come from the context's generator for
    "linear_regions" (seeded by the architecture's seed), so a score is reproducible.
    A network whose downsampling cannot take a 3×3 patch (NB101's 2×2 max-pools between
    stacks shrink it to nothing; a DARTS reduction cell's branches disagree on its size)
    fails on each architecture with a message saying so; TE-NAS defines no count for it.

    Departures, each on purpose:
    - The network: the scored architecture at its own width. TE-NAS counts on a thin
      supernet (1 channel, one cell, no stem) built for the purpose, which a proxy handed a
      built network cannot construct. At NB201 width most patches fall in a region of their
      own but not all: on 200 NB201 architectures the count ranged below 3000 (median 2972,
      none at 3000) and ranked them at ρ 0.31 with CIFAR-10 accuracy
      (examples/reference_protocols.py).
    - Patches keep all the image's channels (TE-NAS keeps one random channel, for its
      1-channel network); they are cut from the probe images (TE-NAS: RandomCrop(3) of
      loader images), so probe images must be at least 3×3.
    - The re-init is applied: TE-NAS's launcher passes an init name its `init_model` does
      not recognise, so its re-init never runs, but the named scheme is the stated intent.
    - Exact count with `torch.unique` on the boolean patterns (TE-NAS: an fp16 matrix
      product counting duplicates, the same number when its arithmetic is exact).

    The NB201 TE-NAS numbers that papers report ([AZ] and [VK] in docs/validation.md) use
    another protocol, AZ-NAS's rerun (cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/
    compute_te_nas_score.py, which VKDNW reuses): one batch of Gaussian inputs of the probe
    batch's shape (64 × 3 × 32 × 32 there, `torch.randn`), no patches, through the network at
    its own initialisation (no re-init), train mode, the same ReLUs. At NB201 width every
    Gaussian image then falls in a region of its own: the count was 64 for 196 of the 200
    architectures above and 1 for the other 4 (cells that cut the input off), so it only
    separates degenerate architectures, and their TE-NAS aggregation ranks the rest by the
    NTK condition number alone. `linear_regions(ctx, inputs="gaussian")` (Python API) counts
    that way, drawing the batch from the context's generator for "linear_regions"; the
    default, inputs="patches", keeps the scores above.
    """
    return ProxyResult(float(ctx.relu_pattern_pass(inputs)), {})
