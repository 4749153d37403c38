"""The common battery every search space passes (the spaces' twin of test_proxies_common).

Parametrised over the registry, so a space added to `zcnas.spaces.BUILTIN` (or installed as
a plugin in the test environment) gets these tests for free. Networks are built with the
space's `small_options` (its narrow, shallow variant) to keep the battery fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces import get_space, space_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL = space_names()
BUILDABLE = [name for name in ALL if getattr(get_space(name), "can_build", True)]
IMAGE = [name for name in BUILDABLE if get_space(name).input_kind == "image"]


def probe_for(space, n: int = 2):
    """A random input of the kind the space takes."""
    if space.input_kind == "image":
        return (torch.randn(n, 3, 32, 32),)
    vocab = int(space.small_options.get("vocab_size", space.default_options.get("vocab_size", 100)))
    return (torch.randint(0, vocab, (n, 16)),)


def test_registry_has_the_shipped_spaces():
    assert {"nb201", "transbench101_micro", "transbench101_macro"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_metadata_and_example(name):
    space = get_space(name)
    assert space.name == name
    assert space.description and space.input_kind in ("image", "tokens", "table")
    assert space.canonical(space.example) == space.example, "the example must be canonical"


@pytest.mark.parametrize("name", ALL)
def test_canonical_is_idempotent_and_non_strings_are_refused(name):
    space = get_space(name)
    once = space.canonical(space.example)
    assert space.canonical(once) == once
    assert space.canonical("  " + once + "  ") == once if isinstance(once, str) else True
    for bad in (None, 3.5, "", "definitely not an architecture"):
        with pytest.raises(ArchError) as caught:
            space.canonical(bad)
        message = str(caught.value)
        assert message.strip().endswith(".") and "\n" not in message


@pytest.mark.parametrize("name", BUILDABLE)
def test_sample_is_seeded_distinct_and_canonical(name):
    space = get_space(name)
    first = space.sample(5, np.random.default_rng(7))
    assert first == space.sample(5, np.random.default_rng(7))
    assert len(set(first)) == 5
    assert all(space.canonical(e) == e for e in first)
    assert first != space.sample(5, np.random.default_rng(8))


@pytest.mark.parametrize("name", BUILDABLE)
def test_small_network_builds_runs_and_fills_only_declared_slots(name):
    space = get_space(name)
    options = dict(space.small_options)
    slots = space.layer_slots(**space.slot_options(options))
    assert slots and len(slots) == len(set(slots)), "slots are a fixed list of distinct names"
    for encoding in [space.example, *space.sample(3, np.random.default_rng(0))]:
        torch.manual_seed(0)
        model = space.build(encoding, num_classes=7, **options)
        assert model.training
        logits = model(*probe_for(space))
        assert logits.shape == (2, 7) and torch.isfinite(logits).all()
        for path, module in model.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                slot = space.slot_of(path)
                assert slot is None or slot in slots, f"{path} maps to {slot!r}, not a declared slot"
        assert space.layer_slots(**space.slot_options(options)) == slots, "slots do not depend on the architecture"


@pytest.mark.parametrize("name", BUILDABLE)
def test_unknown_build_option_is_one_sentence(name):
    space = get_space(name)
    with pytest.raises(ArchError):
        space.build(space.example, num_classes=10, **space.small_options, no_such_option=3)


@pytest.mark.parametrize("name", IMAGE)
def test_image_spaces_reject_wrong_probe_shapes(name):
    space = get_space(name)
    space.check_input_shape((4, 3, 32, 32))
    for shape in [(4, 32, 32), (4, 1, 32, 32)]:
        with pytest.raises(BenchmarkError):
            space.check_input_shape(shape)


@pytest.mark.parametrize("name", [n for n in ALL if n not in BUILDABLE])
def test_table_only_spaces_refuse_to_build(name):
    space = get_space(name)
    with pytest.raises(ArchError, match="table-only"):
        space.build(space.example)
