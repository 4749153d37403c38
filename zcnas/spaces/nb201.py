"""The NAS-Bench-201 (NATS-Bench topology) search space.

One cell with 4 nodes and 6 edges, each edge one of 5 operations: 5**6 = 15,625
architectures. Three encodings are in common use and zcnas converts between them:

* the NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (zcnas's canonical form: it is what
  the benchmark files and most papers print);
* the NASLib 6-tuple of op ints (NAS-Bench-Suite-Zero and AnalogNAS-Bench use it), whose edge
  order and op numbering both differ from the string's;
* zcnas's ``ordinal``, a plain mixed-radix enumeration.  It is *not* the benchmark's
  architecture index: that index is the row order in which NB201/NATS-Bench stored its
  trained networks and follows no formula (checked against all 15,625 rows of the NATS
  ``index`` column: no mixed-radix order over any op or edge permutation matches more than
  8 rows), so it belongs to a benchmark file (``archs/index``), never to the space.

`NB201.build` rebuilds the benchmark's network (AutoDL-Projects' ``TinyNetwork``) exactly, so
that parameter counts, FLOPs and proxy scores match the published ones, but names every
parameterised layer by its structural *slot* rather than by the op in it, so per-layer
statistics of different architectures line up (see `NB201.layer_slots`).
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np
import torch
from torch import nn

from zcnas.errors import ArchError
from zcnas.spaces.base import SearchSpace, check_rgb_batch

_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"

# NASLib op ints (naslib/search_spaces/nasbench201/conversions.py): position = int.
_NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
# NASLib tuple position k holds edge _NASLIB_EDGES[k] (src, dst).
_NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d(bias=False) -> BatchNorm2d, the NB201 conv op and ResNet-block half.

    The three layers are named attributes (not an ``nn.Sequential``) so that the conv sits at
    ``<slot>.conv`` whatever its kernel size, which is what makes per-layer statistics of a
    3x3 and a 1x1 edge comparable.  The ReLU is not in-place because proxies hook on it and
    an in-place ReLU would overwrite the tensor another hook or the residual sum still needs.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.relu(x)))


class Zero(nn.Module):
    """The ``none`` op: multiplies by zero instead of returning a fresh zero tensor.

    Keeping the input in the autograd graph (as AutoDL's ``Zero`` does) matters to gradient
    proxies: a 'none' edge then contributes a zero gradient rather than cutting the graph.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _edge_op(op: str, C: int) -> nn.Module:
    """One edge of a normal cell (stride 1, C -> C), as in AutoDL's ``OPS`` table."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(C, C, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(C, C, 3)
    if op == "avg_pool_3x3":
        # count_include_pad=False: border pixels average only real neighbours, as in NB201.
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ArchError(f"Unknown NAS-Bench-201 operation {op!r}; use one of {', '.join(NB201.OPS)}.")


class Cell(nn.Module):
    """A normal NB201 cell: node j = sum over i < j of op_{i->j}(node i); output = node 3.

    ``edges`` is indexed in the string's edge order, which is also a valid forward order
    (every edge into node j comes after all edges into earlier nodes).
    """

    def __init__(self, ops: tuple[str, ...], C: int):
        super().__init__()
        self.edges = nn.ModuleList(_edge_op(op, C) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, 4):
            total = None
            for e, (src, d) in enumerate(NB201.EDGES):
                if d != dst:
                    continue
                out = self.edges[e](nodes[src])
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[3]


class Downsample(nn.Module):
    """Shortcut of the reduction block: AvgPool2d(2, 2) then a bias-free 1x1 conv.

    A module with a named ``conv`` (not an ``nn.Sequential``) so the slot reads
    ``cells.{i}.downsample.conv``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2, padding=0)
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class ResNetBlock(nn.Module):
    """The fixed reduction block between stages (AutoDL ``ResNetBasicblock``, stride 2).

    Output = downsample(x) + conv_b(conv_a(x)); it is the same in every architecture.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1)
        self.downsample = Downsample(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv_b(self.conv_a(x))
        return self.downsample(x) + branch


class Stem(nn.Module):
    """3x3 conv (3 -> C, no bias) + BN, with named attributes so the slot is ``stem.conv``."""

    def __init__(self, C: int):
        super().__init__()
        self.conv = nn.Conv2d(3, C, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class LastAct(nn.Module):
    """The BN + ReLU after the last cell (non-inplace ReLU so hooks see its output intact)."""

    def __init__(self, C: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(C)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(x))


class NB201Network(nn.Module):
    """The NB201 macro skeleton (AutoDL ``TinyNetwork``) around one cell genotype.

    stem -> N cells at C -> reduction to 2C -> N cells at 2C -> reduction to 4C -> N cells
    at 4C -> BN + ReLU -> global average pool -> Linear(4C, num_classes).  ``cells`` holds the
    3N normal cells and the 2 reduction blocks in forward order, as AutoDL does, so cell
    indices in module names match the benchmark's.

    ``forward`` returns logits only (AutoDL returns ``(features, logits)``); proxies that
    need more call `forward_pre_gap` or `cell_features`.
    """

    def __init__(self, ops: tuple[str, ...], num_classes: int, C: int, N: int):
        super().__init__()
        self.ops = tuple(ops)
        self.stem = Stem(C)
        cells: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBlock(channels, channels * 2))
                channels *= 2
            cells.extend(Cell(self.ops, channels) for _ in range(N))
        self.cells = nn.ModuleList(cells)
        self.lastact = LastAct(channels)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every cell and reduction block, in forward order (3N + 2 tensors).

        The stem output is not included.  AZ-NAS scores how features evolve from block to
        block, so it needs them all from one forward pass.
        """
        feats = []
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h)
            feats.append(h)
        return feats

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map after the final BN + ReLU, before global average pooling.

        Zen-score measures the expressivity of this map, which pooling would hide.
        """
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h)
        return self.lastact(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.global_pooling(self.forward_pre_gap(x))
        return self.classifier(h.flatten(1))


def _is_int(value) -> bool:
    """True for Python/NumPy integers but not bools (True would silently mean op 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


class NB201(SearchSpace):
    """The NAS-Bench-201 space: encodings, enumeration, sampling and model building.

    Stateless; the registry holds one instance.  Every user-facing error is an `ArchError`
    (bad encoding) or `BenchmarkError` (probe batch the network cannot take).
    """

    name = "nb201"
    description = "NAS-Bench-201 / NATS-Bench topology: one 4-node cell, 6 edges x 5 ops (15,625 architectures)"
    example = _EXAMPLE
    input_kind = "image"
    default_options = {"C": 16, "N": 5}
    small_options = {"C": 4, "N": 1}
    OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    # (src, dst) in the string's order |0->1|+|0->2|1->2|+|0->3|1->3|2->3|.
    EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    NUM_ARCHS = 5**6

    # ---------------------------------------------------------------- strings

    def parse(self, encoding: str) -> tuple[str, ...]:
        """NB201 string -> the 6 op names in string (= `EDGES`) order.

        Strict about structure (3 '+'-separated nodes with 1, 2, 3 edges reading from ~0, ~1,
        ~2 in order) so that two spellings of one architecture cannot both pass and then
        miss each other in a benchmark lookup; only surrounding whitespace is forgiven.
        """
        if not isinstance(encoding, str):
            raise ArchError(
                f"Architecture {encoding!r} is not a string; give a NAS-Bench-201 cell string such as {_EXAMPLE}."
            )
        text = encoding.strip()
        groups = text.split("+")
        if len(groups) != 3:
            raise ArchError(
                f"Architecture {encoding!r} has {len(groups)} '+'-separated node group(s) but a "
                f"NAS-Bench-201 cell string has 3, like {_EXAMPLE}."
            )
        ops: list[str] = []
        for dst, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise ArchError(
                    f"Architecture {encoding!r}: node {dst} group {group!r} must be edges wrapped in '|', "
                    f"like {_EXAMPLE}."
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != dst:
                raise ArchError(
                    f"Architecture {encoding!r}: node {dst} has {len(tokens)} incoming edge(s) but needs "
                    f"exactly {dst} (from nodes 0..{dst - 1}), like {_EXAMPLE}."
                )
            for src, token in enumerate(tokens):
                op, sep, node = token.partition("~")
                if not sep:
                    raise ArchError(
                        f"Architecture {encoding!r}: edge {token!r} into node {dst} is not of the form "
                        f"op~input (e.g. nor_conv_3x3~{src})."
                    )
                if op not in self.OPS:
                    raise ArchError(
                        f"Architecture {encoding!r} uses unknown operation {op!r}; use one of "
                        f"{', '.join(self.OPS)}."
                    )
                if node != str(src):
                    raise ArchError(
                        f"Architecture {encoding!r}: edge {token!r} into node {dst} reads from node {node!r} "
                        f"but edge {src + 1} of that node must read from node {src} (write {op}~{src})."
                    )
                ops.append(op)
        return tuple(ops)

    def to_string(self, ops) -> str:
        """6 op names in `EDGES` order -> the canonical NB201 string."""
        ops = tuple(ops) if isinstance(ops, (list, tuple)) else ops
        if not isinstance(ops, tuple) or len(ops) != 6:
            raise ArchError(
                f"Operation list {ops!r} must hold exactly 6 NAS-Bench-201 op names, one per edge."
            )
        for op in ops:
            if op not in self.OPS:
                raise ArchError(f"Unknown NAS-Bench-201 operation {op!r}; use one of {', '.join(self.OPS)}.")
        o = ops
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    def canonical(self, encoding: str) -> str:
        """Validated, whitespace-stripped string: the key used everywhere in zcnas."""
        return self.to_string(self.parse(encoding))

    # ---------------------------------------------------------------- NASLib

    def to_naslib(self, encoding: str) -> tuple[int, ...]:
        """NB201 string -> NASLib 6-tuple (NASLib edge order and op ints)."""
        ops = self.parse(encoding)
        by_edge = dict(zip(self.EDGES, ops))
        return tuple(_NASLIB_OPS.index(by_edge[edge]) for edge in _NASLIB_EDGES)

    def from_naslib(self, value) -> str:
        """NASLib 6-tuple (tuple/list of ints, or text like "4,3,3,0,0,0" / "(4, 3, 3, 0, 0, 0)")
        -> canonical NB201 string.

        Text is accepted because CSV/JSON exports of NAS-Bench-Suite-Zero store the tuple as a
        string.
        """
        what = (
            f"NASLib encoding {value!r} must be 6 integers 0..4 "
            "(0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3), e.g. '4,3,3,0,0,0'."
        )
        if isinstance(value, str):
            text = value.strip()
            if len(text) >= 2 and text[0] in "([" and text[-1] in ")]":
                text = text[1:-1]
            try:
                items = [int(part.strip()) for part in text.split(",")]
            except ValueError:
                raise ArchError(what) from None
        elif isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
        else:
            raise ArchError(what)
        if len(items) != 6 or not all(_is_int(v) and 0 <= int(v) <= 4 for v in items):
            raise ArchError(what)
        by_edge = {edge: _NASLIB_OPS[int(v)] for edge, v in zip(_NASLIB_EDGES, items)}
        return self.to_string(tuple(by_edge[edge] for edge in self.EDGES))

    # ---------------------------------------------------------------- enumeration

    def ordinal(self, encoding: str) -> int:
        """zcnas's canonical enumeration number 0..15624 of an architecture.

        Mixed radix in AutoDL ``gen_all`` order: edges in string order with the first edge
        most significant, ops in `OPS` order.  This is NOT the NAS-Bench-201 / NATS-Bench
        architecture index: that index is a property of a benchmark (the order in which its
        networks were stored, no formula) and is read from each benchmark file's
        ``archs/index``.
        """
        value = 0
        for op in self.parse(encoding):
            value = value * 5 + self.OPS.index(op)
        return value

    def from_ordinal(self, i: int) -> str:
        """Inverse of `ordinal`."""
        if not _is_int(i) or not 0 <= int(i) < self.NUM_ARCHS:
            raise ArchError(
                f"Ordinal {i!r} is not an integer in 0..{self.NUM_ARCHS - 1}; NB201 has {self.NUM_ARCHS} architectures."
            )
        i = int(i)
        digits = []
        for _ in range(6):
            i, d = divmod(i, 5)
            digits.append(self.OPS[d])
        return self.to_string(tuple(reversed(digits)))

    def all_encodings(self) -> list[str]:
        """All 15,625 canonical strings, in `ordinal` order."""
        return [self.to_string(ops) for ops in itertools.product(self.OPS, repeat=6)]

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """n distinct architectures drawn uniformly without replacement.

        Takes the Generator explicitly so a run's seed alone fixes which archs it scores.
        """
        if not _is_int(n) or not 1 <= int(n) <= self.NUM_ARCHS:
            raise ArchError(
                f"Cannot sample {n!r} architectures from NAS-Bench-201; ask for 1..{self.NUM_ARCHS}."
            )
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        picks = rng.choice(self.NUM_ARCHS, size=int(n), replace=False)
        return [self.from_ordinal(int(i)) for i in picks]

    # ---------------------------------------------------------------- networks

    def check_input_shape(self, shape) -> None:
        """Reject a probe batch shape (N, C, H, W) the NB201 network cannot take.

        The stem expects 3 colour channels, and the two stride-2 reductions need H and W of
        at least 8 so the last stage still has a 2x2 map (32x32 CIFAR gives 8x8).
        """
        check_rgb_batch(shape, "NAS-Bench-201 networks", min_side=8)

    def build(self, encoding: str, num_classes: int = 10, C: int = 16, N: int = 5, **options) -> NB201Network:
        """The network of one architecture, exactly as NAS-Bench-201 trained it for C=16, N=5.

        Smaller C/N (e.g. C=8, N=1) give a narrow/shallow variant for cheap runs.  The model is
        left in training mode with fresh default initialisation; proxies choose mode and init.
        """
        if options:
            raise ArchError(
                f"The nb201 space has no build option {sorted(options)[0]!r}; its options are C (channels) and N (cells per stage)."
            )
        ops = self.parse(encoding)
        for label, value in (("num_classes", num_classes), ("C", C), ("N", N)):
            if not _is_int(value) or value < 1:
                raise ArchError(f"NAS-Bench-201 network setting {label}={value!r} must be a positive integer.")
        return NB201Network(ops, num_classes=int(num_classes), C=int(C), N=int(N))

    def layer_slots(self, N: int = 5) -> list[str]:
        """Every Conv2d/Linear module path any NB201 network can have, in forward order.

        An architecture fills a subset (edges holding none/skip/pool have no conv); aligning
        per-layer statistics on these names makes them comparable across architectures.
        For N=5: 1 stem + 15 cells x 6 edges + 2 reductions x 3 + 1 classifier = 98.
        """
        slots = ["stem.conv"]
        index = 0
        for stage in range(3):
            if stage > 0:
                slots += [f"cells.{index}.conv_a.conv", f"cells.{index}.conv_b.conv", f"cells.{index}.downsample.conv"]
                index += 1
            for _ in range(N):
                slots += [f"cells.{index}.edges.{e}.conv" for e in range(len(self.EDGES))]
                index += 1
        slots.append("classifier")
        return slots
