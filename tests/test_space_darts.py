"""The DARTS / NAS-Bench-301 space: encodings, Suite-Zero's network (parameter counts and FLOPs
against NAS-Bench-Suite-Zero's table), layer slots, sampling and input checks."""

from __future__ import annotations

import ast
import json
import re
from collections import namedtuple

import numpy as np
import pytest
import torch
from torch import nn

from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces.darts import DARTS, EDGES, OPS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S = DARTS()
ZC_TABLE = "naslib_zc_nasbench301_6639fd1.json"

# quark0/darts cnn/genotypes.py DARTS_V2, with its own pair order within nodes.
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
# The first key of Suite-Zero's table, verbatim (node 3 of the normal cell lists input 1 first).
FILE_KEY = (
    "[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], "
    "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]"
)
FILE_KEY_CANONICAL = (
    "[[(0, 0), (1, 5), (0, 1), (1, 1), (0, 3), (1, 3), (1, 3), (3, 2)], "
    "[(0, 2), (1, 0), (0, 3), (1, 3), (0, 1), (3, 0), (2, 0), (3, 6)]]"
)


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and not re.search(r"\.\s+[A-Z]", message)


def load_table() -> dict:
    from conftest import shared_file

    return json.loads(shared_file(ZC_TABLE).read_text())["cifar10"]


def conv_linear_paths(net: nn.Module) -> list[str]:
    return [name for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# ---------------------------------------------------------------------- encodings


def test_example_is_darts_v2_and_canonical():
    assert S.canonical(S.example) == S.example
    assert S.canonical(DARTS_V2) == S.example
    assert S.from_genotype(DARTS_V2) == S.example


def test_file_key_canonical_sorts_each_nodes_pairs():
    assert S.canonical(FILE_KEY) == FILE_KEY_CANONICAL
    assert S.canonical(FILE_KEY_CANONICAL) == FILE_KEY_CANONICAL
    # the same key as nested lists (JSON style), tuples, and a numpy array
    nested = ast.literal_eval(FILE_KEY)
    assert S.canonical(json.dumps(nested)) == FILE_KEY_CANONICAL
    assert S.from_naslib(nested) == FILE_KEY_CANONICAL
    assert S.from_naslib(tuple(tuple(cell) for cell in nested)) == FILE_KEY_CANONICAL
    assert S.from_naslib(np.array(nested)) == FILE_KEY_CANONICAL
    assert S.from_naslib(FILE_KEY) == FILE_KEY_CANONICAL
    assert S.canonical("  " + FILE_KEY + "\n") == FILE_KEY_CANONICAL


def test_swapping_a_nodes_pairs_is_the_same_architecture():
    cells = [list(cell) for cell in S.to_naslib(S.example)]
    for cell in range(2):
        for node in range(4):
            swapped = [list(c) for c in cells]
            swapped[cell][2 * node], swapped[cell][2 * node + 1] = swapped[cell][2 * node + 1], swapped[cell][2 * node]
            assert S.from_naslib(swapped) == S.example
    # but a different op is a different architecture
    changed = [list(c) for c in cells]
    changed[0][0] = (0, 4)
    assert S.from_naslib(changed) != S.example


def test_naslib_round_trip():
    compact = S.to_naslib(FILE_KEY)
    assert compact == ast.literal_eval(FILE_KEY_CANONICAL.replace("[", "(").replace("]", ")"))
    assert isinstance(compact, tuple) and all(isinstance(cell, tuple) and len(cell) == 8 for cell in compact)
    hash(compact)  # hashable, like NASLib's make_compact_immutable
    assert S.from_naslib(compact) == FILE_KEY_CANONICAL
    assert all(type(v) is int for cell in compact for pair in cell for v in pair)


def test_genotype_round_trip_and_spellings():
    text = S.to_genotype(FILE_KEY)
    assert text.startswith("Genotype(normal=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ")
    assert text.endswith("reduce_concat=[2, 3, 4, 5])")
    assert S.canonical(text) == FILE_KEY_CANONICAL
    assert S.from_genotype(text) == FILE_KEY_CANONICAL
    # positional fields, range(2, 6) concat (as some DARTS forks write it), module-qualified name
    positional = text.replace("normal=", "").replace("normal_concat=", "").replace("reduce=", "")
    positional = positional.replace("reduce_concat=", "")
    assert S.canonical(positional) == FILE_KEY_CANONICAL
    assert S.canonical(text.replace("[2, 3, 4, 5]", "range(2, 6)")) == FILE_KEY_CANONICAL
    assert S.canonical("genotypes." + text) == FILE_KEY_CANONICAL


def test_genotype_object():
    Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    normal = [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
              ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)]
    reduce = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
              ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]
    darts_v1 = Genotype(normal, range(2, 6), reduce, [2, 3, 4, 5])
    expected = S.canonical(
        "Genotype(normal=%r, normal_concat=[2, 3, 4, 5], reduce=%r, reduce_concat=[2, 3, 4, 5])" % (normal, reduce)
    )
    assert S.from_genotype(darts_v1) == expected
    assert S.to_naslib(expected)[0][:2] == ((0, 3), (1, 3))  # sep_conv_3x3 is op 3


def test_op_indices_follow_naslib_conversions():
    # naslib/search_spaces/nasbench301/conversions.py convert_compact_to_genotype's OPS list
    assert OPS == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                   "dil_conv_3x3", "dil_conv_5x5")


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (None, "not a string"),
        (42, "not a string"),
        ("", "neither"),
        ("hello", "neither"),
        ("__import__('os')", "neither"),
        ("[[(0, 0)], [(0, 0)]]", "has 1 (input node"),
        (FILE_KEY.replace("(3, 2)]", "(3, 2), (0, 0)]", 1), "has 9 (input node"),
        ("[" + FILE_KEY[1:FILE_KEY.index("]") + 1] + "]", "must be [normal, reduce]"),
        (FILE_KEY[:-1] + ", []]", "must be [normal, reduce]"),
        (FILE_KEY.replace("(0, 0)", "(0, 0, 1)", 1), "pair 0 of the normal cell"),
        (FILE_KEY.replace("(0, 0)", "(0.0, 0)", 1), "pair 0 of the normal cell"),
        (FILE_KEY.replace("(0, 0)", "(True, 0)", 1), "pair 0 of the normal cell"),
        (FILE_KEY.replace("(0, 0)", "(2, 0)", 1), "feeds node 2 from node 2"),
        (FILE_KEY.replace("(3, 2)", "(5, 2)", 1), "node 5 can only read nodes 0..4"),
        (FILE_KEY.replace("(0, 0)", "(-1, 0)", 1), "from node -1"),
        (FILE_KEY.replace("(3, 6)", "(3, 7)", 1), "op index 7"),
        (FILE_KEY.replace("(1, 5)", "(0, 5)", 1), "reads node 0 twice"),
        (DARTS_V2.replace("'sep_conv_3x3', 0", "'none', 0", 1), "no 'none' op"),
        (DARTS_V2.replace("'sep_conv_3x3', 0", "'conv_7x1_1x7', 0", 1), "unknown op 'conv_7x1_1x7'"),
        (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4]"), "normal_concat must be"),
        (DARTS_V2.replace(", reduce_concat=[2, 3, 4, 5]", ""), "must be written like"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2), ('skip_connect', 3)"), "has 9 (op, input"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "node 5 can only read nodes 0..4"),
        (DARTS_V2.replace("('skip_connect', 0), ('skip_connect', 0)", "('skip_connect', 1), ('skip_connect', 0)"),
         "reads node 1 twice"),
        (DARTS_V2.replace("('sep_conv_3x3', 0)", "(0, 'sep_conv_3x3')", 1), "not an (op name, input node) pair"),
        ("Genotype(normal=[", "must be written like"),
        ("Genotype(normal=os.system('x'), normal_concat=[2,3,4,5], reduce=[], reduce_concat=[2,3,4,5])",
         "must be written like"),
    ],
)
def test_parse_errors_are_one_sentence(bad, fragment):
    with pytest.raises(ArchError) as info:
        S.parse(bad)
    message = str(info.value)
    assert fragment in message
    assert one_sentence(message), message


@pytest.mark.parametrize("bad", [None, 3, [[(0, 0)] * 8], [[(0, 0)] * 8, [(0, 0)] * 7], np.zeros((2, 8, 3), int)])
def test_from_naslib_errors(bad):
    with pytest.raises(ArchError) as info:
        S.from_naslib(bad)
    assert one_sentence(str(info.value))


def test_from_genotype_errors():
    for bad in ("[[(0, 0)]]", object(), 3):
        with pytest.raises(ArchError) as info:
            S.from_genotype(bad)
        assert one_sentence(str(info.value))


# ---------------------------------------------------------------------- Suite-Zero's network


def _check_against_table(keys, table, flops_too: bool) -> None:
    from zcnas.proxies.passes import tensorwatch_flops

    mismatched = []
    for key in keys:
        net = S.build(key)
        params = sum(p.numel() for p in net.parameters())
        want = round(table[key]["params"]["score"] * 1e6)  # NASLib: tensorwatch parameters / 1e6
        if params != want:
            mismatched.append((key, "params", params, want))
        if flops_too:
            total = [0]

            def count(module, inputs, output):
                total[0] += tensorwatch_flops(module, tuple(inputs[0].shape), tuple(output.shape))

            for module in net.modules():
                if not list(module.children()):
                    module.register_forward_hook(count)
            with torch.no_grad():
                net.eval()(torch.zeros(1, 3, 32, 32))  # Suite-Zero: one 32x32 image
            if abs(total[0] / 1e6 - table[key]["flops"]["score"]) > 1e-6:
                mismatched.append((key, "flops", total[0] / 1e6, table[key]["flops"]["score"]))
    assert not mismatched, f"{len(mismatched)} of {len(keys)} differ from Suite-Zero, e.g. {mismatched[:3]}"


def test_params_and_flops_match_suite_zero_on_a_subset():
    table = load_table()
    keys = sorted(table)
    _check_against_table(keys[::12], table, flops_too=False)  # 61 archs
    _check_against_table(keys[::97], table, flops_too=True)  # 8 archs


@pytest.mark.slow
def test_params_and_flops_match_suite_zero_on_all_725():
    table = load_table()
    assert len(table) == 725
    _check_against_table(sorted(table), table, flops_too=True)


def test_canonical_keys_of_the_table_are_distinct_and_stable():
    table = load_table()
    canon = [S.canonical(key) for key in table]
    assert len(set(canon)) == len(table)
    assert all(S.canonical(c) == c for c in canon)
    assert all(S.from_naslib(ast.literal_eval(key)) == c for key, c in zip(table, canon))


def test_default_network_structure():
    net = S.build(S.example)
    assert S.default_options == {"C": 32, "layers": 8}
    assert net.training
    assert net.stem.conv.out_channels == 96
    assert len(net.cells) == 8
    assert [cell.reduction for cell in net.cells] == [False, False, True, False, False, True, False, False]
    assert net.classifier.in_features == 512 and net.classifier.out_features == 10
    # ops' BatchNorms are non-affine, preprocessing's affine (NASLib _set_ops / makrograph edges)
    reduce_cell = net.cells[2]
    assert type(reduce_cell.edges["0_2"]).__name__ == "PoolBN" and not reduce_cell.edges["0_2"].bn.affine
    assert type(reduce_cell.edges["2_3"]).__name__ == "Identity"  # skip inside a reduction cell
    assert type(reduce_cell.edges["2_5"]).__name__ == "Identity"
    assert type(net.cells[3].preprocess0).__name__ == "FactorizedReduce" and net.cells[3].preprocess0.bn.affine
    assert type(net.cells[1].preprocess0).__name__ == "ReLUConvBN"
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in net.modules())


def test_reduction_skip_is_factorized_reduce():
    genotype = DARTS_V2.replace("reduce=[('max_pool_3x3', 0)", "reduce=[('skip_connect', 0)")
    net = S.build(S.canonical(genotype), C=4, layers=3)
    reduce_cell = net.cells[1]
    assert reduce_cell.reduction
    skip = reduce_cell.edges["0_2"]
    assert type(skip).__name__ == "FactorizedReduce" and not skip.bn.affine


@pytest.mark.parametrize("options", [dict(C=8, layers=5), dict(C=4, layers=3), dict(C=6, layers=6)])
def test_small_variants_forward(options):
    archs = S.sample(3, np.random.default_rng(1)) + [S.example]
    for arch in archs:
        net = S.build(arch, **options)
        x = torch.randn(2, 3, 32, 32)
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        features = net.cell_features(x)
        assert len(features) == options["layers"]
        pre_gap = net.forward_pre_gap(x)
        assert pre_gap.shape == (2, 16 * options["C"], 8, 8)
        assert torch.equal(pre_gap, features[-1])  # train-mode BN: same batch, same result
        assert isinstance(net.stem, nn.Module)
    assert S.build(S.example, num_classes=100, C=4, layers=3)(torch.randn(1, 3, 16, 16)).shape == (1, 100)


def test_gradient_reaches_the_stem():
    net = S.build(S.example, C=4, layers=3)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert net.stem.conv.weight.grad is not None and net.stem.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "options, fragment",
    [
        (dict(C=0), "C=0"),
        (dict(C=2.5), "C=2.5"),
        (dict(layers=2), "layers=2"),
        (dict(layers=True), "layers=True"),
        (dict(N=5), "Unknown DARTS network option(s) N"),
        (dict(auxiliary=True, drop=1), "auxiliary, drop"),
        (dict(num_classes=0), "num_classes=0"),
    ],
)
def test_build_option_errors(options, fragment):
    with pytest.raises(ArchError) as info:
        S.build(S.example, **options)
    assert fragment in str(info.value)
    assert one_sentence(str(info.value))


# ---------------------------------------------------------------------- slots


def test_layer_slots_fixed_and_ordered():
    slots = S.layer_slots()
    assert len(slots) == 1 + 16 * 8 + 1 == 130
    assert len(set(slots)) == len(slots)
    assert slots[0] == "stem" and slots[-1] == "classifier"
    assert slots[1:17] == ["cells.0.preprocess0", "cells.0.preprocess1"] + [f"cells.0.edges.{s}_{d}" for s, d in EDGES]
    assert len(EDGES) == 14 and EDGES[:3] == ((0, 2), (1, 2), (0, 3))
    assert len(S.layer_slots(layers=5)) == 82
    assert S.slot_options({"C": 8, "layers": 5}) == {"layers": 5}
    with pytest.raises(ArchError):
        S.layer_slots(layers=1)


def test_every_layer_maps_to_a_slot():
    archs = S.sample(6, np.random.default_rng(3)) + [S.example, FILE_KEY_CANONICAL]
    for options in (dict(C=8, layers=5), {}):
        slots = S.layer_slots(**S.slot_options(options))
        for arch in archs:
            net = S.build(arch, **options)
            mapped = {}
            for path in conv_linear_paths(net):
                slot = S.slot_of(path)
                assert slot in slots, (path, slot)
                mapped.setdefault(slot, []).append(path)
            # stem, classifier, both preprocessings of every cell, and the cell's edges whose op
            # has convs: sep/dil convs, and skip on an input edge of a reduction cell
            layers = options.get("layers", 8)
            for i, cell in enumerate(net.cells):
                pairs = S.to_naslib(arch)[1 if cell.reduction else 0]
                with_convs = {
                    f"cells.{i}.edges.{src}_{k // 2 + 2}"
                    for k, (src, op) in enumerate(pairs)
                    if op >= 3 or (op == 2 and cell.reduction and src < 2)
                }
                assert {s for s in mapped if s.startswith(f"cells.{i}.")} == (
                    {f"cells.{i}.preprocess0", f"cells.{i}.preprocess1"} | with_convs
                )
            assert len(net.cells) == layers and "stem" in mapped and "classifier" in mapped
            # the slot's order is forward order: per-cell slots follow the cells
            order = [slots.index(S.slot_of(p)) for p in conv_linear_paths(net)]
            assert order[0] == 0 and order[-1] == len(slots) - 1


def test_slot_values_sum_to_the_total():
    from zcnas.spaces import aggregate_slots

    net = S.build(S.example, C=8, layers=5)
    per_layer = {
        name: float(sum(p.numel() for p in m.parameters()))
        for name, m in net.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }
    per_slot = aggregate_slots(S, per_layer)
    assert sum(per_slot.values()) == sum(per_layer.values())
    # sep_conv_3x3 on 0->2 of normal cell 0: four convs (two depthwise, two pointwise) in one slot
    assert [p for p in per_layer if S.slot_of(p) == "cells.0.edges.0_2"] == [
        "cells.0.edges.0_2.depthwise1", "cells.0.edges.0_2.pointwise1",
        "cells.0.edges.0_2.depthwise2", "cells.0.edges.0_2.pointwise2",
    ]
    assert per_slot["cells.0.edges.0_2"] == 2 * (8 * 9 + 8 * 8)


def test_slot_of_outside_slots():
    for path in ("", "cells", "cells.0", "cells.0.edges", "global_pooling", "stems.conv", "cells.x.preprocess0"):
        assert S.slot_of(path) is None
    assert S.slot_of("stem.conv") == "stem"
    assert S.slot_of("classifier") == "classifier"
    assert S.slot_of("cells.7.preprocess0.conv_2") == "cells.7.preprocess0"
    assert S.slot_of("cells.12.edges.3_5.depthwise") == "cells.12.edges.3_5"


# ---------------------------------------------------------------------- sampling and inputs


def test_sample_deterministic_distinct_canonical():
    a = S.sample(200, np.random.default_rng(7))
    assert a == S.sample(200, np.random.default_rng(7))
    assert a != S.sample(200, np.random.default_rng(8))
    assert len(set(a)) == 200
    assert all(S.canonical(x) == x for x in a)
    # every op and every input of node 5 appears
    compacts = [S.to_naslib(x) for x in a]
    assert {op for c in compacts for cell in c for _, op in cell} == set(range(7))
    assert {src for c in compacts for cell in c for src, _ in cell[6:]} == set(range(5))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ArchError):
            S.sample(bad, np.random.default_rng(0))
    with pytest.raises(TypeError):
        S.sample(3, 0)


def test_check_input_shape():
    S.check_input_shape((64, 3, 32, 32))
    S.check_input_shape((1, 3, 16, 12))
    for bad, fragment in [
        ((64, 1, 32, 32), "1 channels"),
        ((64, 3, 30, 32), "30x32"),
        ((64, 3, 2, 2), "2x2"),
        ((3, 32, 32), "not 4-D"),
    ]:
        with pytest.raises(BenchmarkError) as info:
            S.check_input_shape(bad)
        assert fragment in str(info.value) and one_sentence(str(info.value))


def test_registry_finds_the_space():
    from zcnas.spaces import get_space

    space = get_space("darts")
    assert space.name == "darts" and space.input_kind == "image"
    assert space.canonical(space.example) == space.example
    assert space.description and "\n" not in space.description
