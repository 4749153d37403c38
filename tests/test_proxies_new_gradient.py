"""Formulas of the per-sample-gradient proxies (gradsign, zico), the NTK family (ntk_cond,
ntk_trace, lga) and linear_regions, each pinned on a network small enough to compute it
independently; the vectorised per-sample paths held to their loops; the NTK's policy for
ill-conditioned kernels.

The independent values come from plain torch/numpy: one `.backward()` per sample or per
half batch on fresh copies, `torch.autograd.functional.jacobian` for the NTK rows, numpy
eigenvalues, Python sets of activation patterns.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import tiny_nets
from conftest import TINY_ARCHS
from tiny_nets import NUM_CLASSES, TinyConvNet, TwoLayerLinear, run, weighted
from zcnas.errors import ProxyError
from zcnas.proxies import ProbeContext, compute_proxies, get_proxy
from zcnas.proxies.ntk import ntk_eigenvalues
from zcnas.proxies.passes import LINEAR_REGION_BATCHES, LINEAR_REGION_SAMPLES, NTK_BATCH, NtkPass
from zcnas.proxies.persample import batched_backward_by_default, logit_sum_gradients, per_sample_loss_gradients
from zcnas.spaces import get_space

EPS64 = torch.finfo(torch.float64).eps


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Float64 unless a test asks otherwise: the by-hand values are compared to 1e-8 or tighter.
data = functools.partial(tiny_nets.data, dtype=torch.float64)


def tiny_nb201(arch=TINY_ARCHS[1], seed=0):
    torch.manual_seed(seed)
    return get_space("nb201").build(arch, num_classes=NUM_CLASSES, C=4, N=1).double()


# -- gradsign --------------------------------------------------------------------------


def per_sample_backward(model, x, y):
    """{layer: (N, *shape)}: one fresh train-mode copy and one `.backward()` per sample."""
    rows = {name: [] for name, _ in weighted(model)}
    for i in range(x.shape[0]):
        net = copy.deepcopy(model).train()
        F.cross_entropy(net(x[i : i + 1]), y[i : i + 1]).backward()
        for name, module in weighted(net):
            grad = module.weight.grad
            rows[name].append((grad if grad is not None else torch.zeros_like(module.weight)).numpy())
    return {name: np.stack(r) for name, r in rows.items()}


def expected_gradsign(model, x, y):
    return {name: float(np.abs(np.sign(g).sum(axis=0)).sum()) for name, g in per_sample_backward(model, x, y).items()}


def test_gradsign_is_the_per_weight_sign_agreement_of_samples_on_a_linear_net():
    torch.manual_seed(0)
    model = TwoLayerLinear().double()
    x, y = data((7, 3, 2, 2))
    expected = expected_gradsign(model, x, y)
    outcome = run("gradsign", model, x, y)
    assert outcome.layers == expected  # integer counts: exact
    assert outcome.score == sum(expected.values())


def test_gradsign_forwards_each_sample_alone_so_bn_uses_its_spatial_statistics():
    torch.manual_seed(1)
    model = TinyConvNet().double()
    x, y = data((6, 3, 5, 5))
    expected = expected_gradsign(model, x, y)
    outcome = run("gradsign", model, x, y)
    assert outcome.layers == expected
    # Each sample's loss through one whole-batch forward (BN over the batch) has other
    # gradients, hence other signs: the batch-of-1 forward is what is being pinned.
    net = copy.deepcopy(model).train()
    logits = net(x)
    through_batch = [
        torch.autograd.grad(F.cross_entropy(logits[i : i + 1], y[i : i + 1]), net.conv1.weight, retain_graph=True)[0]
        for i in range(x.shape[0])
    ]
    alone = torch.from_numpy(per_sample_backward(model, x, y)["conv1"])
    assert not torch.allclose(torch.stack(through_batch), alone, rtol=1e-3)


def test_per_sample_loss_gradients_vectorised_equal_the_loop():
    model = tiny_nb201()
    x, y = data((6, 3, 16, 16))
    names = [f"{name}.weight" for name, _ in weighted(model)]
    fast = per_sample_loss_gradients(copy.deepcopy(model), x, y, names, vectorised=True)
    slow = per_sample_loss_gradients(copy.deepcopy(model), x, y, names, vectorised=False)
    for name in names:
        torch.testing.assert_close(fast[name], slow[name], rtol=1e-10, atol=1e-13)
    assert sum(float(g.sign().sum(0).abs().sum()) for g in fast.values()) == sum(
        float(g.sign().sum(0).abs().sum()) for g in slow.values()
    )


def test_gradsign_scores_of_the_two_paths_agree_in_float32():
    model = tiny_nb201(TINY_ARCHS[0]).float()
    x, y = data((8, 3, 16, 16), dtype=torch.float32)
    names = [f"{name}.weight" for name, _ in weighted(model)]
    paths = {
        "vmap": per_sample_loss_gradients(copy.deepcopy(model), x, y, names),
        "vmap in chunks": per_sample_loss_gradients(copy.deepcopy(model), x, y, names, chunk_size=3),
        "loop": per_sample_loss_gradients(copy.deepcopy(model), x, y, names, vectorised=False),
    }
    scores = {path: sum(float(g.sign().sum(0).abs().sum()) for g in grads.values()) for path, grads in paths.items()}
    # float32: an element within rounding of zero may flip its sign between the paths.
    assert scores["vmap in chunks"] == pytest.approx(scores["vmap"], abs=4)
    assert scores["loop"] == pytest.approx(scores["vmap"], abs=4)
    # The proxy against fresh copies and one `.backward()` per sample, independent of both paths.
    by_hand = sum(expected_gradsign(model, x, y).values())
    assert run("gradsign", model, x, y).score == pytest.approx(by_hand, abs=4)


def test_ntk_rows_loop_on_cpu_and_batch_on_accelerators():
    assert not batched_backward_by_default(torch.device("cpu"))
    assert batched_backward_by_default(torch.device("cuda")) and batched_backward_by_default("meta")


# -- zico ----------------------------------------------------------------------------


def test_zico_by_hand_with_two_half_batches_and_fresh_gradients():
    torch.manual_seed(2)
    model = TwoLayerLinear(hidden=4).double()
    x, y = data((7, 3, 2, 2))  # odd: halves of 3 and 4
    halves = []
    for part in (slice(0, 3), slice(3, 7)):
        net = copy.deepcopy(model).train()  # a fresh copy: fresh gradients for each half
        F.cross_entropy(net(x[part]), y[part]).backward()
        halves.append({name: m.weight.grad.numpy().ravel() for name, m in weighted(net)})
    expected = {}
    for name in halves[0]:
        g = np.stack([h[name] for h in halves])
        mu, sigma = np.mean(np.abs(g), axis=0), np.std(g, axis=0)
        keep = sigma != 0
        total = np.sum(mu[keep] / sigma[keep])
        expected[name] = float(np.log(total)) if total != 0 else 0.0
    # With two batches μ/σ = (|a| + |b|) / |a − b| ≥ 1 per element.
    assert all(v >= math.log(1.0) for v in expected.values())

    outcome = run("zico", model, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-12)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-12)


def test_zico_layer_without_gradient_variation_contributes_zero():
    class DeadSecondLayer(TwoLayerLinear):
        def forward(self, x):
            return self.fc1(x.flatten(1)) + 0.0 * self.fc2.weight.sum()

    torch.manual_seed(3)
    model = DeadSecondLayer(hidden=NUM_CLASSES).double()
    x, y = data((4, 3, 2, 2))
    outcome = run("zico", model, x, y)
    assert outcome.layers["fc2"] == 0.0 and outcome.layers["fc1"] != 0.0
    assert get_proxy("zico").min_batch == 2


# -- NTK ------------------------------------------------------------------------------


def explicit_ntk(model, x):
    """Θ = J Jᵀ, J = ∂(Σ_c f(x)_ic)/∂θ over all "weight" parameters, by autograd.functional."""
    net = copy.deepcopy(model).train()
    params = {n: p.detach() for n, p in net.named_parameters()}
    names = [n for n in params if "weight" in n]
    sizes = [params[n].numel() for n in names]

    def logit_sums(flat):
        pieces = dict(params)
        for name, piece in zip(names, torch.split(flat, sizes)):
            pieces[name] = piece.view_as(params[name])
        return functional_call(net, pieces, (x,)).sum(dim=1)

    theta = torch.cat([params[n].reshape(-1) for n in names])
    jacobian = torch.autograd.functional.jacobian(logit_sums, theta)
    return (jacobian @ jacobian.t()).numpy()


def test_ntk_cond_and_trace_match_an_explicit_jacobian():
    torch.manual_seed(4)
    model = TinyConvNet().double()
    x, _ = data((6, 3, 5, 5))
    kernel = explicit_ntk(model, x)
    eigenvalues = np.linalg.eigvalsh(kernel)
    assert run("ntk_cond", model, x).score == pytest.approx(-eigenvalues[-1] / eigenvalues[0], rel=1e-8)
    assert run("ntk_trace", model, x).score == pytest.approx(np.trace(kernel), rel=1e-10)
    assert run("ntk_trace", model, x).layers == {}


def test_ntk_uses_the_first_16_samples_of_a_larger_batch():
    model = tiny_nb201()
    x, _ = data((NTK_BATCH + 4, 3, 16, 16))
    ctx = ProbeContext(model, x, None, num_classes=NUM_CLASSES, passes=("ntk_gradient",))
    kernel = ctx.ntk_pass().kernel
    assert kernel.shape == (NTK_BATCH, NTK_BATCH)
    np.testing.assert_allclose(kernel.numpy(), explicit_ntk(model, x[:NTK_BATCH]), rtol=1e-9, atol=1e-9)


def test_ntk_samples_sets_the_kernel_size_and_refuses_fewer_than_two():
    model = tiny_nb201()
    x, _ = data((NTK_BATCH + 4, 3, 16, 16))
    ctx = ProbeContext(model, x, None, num_classes=NUM_CLASSES, passes=("ntk_gradient",), ntk_samples=NTK_BATCH + 2)
    kernel = ctx.ntk_pass().kernel
    assert kernel.shape == (NTK_BATCH + 2, NTK_BATCH + 2)
    np.testing.assert_allclose(kernel.numpy(), explicit_ntk(model, x[: NTK_BATCH + 2]), rtol=1e-9, atol=1e-9)
    small = ProbeContext(model, x[:3], None, num_classes=NUM_CLASSES, passes=("ntk_gradient",), ntk_samples=64)
    assert small.ntk_pass().kernel.shape == (3, 3)  # never more than the batch
    with pytest.raises(ProxyError, match="at least 2"):
        ProbeContext(model, x, None, num_classes=NUM_CLASSES, passes=("ntk_gradient",), ntk_samples=1)


def test_logit_sum_gradients_vectorised_equal_the_loop():
    model = tiny_nb201(TINY_ARCHS[0])
    x, _ = data((5, 3, 16, 16))
    names = [n for n, _ in model.named_parameters() if "weight" in n]
    fast = logit_sum_gradients(copy.deepcopy(model), x, names, vectorised=True)
    slow = logit_sum_gradients(copy.deepcopy(model), x, names, vectorised=False)
    assert fast.shape == (5, sum(p.numel() for n, p in model.named_parameters() if "weight" in n))
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_lga_by_hand_on_a_tiny_kernel():
    kernel = torch.tensor([[4.0, 2.0, 0.5], [2.0, 3.0, 1.0], [0.5, 1.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([1, 1, 0])
    k = kernel.numpy()
    kc = k - k.mean()  # mean 16/9
    yk = np.array([[1, 1, -1], [1, 1, -1], [-1, -1, 1]], dtype=float)
    yc = yk - yk.mean()  # mean 1/9
    expected = float(np.sum(kc * yc) / (np.sqrt(np.sum(kc**2)) * np.sqrt(np.sum(yc**2))))

    x, _ = data((3, 3, 2, 2))
    ctx = ProbeContext(TwoLayerLinear(), x, labels, num_classes=NUM_CLASSES, passes=("ntk_gradient",))
    ctx._cache["ntk_gradient"] = NtkPass(kernel=kernel, labels=labels)  # the formula alone, on a known kernel
    assert get_proxy("lga")(ctx).score == pytest.approx(expected, rel=1e-12)


def test_lga_on_a_network_aligns_its_explicit_ntk_with_the_labels():
    torch.manual_seed(5)
    model = TinyConvNet().double()
    x, _ = data((6, 3, 5, 5))
    y = torch.tensor([0, 2, 0, 1, 2, 0])
    kc = explicit_ntk(model, x)
    kc = kc - kc.mean()
    same = (y[:, None] == y[None, :]).numpy()
    yc = np.where(same, 1.0, -1.0)
    yc = yc - yc.mean()
    expected = np.sum(kc * yc) / (np.linalg.norm(kc) * np.linalg.norm(yc))
    assert run("lga", model, x, y).score == pytest.approx(expected, rel=1e-8)


def test_lga_refuses_a_probe_batch_of_one_class():
    torch.manual_seed(5)
    x, _ = data((4, 3, 5, 5))
    with pytest.raises(ProxyError, match="two classes"):
        compute_proxies(TinyConvNet().double(), x, torch.zeros(4, dtype=torch.long), ["lga"], num_classes=NUM_CLASSES)


# -- the NTK's ill-conditioned policy -------------------------------------------------


def test_smallest_eigenvalue_is_floored_at_the_solvers_resolution():
    n = 3
    kernel = torch.diag(torch.tensor([2.0, 1e-30, 1.0], dtype=torch.float64))
    eigenvalues = ntk_eigenvalues(kernel)
    assert float(eigenvalues[0]) == pytest.approx(n * EPS64 * 2.0)
    assert float(eigenvalues[-1] / eigenvalues[0]) == pytest.approx(1.0 / (n * EPS64))
    # A rounding error's negative eigenvalue is floored the same way, not taken at its sign.
    negative = torch.tensor([[1.0, 1.0], [1.0, 1.0 - 1e-17]], dtype=torch.float64)
    assert float(ntk_eigenvalues(negative)[0]) == pytest.approx(2 * EPS64 * 2.0, rel=1e-6)
    # Well-conditioned kernels are left alone.
    exact = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    assert ntk_eigenvalues(exact).tolist() == pytest.approx([1.0, 3.0])


def test_duplicate_samples_give_a_singular_ntk_that_ranks_last_at_the_cap():
    model = tiny_nb201()
    x, _ = data((4, 3, 16, 16))
    x[3] = x[0]  # two identical samples: two identical gradient rows
    outcome = run("ntk_cond", model, x)
    assert outcome.score == pytest.approx(-1.0 / (4 * EPS64), rel=1e-6)
    distinct, _ = data((4, 3, 16, 16))
    assert run("ntk_cond", model, distinct).score > outcome.score


def test_a_zero_or_non_finite_ntk_fails_the_proxy_with_a_message():
    torch.manual_seed(0)
    all_none = get_space("nb201").build(TINY_ARCHS[2], num_classes=NUM_CLASSES, C=4, N=1)
    x, y = data((4, 3, 16, 16), dtype=torch.float32)
    outcomes = compute_proxies(all_none, x, y, ["ntk_cond", "ntk_trace", "lga"], num_classes=NUM_CLASSES)
    assert not outcomes["ntk_cond"].ok and "NTK is zero" in outcomes["ntk_cond"].error
    assert outcomes["ntk_trace"].ok and outcomes["ntk_trace"].score == 0.0
    assert not outcomes["lga"].ok and "constant" in outcomes["lga"].error
    with pytest.raises(FloatingPointError, match="zero"):
        ntk_eigenvalues(torch.zeros((3, 3), dtype=torch.float64))

    ctx = ProbeContext(all_none, x, y, num_classes=NUM_CLASSES, passes=("ntk_gradient",))
    ctx._cache["ntk_gradient"] = NtkPass(kernel=torch.full((4, 4), math.inf, dtype=torch.float64), labels=y)
    with pytest.raises(FloatingPointError, match="non-finite"):
        get_proxy("ntk_cond")(ctx)


# -- linear regions -------------------------------------------------------------------


class OneHiddenLayer(nn.Module):
    """conv k×3×3 over a 3×3 patch (k hyperplanes) -> ReLU -> flatten -> linear."""

    def __init__(self, in_channels=1, hidden=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


def test_one_relu_through_the_origin_splits_the_patches_into_two_regions():
    # The Kaiming re-init zeroes the bias: one hyperplane through the origin, patches on both sides.
    x, _ = data((4, 1, 8, 8), dtype=torch.float32)
    assert run("linear_regions", OneHiddenLayer(hidden=1), x).score == 2.0
    assert run("linear_regions", OneHiddenLayer(hidden=1), torch.ones(2, 1, 8, 8)).score == 1.0


@pytest.mark.parametrize(
    "space, options",
    [("nb101", {"C": 8, "stacks": 3, "cells_per_stack": 1}), ("darts", {"C": 4, "layers": 3})],
)
def test_patches_too_small_for_the_network_fail_in_one_sentence(space, options):
    """NB101's max-pools shrink TE-NAS's 3x3 patches to nothing; a DARTS reduction cell's
    branches disagree on their size: a clear failure, not torch's."""
    from zcnas.spaces import get_space

    torch.manual_seed(0)
    S = get_space(space)
    net = S.build("3|11.1" if space == "nb101" else S.example, num_classes=10, **options)
    x, _ = data((4, 3, 32, 32), dtype=torch.float32)
    outcome = compute_proxies(net, x, None, ["linear_regions"], num_classes=10, seed=0)["linear_regions"]
    assert not outcome.ok
    assert outcome.error.startswith("ValueError: linear_regions: TE-NAS's 3x3 patches are too small for this network")
    assert "inputs='gaussian'" in outcome.error
    assert math.isnan(outcome.score)


def replay_linear_regions(model, x, seed):
    """The documented draws: Kaiming fan_in weights in module order, then per batch the image
    indices, top rows and left columns; patterns of 4-D-input ReLUs collected as tuples."""
    ctx = ProbeContext(model, x, None, num_classes=2, passes=("relu_patterns",), seed=seed)
    generator = ctx.generator("linear_regions")
    net = copy.deepcopy(model)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                module.bias.zero_()
    n, c, h, w = x.shape
    patterns = set()
    for _ in range(LINEAR_REGION_BATCHES):
        size = (LINEAR_REGION_SAMPLES,)
        image = torch.randint(0, n, size, generator=generator)
        top = torch.randint(0, h - 2, size, generator=generator)
        left = torch.randint(0, w - 2, size, generator=generator)
        patches = torch.stack([x[i, :, t : t + 3, l : l + 3] for i, t, l in zip(image, top, left)])
        with torch.no_grad():
            hidden = net.relu(net.conv(patches)).flatten(1)  # the 2-D ReLU of `net.head` is not read
        patterns.update(tuple(row) for row in (hidden > 0).int().tolist())
    return len(patterns)


def test_linear_regions_count_replayed_by_hand():
    class WithHead(OneHiddenLayer):
        def __init__(self):
            super().__init__(in_channels=2, hidden=4)
            self.head = nn.Sequential(nn.Linear(4, 3), nn.ReLU())  # 2-D input: TE-NAS ignores it
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.head(self.relu(self.conv(x)).flatten(1)))

    torch.manual_seed(6)
    model = WithHead()
    x, _ = data((3, 2, 6, 7), dtype=torch.float32)
    expected = replay_linear_regions(model, x, seed=9)
    assert 2 < expected <= 16  # 4 hyperplanes through the origin in 18 dimensions: at most 2^4
    assert run("linear_regions", model, x, seed=9).score == expected


def test_linear_regions_on_a_gaussian_batch_as_az_nas_counts_them():
    """The "gaussian" region pass: a Gaussian batch of the probe's shape ("linear_regions"
    generator), the network's own weights and biases (no re-init), the same ReLUs."""

    def count(model, x, seed=4):
        ctx = ProbeContext(model, x, None, num_classes=2, passes=("relu_patterns",), seed=seed)
        return ctx.relu_pattern_pass("gaussian")

    one = OneHiddenLayer(hidden=1)
    ones = torch.ones(16, 1, 3, 3)  # only the probe's shape is read
    with torch.no_grad():
        one.conv.bias.zero_()
    assert count(one, ones) == 2  # a hyperplane through the origin: Gaussian points on both sides
    with torch.no_grad():
        one.conv.bias.fill_(100.0)
    assert count(one, ones) == 1  # kept, not re-initialised: every point on the positive side

    torch.manual_seed(3)
    model = OneHiddenLayer(in_channels=2, hidden=5)
    x, _ = data((64, 2, 3, 3), dtype=torch.float32)
    ctx = ProbeContext(model, x, None, num_classes=2, passes=("relu_patterns",), seed=4)
    gaussian = torch.randn(x.shape, generator=ctx.generator("linear_regions"))
    with torch.no_grad():
        hidden = model.relu(model.conv(gaussian)).flatten(1)
    expected = len({tuple(row) for row in (hidden > 0).int().tolist()})
    assert 2 < expected <= 2**5
    assert count(model, x) == expected
    # The proxy's option reads that pass; its default stays the patches' count.
    assert get_proxy("linear_regions").function(ctx, inputs="gaussian").score == expected
    assert get_proxy("linear_regions").function(ctx).score == ctx.relu_pattern_pass("patches")
    with pytest.raises(ProxyError, match="'patches' or 'gaussian'"):
        ctx.relu_pattern_pass("noise")


def test_linear_regions_needs_3x3_images():
    x, _ = data((2, 1, 2, 2), dtype=torch.float32)
    with pytest.raises(ProxyError, match="3x3"):
        compute_proxies(OneHiddenLayer(), x, None, ["linear_regions"], num_classes=2)


def test_ntk_family_on_one_linear_layer_by_hand():
    """f(x) = W x + b with K = 3 outputs: ∂(Σ_c f_c)/∂W = [x, x, x] and the bias is not a
    "weight", so Θ = K · X Xᵀ. Three orthogonal inputs of norms 1, 2, 3 give Θ = diag(3, 12, 27):
    κ = 9, trace 42; with labels (0, 0, 1), LGA = 112 / sqrt(686 · 80) (worked in the comments)."""

    class OneLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 3)

        def forward(self, x):
            return self.fc(x.flatten(1))

    torch.manual_seed(7)
    model = OneLinear().double()
    x = torch.zeros((3, 3, 2, 2), dtype=torch.float64)
    x.view(3, 12)[0, 0], x.view(3, 12)[1, 5], x.view(3, 12)[2, 11] = 1.0, 2.0, 3.0
    y = torch.tensor([0, 0, 1])
    assert run("ntk_cond", model, x).score == pytest.approx(-9.0, rel=1e-12)  # with b counted, Θ + 3: κ ≈ 6.3
    assert run("ntk_trace", model, x).score == pytest.approx(42.0, rel=1e-12)
    # Θ̃ = Θ − 14/3; Y has five +1 and four −1, Ỹ = Y − 1/9 sums to 0, so ⟨Θ̃, Ỹ⟩ = ⟨Θ, Ỹ⟩
    # = 42 · 8/9 = 112/3; ‖Θ̃‖² = 882 − 9 · (14/3)² = 686; ‖Ỹ‖² = 9 − 1/9 = 80/9.
    assert run("lga", model, x, y).score == pytest.approx(112 / math.sqrt(686 * 80), rel=1e-12)
