"""One test per proxy pinning its formula on a network small enough to compute it independently.

The independent values come from plain torch/numpy: `.backward()` instead of the shared
pass's `autograd.grad`, explicit Hessians, numpy correlation matrices, explicit Hamming
counts, hand-counted FLOPs.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from tiny_nets import NUM_CLASSES, TwoLayerLinear, data, run, tiny_net, weighted
from zcnas.errors import ProxyError
from zcnas.proxies import ProbeContext, compute_proxies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def manual_backward(model, x, y):
    """Train-mode copy, mean cross-entropy, `.backward()`: {layer: (weight, grad)}."""
    net = _copy(model).train()
    F.cross_entropy(net(x), y).backward()
    return {name: (m.weight.detach(), m.weight.grad) for name, m in weighted(net)}


def _copy(model):
    return copy.deepcopy(model)


@pytest.fixture
def conv_net():
    return tiny_net()


def test_grad_norm_is_the_sum_of_layer_gradient_norms(conv_net):
    x, y = data()
    expected = {n: float(g.norm()) for n, (w, g) in manual_backward(conv_net, x, y).items()}
    outcome = run("grad_norm", conv_net, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-5)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-5)


def test_snip_is_sum_of_abs_weight_times_gradient(conv_net):
    x, y = data()
    expected = {n: float((w * g).abs().sum()) for n, (w, g) in manual_backward(conv_net, x, y).items()}
    outcome = run("snip", conv_net, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-5)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-5)


def test_plain_is_minus_the_signed_sum_of_weight_times_gradient(conv_net):
    x, y = data()
    expected = {n: -float((w * g).sum()) for n, (w, g) in manual_backward(conv_net, x, y).items()}
    outcome = run("plain", conv_net, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-4, abs=1e-7)


def test_plain_sign_is_the_relevance_of_the_weights_by_hand():
    """Mozer & Smolensky's relevance: L(weights removed) − L(weights), to first order
    −dL(α·θ)/dα at α = 1. A linear classifier whose weights fit the batch with margin 2 has
    L(α) = log(1 + e^(−2α)), so plain = 2 / (e² + 1) > 0; one that misfits it by the same
    margin has L(α) = log(1 + e^(2α)), so plain = −2e² / (e² + 1) < 0."""

    class Linear2(nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.fc = nn.Linear(12, 2, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(weight)

        def forward(self, x):
            return self.fc(x.flatten(1))

    x = torch.zeros((2, 3, 2, 2), dtype=torch.float64)
    x.view(2, 12)[0, 0], x.view(2, 12)[1, 1] = 1.0, 1.0  # e_0 and e_1
    weight = torch.zeros((2, 12), dtype=torch.float64)
    weight[0, :2], weight[1, :2] = torch.tensor([1.0, -1.0]), torch.tensor([-1.0, 1.0])
    fits, misfits = torch.tensor([0, 1]), torch.tensor([1, 0])
    e2 = math.exp(2.0)
    assert run("plain", Linear2(weight).double(), x, fits).score == pytest.approx(2 / (e2 + 1), rel=1e-12)
    assert run("plain", Linear2(weight).double(), x, misfits).score == pytest.approx(-2 * e2 / (e2 + 1), rel=1e-12)


def test_plain_is_minus_the_derivative_of_the_loss_along_the_weight_scale(conv_net):
    """The same definition on a conv net with BN, by central differences in α (float64)."""
    model = _copy(conv_net).double()
    x, y = data()
    x = x.double()

    def loss_at(alpha):
        net = _copy(model).train()
        with torch.no_grad():
            for _, module in weighted(net):
                module.weight.mul_(alpha)
            return float(F.cross_entropy(net(x), y))

    h = 1e-4
    relevance = -(loss_at(1 + h) - loss_at(1 - h)) / (2 * h)
    assert run("plain", model, x, y).score == pytest.approx(relevance, rel=1e-6, abs=1e-9)


def test_grasp_is_minus_theta_times_explicit_hessian_gradient_product():
    torch.manual_seed(1)
    model = TwoLayerLinear().double()
    x, y = data((7, 3, 2, 2))
    x = x.double()
    shapes = [model.fc1.weight.shape, model.fc2.weight.shape]
    sizes = [math.prod(s) for s in shapes]
    theta = torch.cat([model.fc1.weight.detach().flatten(), model.fc2.weight.detach().flatten()])

    def loss_of(flat):
        w1, w2 = flat[: sizes[0]].view(shapes[0]), flat[sizes[0] :].view(shapes[1])
        hidden = F.relu(x.flatten(1) @ w1.t() + model.fc1.bias.detach())
        return F.cross_entropy(hidden @ w2.t() + model.fc2.bias.detach(), y)

    gradient = torch.autograd.functional.jacobian(loss_of, theta)
    hessian = torch.autograd.functional.hessian(loss_of, theta)
    per_element = -theta * (hessian @ gradient)
    expected = {"fc1": float(per_element[: sizes[0]].sum()), "fc2": float(per_element[sizes[0] :].sum())}

    outcome = run("grasp", model, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-8, abs=1e-12)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-8)


def test_fisher_is_channel_wise_and_broadcast_over_fan_in(conv_net):
    x, y = data()
    net = _copy(conv_net).train()
    outputs = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output

        return hook

    for name, module in weighted(net):
        module.register_forward_hook(keep(name))
    F.cross_entropy(net(x), y).backward()

    expected = {}
    for name, module in weighted(net):
        act = outputs[name].detach().double().numpy()
        grad = outputs[name].grad.double().numpy()
        fan_in = int(np.prod(module.weight.shape[1:]))
        total = 0.0
        for k in range(act.shape[1]):  # naive loop over output channels and samples
            per_sample = [float(np.sum(act[n, k] * grad[n, k])) for n in range(act.shape[0])]
            total += abs(0.5 * np.mean(np.square(per_sample))) * fan_in
        expected[name] = total

    outcome = run("fisher", conv_net, x, y)
    assert outcome.layers == pytest.approx(expected, rel=1e-4)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-4)


def test_synflow_on_a_bias_free_two_layer_linear_net_by_hand():
    torch.manual_seed(2)
    model = TwoLayerLinear(hidden=4, out=3, bias=False)
    x, _ = data((2, 3, 2, 2))
    w1 = np.abs(model.fc1.weight.detach().double().numpy())
    w2 = np.abs(model.fc2.weight.detach().double().numpy())
    ones = np.ones(12)
    # R = 1ᵀ|W2||W1|1 (ReLU is the identity on positive values); ∂R/∂W1_ij = colsum(|W2|)_i,
    # ∂R/∂W2_ki = (|W1|1)_i, so each layer's Σ|θ ∂R/∂θ| equals R (synaptic-flow conservation).
    layer1 = float(np.sum(w1 * np.outer(w2.sum(axis=0), ones)))
    layer2 = float(np.sum(w2 * np.outer(np.ones(3), w1 @ ones)))
    flow = float(np.ones(3) @ w2 @ w1 @ ones)
    assert layer1 == pytest.approx(flow) and layer2 == pytest.approx(flow)

    outcome = run("synflow", model, x)
    assert outcome.layers == pytest.approx({"fc1": layer1, "fc2": layer2}, rel=1e-12)
    assert outcome.score == pytest.approx(2 * flow, rel=1e-12)


def test_l2_norm_is_the_sum_of_per_layer_weight_norms(conv_net):
    x, _ = data()
    expected = {n: float(np.linalg.norm(m.weight.detach().numpy().ravel())) for n, m in weighted(conv_net)}
    outcome = run("l2_norm", conv_net, x)
    assert outcome.layers == pytest.approx(expected, rel=1e-6)
    assert outcome.score == pytest.approx(sum(expected.values()), rel=1e-6)


def test_params_counts_every_trainable_parameter(conv_net):
    x, _ = data()
    # conv1 3*4*3*3 = 108, bn 2*4 = 8, conv2 4*3 + 3 = 15, fc 3*5 + 5 = 20
    outcome = run("params", conv_net, x)
    assert outcome.score == pytest.approx(151 / 1e6)
    assert outcome.layers == pytest.approx({"conv1": 108e-6, "conv2": 15e-6, "fc": 20e-6})


def test_flops_count_like_tensorwatch_by_hand(conv_net):
    x, _ = data((6, 3, 8, 8))
    conv1 = 3 * 3 * 3 * 4 * 8 * 8  # k·k·C_in·C_out per position, 64 positions
    bn = 4 * 8 * 8 * 2  # affine BN: 2 per element
    relu1 = 4 * 8 * 8
    conv2 = 4 * 3 * 8 * 8 + 3 * 8 * 8  # plus one add per output for the bias
    relu2 = 3 * 8 * 8
    pool = 3 * (8 + 1) * (8 + 1)  # tensorwatch's adaptive-pool window is (h+1)(w+1)
    fc = 3 * NUM_CLASSES  # tensorwatch leaves the linear bias out
    outcome = run("flops", conv_net, x)
    assert outcome.score == pytest.approx((conv1 + bn + relu1 + conv2 + relu2 + pool + fc) / 1e6, rel=1e-12)
    assert outcome.layers == pytest.approx({"conv1": conv1 / 1e6, "conv2": conv2 / 1e6, "fc": fc / 1e6})


def test_flops_of_avg_pool_and_batch_independence():
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.AvgPool2d(2, 2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.zeros(4, 3, 8, 8)  # FLOPs are per image: the batch size does not matter
    expected = 3 * 2 * 64 + 2 * 4 * 4 * 4 + 32 * 3
    assert run("flops", model, x).score == pytest.approx(expected / 1e6, rel=1e-12)


def _input_jacobian(model, x):
    net = _copy(model).train()
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    return x.grad.reshape(x.shape[0], -1).double().numpy()


def test_jacob_cov_matches_numpy_corrcoef_and_eigvalsh(conv_net):
    x, _ = data((6, 3, 8, 8))
    corr = np.corrcoef(_input_jacobian(conv_net, x))
    k = 1e-5
    eigenvalues = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k))
    # The reference's general solver gives the same spectrum on this symmetric matrix.
    general = np.sort(np.real(np.linalg.eig(corr)[0]))
    assert -np.sum(np.log(general + k) + 1.0 / (general + k)) == pytest.approx(expected, rel=1e-6)
    outcome = run("jacob_cov", conv_net, x)
    assert outcome.score == pytest.approx(expected, rel=1e-6)
    assert outcome.layers == {}


def _epe_reference(jacobian, labels, n_classes):
    k = 1e-5
    scores = {}
    for c in dict.fromkeys(labels):
        rows = jacobian[[i for i, label in enumerate(labels) if label == c]]
        if len(rows) == 1:
            if n_classes > 100:
                continue  # the reference's len() of a 0-d array raises; its except skips the class
            corr = np.array(1.0)
        else:
            corr = np.corrcoef(rows)
        s = float(np.sum(np.log(np.abs(corr) + k)))
        if n_classes > 100:
            s /= len(rows)
        scores[c] = s
    if n_classes <= 100:
        return sum(abs(s) for s in scores.values())
    return sum(abs(a - b) for a in scores.values() for b in scores.values()) / len(scores)


def test_epe_nas_per_class_formula_up_to_100_classes(conv_net):
    x, _ = data((7, 3, 8, 8))
    y = torch.tensor([0, 1, 0, 2, 1, 0, 3])  # class 2 and 3 have a single sample
    expected = _epe_reference(_input_jacobian(conv_net, x), y.tolist(), NUM_CLASSES)
    outcome = run("epe_nas", conv_net, x, y)
    assert outcome.score == pytest.approx(expected, rel=1e-6)


def test_epe_nas_pairwise_formula_above_100_classes():
    torch.manual_seed(3)
    model = TwoLayerLinear(hidden=6, out=101)
    x, _ = data((8, 3, 2, 2))
    y = torch.tensor([5, 7, 5, 99, 7, 5, 100, 99])  # class 100 has one sample: skipped
    expected = _epe_reference(_input_jacobian(model, x), y.tolist(), 101)
    outcome = run("epe_nas", model, x, y, num_classes=101)
    assert outcome.score == pytest.approx(expected, rel=1e-6)


def test_nwot_is_logdet_of_explicit_hamming_agreement_counts(conv_net):
    x, _ = data((6, 3, 8, 8))
    net = _copy(conv_net).train()
    codes = []
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.register_forward_hook(lambda m, i, o: codes.append((i[0].detach().flatten(1) > 0).numpy()))
    with torch.no_grad():
        net(x)
    c = np.concatenate(codes, axis=1)
    n, units = c.shape
    kernel = np.array([[units - np.count_nonzero(c[i] != c[j]) for j in range(n)] for i in range(n)], dtype=float)
    _, expected = np.linalg.slogdet(kernel)
    outcome = run("nwot", conv_net, x)
    assert outcome.score == pytest.approx(expected, rel=1e-9)


def test_zen_by_hand_on_a_tiny_net(conv_net):
    x, _ = data((6, 3, 8, 8))
    outcome = run("zen", conv_net, x, seed=5)

    # Replay the documented draws: weights in module order from N(0,1), then x, then ε.
    ctx = ProbeContext(conv_net, x, None, num_classes=NUM_CLASSES, passes=("zen",), seed=5)
    generator = ctx.generator("zen")
    net = _copy(conv_net).train()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.normal_(0.0, 1.0, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
        gaussian = torch.randn(x.shape, generator=generator)
        noise = torch.randn(x.shape, generator=generator)
        net.bn.weight.fill_(1.0)
        net.bn.bias.zero_()

        # BN input of each forward, to rebuild running_var by hand: momentum 0.1, unbiased.
        bn_inputs = [net.conv1(gaussian), net.conv1(gaussian + 1e-2 * noise)]
        out = net.forward_pre_gap(gaussian)
        mixed = net.forward_pre_gap(gaussian + 1e-2 * noise)
    delta = float((out - mixed).abs().sum(dim=(1, 2, 3)).mean())
    running_var = torch.ones(4, dtype=torch.float64)
    for z in bn_inputs:
        batch_var = z.double().transpose(0, 1).flatten(1).var(dim=1, unbiased=True)
        running_var = 0.9 * running_var + 0.1 * batch_var
    bn_term = math.log(math.sqrt(float(running_var.mean())))

    assert outcome.layers["delta"] == pytest.approx(math.log(delta), rel=1e-5)
    assert outcome.layers["bn"] == pytest.approx(bn_term, rel=1e-5, abs=1e-6)
    assert outcome.score == pytest.approx(math.log(delta) + bn_term, rel=1e-5)


def test_zen_needs_features_before_pooling():
    model = TwoLayerLinear()
    x, _ = data((4, 3, 2, 2))
    with pytest.raises(ProxyError, match="forward_pre_gap"):
        compute_proxies(model, x, None, ["zen"], num_classes=NUM_CLASSES)

