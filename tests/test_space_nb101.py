"""Tests for the NAS-Bench-101 space (zcnas/spaces/nb101.py).

The parameter-count tests read NAS-Bench-Suite-Zero's NB101 table from ../shared/data and
skip when it is absent; everything else runs anywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import shared_file
from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces import get_space
from zcnas.spaces.nb101 import NB101, Spec, vertex_channels

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S = NB101()
SUITE_ZERO = "naslib_zc_nasbench101_22280f7.json"

# NB101's README example as queried (Inception-like) and as the dataset stores it (an
# isomorphic renumbering); NB101 reports trainable_parameters 2694282 for it.
README_QUERY = {
    "matrix": [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [
        "input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output",
    ],
}
README_STORED = {
    "module_adjacency": [
        [0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "module_operations": [
        "input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "output",
    ],
}
README_CANONICAL = "31m33|111100.00001.0001.001.10.1"
# NB101 record 00005c142e6f48ac74fdcf73e3439874 (the first hash of the dataset, as NNI's
# NB101 database prints it): trainable_parameters 8555530.
RECORD_SPEC = {
    "matrix": [
        [0, 1, 0, 0, 1, 1, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [
        "input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv1x1-bn-relu", "output",
    ],
}
RECORD_HASH = "00005c142e6f48ac74fdcf73e3439874"
SMALL = {"C": 8, "stacks": 2, "cells_per_stack": 1}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def suite_zero() -> dict[str, float]:
    """Suite-Zero NB101 key -> its `params` field converted to a parameter count."""
    table = json.loads(shared_file(SUITE_ZERO).read_text())["nasbench101"]["cifar10"]
    return {key: round(row["params"] * 1e6) for key, row in table.items()}


def test_registered_and_protocol():
    space = get_space("nb101")
    assert isinstance(space, NB101)
    assert space.input_kind == "image"
    assert space.default_options == {"C": 128, "stacks": 3, "cells_per_stack": 3}
    assert space.canonical(space.example) == space.example
    assert space.description and "\n" not in space.description


# ---------------------------------------------------------------- encodings


def test_every_form_parses_to_one_canonical_string():
    naslib = S.to_naslib(README_STORED)
    spellings = [
        README_CANONICAL,
        "  " + README_CANONICAL + "\n",
        README_STORED,
        {**README_STORED, "trainable_parameters": 2694282},  # an NB101 record's other keys are ignored
        {"matrix": np.array(README_STORED["module_adjacency"]), "ops": README_STORED["module_operations"]},
        json.dumps(README_STORED),
        json.dumps({"matrix": README_STORED["module_adjacency"], "ops": README_STORED["module_operations"]}),
        naslib,
        list(naslib),
        str(naslib),
        str(list(naslib)),
    ]
    for spelling in spellings:
        assert S.canonical(spelling) == README_CANONICAL, spelling
    assert S.from_naslib(str(naslib)) == README_CANONICAL
    assert S.from_naslib(", ".join(map(str, naslib))) == README_CANONICAL
    assert len(naslib) == 56 and all(type(v) is int for v in naslib)


def test_parse_gives_the_pruned_spec():
    spec = S.parse(README_CANONICAL)
    assert isinstance(spec, Spec)
    assert spec.ops == tuple(README_STORED["module_operations"])
    assert [list(row) for row in spec.matrix] == README_STORED["module_adjacency"]
    expected = {"matrix": README_STORED["module_adjacency"], "ops": README_STORED["module_operations"]}
    assert S.to_spec(README_CANONICAL) == expected


def test_canonical_round_trip_on_samples():
    for arch in S.sample(40, np.random.default_rng(3)):
        assert S.canonical(arch) == arch
        assert S.from_naslib(S.to_naslib(arch)) == arch
        assert S.canonical(json.dumps(S.to_spec(arch))) == arch


def test_spellings_of_one_pruned_graph_share_the_canonical_string():
    # Vertex 2 is dead in both (reads nothing / feeds nothing) and carries different ops.
    dead_no_input = {
        "matrix": [[0, 1, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
    }
    dead_no_output = {
        "matrix": [[0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
        "ops": ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"],
    }
    bare = "3|11.1"
    assert S.canonical(dead_no_input) == S.canonical(dead_no_output) == S.canonical(bare) == bare
    assert S.canonical("3m|101.01.0") == bare  # dead vertex in the compact form too
    # NASLib's convert_to_cell padding (empty rows, conv3x3 ops) is pruned away.
    assert S.canonical(S.to_naslib(bare)) == bare


def test_isomorphic_spellings_share_the_nb101_hash_not_the_string():
    assert S.nb101_hash(RECORD_SPEC) == RECORD_HASH
    assert S.nb101_hash(README_QUERY) == S.nb101_hash(README_STORED)
    assert S.canonical(README_QUERY) != S.canonical(README_STORED)
    assert S.nb101_hash("1m|111.01.1") == S.nb101_hash("m1|111.01.1")
    assert S.nb101_hash("1m|111.01.1") != S.nb101_hash("13|111.01.1")  # op changed
    assert S.nb101_hash("1m|111.01.1") != S.nb101_hash("1m|110.01.1")  # edge removed


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"matrix": [[0, 1, 0], [1, 0, 1], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]}, "upper triangular"),
        ({"matrix": [[1, 1], [0, 0]], "ops": ["input", "output"]}, "upper triangular"),
        ("33333|111111.11111.1111.111.11.1", "21 edges after pruning"),
        ("333333|1111111.000001.00001.0001.001.01.1", "8 vertices"),
        ({"matrix": [[0] * 8 for _ in range(8)], "ops": ["input"] + ["maxpool3x3"] * 6 + ["output"]}, "8 vertices"),
        ({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5-bn-relu", "output"]}, "conv5x5"),
        ({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["output", "maxpool3x3", "input"]}, "first op"),
        ({"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]}, "no path"),
        ("3|10.0", "no path"),
        ({"matrix": [[0, 2, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]}, "0 or 1"),
        ({"matrix": [[0, 1, 0], [0, 0, 1]], "ops": ["input", "maxpool3x3", "output"]}, "not square"),
        ({"matrix": [[0, 1], [0, 0]], "ops": ["input", "maxpool3x3", "output"]}, "3 ops for a 2x2"),
        ({"matrix": [[0, 1], [0, 0]]}, "matrix and ops"),
        ('{"matrix": [[0, 1], [0, 0]], "ops": ', "not valid JSON"),
        ("(0, 1, 0, 0, 1)", "56 ints"),
        ("(0, 1, 2)", "56 ints"),
        ("(0, 1, 0, 0, 0, 9)", "56 ints"),
        ("(0, 1, x)", "NASLib tuple"),
        ([0.0, 1.0, 0.0, 0.0, 0.0, 1.0], "56 ints"),
        ("hello", "op codes"),
        ("3x|11.1", "op codes"),
        ("3|11", "2 rows"),
        ("3|11.12", "2 rows"),
        ("", "op codes"),
        (None, "not a string"),
        (42, "not a string"),
    ],
)
def test_bad_encodings_are_one_sentence(bad, fragment):
    with pytest.raises(ArchError) as info:
        S.parse(bad)
    message = str(info.value)
    assert fragment in message
    assert message.endswith(".") and "\n" not in message
    assert message.count(". ") == 0 or "e.g." in message  # one sentence


def test_from_naslib_rejects_garbage():
    with pytest.raises(ArchError, match="NASLib"):
        S.from_naslib("0, 1, nope")
    with pytest.raises(ArchError, match="56 ints"):
        S.from_naslib({"matrix": []})


# ---------------------------------------------------------------- networks


def test_vertex_channels_follow_nb101():
    three_feeders = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(64, 128, three_feeders) == [64, 43, 43, 42, 128]
    # Vertex 1 (43 channels) also feeds vertex 3 (42): the forward pass truncates it there.
    truncating = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(128, 128, truncating) == [128, 43, 43, 42, 128]
    # Vertex 1 feeds only vertices 2 (64) and 3 (63): it takes the larger count.
    inner = [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(128, 127, inner) == [128, 64, 64, 63, 127]
    assert vertex_channels(16, 32, [[0, 1], [0, 0]]) == [16, 32]


def test_params_of_published_nb101_records():
    # Full-size networks; NB101's trainable_parameters of these two records.
    assert n_params(S.build(README_STORED)) == 2694282
    assert n_params(S.build(RECORD_SPEC)) == 8555530
    # The input->output-only cell: each cell is a 1x1 projection (stem 3*9*128 + BN ...).
    assert n_params(S.build("|1")) == 882570


def _check_params(keys, expected):
    wrong = {}
    for key in keys:
        got = n_params(S.build(key))
        if got != expected[key]:
            wrong[key] = (got, expected[key])
    assert not wrong, f"{len(wrong)} of {len(keys)} parameter counts differ from Suite-Zero: {list(wrong.items())[:3]}"


def test_params_match_suite_zero_on_50(suite_zero):
    keys = sorted(suite_zero)[::10]
    assert len(keys) == 50
    _check_params(keys, suite_zero)


@pytest.mark.slow
def test_params_match_suite_zero_on_all_500(suite_zero):
    assert len(suite_zero) == 500
    _check_params(sorted(suite_zero), suite_zero)


def test_isomorphic_spellings_can_be_different_networks():
    # Why canonical strings keep the vertex order: the order decides the channel split.
    a, b = "131|1100.011.01.1", "311|1100.001.11.1"
    assert S.nb101_hash(a) == S.nb101_hash(b)
    assert (n_params(S.build(a)), n_params(S.build(b))) == (1861666, 1865770)


def test_suite_zero_keys_are_292_nb101_architectures(suite_zero):
    # Suite-Zero drew raw 7x7 spellings; many prune to the same cell.
    assert len({S.canonical(key) for key in suite_zero}) == 301
    assert len({S.nb101_hash(key) for key in suite_zero}) == 292


@pytest.mark.parametrize(
    "arch", [README_CANONICAL, "|1", "3|11.1", "m|11.1", "31|111.11.1", "3m331|100110.10000.1001.010.10.1"]
)
def test_forward_small_variant(arch):
    net = S.build(arch, num_classes=7, **SMALL)
    assert net.training
    x = torch.randn(3, 3, 32, 32)
    logits = net(x)
    assert logits.shape == (3, 7)
    assert torch.isfinite(logits).all()
    assert net.forward_pre_gap(x).shape == (3, 16, 16, 16)  # C=8 doubled once, one 2x2 pool
    feats = net.cell_features(x)
    assert [f.shape[1] for f in feats] == [8, 16]
    assert torch.allclose(net.classifier(feats[-1].mean(dim=(2, 3))), logits)
    logits.sum().backward()  # no in-place op breaks autograd
    assert net.stem.conv.weight.grad is not None


def test_truncated_inputs_keep_the_first_channels():
    # 3 output feeders at C=8 get 3, 3, 2 channels; vertex 1 (3) feeds vertex 3 (2) truncated.
    net = S.build("333|1100.011.01.1", C=8, stacks=1, cells_per_stack=1).eval()
    cell = net.cells[0]
    assert cell.channels == (8, 3, 3, 2, 8)
    x = torch.randn(2, 8, 8, 8)
    v1 = cell.vertex1(cell.project1(x))
    v2 = cell.vertex2(cell.project2(x))
    v3 = cell.vertex3(v1[:, :2])
    assert torch.allclose(cell(x), torch.cat([v1, v2, v3], 1))


def test_input_only_cell_is_its_projection():
    net = S.build("|1", C=4, stacks=1, cells_per_stack=1).eval()
    x = torch.randn(2, 4, 8, 8)
    cell = net.cells[0]
    assert torch.equal(cell(x), cell.project_out(x))


def test_input_projection_is_added_to_the_concatenation():
    # Two conv vertices feed the output, and so does the input: out = cat(v1, v2) + proj(x).
    net = S.build("33|111.11.1", C=6, stacks=1, cells_per_stack=1).eval()
    cell = net.cells[0]
    x = torch.randn(2, 6, 8, 8)
    v1 = cell.vertex1(cell.project1(x))
    v2 = cell.vertex2(v1 + cell.project2(x))
    assert torch.allclose(cell(x), torch.cat([v1, v2], 1) + cell.project_out(x))


def test_build_is_fresh_and_uses_the_reference_init():
    a = S.build(README_CANONICAL, **SMALL)
    b = S.build(README_CANONICAL, **SMALL)
    assert not torch.equal(a.stem.conv.weight, b.stem.conv.weight)
    assert torch.equal(a.classifier.bias, torch.zeros(10))
    assert torch.equal(a.stem.bn.weight, torch.ones(8))


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"N": 5}, "Unknown NAS-Bench-101 network option 'N'"),
        ({"C": 0}, "C=0"),
        ({"stacks": 1.5}, "stacks=1.5"),
        ({"cells_per_stack": -1}, "cells_per_stack=-1"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"C": 2}, "at least 3"),
    ],
)
def test_bad_build_options_are_one_sentence(options, fragment):
    with pytest.raises(ArchError) as info:
        S.build("313|1110.001.01.1", **options)
    assert fragment in str(info.value)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_check_input_shape():
    S.check_input_shape((2, 3, 32, 32))
    S.check_input_shape((1, 3, 4, 4))
    for shape, fragment in [((3, 32, 32), "4-D"), ((2, 1, 32, 32), "1 channels"), ((2, 3, 2, 32), "4x4")]:
        with pytest.raises(BenchmarkError, match=fragment):
            S.check_input_shape(shape)


# ---------------------------------------------------------------- slots


def _layer_paths(net: nn.Module) -> list[str]:
    return [name for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_layer_slots_are_fixed():
    slots = S.layer_slots()
    assert len(slots) == 101 == len(set(slots))
    assert slots[0] == "stem.conv" and slots[-1] == "classifier"
    assert S.layer_slots(**S.slot_options(S.default_options)) == slots
    assert len(S.layer_slots(stacks=2, cells_per_stack=1)) == 2 * 11 + 2
    with pytest.raises(ArchError):
        S.layer_slots(stacks=0)


def test_every_layer_of_built_networks_has_its_slot_in_order():
    archs = [README_CANONICAL, "|1", "3m331|100110.10000.1001.010.10.1", *S.sample(12, np.random.default_rng(0))]
    slots = S.layer_slots(stacks=SMALL["stacks"], cells_per_stack=SMALL["cells_per_stack"])
    filled = set()
    for arch in archs:
        net = S.build(arch, **SMALL)
        paths = _layer_paths(net)
        mapped = [S.slot_of(p) for p in paths]
        assert all(slot in slots for slot in mapped), (arch, set(mapped) - set(slots))
        assert len(set(mapped)) == len(mapped)  # one layer per slot
        assert mapped == sorted(mapped, key=slots.index)  # modules registered in slot order
        filled.update(mapped)
    assert len(filled) > len(slots) // 2


def test_vertex1_reads_only_the_cell_input():
    # Depth-ordered naming: whatever the spelling, vertex1 is a vertex fed by the input alone.
    for arch in S.sample(30, np.random.default_rng(5)):
        spec = S.parse(arch)
        if spec.num_vertices == 2:
            continue
        cell = S.build(arch, C=8, stacks=1, cells_per_stack=1).cells[0]
        first = next(v for v, name in cell._vertex.items() if name == "vertex1")
        assert [i for i in range(first) if spec.matrix[i][first]] == [0], arch


def test_isomorphic_spellings_fill_the_same_slots():
    pairs = [("1m|111.01.1", "m1|111.01.1"), ("131|1100.011.01.1", "311|1100.001.11.1")]
    pairs.append((S.canonical(README_QUERY), S.canonical(README_STORED)))
    for a, b in pairs:
        assert S.nb101_hash(a) == S.nb101_hash(b) and a != b
        layers = []
        for arch in (a, b):
            net = S.build(arch, C=8, stacks=1, cells_per_stack=1)
            layers.append({p: m.kernel_size for p, m in net.named_modules() if isinstance(m, nn.Conv2d)})
        assert layers[0] == layers[1], (a, b)


# ---------------------------------------------------------------- sampling


def test_sample_is_deterministic_distinct_and_canonical():
    first = S.sample(60, np.random.default_rng(11))
    assert first == S.sample(60, np.random.default_rng(11))
    assert len(set(first)) == 60
    assert all(S.canonical(a) == a for a in first)
    assert first != S.sample(60, np.random.default_rng(12))
    assert S.sample(1, np.random.default_rng(11)) == first[:1]
    for bad in (0, -3, 1.5, S.NUM_ARCHS + 1):
        with pytest.raises(ArchError):
            S.sample(bad, np.random.default_rng(0))
