"""Formula tests for the spectral proxies (meco, meco_opt, dextr, swap, az_*) and az_nas combine.

Each value is recomputed independently: numpy corrcoef/eigvalsh/svd/unique, curves whose
curvature is known in closed form, the reference's double backward per logit, and a replay
of AZ-NAS's documented draw order with numpy doing the algebra.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY_ARCHS
from tiny_nets import NUM_CLASSES, run, tiny_net
from zcnas.combine import Features, create_method
from zcnas.proxies import ProbeContext, compute_proxies
from zcnas.proxies import spectral
from zcnas.proxies.passes import gaussian_init
from zcnas.spaces import get_space

SPACE = get_space("nb201")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
IDENTITY_CELL = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def nb201(arch, seed=0):
    torch.manual_seed(seed)
    return SPACE.build(arch, num_classes=10, C=4, N=1)


def images(shape=(6, 3, 8, 8), seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def context(model, x, seed=0, num_classes=NUM_CLASSES):
    return ProbeContext(model, x, None, num_classes=num_classes, passes=("weights",), seed=seed)


def first_image_outputs(model, x):
    """Every module's output for x[:1], train mode, as {call index: (name, C x P numpy)}."""
    net = copy.deepcopy(model).train()
    outputs = []

    def hook(name):
        def record(module, inputs, output):
            matrix = output[0].detach().reshape(output.shape[1], -1).double().numpy()
            outputs.append((name, isinstance(module, (nn.Conv2d, nn.Linear)), matrix))

        return record

    for name, module in net.named_modules():
        module.register_forward_hook(hook(name))
    with torch.no_grad():
        net(x[:1])
    return outputs


def numpy_min_correlation_eigenvalue(matrix):
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(matrix) if matrix.shape[1] > 1 else np.full((matrix.shape[0],) * 2, np.nan)
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0, posinf=0.0, neginf=0.0)
    return float(np.linalg.eigvalsh(corr).min())


def numpy_inverse_condition(matrix):
    s = np.linalg.svd(matrix, compute_uv=False)
    return float(s.min() / s.max()) if s.max() > 0 else 0.0


# ---------------------------------------------------------------------------------------- meco
def test_meco_term_is_the_smallest_eigenvalue_of_the_numpy_channel_correlation():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(5, 12))
    matrix[2] = 3.0  # a constant channel: its correlations are NaN, set to 0
    matrix[4] = 2 * matrix[0] + 0.01 * rng.normal(size=12)  # nearly collinear: λ_min near 0
    expected = numpy_min_correlation_eigenvalue(matrix)
    assert spectral.correlation_min_eigenvalue(torch.from_numpy(matrix)) == pytest.approx(expected, abs=1e-12)
    assert spectral.correlation_min_eigenvalue(torch.ones(4, 1)) == 0.0  # one value per channel


def test_meco_sums_every_module_call_on_the_first_image():
    model, x = tiny_net(), images()
    outputs = first_image_outputs(model, x)
    assert len(outputs) == 8  # 7 modules and the root
    expected_layers = {name: numpy_min_correlation_eigenvalue(m) for name, weighted, m in outputs if weighted}
    expected = sum(numpy_min_correlation_eigenvalue(m) for _, _, m in outputs)
    outcome = run("meco", model, x)
    assert outcome.score == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert outcome.layers == pytest.approx(expected_layers, rel=1e-9, abs=1e-12)
    assert set(outcome.layers) == {"conv1", "conv2", "fc"}
    # Only the first image is used, as the reference's batch of one.
    changed = x.clone()
    changed[1:] = images(seed=5)[1:]
    assert run("meco", model, changed).score == outcome.score


def test_meco_opt_equals_meco_when_every_output_has_at_most_eight_channels():
    model, x = tiny_net(), images()
    assert run("meco_opt", model, x).score == pytest.approx(run("meco", model, x).score, rel=1e-9, abs=1e-12)


def sylvester_hadamard(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def test_meco_opt_scales_the_eight_channel_term_by_c_over_8_by_hand():
    """12 channels over 16 positions, rows 1..12 of a 16×16 Hadamard matrix: zero-mean and
    orthogonal, so any 8 of them have correlation I and λ_min = 1, scaled by 12/8; the module
    and the root that returns its output are two records: meco_opt = 2 · 1.5, meco = 2 · 1."""
    pattern = torch.from_numpy(sylvester_hadamard(16)[1:13]).reshape(1, 12, 4, 4)

    class Patterns(nn.Module):
        def forward(self, x):
            return pattern.to(x.dtype).expand(len(x), -1, -1, -1)

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.patterns = Patterns()

        def forward(self, x):
            return self.patterns(x)

    x = images((2, 3, 4, 4)).double()
    assert run("meco_opt", Fixed(), x).score == pytest.approx(3.0, rel=1e-12)
    assert run("meco", Fixed(), x).score == pytest.approx(2.0, rel=1e-12)


def test_meco_opt_replays_its_channel_draws_with_numpy():
    """Channels drawn by randperm from the "meco_opt" generator, one draw per record in hook
    order, first 8 kept; each term numpy's λ_min of their correlation times C/8."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 12, 3), nn.ReLU(), nn.Conv2d(12, 10, 1))
    x = images((2, 3, 6, 6))
    generator = context(model, x, seed=2).generator("meco_opt")
    expected = 0.0
    for _, _, matrix in first_image_outputs(model, x):  # conv (12), relu (12), conv (10), root (10)
        channels = matrix.shape[0]
        chosen = torch.randperm(channels, generator=generator)[:8].numpy()
        expected += numpy_min_correlation_eigenvalue(matrix[chosen]) * channels / 8
    outcome = run("meco_opt", model, x, seed=2)
    assert outcome.score == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert outcome.score != pytest.approx(run("meco_opt", model, x, seed=5).score, rel=1e-6)  # the draw matters


# --------------------------------------------------------------------------------------- dextr
def curve_plane(ctx, shape):
    """The documented draw: left singular vectors of a D × 2 Gaussian from the "dextr.curve" generator."""
    plane = torch.randn((math.prod(shape), 2), generator=ctx.generator("dextr.curve"), dtype=torch.float64)
    return torch.linalg.svd(plane, full_matrices=False)[0]


def double_backward_curvatures(model, basis, thetas, shape, logits=None):
    """κ at each θ, as the reference computes it: each point alone through an ordinary
    train-mode copy (BatchNorm on a batch of one), v and a by double backward per output
    coordinate (`logits`: the coordinates to use, repeats allowed; default every logit)."""
    net = copy.deepcopy(model).train()
    kappas = []
    for value in thetas:
        theta = torch.tensor(float(value), dtype=torch.float64, requires_grad=True)
        output = net((basis @ torch.stack([torch.cos(theta), torch.sin(theta)])).reshape(1, *shape)).reshape(-1)
        v, a = [], []
        for index in range(len(output)) if logits is None else logits:
            (dv,) = torch.autograd.grad(output[index], theta, create_graph=True)
            (da,) = torch.autograd.grad(dv, theta, retain_graph=True)
            v.append(float(dv.detach()))
            a.append(float(da))
        v, a = np.array(v), np.array(a)
        kappas.append(np.sqrt(max(v @ v * (a @ a) - (v @ a) ** 2, 0.0)) / (v @ v) ** 1.5)
    return np.array(kappas)


SIXTEEN_POINTS = [2 * math.pi * k / 16 for k in range(16)]  # the documented curve: θ = 2πk/16


def test_dextr_by_numpy_svd_and_double_backward_curvature_combined_harmonically():
    model, x = tiny_net().double(), images().double()
    outputs = first_image_outputs(model, x)
    svd_term = math.log1p(sum(numpy_inverse_condition(m) for _, _, m in outputs))
    ctx = context(model, x)
    kappa = double_backward_curvatures(model, curve_plane(ctx, (3, 8, 8)), SIXTEEN_POINTS, (3, 8, 8))
    curvature_term = math.log1p(float(kappa.mean()))
    outcome = spectral.dextr(ctx)
    assert outcome.score == pytest.approx(svd_term * curvature_term / (svd_term + curvature_term), rel=1e-6)
    expected_layers = {name: numpy_inverse_condition(m) for name, weighted, m in outputs if weighted}
    assert outcome.layers == pytest.approx(expected_layers, rel=1e-9)
    assert outcome.layers["fc"] == 1.0  # 5 x 1 logits: one singular value


def orthonormal_plane(dim, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, 2)))
    return torch.from_numpy(q)


@pytest.mark.parametrize("radius", [0.5, 3.0])
def test_curvature_of_a_circle_through_the_identity_is_one_over_its_radius(radius):
    thetas = torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1]
    identity = lambda x: x.reshape(len(x), -1)  # noqa: E731
    kappa = spectral.extrinsic_curvature(identity, radius * orthonormal_plane(12), thetas, (3, 2, 2))
    assert kappa.numpy() == pytest.approx(np.full(8, 1 / radius), rel=1e-10)


def test_curvature_of_an_ellipse_matches_its_closed_form():
    a, b = 2.0, 0.5
    basis = orthonormal_plane(6) * torch.tensor([a, b], dtype=torch.float64)
    thetas = torch.tensor([0.0, 0.4, 1.3, 2.9], dtype=torch.float64)
    kappa = spectral.extrinsic_curvature(lambda x: x.reshape(len(x), -1), basis, thetas, (6,))
    expected = a * b / (a**2 * np.sin(thetas.numpy()) ** 2 + b**2 * np.cos(thetas.numpy()) ** 2) ** 1.5
    assert kappa.numpy() == pytest.approx(expected, rel=1e-10)


def test_dextr_curvature_is_double_backward_at_sixteen_points_on_every_logit():
    """Forward-mode κ at θ = 2πk/16 against double backward one point at a time, all 5 logits."""
    model, x = tiny_net().double(), images().double()
    ctx = context(model, x)
    kappa = spectral.curve_curvatures(ctx)
    expected = double_backward_curvatures(model, curve_plane(ctx, (3, 8, 8)), SIXTEEN_POINTS, (3, 8, 8))
    assert kappa.numpy() == pytest.approx(expected, rel=1e-6)
    assert len(set(np.round(expected, 6))) == 16  # sixteen distinct points, not one repeated


def test_dextr_reference_protocol_one_point_a_larger_curve_and_ten_logits_drawn_with_replacement():
    """The reference's NB201 script: θ = 0 only, a 12×12 curve here (64×64 there) whatever the
    probe's size, and 10 logit indices drawn uniformly with replacement ("dextr.logits")."""
    model, x = tiny_net().double(), images().double()
    ctx = context(model, x, seed=3)
    options = dict(points=1, size=(12, 12), logit_draws=10)
    kappa = spectral.curve_curvatures(ctx, **options)
    drawn = torch.randint(0, NUM_CLASSES, (10,), generator=ctx.generator("dextr.logits")).tolist()
    assert len(set(drawn)) < 10  # 10 draws of 5 logits repeat some
    expected = double_backward_curvatures(model, curve_plane(ctx, (3, 12, 12)), [0.0], (3, 12, 12), logits=drawn)
    assert kappa.numpy() == pytest.approx(expected, rel=1e-6)
    every_logit = double_backward_curvatures(model, curve_plane(ctx, (3, 12, 12)), [0.0], (3, 12, 12))
    assert abs(expected[0] - every_logit[0]) > 1e-3 * every_logit[0]  # the draw matters
    # The proxy passes its options through, and its defaults are unchanged.
    reference = spectral.dextr(ctx, curve_points=1, curve_size=(12, 12), logit_draws=10)
    default = spectral.dextr(ctx)
    svd_term = math.log1p(sum(numpy_inverse_condition(m) for _, _, m in first_image_outputs(model, x)))
    c = math.log1p(float(expected[0]))
    assert reference.score == pytest.approx(svd_term * c / (svd_term + c), rel=1e-6)
    assert default.score == run("dextr", model, x, seed=3).score != reference.score


def test_dextr_fails_with_a_message_when_the_output_ignores_the_input():
    outcome = compute_proxies(nb201(ALL_NONE), images((2, 3, 16, 16)), None, ["dextr"], num_classes=10)["dextr"]
    assert not outcome.ok and "curvature is undefined" in outcome.error


# ---------------------------------------------------------------------------------------- swap
def test_swap_counts_distinct_neuron_patterns_as_numpy_unique():
    model, x = tiny_net(), images((10, 3, 8, 8))
    outcome = run("swap", model, x, seed=3)
    net = copy.deepcopy(model)
    gaussian_init(net, context(model, x, seed=3).generator("swap"))
    net.train()
    codes = []
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.register_forward_hook(
                lambda m, inputs, output: codes.append(np.sign(output.detach().numpy()).reshape(len(x), -1))
            )
    with torch.no_grad():
        net(x)
    activations = np.concatenate(codes, axis=1)  # samples x neurons
    assert outcome.score == float(np.unique(activations.T, axis=0).shape[0])
    assert 1 < outcome.score <= 2 ** len(x)


def test_swap_reads_the_first_sixteen_images_only():
    model, x = tiny_net(), images((20, 3, 8, 8))
    changed = x.clone()
    changed[spectral.SWAP_SAMPLES :] = images((20, 3, 8, 8), seed=9)[spectral.SWAP_SAMPLES :]
    assert run("swap", model, x).score == run("swap", model, changed).score
    assert run("swap", model, x).score != run("swap", model, x[4:]).score


def test_distinct_columns_past_one_packed_word():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2, size=(130, 40))
    codes = np.concatenate([codes, codes[:, :15]], axis=1)  # 15 repeated columns
    assert spectral.distinct_columns(torch.from_numpy(codes).bool()) == np.unique(codes, axis=1).shape[1] == 40


# -------------------------------------------------------------------------------------- AZ-NAS
def test_eigen_entropy_by_hand():
    c0 = torch.tensor([1.0, -1.0, 1.0, -1.0])
    c1 = torch.tensor([1.0, 1.0, -1.0, -1.0])
    zero = torch.zeros(4)
    # (B=1, C=3, H=2, W=2); the covariance is diag(4, 1, 0): p = (0.8, 0.2, 0).
    feature = torch.stack([2 * c0, c1, zero]).reshape(1, 3, 2, 2)
    eps = spectral.AZ_ENTROPY_EPS
    by_hand = -(0.8 * math.log(0.8 + eps) + 0.2 * math.log(0.2 + eps) + 0.0)
    assert spectral.eigen_entropy(feature) == pytest.approx(by_hand, rel=1e-12)
    equal = torch.stack([c0, c1, zero]).reshape(1, 3, 2, 2)
    assert spectral.eigen_entropy(equal) == pytest.approx(-math.log(0.5 + eps), rel=1e-12)
    assert spectral.eigen_entropy(torch.zeros(2, 3, 2, 2)) == 0.0  # no variance: policy 0


def numpy_pair_score(g_in, g_out):
    b, co, ho, wo = g_out.shape
    if g_in.shape[2] != ho:
        s = g_in.shape[2] // ho
        ci = g_in.shape[1]
        g_in = g_in.reshape(b, ci, ho, s, wo, s).transpose(0, 1, 3, 5, 2, 4).reshape(b, ci * s * s, ho, wo)
    rows_in = g_in.transpose(0, 2, 3, 1).reshape(b * ho * wo, -1)
    rows_out = g_out.transpose(0, 2, 3, 1).reshape(b * ho * wo, -1)
    sigma = np.linalg.svd(rows_in.T @ rows_out / (b * ho * wo), compute_uv=False).max()
    return -sigma - 1 / (sigma + spectral.AZ_SIGMA_EPS) + 2


def test_trainability_pair_by_numpy_with_and_without_pixel_unshuffle():
    rng = np.random.default_rng(2)
    g_out = rng.choice([-1.0, 1.0], size=(2, 3, 4, 4))
    g_in = rng.normal(size=(2, 3, 4, 4))
    assert spectral.trainability_pair(torch.from_numpy(g_in), torch.from_numpy(g_out)) == pytest.approx(
        numpy_pair_score(g_in, g_out), rel=1e-12
    )
    g_in_large = rng.normal(size=(2, 2, 8, 8))  # a reduction: 8x8 -> 4x4, unshuffled to 8 channels
    assert spectral.trainability_pair(torch.from_numpy(g_in_large), torch.from_numpy(g_out)) == pytest.approx(
        numpy_pair_score(g_in_large, g_out), rel=1e-12
    )
    assert spectral.trainability_pair(torch.from_numpy(g_out), torch.from_numpy(g_out)) == spectral.AZ_IDENTITY_PAIR


def test_az_components_replay_the_documented_pass_with_numpy():
    """Draw order: Kaiming weights in module order, the Gaussian input, then one Rademacher
    tensor per pair, last pair first; features = stem output + cell_features."""
    model, x = nb201(TINY_ARCHS[1]), images((4, 3, 16, 16))
    ctx = context(model, x, seed=7, num_classes=10)
    generator = ctx.generator("az_nas")
    net = copy.deepcopy(model)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=generator)
    net.train()
    inputs = torch.randn(x.shape, generator=generator)
    features = [net.stem(inputs)]
    for cell in net.cells:
        features.append(cell(features[-1]))
    entropies = []
    for feature in features:
        flat = feature.detach().double().numpy().transpose(0, 2, 3, 1).reshape(-1, feature.shape[1])
        eigenvalues = np.clip(np.linalg.eigvalsh(np.cov(flat, rowvar=False, bias=True)), 0, None)
        p = eigenvalues / eigenvalues.sum()
        entropies.append(float(-(p * np.log(p + spectral.AZ_ENTROPY_EPS)).sum()))
    pairs = {}
    for i in reversed(range(1, len(features))):
        g_out = torch.randint(0, 2, features[i].shape, generator=generator).float() * 2 - 1
        (g_in,) = torch.autograd.grad(features[i], features[i - 1], g_out, retain_graph=True)
        pairs[i] = numpy_pair_score(g_in.double().numpy(), g_out.double().numpy())

    assert len(features) == 6  # stem, 3 cells, 2 reduction blocks
    assert spectral.az_expressivity(ctx).score == pytest.approx(sum(entropies), rel=1e-9)
    assert spectral.az_progressivity(ctx).score == pytest.approx(min(np.diff(entropies)), rel=1e-7, abs=1e-9)
    assert spectral.az_trainability(ctx).score == pytest.approx(np.mean(list(pairs.values())), rel=1e-6)


def test_az_identity_cells_stay_finite_and_rank_below_dead_cells():
    x = images((4, 3, 16, 16))
    identity = run("az_trainability", nb201(IDENTITY_CELL), x, num_classes=10).score
    dead = run("az_trainability", nb201(ALL_NONE), x, num_classes=10).score
    convs = run("az_trainability", nb201(TINY_ARCHS[0]), x, num_classes=10).score
    assert math.isfinite(identity) and identity < dead < convs


def test_the_three_az_components_share_one_pass():
    model, x = nb201(TINY_ARCHS[0]), images((4, 3, 16, 16))
    forwards = []
    model.stem.register_forward_pre_hook(lambda module, inputs: forwards.append(1))  # copies keep it
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    outcomes = compute_proxies(model, x, None, names, num_classes=10)
    assert all(o.ok for o in outcomes.values()) and len(forwards) == 1


# ---------------------------------------------------------------------------- az_nas combine
def test_az_nas_aggregation_by_hand_on_four_architectures():
    features = Features.from_arrays(
        {
            "az_expressivity": np.array([1.0, 2.0, 3.0, 4.0]),  # ranks 1 2 3 4
            "az_trainability": np.array([10.0, 10.0, 0.0, 5.0]),  # ranks 3.5 3.5 1 2 (tie averaged)
            "flops": np.array([0.3, 0.1, 0.2, 0.4]),  # ranks 3 1 2 4
        }
    )
    model = create_method("az_nas").fit(features, np.array([1.0, 2.0, 3.0, 4.0]))
    log = math.log
    expected = [
        log(1 / 4) + log(3.5 / 4) + log(3 / 4),
        log(2 / 4) + log(3.5 / 4) + log(1 / 4),
        log(3 / 4) + log(1 / 4) + log(2 / 4),
        log(4 / 4) + log(2 / 4) + log(4 / 4),
    ]
    assert model.predict(features) == pytest.approx(expected, rel=1e-12)
    # Nothing is learned from the target.
    other = create_method("az_nas").fit(features, np.array([4.0, 3.0, 2.0, 1.0]))
    np.testing.assert_array_equal(other.predict(features), model.predict(features))

    # A missing component: ranked among the 3 that have it, the row's term imputed by its mean.
    holed = Features.from_arrays({name: features.matrix([name])[:, 0].copy() for name in features.proxies})
    holed.scalar[0, 1] = np.nan
    # Row 0's trainability is missing: rows 1..3 hold 10, 0, 5, ranked 3, 1, 2 among three.
    first = (log(1 / 4) + log(3 / 4)) / 2 * 3
    prediction = model.predict(holed)
    assert prediction[0] == pytest.approx(first, rel=1e-12)
    assert prediction[1:] == pytest.approx(
        [
            log(2 / 4) + log(3 / 3) + log(1 / 4),
            log(3 / 4) + log(1 / 3) + log(2 / 4),
            log(4 / 4) + log(2 / 3) + log(4 / 4),
        ],
        rel=1e-12,
    )
