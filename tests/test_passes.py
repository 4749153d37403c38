"""Shared passes: run once per architecture when proxies share them, once per proxy when not."""

from __future__ import annotations

import collections

import pytest
import torch

from conftest import TINY_ARCHS
from zcnas.proxies import ProbeContext, compute_proxies, list_proxies
from zcnas.proxies.passes import TRAIN_PASS
from zcnas.spaces import get_space

# Every proxy that applies to the image network these tests build (token-only ones refuse it).
NAMES = [info.name for info in list_proxies() if info.applies("image")]
# Cache keys of ProbeContext._cached are pass names, except the train pass serving TRAIN_PASS.
# Network forwards (calls of the stem) each pass makes: zen features of x and of x + γε;
# zico's two half batches; linear regions' three patch batches; weights: none.
FORWARDS = {
    "train": 1, "shape": 1, "synflow": 1, "zen": 2, "per_sample_gradient": 1, "half_batch_gradient": 2,
    "ntk_gradient": 1, "relu_patterns": 3, "first_sample_features": 1, "input_curve": 1, "az_features": 1,
    "swap_codes": 1,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pass_kind(name: str) -> str | None:
    if name in TRAIN_PASS:
        return "train"
    return None if name == "weights" else name


def passes_of(proxy_names) -> collections.Counter:
    """The passes these proxies need together, each counted once."""
    counts = collections.Counter()
    for info in list_proxies():
        if info.name in proxy_names:
            counts.update({kind for kind in map(pass_kind, info.passes) if kind})
    return counts


@pytest.fixture
def counted(monkeypatch):
    """Count the passes a context actually computes (cache misses of ProbeContext._cached)."""
    calls = collections.Counter()
    original = ProbeContext._cached

    def counting(self, key, compute):
        if key not in self._cache:
            calls[key] += 1
        return original(self, key, compute)

    monkeypatch.setattr(ProbeContext, "_cached", counting)
    return calls


def model_and_probe():
    torch.manual_seed(0)
    model = get_space("nb201").build(TINY_ARCHS[0], num_classes=10, C=4, N=1)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return model, x, torch.arange(8) % 3


def count_forwards(model) -> collections.Counter:
    """Every pass copies the network, hooks included: count stem calls across all copies."""
    forwards = collections.Counter()
    model.stem.register_forward_pre_hook(lambda module, inputs: forwards.update(["stem"]))
    return forwards


def test_every_pass_runs_once_when_all_proxies_share_it(counted):
    model, x, y = model_and_probe()
    forwards = count_forwards(model)
    outcomes = compute_proxies(model, x, y, NAMES, num_classes=10, share=True)
    assert all(outcome.ok for outcome in outcomes.values())
    assert dict(counted) == {kind: 1 for kind in passes_of(NAMES)}
    assert forwards["stem"] == sum(FORWARDS[kind] for kind in passes_of(NAMES))


def test_without_sharing_each_proxy_runs_its_own_passes(counted):
    model, x, y = model_and_probe()
    forwards = count_forwards(model)
    compute_proxies(model, x, y, NAMES, num_classes=10, share=False)
    per_proxy = collections.Counter()  # one run of a pass for every proxy that needs it
    for name in NAMES:
        per_proxy.update(passes_of([name]))
    assert dict(counted) == dict(per_proxy)
    assert counted["train"] == sum(1 for info in list_proxies() if info.name in NAMES and set(info.passes) & TRAIN_PASS) > 1
    assert forwards["stem"] == sum(FORWARDS[kind] * n for kind, n in per_proxy.items())


def test_loss_activation_hessian_jacobian_and_relu_codes_come_from_one_forward(counted):
    model, x, y = model_and_probe()
    forwards = count_forwards(model)
    names = [info.name for info in list_proxies() if set(info.passes) <= TRAIN_PASS]
    assert {p for info in list_proxies() if info.name in names for p in info.passes} == TRAIN_PASS
    compute_proxies(model, x, y, names, num_classes=10, share=True)
    assert dict(counted) == {"train": 1}
    assert forwards["stem"] == 1


def test_a_context_only_computes_what_its_proxies_declared():
    model, x, y = model_and_probe()
    ctx = ProbeContext(model, x, y, num_classes=10, passes=("loss_gradient",))
    train = ctx.train_pass()
    assert train.grads and train.hessian_grads is None and train.activations is None
    assert train.input_jacobian is None and train.relu_kernel is None
    assert ctx.train_pass() is train  # cached
    with pytest.raises(ValueError, match="unknown passes"):
        ProbeContext(model, x, y, num_classes=10, passes=("telepathy",))


def test_a_shared_pass_is_paid_for_evenly_by_the_proxies_that_read_it(monkeypatch):
    import time

    original = ProbeContext._ntk_pass

    def slow_ntk_pass(self):
        time.sleep(0.3)  # make the shared pass dominate the proxies' own work
        return original(self)

    monkeypatch.setattr(ProbeContext, "_ntk_pass", slow_ntk_pass)
    model, x, y = model_and_probe()
    names = ["ntk_cond", "ntk_trace", "lga", "params"]  # the first three read one NTK pass
    start = time.perf_counter()
    outcomes = compute_proxies(model, x, y, names, num_classes=10, share=True)
    wall = time.perf_counter() - start
    ntk = [outcomes[name].seconds for name in ("ntk_cond", "ntk_trace", "lga")]
    assert min(ntk) >= 0.1, f"each NTK proxy pays a third of the 0.3 s pass: {ntk}"
    assert outcomes["params"].seconds < 0.1  # params reads no NTK pass
    assert 0.3 <= sum(o.seconds for o in outcomes.values()) <= wall  # nothing counted twice

    alone = compute_proxies(model, x, y, names, num_classes=10, share=False)
    assert all(alone[name].seconds >= 0.3 for name in ("ntk_cond", "ntk_trace", "lga"))


def test_forward_hooks_fire_inside_the_block_and_are_gone_after_it_even_on_an_error():
    from zcnas.proxies.passes import forward_hooks

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    seen = []
    hooks = [(m, lambda module, inputs, output: seen.append(type(module).__name__)) for m in net]
    with forward_hooks(hooks):
        net(torch.ones(1, 3))
    assert seen == ["Linear", "ReLU", "Linear"]
    with pytest.raises(RuntimeError, match="inside"):
        with forward_hooks(hooks):
            raise RuntimeError("inside the block")
    net(torch.ones(1, 3))
    assert len(seen) == 3 and all(not m._forward_hooks for m in net)
