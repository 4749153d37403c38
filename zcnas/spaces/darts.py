"""The DARTS search space as NAS-Bench-301 and NAS-Bench-Suite-Zero built it (CIFAR-10).

A DARTS cell (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019) has two
input nodes (0: the output of the cell before the previous one, 1: the previous cell's) and
four intermediate nodes 2..5; each intermediate node sums two ops, each reading one earlier
node, and the cell outputs the channel concatenation of nodes 2..5. One normal and one
reduction genotype are shared by every cell of their kind; NAS-Bench-301 (Siems et al., 2020)
covers all of them with 7 ops ('none' is excluded): per cell 1 x 3 x 6 x 10 choices of input
pairs times 7**8 of ops, about 10**18 architectures in all.

Encodings (both converted both ways):

* NASLib's *compact* form (naslib/search_spaces/nasbench301/conversions.py,
  ``convert_genotype_to_compact``): ``[normal, reduce]``, each 8 ``(input node, op index)``
  pairs, pairs 2k and 2k+1 feeding intermediate node k+2; op indices 0 max_pool_3x3,
  1 avg_pool_3x3, 2 skip_connect, 3 sep_conv_3x3, 4 sep_conv_5x5, 5 dil_conv_3x3,
  6 dil_conv_5x5. NAS-Bench-Suite-Zero's table keys are this form written by
  ``str([list(normal), list(reduce)])``.
* the DARTS genotype (quark0/darts cnn/genotypes.py): ``Genotype(normal=[('sep_conv_3x3',
  0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``, the
  same pairs written (op name, input node).

The canonical string is the compact form in Suite-Zero's spelling with the two pairs of each
intermediate node sorted by input node (then op). The order of a node's two pairs is not
part of the architecture: the node sums them, NASLib's network keys a cell's edges by
(input, node) and NAS-Bench-301's ConfigSpace by input node, so both orders give the same
network and the same surrogate prediction. Only 1 of Suite-Zero's 725 keys happens to be
sorted already, so most canonical strings differ from the file's keys by such swaps; no two
of its keys collapse into one. Deeper isomorphisms (renumbering intermediate nodes) are not
merged: they permute the concatenated channels, and NAS-Bench-301 treats them as different
configurations. A node may not read the same input twice: NAS-Bench-301's ConfigSpace has no
such configuration and NASLib's graph (one edge per input/node pair) cannot hold one.

`DARTS.build` is Suite-Zero's network (NASLib branch ``zerocost``,
naslib/search_spaces/nasbench301/graph.py ``NasBench301SearchSpace`` as
naslib/runners/benchmarks/runner.py builds it: ``set_spec``, ``parse``, no
``prepare_evaluation``), which is DARTS's ``NetworkCIFAR`` (cnn/model.py) with C=32 and 8
cells (NAS-Bench-301's training setting) and these choices, on purpose, of NASLib's:

* ops use BatchNorm without affine parameters (NASLib ``_set_ops``: ``affine=False``; DARTS's
  evaluation network uses affine BN in the ops, its search network does not);
* both pools are followed by a non-affine BatchNorm, in normal and reduction cells alike
  (naslib/search_spaces/core/primitives.py ``MaxPool``/``AvgPool`` with ``use_bn=True``);
* no auxiliary head and no drop-path: NASLib adds the head only in ``prepare_evaluation``,
  which Suite-Zero never calls (its edge stays an identity), and has no drop-path;
* skip_connect on an input edge of a reduction cell is ``FactorizedReduce`` (non-affine BN),
  the cell inputs are preprocessed by ReLU-1x1conv-BN or, after a reduction, by
  ``FactorizedReduce`` (affine BN), the stem is 3x3 conv (3 -> 3C) + BN and the head global
  average pooling + Linear(16C, classes), all as in DARTS.

Parameter counts and FLOPs of this build equal Suite-Zero's ``params`` and ``flops`` fields
(tensorwatch's model statistics of one 32x32 image: the parameters of the layers a forward
pass runs, and their FLOPs, both in millions) for all 725 architectures of its NAS-Bench-301
table (tests/test_space_darts.py; FLOPs see the non-affine BNs after the pools, which
parameters cannot). ``forward`` returns logits only (DARTS returns ``(logits, aux)``).

Layer slots: one slot per (cell, input node, intermediate node) edge of the DARTS supernet
cell (14 per cell, of which an architecture fills 8), the cell's two preprocessing layers,
the stem and the classifier: 1 + 16 x layers + 1 slots (130 for 8 cells). The several convs
of one op (sep_conv has 4, FactorizedReduce 2) are summed into their edge's slot by
`DARTS.slot_of`, so a slot means "what flows along edge i -> j of cell c" whatever op sits
there, as NB201's edge slots do; an edge an architecture does not use, or whose op has no
conv (pools, skip in a normal cell), is a slot it does not have (0 in combine's features), like
an NB201 edge holding a pool or skip. Slots per edge rather than per op keep the list
fixed and short (a slot per (edge, op) would be 7x longer and almost always empty), and
slots per edge rather than per "first/second input of node k" keep a slot tied to one
source: the second input of node 5 may be any of nodes 0..4, whose features differ in depth
and, in reduction cells, in resolution (ops on edges from the inputs have stride 2).
"""

from __future__ import annotations

import ast
import numbers
import re

import numpy as np
import torch
from torch import nn

from zcnas.errors import ArchError
from zcnas.spaces.base import SearchSpace, check_rgb_batch

# NASLib compact op index -> DARTS op name (naslib/search_spaces/nasbench301/conversions.py).
OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CONCAT = (2, 3, 4, 5)
# (src, dst) of the 14 edges of the DARTS supernet cell, in forward order (by node, then input).
EDGES = tuple((src, dst) for dst in range(2, 6) for src in range(dst))
# Per cell: choices of the two inputs of nodes 2..5 (C(2,2) x C(3,2) x C(4,2) x C(5,2)).
_PAIRS_PER_CELL = 1 * 3 * 6 * 10
NUM_ARCHS = (_PAIRS_PER_CELL * len(OPS) ** 8) ** 2

# DARTS_V2 (quark0/darts cnn/genotypes.py), canonical compact form.
_EXAMPLE = (
    "[[(0, 3), (1, 3), (0, 3), (1, 3), (0, 2), (1, 3), (0, 2), (2, 5)], "
    "[(0, 0), (1, 0), (1, 0), (2, 2), (0, 0), (2, 2), (1, 0), (2, 2)]]"
)
_OPS_HELP = ", ".join(f"{i} {op}" for i, op in enumerate(OPS))
_OPTIONS = {"C": 32, "layers": 8}
_SLOT = re.compile(r"^(stem|classifier|cells\.\d+\.(?:preprocess[01]|edges\.\d_\d))(?:\.|$)")

Cell = tuple[tuple[int, int], ...]


def _is_int(value) -> bool:
    """True for Python/NumPy integers but not bools (True would silently mean 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---------------------------------------------------------------------- validation


def _check_cell(pairs, label: str, shown) -> Cell:
    """8 (input node, op index) pairs -> the cell with each node's pairs sorted.

    `shown` is what the error messages quote (the user's own spelling)."""
    if not isinstance(pairs, (list, tuple, np.ndarray)) or len(pairs) != 8:
        count = len(pairs) if isinstance(pairs, (list, tuple, np.ndarray)) else "no"
        raise ArchError(
            f"Architecture {shown!r}: the {label} cell has {count} (input node, op index) pairs but needs 8, "
            f"two per intermediate node, like {_EXAMPLE}."
        )
    cell = []
    for position, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple, np.ndarray)) or len(pair) != 2 or not all(_is_int(v) for v in pair):
            raise ArchError(
                f"Architecture {shown!r}: pair {position} of the {label} cell is {pair!r}, not an "
                f"(input node, op index) pair of integers, like {_EXAMPLE}."
            )
        cell.append((int(pair[0]), int(pair[1])))
    return _check_nodes(cell, label, shown, name_ops=False)


def _check_nodes(cell: list[tuple[int, int]], label: str, shown, name_ops: bool) -> Cell:
    """Range checks shared by both encodings; sorts each node's two pairs."""
    for position, (src, op) in enumerate(cell):
        node = position // 2 + 2
        if not 0 <= src < node:
            raise ArchError(
                f"Architecture {shown!r}: pair {position} of the {label} cell feeds node {node} from node {src}, "
                f"but node {node} can only read nodes 0..{node - 1} (0 and 1 are the cell inputs)."
            )
        if not name_ops and not 0 <= op < len(OPS):
            raise ArchError(
                f"Architecture {shown!r}: pair {position} of the {label} cell has op index {op}; "
                f"NAS-Bench-301 op indices are {_OPS_HELP}."
            )
    sorted_cell: list[tuple[int, int]] = []
    for node in range(2, 6):
        first, second = cell[2 * (node - 2)], cell[2 * (node - 2) + 1]
        if first[0] == second[0]:
            raise ArchError(
                f"Architecture {shown!r}: node {node} of the {label} cell reads node {first[0]} twice, but "
                "NAS-Bench-301 nodes read two different nodes."
            )
        sorted_cell += sorted((first, second))
    return tuple(sorted_cell)


def _literal(text: str, shown):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ArchError(
            f"Architecture {shown!r} is neither a NASLib compact DARTS encoding nor a DARTS Genotype; "
            f"write it like {_EXAMPLE}."
        ) from None


def _compact(value, shown) -> tuple[Cell, Cell]:
    """A compact value (nested sequences) -> (normal, reduce) with sorted nodes."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2:
        raise ArchError(
            f"Architecture {shown!r} must be [normal, reduce], two lists of 8 (input node, op index) pairs, "
            f"like {_EXAMPLE}."
        )
    return _check_cell(value[0], "normal", shown), _check_cell(value[1], "reduce", shown)


def _genotype_cell(pairs, label: str, shown) -> Cell:
    if not isinstance(pairs, (list, tuple)) or len(pairs) != 8:
        count = len(pairs) if isinstance(pairs, (list, tuple)) else "no"
        raise ArchError(
            f"Genotype {shown!r}: {label} has {count} (op, input node) pairs but needs 8, two per "
            "intermediate node, like [('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...]."
        )
    cell = []
    for position, pair in enumerate(pairs):
        well_formed = isinstance(pair, (list, tuple)) and len(pair) == 2
        if not (well_formed and isinstance(pair[0], str) and _is_int(pair[1])):
            raise ArchError(
                f"Genotype {shown!r}: pair {position} of {label} is {pair!r}, not an (op name, input node) pair "
                "like ('sep_conv_3x3', 0)."
            )
        if pair[0] not in OPS:
            hint = " (NAS-Bench-301 has no 'none' op)" if pair[0] == "none" else ""
            raise ArchError(
                f"Genotype {shown!r} uses unknown op {pair[0]!r} in {label}{hint}; use one of {', '.join(OPS)}."
            )
        cell.append((int(pair[1]), OPS.index(pair[0])))
    return _check_nodes(cell, label, shown, name_ops=True)


def _genotype_concat(node: ast.expr, label: str, shown) -> None:
    """normal_concat / reduce_concat must be nodes 2..5 (a list, tuple or range(2, 6))."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            value = list(range(*(ast.literal_eval(arg) for arg in node.args)))
        except (ValueError, TypeError):
            value = None
    else:
        try:
            value = list(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError):
            value = None
    if value != list(CONCAT):
        raise ArchError(
            f"Genotype {shown!r}: {label} must be [2, 3, 4, 5] (NAS-Bench-301 cells concatenate all four "
            "intermediate nodes)."
        )


def _parse_genotype_text(text: str, shown) -> tuple[Cell, Cell]:
    """'Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])' (keywords or
    positional, concat as a list or range(2, 6)) -> (normal, reduce). Parsed with `ast`, never
    evaluated."""
    usage = (
        f"Genotype {shown!r} must be written like Genotype(normal=[('sep_conv_3x3', 0), ...], "
        "normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])."
    )
    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ArchError(usage) from None
    func = call.func if isinstance(call, ast.Call) else None
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name != "Genotype":
        raise ArchError(usage)
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    if len(call.args) > 4 or any(k.arg not in fields for k in call.keywords):
        raise ArchError(usage)
    given = dict(zip(fields, call.args))
    for keyword in call.keywords:
        if keyword.arg in given:
            raise ArchError(usage)
        given[keyword.arg] = keyword.value
    if set(given) != set(fields):
        raise ArchError(usage)
    cells = []
    for label in ("normal", "reduce"):
        try:
            pairs = ast.literal_eval(given[label])
        except (ValueError, TypeError, SyntaxError):
            raise ArchError(usage) from None
        cells.append(_genotype_cell(pairs, label, shown))
        _genotype_concat(given[f"{label}_concat"], f"{label}_concat", shown)
    return cells[0], cells[1]


# ---------------------------------------------------------------------- network


class ReLUConvBN(nn.Module):
    """ReLU -> 1x1 Conv2d (no bias) -> affine BatchNorm2d: a cell-input preprocessing layer
    (DARTS ``ReLUConvBN``; NASLib's makrograph edges with ``affine=True``)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.relu(x)))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs, the second shifted by one pixel,
    concatenated (DARTS / NASLib nasbench301/primitives.py ``FactorizedReduce``).

    Affine BN when it preprocesses a cell input, non-affine as a reduction cell's skip_connect.
    Needs an even input size (the two halves must match).
    """

    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Module):
    """sep_conv_kxk: twice ReLU -> depthwise kxk -> pointwise 1x1 -> BN (non-affine); only the
    first depthwise conv has the stride (DARTS operations.py ``SepConv``)."""

    def __init__(self, C: int, kernel: int, stride: int):
        super().__init__()
        pad = kernel // 2
        self.relu1 = nn.ReLU(inplace=False)
        self.depthwise1 = nn.Conv2d(C, C, kernel, stride=stride, padding=pad, groups=C, bias=False)
        self.pointwise1 = nn.Conv2d(C, C, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(C, affine=False)
        self.relu2 = nn.ReLU(inplace=False)
        self.depthwise2 = nn.Conv2d(C, C, kernel, stride=1, padding=pad, groups=C, bias=False)
        self.pointwise2 = nn.Conv2d(C, C, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(C, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.pointwise1(self.depthwise1(self.relu1(x))))
        return self.bn2(self.pointwise2(self.depthwise2(self.relu2(x))))


class DilConv(nn.Module):
    """dil_conv_kxk: ReLU -> depthwise kxk with dilation 2 -> pointwise 1x1 -> BN (non-affine)."""

    def __init__(self, C: int, kernel: int, stride: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.depthwise = nn.Conv2d(C, C, kernel, stride=stride, padding=kernel - 1, dilation=2, groups=C, bias=False)
        self.pointwise = nn.Conv2d(C, C, 1, bias=False)
        self.bn = nn.BatchNorm2d(C, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pointwise(self.depthwise(self.relu(x))))


class PoolBN(nn.Module):
    """3x3 max or average pool (padding 1; average over real pixels only) -> non-affine BN,
    NASLib's ``MaxPool``/``AvgPool`` with ``use_bn=True`` (DARTS's evaluation network has no BN
    here)."""

    def __init__(self, kind: str, C: int, stride: int):
        super().__init__()
        if kind == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        self.bn = nn.BatchNorm2d(C, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pool(x))


def _edge_op(op: int, C: int, stride: int) -> nn.Module:
    """The module of one op of a cell (NASLib ``_set_ops`` for its 7 non-zero ops)."""
    name = OPS[op]
    if name == "max_pool_3x3":
        return PoolBN("max", C, stride)
    if name == "avg_pool_3x3":
        return PoolBN("avg", C, stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine=False)
    if name.startswith("sep_conv"):
        return SepConv(C, int(name[-1]), stride)
    return DilConv(C, int(name[-1]), stride)


class DARTSCell(nn.Module):
    """One DARTS cell: preprocess both inputs to C channels, node k = op(a) + op(b), output =
    concat(nodes 2..5) with 4C channels.

    ``edges`` holds the cell's 8 ops keyed ``"{src}_{dst}"`` (its edges of the supernet cell), in
    forward order. In a reduction cell the ops reading the cell inputs have stride 2.
    """

    def __init__(self, pairs: Cell, c_prev_prev: int, c_prev: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, C, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, C)
        self.preprocess1 = ReLUConvBN(c_prev, C)
        self.wiring = tuple((src, position // 2 + 2) for position, (src, _) in enumerate(pairs))
        self.edges = nn.ModuleDict()
        for (src, dst), (_, op) in zip(self.wiring, pairs):
            stride = 2 if reduction and src < 2 else 1
            self.edges[f"{src}_{dst}"] = _edge_op(op, C, stride)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for dst in range(2, 6):
            a, b = (src for src, d in self.wiring if d == dst)
            states.append(self.edges[f"{a}_{dst}"](states[a]) + self.edges[f"{b}_{dst}"](states[b]))
        return torch.cat(states[2:], dim=1)


class Stem(nn.Module):
    """3x3 conv (3 -> 3C, no bias) + affine BN, named so the slot reads ``stem``."""

    def __init__(self, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(3, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def reduction_cells(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (DARTS: layers // 3 and 2 * layers // 3)."""
    return layers // 3, 2 * layers // 3


class DARTSNetwork(nn.Module):
    """DARTS ``NetworkCIFAR`` as Suite-Zero built it (module docstring): stem -> `layers` cells,
    the two at layers//3 and 2*layers//3 reducing (channels x2, resolution /2) -> global
    average pool -> Linear. Cell 0 reads the stem twice; cell i reads cells i-2 and i-1.
    """

    def __init__(self, normal: Cell, reduce: Cell, num_classes: int, C: int, layers: int):
        super().__init__()
        self.normal, self.reduce = normal, reduce
        self.stem = Stem(3 * C)
        c_prev_prev, c_prev, c_curr = 3 * C, 3 * C, C
        reductions = reduction_cells(layers)
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            pairs = reduce if reduction else normal
            self.cells.append(DARTSCell(pairs, c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(CONCAT) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every cell in forward order (`layers` tensors; the stem's is not included)."""
        feats = []
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
            feats.append(s1)
        return feats

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output, before global average pooling (DARTS has no final BN/ReLU)."""
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_pre_gap(x)).flatten(1))


# ---------------------------------------------------------------------- the space


class DARTS(SearchSpace):
    """The NAS-Bench-301 DARTS space: encodings, sampling, Suite-Zero's network, layer slots.

    Stateless; the registry holds one instance. Parsed form: ``(normal, reduce)``, each a tuple
    of 8 ``(input node, op index)`` pairs with each node's two pairs sorted.
    """

    name = "darts"
    description = "DARTS / NAS-Bench-301 (CIFAR-10): normal + reduction cell, 4 nodes x 2 of 7 ops, 8 cells at C=32"
    example = _EXAMPLE
    input_kind = "image"
    default_options = dict(_OPTIONS)
    OPS = OPS
    EDGES = EDGES
    NUM_ARCHS = NUM_ARCHS

    # ---------------------------------------------------------------- encodings

    def parse(self, encoding: str) -> tuple[Cell, Cell]:
        """Compact text (Suite-Zero's keys, nested lists or tuples) or Genotype text -> parsed form."""
        if not isinstance(encoding, str):
            raise ArchError(
                f"Architecture {encoding!r} is not a string; give a NASLib compact DARTS encoding such as "
                f"{_EXAMPLE}, or a DARTS Genotype(...)."
            )
        text = encoding.strip()
        if text.startswith("Genotype") or re.match(r"^\w+\.Genotype\b", text):
            return _parse_genotype_text(text, encoding)
        return _compact(_literal(text, encoding), encoding)

    def to_string(self, parsed) -> str:
        """Parsed form -> canonical compact string (Suite-Zero's spelling, nodes sorted)."""
        normal, reduce = _compact(parsed, parsed)
        return str([list(normal), list(reduce)])

    def canonical(self, encoding: str) -> str:
        return self.to_string(self.parse(encoding))

    def to_naslib(self, encoding: str) -> tuple[Cell, Cell]:
        """Canonical NASLib compact tuple ``((8 pairs), (8 pairs))``, hashable as NASLib's
        ``make_compact_immutable`` gives it."""
        return self.parse(encoding)

    def from_naslib(self, value) -> str:
        """NASLib compact value (nested lists/tuples/array, or its text) -> canonical string."""
        if isinstance(value, str):
            return self.canonical(value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        return self.to_string(_compact(value, value))

    def to_genotype(self, encoding: str) -> str:
        """Canonical string (or any accepted spelling) -> DARTS ``Genotype(...)`` text, pairs in
        canonical order."""
        cells = self.parse(encoding)
        normal, reduce = ([(OPS[op], src) for src, op in cell] for cell in cells)
        concat = list(CONCAT)
        return f"Genotype(normal={normal}, normal_concat={concat}, reduce={reduce}, reduce_concat={concat})"

    def from_genotype(self, value) -> str:
        """DARTS genotype (text, or an object with ``normal``/``reduce`` lists such as
        ``genotypes.Genotype``) -> canonical string."""
        if isinstance(value, str):
            text = value.strip()
            if not (text.startswith("Genotype") or re.match(r"^\w+\.Genotype\b", text)):
                raise ArchError(
                    f"Genotype {value!r} must be written like Genotype(normal=[('sep_conv_3x3', 0), ...], "
                    "normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])."
                )
            return self.to_string(_parse_genotype_text(text, value))
        if not all(hasattr(value, f) for f in ("normal", "normal_concat", "reduce", "reduce_concat")):
            raise ArchError(
                f"Genotype {value!r} has no normal/normal_concat/reduce/reduce_concat fields; give a DARTS "
                "Genotype or its text."
            )
        cells = []
        for label in ("normal", "reduce"):
            pairs = [tuple(pair) if isinstance(pair, (list, tuple)) else pair for pair in getattr(value, label)]
            cells.append(_genotype_cell(pairs, label, value))
            concat = getattr(value, f"{label}_concat")
            if not isinstance(concat, (list, tuple, range)) or list(concat) != list(CONCAT):
                raise ArchError(
                    f"Genotype {value!r}: {label}_concat must be [2, 3, 4, 5] (NAS-Bench-301 cells concatenate "
                    "all four intermediate nodes)."
                )
        return self.to_string(tuple(cells))

    # ---------------------------------------------------------------- sampling

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """n distinct architectures, each cell drawn as NASLib's ``sample_random_architecture``
        does (per node two different inputs and two ops, uniformly); duplicates redrawn."""
        if not _is_int(n) or n < 1:
            raise ArchError(f"Cannot sample {n!r} architectures from the DARTS space; ask for a positive number.")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        seen: set[str] = set()
        picks: list[str] = []
        while len(picks) < int(n):
            cells = []
            for _ in range(2):
                cell = []
                for node in range(2, 6):
                    inputs = rng.choice(node, size=2, replace=False)
                    ops = rng.integers(0, len(OPS), size=2)
                    cell += [(int(inputs[0]), int(ops[0])), (int(inputs[1]), int(ops[1]))]
                cells.append(cell)
            encoding = self.to_string(cells)
            if encoding not in seen:
                seen.add(encoding)
                picks.append(encoding)
        return picks

    # ---------------------------------------------------------------- networks

    def check_input_shape(self, shape) -> None:
        """Reject a probe batch shape (N, C, H, W) the DARTS network cannot take.

        The stem expects 3 colour channels; each of the two reductions halves the map with
        `FactorizedReduce`, whose two shifted halves only line up on an even size, so H and W
        must be multiples of 4 (32x32 CIFAR gives 8x8 after the second reduction).
        """
        check_rgb_batch(shape, "DARTS networks", min_side=4, multiple=4)

    def _options(self, options: dict) -> dict:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ArchError(
                f"Unknown DARTS network option(s) {', '.join(unknown)}; the options are C (initial channels, "
                "default 32) and layers (cells, default 8)."
            )
        merged = {**_OPTIONS, **options}
        if not _is_int(merged["C"]) or merged["C"] < 1:
            raise ArchError(f"DARTS network setting C={merged['C']!r} must be a positive integer.")
        if not _is_int(merged["layers"]) or merged["layers"] < 3:
            raise ArchError(
                f"DARTS network setting layers={merged['layers']!r} must be an integer of at least 3, so that a "
                "normal cell comes before the two reduction cells."
            )
        return {k: int(v) for k, v in merged.items()}

    def build(self, encoding: str, num_classes: int = 10, **options) -> DARTSNetwork:
        """The network of one architecture, as Suite-Zero built it for C=32, layers=8.

        Smaller C/layers (e.g. C=8, layers=5) give a narrow/shallow variant for cheap runs.
        Training mode, fresh default initialisation.
        """
        normal, reduce = self.parse(encoding)
        settings = self._options(options)
        if not _is_int(num_classes) or num_classes < 1:
            raise ArchError(f"DARTS network setting num_classes={num_classes!r} must be a positive integer.")
        return DARTSNetwork(normal, reduce, num_classes=int(num_classes), **settings)

    # ---------------------------------------------------------------- slots

    def layer_slots(self, layers: int = 8) -> list[str]:
        """The fixed slots, in forward order: ``stem``, then per cell ``cells.{i}.preprocess0``,
        ``cells.{i}.preprocess1`` and the 14 supernet edges ``cells.{i}.edges.{src}_{dst}``, then
        ``classifier``: 1 + 16 * layers + 1 (130 for 8 cells). Why edges: module docstring."""
        layers = self._options({"layers": layers})["layers"]
        slots = ["stem"]
        for i in range(layers):
            slots += [f"cells.{i}.preprocess0", f"cells.{i}.preprocess1"]
            slots += [f"cells.{i}.edges.{src}_{dst}" for src, dst in EDGES]
        slots.append("classifier")
        return slots

    def slot_of(self, module_path: str) -> str | None:
        """Module path of a built network's layer -> its slot (the path's prefix up to the edge,
        the preprocessing layer, ``stem`` or ``classifier``); None outside every slot."""
        match = _SLOT.match(module_path) if isinstance(module_path, str) else None
        return match.group(1) if match else None
