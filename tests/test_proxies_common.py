"""The common battery: every registered proxy obeys the same contract (scikit-learn style).

A new proxy gets all of these for free; nothing here names a proxy. On a narrow NB201
(C=4, N=1, 16x16 images, batch 8): a finite score, deterministic for a seed, the caller's
network and probe tensors left exactly as they were, batch 1 either works or is refused
clearly, per-layer statistics consistent with the score, and sharing passes changes nothing.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import TINY_ARCHS
from zcnas.errors import ProxyError
from zcnas.proxies import check_batch, compute_proxies, list_proxies
from zcnas.proxies.passes import KNOWN_PASSES
from zcnas.proxies.registry import AGGREGATIONS, LAYER_KEYS
from zcnas.spaces import get_space

SPACE = get_space("nb201")
# All-conv, and a mix of pool/1x1/skip: every proxy must be finite on both.
ARCHS = TINY_ARCHS[:2]
# The image battery runs every proxy that applies to image networks; the token battery below
# every proxy that applies to token networks; metadata is checked for all.
ALL_NAMES = [info.name for info in list_proxies()]
NAMES = [info.name for info in list_proxies(input_kind="image")]
INFOS = {info.name: info for info in list_proxies()}
NUM_CLASSES = 10
SLOTS = set(SPACE.layer_slots(N=1))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return SPACE.build(arch, num_classes=NUM_CLASSES, C=4, N=1)


def probe(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, 16, 16, generator=generator)
    y = torch.arange(8) % 3  # repeated classes, so per-class proxies see pairs
    return x, y


def score(model, x, y, name, **kwargs):
    outcome = compute_proxies(model, x, y, [name], num_classes=NUM_CLASSES, **kwargs)[name]
    assert outcome.ok, f"{name} failed: {outcome.error}"
    return outcome


@pytest.fixture(scope="module")
def shared_outcomes():
    """All proxies at once on each arch (the runner's default path), computed once."""
    x, y = probe()
    return {arch: compute_proxies(build(arch), x, y, NAMES, num_classes=NUM_CLASSES) for arch in ARCHS}


def build_reordered(arch: str) -> nn.Module:
    """The same network (same weights, same forward) with its top-level modules registered in
    reverse order: named_modules() then lists the classifier first, while hooks still fire
    stem first. A per-layer value paired with a name by position shows up here."""
    model = build(arch)
    model._modules = dict(reversed(list(model._modules.items())))
    assert next(iter(model._modules)) == "classifier"
    return model


@pytest.fixture(scope="module")
def reordered_outcomes():
    x, y = probe()
    return {arch: compute_proxies(build_reordered(arch), x, y, NAMES, num_classes=NUM_CLASSES) for arch in ARCHS}


def test_there_is_a_battery_to_run():
    assert {"grad_norm", "snip", "synflow", "nwot", "params", "flops"} <= set(NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_metadata_is_complete(name):
    info = INFOS[name]
    assert info.family and info.reference and info.summary, "family, reference and docstring are required"
    assert info.applies_to and set(info.applies_to) <= {"image", "tokens"}
    assert len(info.applies_to) == 2 or len(info.not_for) > 20, "a proxy for one kind says why not the other"
    assert set(info.passes) <= KNOWN_PASSES and info.passes
    assert info.aggregation in AGGREGATIONS and info.layer_keys in LAYER_KEYS
    assert info.min_batch >= 1


@pytest.mark.parametrize("arch", ARCHS, ids=["convs", "mixed"])
@pytest.mark.parametrize("name", NAMES)
def test_score_is_finite(shared_outcomes, name, arch):
    outcome = shared_outcomes[arch][name]
    assert outcome.ok, f"{name} failed: {outcome.error}"
    assert isinstance(outcome.score, float) and math.isfinite(outcome.score)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name):
    x, y = probe()
    first = score(build(ARCHS[1], seed=3), x, y, name, seed=11)
    second = score(build(ARCHS[1], seed=3), x, y, name, seed=11)
    assert first.score == second.score
    assert first.layers == second.layers


def _snapshot(model: nn.Module):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        {name: m.training for name, m in model.named_modules()},
    )


def _assert_untouched(model: nn.Module, snapshot, name: str) -> None:
    state, modes = snapshot
    after = model.state_dict()
    assert after.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(after[key], value), f"{name} changed {key}"
    assert {n: m.training for n, m in model.named_modules()} == modes, f"{name} changed a train/eval mode"
    assert all(p.grad is None for p in model.parameters()), f"{name} left a .grad on the caller's network"
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("eval_mode", [False, True], ids=["train", "eval"])
@pytest.mark.parametrize("name", NAMES)
def test_leaves_network_and_probe_untouched(shared_outcomes, name, eval_mode):
    model = build(ARCHS[0])
    if eval_mode:
        model.eval()
    x, y = probe()
    x_before, y_before = x.clone(), y.clone()
    snapshot = _snapshot(model)
    outcome = score(model, x, y, name)
    _assert_untouched(model, snapshot, name)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert not x.requires_grad and x.grad is None and y.grad is None
    # The proxy chooses its own BN mode: the caller's mode does not change the score.
    assert outcome.score == shared_outcomes[ARCHS[0]][name].score


@pytest.mark.parametrize("name", NAMES)
def test_one_probe_batch_reused_across_architectures(name):
    x, y = probe()
    score(build(ARCHS[0]), x, y, name)
    reused = score(build(ARCHS[1]), x, y, name)
    fresh_x, fresh_y = probe()
    fresh = score(build(ARCHS[1]), fresh_x, fresh_y, name)
    assert reused.score == fresh.score and reused.layers == fresh.layers
    assert not x.requires_grad and x.grad is None


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one_works_or_is_refused_clearly(name):
    x, y = probe()
    x, y = x[:1], y[:1]
    info = INFOS[name]
    if info.min_batch > 1:
        with pytest.raises(ProxyError, match="batch of at least"):
            check_batch([name], 1)
        with pytest.raises(ProxyError, match=name):
            compute_proxies(build(ARCHS[0]), x, y, [name], num_classes=NUM_CLASSES)
    else:
        check_batch([name], 1)
        outcome = score(build(ARCHS[0]), x, y, name)
        assert math.isfinite(outcome.score)


@pytest.mark.parametrize("arch", ARCHS, ids=["convs", "mixed"])
@pytest.mark.parametrize("name", NAMES)
def test_per_layer_statistics_match_the_score(shared_outcomes, reordered_outcomes, name, arch):
    info = INFOS[name]
    outcome = shared_outcomes[arch][name]
    assert outcome.ok, outcome.error
    layers = outcome.layers
    assert all(isinstance(v, float) and math.isfinite(v) for v in layers.values())
    if info.aggregation == "sum":
        # The registry's declaration (a new proxy gets aggregation "sum" unless it says "none"),
        # held to the outcome; what each layer's value is, the formula tests pin.
        assert layers, f"{name} says its layers sum to the score but has none"
        assert sum(layers.values()) == pytest.approx(outcome.score, rel=1e-6, abs=1e-12)
    if info.layer_keys == "conv_linear":
        assert set(layers) <= SLOTS, f"{name} uses names that are not NB201 layer slots"
        assert "stem.conv" in layers and "classifier" in layers
        # Each value belongs to its layer: registering the modules in another order moves
        # nothing from one name to another.
        reordered = reordered_outcomes[arch][name]
        assert reordered.ok, reordered.error
        assert reordered.layers == pytest.approx(layers, rel=1e-9, abs=1e-12)
        assert reordered.score == pytest.approx(outcome.score, rel=1e-9, abs=1e-12)
    elif info.layer_keys == "batchnorm":
        model = build(arch)
        batchnorms = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
        extras = set(layers) - batchnorms
        assert extras and not extras & SLOTS, f"{name}: batchnorm-keyed layers need their extra terms named"
        assert batchnorms <= set(layers)
    else:
        assert layers == {}


@pytest.mark.parametrize("arch", ARCHS, ids=["convs", "mixed"])
def test_shared_passes_give_the_same_scores_as_each_proxy_alone(arch):
    x, y = probe()
    shared = compute_proxies(build(arch), x, y, NAMES, num_classes=NUM_CLASSES, share=True, seed=4)
    alone = compute_proxies(build(arch), x, y, NAMES, num_classes=NUM_CLASSES, share=False, seed=4)
    for name in NAMES:
        assert shared[name].ok and alone[name].ok, (name, shared[name].error, alone[name].error)
        assert shared[name].score == alone[name].score, name
        assert shared[name].layers == alone[name].layers, name


# ---------------------------------------------------------------------------------------------
# The same battery on token networks: every proxy that applies to them, on a tiny NAS-Bench-BERT
# network (the space's small_options: 1000-token vocabulary, 64 positions), a batch of 8
# sequences of 16 ids with one padded sequence, and labels for the proxies that need them. Every
# proxy that does not apply is refused in one sentence before any work, on both kinds.
# ---------------------------------------------------------------------------------------------

TOKEN_SPACE = get_space("nasbert")
TOKEN_ARCHS = ["h128|SA:WMA:2:512x3|DSC:5:4:512x1", "h256|LT:DCT:4:1024x1|SA:SDP:2:512x1|DSC:9:2:1024x3|LT:DFT:2:512x3"]
TOKEN_NAMES = [info.name for info in list_proxies(input_kind="tokens")]
TOKEN_CLASSES = 3
TOKEN_SLOTS = set(TOKEN_SPACE.layer_slots())


def build_tokens(arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TOKEN_SPACE.build(arch, num_classes=TOKEN_CLASSES, **TOKEN_SPACE.small_options)


def token_probe(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TOKEN_SPACE.small_options["vocab_size"], (8, 16), generator=generator)
    mask = torch.ones_like(ids)
    mask[5, 12:] = 0
    ids[5, 12:] = 0
    return ids, mask, torch.arange(8) % TOKEN_CLASSES


def token_score(model, ids, mask, y, name, **kwargs):
    outcome = compute_proxies(model, ids, y, [name], num_classes=TOKEN_CLASSES, attention_mask=mask, **kwargs)[name]
    assert outcome.ok, f"{name} failed: {outcome.error}"
    return outcome


@pytest.fixture(scope="module")
def token_outcomes():
    ids, mask, y = token_probe()
    return {
        arch: compute_proxies(build_tokens(arch), ids, y, TOKEN_NAMES, num_classes=TOKEN_CLASSES, attention_mask=mask)
        for arch in TOKEN_ARCHS
    }


def test_token_battery_covers_the_classics_and_the_transformer_family():
    assert {"grad_norm", "snip", "synflow", "nwot", "params", "jacob_cov", "zico", "fisher"} <= set(TOKEN_NAMES)
    transformer = {info.name for info in list_proxies() if info.family == "transformer"}
    assert len(transformer) == 15 and transformer <= set(TOKEN_NAMES)
    assert {"zen", "linear_regions", "flops", "epe_nas"}.isdisjoint(TOKEN_NAMES)


@pytest.mark.parametrize("arch", TOKEN_ARCHS, ids=["two-layer", "four-layer"])
@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_score_is_finite(token_outcomes, name, arch):
    outcome = token_outcomes[arch][name]
    assert outcome.ok, f"{name} failed: {outcome.error}"
    assert isinstance(outcome.score, float) and math.isfinite(outcome.score)


@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_score_is_deterministic_for_a_seed_despite_dropout(name):
    ids, mask, y = token_probe()
    first = token_score(build_tokens(TOKEN_ARCHS[0], seed=3), ids, mask, y, name, seed=11)
    second = token_score(build_tokens(TOKEN_ARCHS[0], seed=3), ids, mask, y, name, seed=11)
    assert first.score == second.score and first.layers == second.layers


@pytest.mark.parametrize("eval_mode", [False, True], ids=["train", "eval"])
@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_proxy_leaves_network_and_probe_untouched(token_outcomes, name, eval_mode):
    model = build_tokens(TOKEN_ARCHS[0])
    if eval_mode:
        model.eval()
    ids, mask, y = token_probe()
    before = (ids.clone(), mask.clone(), y.clone())
    snapshot = _snapshot(model)
    outcome = token_score(model, ids, mask, y, name)
    _assert_untouched(model, snapshot, name)
    assert torch.equal(ids, before[0]) and torch.equal(mask, before[1]) and torch.equal(y, before[2])
    assert outcome.score == token_outcomes[TOKEN_ARCHS[0]][name].score


@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_batch_of_one_works_or_is_refused_clearly(name):
    ids, mask, y = token_probe()
    info = INFOS[name]
    if info.min_batch > 1:
        with pytest.raises(ProxyError, match=rf"batch of at least {info.min_batch} sequences"):
            check_batch([name], 1, input_kind="tokens")
    else:
        outcome = token_score(build_tokens(TOKEN_ARCHS[0]), ids[:1], mask[:1], y[:1], name)
        assert math.isfinite(outcome.score)


@pytest.mark.parametrize("arch", TOKEN_ARCHS, ids=["two-layer", "four-layer"])
@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_per_layer_statistics_match_the_score_and_the_slots(token_outcomes, name, arch):
    info = INFOS[name]
    outcome = token_outcomes[arch][name]
    layers = outcome.layers
    assert all(isinstance(v, float) and math.isfinite(v) for v in layers.values())
    if info.aggregation == "sum":
        assert layers, f"{name} says its layers sum to the score but has none"
        assert sum(layers.values()) == pytest.approx(outcome.score, rel=1e-6, abs=1e-12)
    if info.layer_keys == "conv_linear":
        slots = {TOKEN_SPACE.slot_of(key) for key in layers}
        assert None not in slots and slots <= TOKEN_SLOTS, f"{name} has values outside the nasbert slots"
        model = build_tokens(arch)
        model._modules = dict(reversed(list(model._modules.items())))
        ids, mask, y = token_probe()
        reordered = token_score(model, ids, mask, y, name)
        assert reordered.layers == pytest.approx(layers, rel=1e-9, abs=1e-12)
    elif info.layer_keys == "none":
        assert layers == {}


def test_token_shared_passes_give_the_same_scores_as_each_proxy_alone():
    ids, mask, y = token_probe()
    arch = TOKEN_ARCHS[1]
    kwargs = dict(num_classes=TOKEN_CLASSES, attention_mask=mask, seed=4)
    shared = compute_proxies(build_tokens(arch), ids, y, TOKEN_NAMES, share=True, **kwargs)
    alone = compute_proxies(build_tokens(arch), ids, y, TOKEN_NAMES, share=False, **kwargs)
    for name in TOKEN_NAMES:
        assert shared[name].ok and alone[name].ok, (name, shared[name].error, alone[name].error)
        assert shared[name].score == alone[name].score, name
        assert shared[name].layers == alone[name].layers, name


def test_the_attention_mask_reaches_the_network():
    ids, mask, y = token_probe()
    model = build_tokens(TOKEN_ARCHS[0])
    with_mask = token_score(model, ids, mask, y, "grad_norm").score
    without = token_score(model, ids, None, y, "grad_norm").score
    assert with_mask != without


@pytest.mark.parametrize("name", [n for n in NAMES if n not in TOKEN_NAMES])
def test_a_proxy_for_images_only_refuses_tokens_in_one_sentence(name):
    ids, mask, y = token_probe()
    with pytest.raises(ProxyError) as caught:
        compute_proxies(build_tokens(TOKEN_ARCHS[0]), ids, y, [name], num_classes=TOKEN_CLASSES, attention_mask=mask)
    message = str(caught.value)
    assert message.startswith(f"Proxy {name} does not apply to token networks: ") and len(message) > 60
    assert message.endswith(".") and "\n" not in message and INFOS[name].not_for in message


@pytest.mark.parametrize("name", [n for n in TOKEN_NAMES if not INFOS[n].applies("image")])
def test_a_proxy_for_tokens_only_refuses_images_in_one_sentence(name):
    x, y = probe()
    with pytest.raises(ProxyError, match=rf"^Proxy {name} does not apply to image networks: .*\.$"):
        compute_proxies(build(ARCHS[0]), x, y, [name], num_classes=NUM_CLASSES)
