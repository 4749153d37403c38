"""The NAS-Bench-101 search space (Ying et al., ICML 2019).

A cell is a DAG of at most 7 vertices (input, up to 5 operations, output) and at most 9
edges; each operation is ``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3``. The
network is a 3x3 conv-BN-ReLU stem with 128 channels, 3 stacks of 3 copies of the cell with
a 2x2 max-pool and a channel doubling between stacks, global average pooling and a linear
classifier. `NB101.build` rebuilds it as google-research/nasbench ``nasbench/lib/
model_builder.py`` (``build_module``, ``compute_vertex_channels``) defines it, following the
PyTorch ports NAS-Bench-Suite-Zero used: microsoft/archai ``algos/nasbench101/model.py``
(NASLib's ``zerocost`` branch builds its NB101 networks with archai's ``model_builder.build``)
and romulus0914/NASBench-PyTorch ``nasbench_pytorch/model/model.py``:

* every vertex but the output sums its inputs; a vertex that reads the cell input gets it
  through its own 1x1 conv-BN-ReLU projection; inputs from other vertices are truncated to
  the vertex's channels (the first channels are kept);
* the output vertex concatenates the vertices feeding it; the cell's output channels are
  split evenly among them, the first ones (in vertex order) getting one extra channel when
  the split is uneven, and every other vertex takes the largest channel count among the
  vertices it feeds; when the input also feeds the output, its projection is *added* to the
  concatenation;
* vertices not on an input-output path are pruned first (``model_spec.py`` ``_prune``), and
  validity is judged on the pruned graph as NB101's ``api.py`` ``_check_spec`` does
  (connected, at most 7 vertices and 9 edges).

Departures, all without effect on parameter counts or on the function computed:
BatchNorm keeps PyTorch's defaults (momentum 0.1, eps 1e-5) as archai does (TF NB101 used
decay 0.997); ReLUs are not in-place (NASLib switches archai's off too, hooks need them);
the input projection is added to the output out of place (archai adds in place). Weights get
the ports' initialisation (conv N(0, 2/(k*k*out)), BN 1/0, linear N(0, 0.01) with zero bias),
which is what Suite-Zero's scores were computed with. Parameter counts equal Suite-Zero's
``params`` (tensorwatch's count of leaf-module parameters, in millions) for all 500
architectures of its NB101 table, and NB101's ``trainable_parameters`` for the published
examples (tests/test_space_nb101.py).

Encodings. `parse` accepts the NASLib / Suite-Zero tuple (7x7 adjacency matrix flattened
row-major, then 7 op ints 0 input, 1 output, 2 maxpool3x3, 3 conv1x1-bn-relu,
4 conv3x3-bn-relu; as a list or as the text ``"(0, 1, ...)"`` Suite-Zero uses as keys), the
NB101 spec ``{"matrix": ..., "ops": [...]}`` (also ``module_adjacency`` /
``module_operations``, as NB101's records name them) as a dict or a JSON string, and
zcnas's canonical string, which is the pruned graph written compactly:
``<op codes>|<rows>`` — one code per operation vertex (``3`` conv3x3-bn-relu, ``1``
conv1x1-bn-relu, ``m`` maxpool3x3), then the upper triangle of the adjacency matrix row by
row, rows separated by ``.``, row i holding the edges i->i+1, ..., i->output as 0/1. For
example ``31m33|111100.00001.0001.001.10.1`` is the Inception-like cell of NB101's README;
``|1`` is the cell whose input feeds its output directly.

Spellings that prune to the same graph (dead vertices anywhere, any op on them, NASLib's
padding) share one canonical string. Isomorphic graphs (the same DAG with the operation
vertices numbered differently) do *not*: their networks differ, because the vertex order
decides which vertices get the extra channels and how the output concatenation is ordered
(``131|1100.011.01.1`` and ``311|1100.001.11.1`` are one NB101 architecture with 1,861,666
and 1,865,770 parameters), and zcnas scores networks; Suite-Zero scored each key's own
numbering. NB101 itself keys its records by an isomorphism-invariant hash of the pruned
graph; `NB101.nb101_hash` computes it exactly as ``graph_util.hash_module`` does (checked
against a published record), for joining with NB101 data and for finding isomorphic
duplicates (Suite-Zero's 500 keys are 301 canonical strings and 292 NB101 architectures).

Layer slots. A built network names its parameterised layers by structure, so a module's
path is its slot (identity `slot_of`): ``stem.conv``, then per cell c
``cells.{c}.project{q}.conv`` (the 1x1 projection of the cell input into vertex q),
``cells.{c}.vertex{q}.conv`` (vertex q's own convolution) for q = 1..5, and
``cells.{c}.project_out.conv`` (the input's projection into the output), then
``classifier``: 11 per cell, 101 for the default 9 cells. Vertex q is the q-th operation
vertex in a canonical order that is the same for all isomorphic spellings (vertices sorted
by depth, the longest path from the cell input; ties broken by op, then by wiring), so
``vertex1`` always reads only the cell input, and the same layer of two spellings of one
NB101 architecture lands in the same slot. An architecture fills the slots its vertices
use (a max-pool vertex has no conv; a vertex that does not read the input has no
projection); the other slots stay empty, as NB201's none/skip/pool edges do.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from zcnas.errors import ArchError
from zcnas.spaces.base import SearchSpace, check_rgb_batch

# NB101's config['available_ops'] order: the hash labels an op by its index here.
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
_CODE = {"conv3x3-bn-relu": "3", "conv1x1-bn-relu": "1", "maxpool3x3": "m"}
_OP_OF_CODE = {code: op for op, code in _CODE.items()}
# NASLib naslib/search_spaces/nasbench101/conversions.py all_ops: op int = position.
_NASLIB_OPS = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
MAX_VERTICES = 7
MAX_EDGES = 9
NUM_ARCHS = 423_624  # NB101's unique (isomorphism-class) architectures
_OPTIONS = ("C", "stacks", "cells_per_stack")

_EXAMPLE = "31m33|111100.00001.0001.001.10.1"
_SPEC_EXAMPLE = (
    '{"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}'
)


@dataclass(frozen=True)
class Spec:
    """A pruned, validated NB101 cell: ``matrix[i][j] == 1`` for an edge i->j (i < j),
    ``ops[0] == "input"``, ``ops[-1] == "output"``, op names in between."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    def edges(self) -> list[tuple[int, int]]:
        n = self.num_vertices
        return [(i, j) for i in range(n) for j in range(i + 1, n) if self.matrix[i][j]]


def _is_int(value) -> bool:
    """True for Python/NumPy integers but not bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---------------------------------------------------------------- graph rules


def _prune(matrix: list[list[int]], ops: list[str]):
    """Drop vertices not on an input->output path (nasbench model_spec.py ``_prune``).

    Returns the pruned (matrix, ops), or None when the input does not reach the output.
    """
    n = len(ops)
    from_input, frontier = {0}, [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if matrix[top][v] and v not in from_input:
                from_input.add(v)
                frontier.append(v)
    to_output, frontier = {n - 1}, [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if matrix[v][top] and v not in to_output:
                to_output.add(v)
                frontier.append(v)
    keep = sorted(from_input & to_output)
    if 0 not in keep or n - 1 not in keep:
        return None
    return [[matrix[i][j] for j in keep] for i in keep], [ops[i] for i in keep]


def _validated(matrix, ops, encoding) -> Spec:
    """Check a raw (matrix, ops) pair the way NB101's ModelSpec + api do, then prune it."""
    shown = encoding if isinstance(encoding, str) else repr(encoding)
    if not isinstance(ops, (list, tuple)) or not all(isinstance(op, str) for op in ops):
        raise ArchError(f"Architecture {shown}: ops must be a list of op names, like {_SPEC_EXAMPLE}.")
    try:
        rows = [list(row) for row in matrix]
    except TypeError:
        raise ArchError(f"Architecture {shown}: the matrix must be a list of rows, like {_SPEC_EXAMPLE}.") from None
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise ArchError(f"Architecture {shown}: the adjacency matrix is not square, like {_SPEC_EXAMPLE}.")
    if n > MAX_VERTICES:
        raise ArchError(
            f"Architecture {shown} has {n} vertices but an NB101 cell has at most {MAX_VERTICES} "
            f"(input, up to 5 operations, output)."
        )
    if n < 2:
        raise ArchError(f"Architecture {shown} has {n} vertices but an NB101 cell needs at least input and output.")
    if len(ops) != n:
        raise ArchError(f"Architecture {shown} has {len(ops)} ops for a {n}x{n} matrix; give one op per vertex.")
    if not all(_is_int(x) and int(x) in (0, 1) for row in rows for x in row):
        raise ArchError(f"Architecture {shown}: adjacency matrix entries must be 0 or 1.")
    rows = [[int(x) for x in row] for row in rows]
    if any(rows[i][j] for i in range(n) for j in range(i + 1)):
        raise ArchError(
            f"Architecture {shown}: the adjacency matrix must be strictly upper triangular "
            f"(edges only from a lower- to a higher-numbered vertex)."
        )
    if ops[0] != "input" or ops[-1] != "output":
        raise ArchError(f"Architecture {shown}: the first op must be 'input' and the last 'output'.")
    for op in ops[1:-1]:
        if op not in OPS:
            raise ArchError(f"Architecture {shown} uses unknown operation {op!r}; use one of {', '.join(OPS)}.")
    pruned = _prune(rows, list(ops))
    if pruned is None:
        raise ArchError(f"Architecture {shown} has no path from input to output, so it computes nothing.")
    p_matrix, p_ops = pruned
    n_edges = sum(map(sum, p_matrix))
    if n_edges > MAX_EDGES:
        raise ArchError(
            f"Architecture {shown} has {n_edges} edges after pruning but NB101 allows at most {MAX_EDGES}."
        )
    return Spec(tuple(tuple(row) for row in p_matrix), tuple(p_ops))


def _depths(spec: Spec) -> list[int]:
    """Longest path length from the input to each vertex."""
    depth = [0] * spec.num_vertices
    for j in range(1, spec.num_vertices):
        depth[j] = max((depth[i] + 1 for i in range(j) if spec.matrix[i][j]), default=0)
    return depth


def _canonical_positions(spec: Spec) -> list[int]:
    """Position of each vertex in the isomorphism-invariant order used to name slots.

    Among all renumberings of the operation vertices that keep the matrix upper triangular,
    the one whose (depths, op indices, inverted upper-triangle bits) is smallest; isomorphic
    spellings have the same set of renumbered graphs, hence the same minimum. At most 5! = 120
    candidates.
    """
    n = spec.num_vertices
    depth = _depths(spec)
    best_key, best_order = None, None
    for perm in itertools.permutations(range(1, n - 1)):
        order = (0, *perm, n - 1)
        position = {v: p for p, v in enumerate(order)}
        if any(position[i] > position[j] for i, j in spec.edges()):
            continue
        bits = tuple(1 - spec.matrix[order[a]][order[b]] for a in range(n) for b in range(a + 1, n))
        key = (tuple(depth[v] for v in order), tuple(OPS.index(spec.ops[v]) for v in order[1:-1]), bits)
        if best_key is None or key < best_key:
            best_key, best_order = key, order
    positions = [0] * n
    for p, v in enumerate(best_order):
        positions[v] = p
    return positions


def vertex_channels(c_in: int, c_out: int, matrix) -> list[int]:
    """Output channels of every vertex (nasbench model_builder.py ``compute_vertex_channels``).

    The vertices feeding the output split ``c_out`` evenly, the first ones one channel more
    when it does not divide; every other operation vertex takes the largest count among the
    vertices it feeds (filled from the back, so counts never increase along an edge).
    """
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = c_in, c_out
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(c_out, len(feeders))
    for rank, v in enumerate(feeders):
        channels[v] = share + (1 if rank < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


# ---------------------------------------------------------------- network


class ConvBnRelu(nn.Module):
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU, with named attributes so the conv sits at
    ``<module>.conv`` (the ports wrap these in an ``nn.Sequential``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=1, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if op == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)


class Cell(nn.Module):
    """One NB101 module (cell): see the module docstring for its rules.

    Computes in the spec's vertex order (which decides channel splits and the concatenation
    order) but names its layers by canonical position (``vertex{q}``, ``project{q}``,
    ``project_out``) so that they line up with `NB101.layer_slots`.
    """

    def __init__(self, spec: Spec, c_in: int, c_out: int, positions: list[int]):
        super().__init__()
        n = spec.num_vertices
        self.matrix = spec.matrix
        self.channels = tuple(vertex_channels(c_in, c_out, spec.matrix))
        # Names of the input projection and of the op of each vertex (spec numbering).
        self._project: dict[int, str] = {}
        self._vertex: dict[int, str] = {}
        for v in sorted(range(1, n), key=lambda v: positions[v]):  # registered in slot order
            suffix = "_out" if v == n - 1 else str(positions[v])
            if spec.matrix[0][v]:
                self._project[v] = f"project{suffix}"
                self.add_module(self._project[v], ConvBnRelu(c_in, self.channels[v], 1))
            if v < n - 1:
                self._vertex[v] = f"vertex{suffix}"
                self.add_module(self._vertex[v], _vertex_op(spec.ops[v], self.channels[v]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        m = self.matrix
        tensors = [x]
        concat = []
        for t in range(1, n - 1):
            # Same order as the reference: other vertices first (truncated), input projection last.
            fan_in = [tensors[s][:, : self.channels[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                fan_in.append(getattr(self, self._project[t])(x))
            total = fan_in[0]
            for extra in fan_in[1:]:
                total = total + extra
            tensors.append(getattr(self, self._vertex[t])(total))
            if m[t][n - 1]:
                concat.append(tensors[t])
        if not concat:
            return getattr(self, self._project[n - 1])(x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if m[0][n - 1]:
            out = out + getattr(self, self._project[n - 1])(x)
        return out


class NB101Network(nn.Module):
    """stem -> `stacks` stacks of `cells_per_stack` cells, a 2x2 max-pool and channel doubling
    before every stack but the first -> global average pool -> Linear.

    ``cells`` holds the cells only (the max-pools have no parameters); `forward` returns
    logits; `forward_pre_gap` and `cell_features` serve proxies that need more.
    """

    def __init__(self, spec: Spec, num_classes: int, C: int, stacks: int, cells_per_stack: int):
        super().__init__()
        self.spec = spec
        positions = _canonical_positions(spec)
        self.stem = ConvBnRelu(3, C, 3)
        cells = []
        pool_before = []
        c_in = c_out = C
        for stack in range(stacks):
            if stack > 0:
                c_out *= 2
                pool_before.append(len(cells))
            for _ in range(cells_per_stack):
                cells.append(Cell(spec, c_in, c_out, positions))
                c_in = c_out
        self.cells = nn.ModuleList(cells)
        self.pool_before = frozenset(pool_before)
        self.downsample = nn.MaxPool2d(kernel_size=2, stride=2)
        self.classifier = nn.Linear(c_out, num_classes)
        _init_weights(self)

    def cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every cell in forward order (stacks * cells_per_stack tensors)."""
        feats = []
        h = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in self.pool_before:
                h = self.downsample(h)
            h = cell(h)
            feats.append(h)
        return feats

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output, before global average pooling (NB101 has no final BN/ReLU
        of its own; NASLib's ``forward_before_global_avg_pool`` hooks the same tensor)."""
        return self.cell_features(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_pre_gap(x).mean(dim=(2, 3)))


@torch.no_grad()
def _init_weights(model: nn.Module) -> None:
    """The ports' ``_initialize_weights`` (archai; NASBench-PyTorch with tf_like=False)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, nn.Linear):
            module.weight.normal_(0.0, 0.01)
            module.bias.zero_()


# ---------------------------------------------------------------- the space


class NB101(SearchSpace):
    """The NAS-Bench-101 space: encodings, the NB101 hash, sampling and model building.

    Stateless; the registry holds one instance. User mistakes raise `ArchError` (bad
    encoding or option) or `BenchmarkError` (a probe batch the network cannot take).
    """

    name = "nb101"
    description = "NAS-Bench-101: a cell DAG of up to 7 vertices and 9 edges, 3 ops (423,624 architectures)"
    example = _EXAMPLE
    input_kind = "image"
    default_options = {"C": 128, "stacks": 3, "cells_per_stack": 3}
    small_options = {"C": 8, "stacks": 3, "cells_per_stack": 1}
    OPS = OPS
    NUM_ARCHS = NUM_ARCHS

    # ---------------------------------------------------------------- encodings

    def parse(self, encoding) -> Spec:
        """Any accepted spelling (see the module docstring) -> the pruned, validated `Spec`."""
        if isinstance(encoding, Spec):
            return _validated(encoding.matrix, encoding.ops, encoding)
        if isinstance(encoding, dict):
            return self._from_spec_dict(encoding, encoding)
        if isinstance(encoding, (list, tuple, np.ndarray)):
            return self._from_naslib_ints(encoding, encoding)
        if not isinstance(encoding, str):
            raise ArchError(
                f"Architecture {encoding!r} is not a string, NASLib tuple or spec dict; give an NB101 "
                f"cell such as {_EXAMPLE}."
            )
        text = encoding.strip()
        if text.startswith(("(", "[")):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ArchError(
                    f"Architecture {encoding!r} is not a NASLib tuple of ints such as (0, 1, 0, ..., 4, 1)."
                ) from None
            return self._from_naslib_ints(value, encoding)
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ArchError(
                    f"Architecture {encoding!r} is not valid JSON; write a spec like {_SPEC_EXAMPLE}."
                ) from None
            return self._from_spec_dict(value, encoding)
        return self._from_compact(text, encoding)

    def _from_spec_dict(self, value, encoding) -> Spec:
        if not isinstance(value, dict):
            raise ArchError(f"Architecture {encoding!r} must be a dict with matrix and ops, like {_SPEC_EXAMPLE}.")
        for matrix_key, ops_key in (("matrix", "ops"), ("module_adjacency", "module_operations")):
            if matrix_key in value and ops_key in value:  # other keys (an NB101 record's metrics) are ignored
                matrix = value[matrix_key]
                matrix = matrix.tolist() if isinstance(matrix, np.ndarray) else matrix
                ops = value[ops_key]
                ops = list(ops) if isinstance(ops, (list, tuple, np.ndarray)) else ops
                if isinstance(ops, list):
                    ops = [str(op) if isinstance(op, np.str_) else op for op in ops]
                return _validated(matrix, ops, encoding)
        raise ArchError(f"Architecture {encoding!r} must have the keys matrix and ops, like {_SPEC_EXAMPLE}.")

    def _from_naslib_ints(self, value, encoding) -> Spec:
        shown = encoding if isinstance(encoding, str) else repr(encoding)
        what = (
            f"NASLib encoding {shown} must be an n*n adjacency matrix flattened row-major followed by n op ints "
            "(0 input, 1 output, 2 maxpool3x3, 3 conv1x1-bn-relu, 4 conv3x3-bn-relu), 56 ints for n = 7."
        )
        items = list(value.tolist() if isinstance(value, np.ndarray) else value) if isinstance(
            value, (list, tuple, np.ndarray)
        ) else None
        if items is None or not all(_is_int(v) for v in items):
            raise ArchError(what)
        sizes = {k * k + k: k for k in range(2, MAX_VERTICES + 1)}
        if len(items) not in sizes:
            raise ArchError(what)
        n = sizes[len(items)]
        op_ints = [int(v) for v in items[n * n :]]
        if not all(0 <= v < len(_NASLIB_OPS) for v in op_ints):
            raise ArchError(what)
        matrix = [[int(v) for v in items[i * n : (i + 1) * n]] for i in range(n)]
        return _validated(matrix, [_NASLIB_OPS[v] for v in op_ints], encoding)

    def _from_compact(self, text: str, encoding) -> Spec:
        what = (
            f"Architecture {encoding!r} is not an NB101 cell: write op codes (3 conv3x3, 1 conv1x1, m maxpool), "
            f"'|', then the adjacency rows separated by '.', like {_EXAMPLE}."
        )
        codes, sep, rows_text = text.partition("|")
        if not sep or any(c not in _OP_OF_CODE for c in codes):
            raise ArchError(what)
        n = len(codes) + 2
        rows = rows_text.split(".")
        if n > MAX_VERTICES:
            raise ArchError(
                f"Architecture {encoding!r} has {n} vertices but an NB101 cell has at most {MAX_VERTICES} "
                f"(input, up to 5 operations, output)."
            )
        if len(rows) != n - 1 or any(len(row) != n - 1 - i or set(row) - {"0", "1"} for i, row in enumerate(rows)):
            raise ArchError(
                f"Architecture {encoding!r}: {len(codes)} op codes need {n - 1} rows of 0/1 of lengths "
                f"{', '.join(str(n - 1 - i) for i in range(n - 1))}, like {_EXAMPLE}."
            )
        matrix = [[0] * n for _ in range(n)]
        for i, row in enumerate(rows):
            for k, bit in enumerate(row):
                matrix[i][i + 1 + k] = int(bit)
        ops = ["input", *(_OP_OF_CODE[c] for c in codes), "output"]
        return _validated(matrix, ops, encoding)

    def to_string(self, spec: Spec) -> str:
        """A pruned `Spec` -> the compact canonical string."""
        n = spec.num_vertices
        codes = "".join(_CODE[op] for op in spec.ops[1:-1])
        rows = ".".join("".join(str(spec.matrix[i][j]) for j in range(i + 1, n)) for i in range(n - 1))
        return f"{codes}|{rows}"

    def canonical(self, encoding) -> str:
        """Validated, pruned compact string: the key used everywhere in zcnas."""
        return self.to_string(self.parse(encoding))

    def to_spec(self, encoding) -> dict:
        """The pruned NB101 spec ``{"matrix": n x n list, "ops": [names]}`` (NB101's ModelSpec args)."""
        spec = self.parse(encoding)
        return {"matrix": [list(row) for row in spec.matrix], "ops": list(spec.ops)}

    def to_naslib(self, encoding) -> tuple[int, ...]:
        """The 56-int NASLib tuple, padded to 7 vertices as NASLib's ``convert_to_cell`` pads
        a pruned NB101 matrix (empty rows before the output, padding ops conv3x3-bn-relu)."""
        spec = self.parse(encoding)
        n = spec.num_vertices
        index = list(range(n - 1)) + [MAX_VERTICES - 1]  # pruned vertex -> padded vertex
        matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
        for i, j in spec.edges():
            matrix[index[i]][index[j]] = 1
        ops = list(spec.ops[:-1]) + ["conv3x3-bn-relu"] * (MAX_VERTICES - n) + ["output"]
        return tuple(x for row in matrix for x in row) + tuple(_NASLIB_OPS.index(op) for op in ops)

    def from_naslib(self, value) -> str:
        """NASLib tuple (ints, or text like "(0, 1, ..., 4, 1)") -> canonical string."""
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith(("(", "[")):
                text = f"({text})"
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ArchError(
                    f"NASLib encoding {value!r} is not a tuple of ints such as (0, 1, 0, ..., 4, 1)."
                ) from None
        return self.to_string(self._from_naslib_ints(value, value))

    def nb101_hash(self, encoding) -> str:
        """NB101's isomorphism-invariant MD5 of the pruned cell (nasbench ``graph_util.hash_module``
        with labels -1 input, -2 output, else the op's index in `OPS`): the key of NB101's
        records, equal for isomorphic spellings."""
        spec = self.parse(encoding)
        n = spec.num_vertices
        m = spec.matrix
        labels = [-1] + [OPS.index(op) for op in spec.ops[1:-1]] + [-2]
        in_degree = [sum(m[i][j] for i in range(n)) for j in range(n)]
        out_degree = [sum(m[i]) for i in range(n)]
        hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(n)]
        for _ in range(n):
            hashes = [
                _md5(
                    "".join(sorted(hashes[w] for w in range(n) if m[w][v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in range(n) if m[v][w]))
                    + "|"
                    + hashes[v]
                )
                for v in range(n)
            ]
        return _md5(str(sorted(hashes)))

    # ---------------------------------------------------------------- sampling

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """n distinct canonical cells, by NB101's own rejection sampling.

        As NB101's example code and NASLib's ``sample_random_architecture`` do: every
        upper-triangular entry of a 7x7 matrix is an edge with probability 1/2, every
        operation vertex one of the 3 ops uniformly; a draw is kept when its pruned graph is a
        valid cell and its canonical string is new. This is uniform over valid 7x7 *spellings*,
        not over architectures: cells that many spellings prune to (small ones) come up more
        often, as in Suite-Zero's NB101 sample. Draws come in fixed batches so the result
        depends on `rng` alone.
        """
        if not _is_int(n) or not 1 <= int(n) <= NUM_ARCHS:
            raise ArchError(f"Cannot sample {n!r} architectures from NAS-Bench-101; ask for 1..{NUM_ARCHS}.")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        upper = [(i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)]
        found: dict[str, None] = {}
        while len(found) < n:
            edge_bits = rng.integers(0, 2, size=(256, len(upper)))
            op_ints = rng.integers(0, len(OPS), size=(256, MAX_VERTICES - 2))
            for bits, op_row in zip(edge_bits.tolist(), op_ints.tolist()):
                matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
                for (i, j), bit in zip(upper, bits):
                    matrix[i][j] = bit
                pruned = _prune(matrix, ["input", *(OPS[k] for k in op_row), "output"])
                if pruned is None or sum(map(sum, pruned[0])) > MAX_EDGES:
                    continue
                key = self.to_string(Spec(tuple(map(tuple, pruned[0])), tuple(pruned[1])))
                found.setdefault(key)
                if len(found) == n:
                    break
        return list(found)

    # ---------------------------------------------------------------- networks

    def _check_options(self, options: dict) -> dict:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ArchError(
                f"Unknown NAS-Bench-101 network option {unknown[0]!r}; the options are {', '.join(_OPTIONS)}."
            )
        merged = {**self.default_options, **options}
        for label, value in merged.items():
            if not _is_int(value) or value < 1:
                raise ArchError(f"NAS-Bench-101 network setting {label}={value!r} must be a positive integer.")
        return {k: int(v) for k, v in merged.items()}

    def check_input_shape(self, shape) -> None:
        """Reject a probe batch shape (N, C, H, W) the NB101 network cannot take.

        The stem takes 3 colour channels; the two 2x2 max-pools of the default 3 stacks need
        images of at least 4x4 (32x32 CIFAR ends at 8x8).
        """
        check_rgb_batch(shape, "NAS-Bench-101 networks", min_side=4)

    def build(self, encoding, num_classes: int = 10, **options) -> NB101Network:
        """The network of one cell, exactly as NB101 (and Suite-Zero) built it for the default
        options (C=128, stacks=3, cells_per_stack=3); smaller values give cheap variants.
        Training mode, the ports' initialisation (see the module docstring)."""
        spec = self.parse(encoding)
        if not _is_int(num_classes) or num_classes < 1:
            raise ArchError(f"NAS-Bench-101 network setting num_classes={num_classes!r} must be a positive integer.")
        opts = self._check_options(options)
        feeders = sum(spec.matrix[v][-1] for v in range(1, spec.num_vertices - 1))
        if opts["C"] < feeders:
            raise ArchError(
                f"NAS-Bench-101 setting C={opts['C']} is too narrow for {self.to_string(spec)}: its output "
                f"concatenates {feeders} vertices, so C must be at least {feeders}."
            )
        return NB101Network(spec, num_classes=int(num_classes), **opts)

    def layer_slots(self, stacks: int = 3, cells_per_stack: int = 3) -> list[str]:
        """The fixed slot list (module docstring): stem, 11 per cell, classifier; 101 by default."""
        self._check_options({"stacks": stacks, "cells_per_stack": cells_per_stack})
        slots = ["stem.conv"]
        for c in range(stacks * cells_per_stack):
            for q in range(1, MAX_VERTICES - 1):
                slots += [f"cells.{c}.project{q}.conv", f"cells.{c}.vertex{q}.conv"]
            slots.append(f"cells.{c}.project_out.conv")
        slots.append("classifier")
        return slots


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
