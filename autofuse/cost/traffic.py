"""The global-memory bytes one generated kernel moves: the count the cost model's HBM time is
computed from, and the count `--verify-kernels` compares with what the emulator measured.

The code generator (autofuse/codegen/lower.py) emits a fused group as its MatMul members on the
cube, then one vector walk per separate computation of the group (a "part": the q and the k half
of a rotary pair are two), each over the Tile that tiling.py chose. That kernel moves:

- every output, written once;
- per MatMul: each cube block reads its rows of A and its columns of B (`matmul_split`), so A is
  read once per N-block and B once per M-block, for every matrix of a batched MatMul
  (`cube_shape`; an operand shared by the batch is read once per matrix too); the result is
  written to the output it is, or to the GM workspace, which the vector part then reads back.
  Our generator takes the workspace on every target: the Atlas 300I's L0C->UB path (the cube's
  result handed to the vector unit on chip) would save that round trip, but no template of ours
  uses it yet, so it is not priced;
- per part, every tensor it reads (a group input or a MatMul result): a streamed tensor once per
  row of the walk at the width the row reads (a full-size input once; a broadcast input too big
  to keep whole, or growing with a symbolic dim of a shape-generic kernel, once per row that
  uses it); a small broadcast input (a norm's gamma, a bias, rotary cos/sin: up to
  WHOLE_BROADCAST bytes, tiling.py kept_whole) loaded whole once by every core that has tiles of
  the part; a split row (a row longer than UB holds) reads its tensors once per pass that needs
  them;
- nothing for one-number constants (compiled into the kernel) or shape operands.

Re-reads count in full as HBM traffic. On the device L2 may serve some of them (every core loads a
resident at about the same time), which cannot be measured here; the model counts the bytes the
kernel asks for, which is what the emulator counts, and errs on the slow side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autofuse.cost.tiling import Tile, kept_whole, whole_rows
from autofuse.errors import AutofuseError
from autofuse.ir.graph import Graph, Node
from autofuse.ir.views import slice_bounds
from autofuse.ops.table import scalar_factor
from autofuse.yamlfile import read_yaml

if TYPE_CHECKING:
    from autofuse.cost.model import CostModel

# Operands that carry a shape, axes or bounds rather than tensor data (no kernel loads them).
SHAPE_OPERANDS = {"Reshape": (1,), "Expand": (1,), "Unsqueeze": (1,), "Squeeze": (1,), "Slice": (1, 2, 3, 4),
                  "Split": (1,), "Tile": (1,), "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,),
                  "ReduceMin": (1,), "ReduceProd": (1,), "ReduceSumSquare": (1,), "ReduceL1": (1,),
                  "ReduceL2": (1,), "ReduceLogSumExp": (1,), "ReduceLogSum": (1,), "ConstantOfShape": (0,)}
# Views the generator reads through strides instead of computing (Slice/Split select a part).
_VIEWS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand", "Transpose"})
_SLICES = ("Slice", "Split")
_MATMULS = ("MatMul", "Gemm")
_REDUCES = frozenset({"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"})
# How the vector unit writes each op (the code generator's table): the steps of decomposed ops
# tell how many passes a split row takes.
_VECTOR_OPS = Path(__file__).resolve().parent.parent / "_templates" / "vector_ops.yaml"


class UnknownShape(Exception):
    """A tensor crossing the kernel boundary has an unknown rank or dim."""


def data_inputs(node: Node) -> list[str]:
    """The inputs a node reads as tensor data (shape operands, axes and Shape/Size excluded)."""
    if node.op_type in ("Shape", "Size"):
        return []
    skip = SHAPE_OPERANDS.get(node.op_type, ())
    return [v for i, v in enumerate(node.inputs) if v and i not in skip]


def _data_table(graph: Graph) -> tuple[tuple[str, ...], ...]:
    """data_inputs of every node of the graph, computed once per graph."""
    return tuple(tuple(data_inputs(n)) for n in graph.nodes)


def matmul_split(m: int, n: int, k: int, blocks: int) -> tuple[int, int]:
    """(M-blocks, N-blocks) of a [m, k] x [k, n] MatMul spread over `blocks` cube cores: the split
    whose block moves the fewest elements (its rows of A, its columns of B and its C block), block
    sides rounded up to 16. This is the rule of the Matmul tiling our emulator implements
    (autofuse/emulator/include/tiling/tiling_api.h); on the device CANN's tiling library picks
    the split (unchecked here), and each block still reads its own rows of A and columns of B."""
    best: tuple[int, int, int] | None = None
    for m_dim in range(1, blocks + 1):
        n_dim = blocks // m_dim
        side_m, side_n = _round16(-(-m // m_dim)), _round16(-(-n // n_dim))
        cost = (side_m + side_n) * k + side_m * side_n
        if best is None or cost < best[0]:
            best = (cost, side_m, side_n)
    assert best is not None
    side_m, side_n = min(best[1], m), min(best[2], n)
    return -(-m // side_m), -(-n // side_n)


@dataclass(frozen=True)
class CubeShape:
    """A MatMul as the cube computes it: `batch` products of [m, k] x [k, n]. A 2-D weight with a
    batched activation is one product over the activation's rows flattened (batch 1); a weight
    with batch axes (QK^T, scores x V, per-expert stacked weights) is one product per matrix of
    the result, the operands' batch axes broadcast to the result's."""

    batch: int
    m: int
    n: int
    k: int


def cube_shape(a: tuple[int, ...], b: tuple[int, ...], c: tuple[int, ...], trans_a: bool = False,
               trans_b: bool = False) -> CubeShape:
    """The one definition of a MatMul's cube geometry, read by the cost model and the generator."""
    k = a[-2] if trans_a and len(a) > 1 else a[-1]
    n = b[-2] if trans_b else (b[-1] if len(b) > 1 else 1)
    if len(b) <= 2:
        return CubeShape(1, math.prod(a) // max(k, 1), n, k)
    m = (a[-1] if trans_a else a[-2]) if len(a) > 1 else 1
    return CubeShape(math.prod(c[:-2]), m, n, k)


def cube_flops(shapes) -> float:
    """FLOPs of the MatMuls of one kernel (CubeShapes): what sizes its cube launch
    (CostModel.cube_cores), for the cost model and the generator alike."""
    return sum(2.0 * s.batch * s.m * s.n * s.k for s in shapes)


def cube_dim(blocks: int, batch: int) -> int:
    """Cube cores one matrix of a batched MatMul is split over: the launch's cube blocks shared
    by the batch (each block then takes whole matrices in turn when the batch outnumbers them).
    The host tiling (codegen_templates/host/tiling_func.h.j2) applies the same rule."""
    return max(1, blocks // max(batch, 1))


def operand_scales(nodes: list[Node], graph: Graph, outputs: set[str]) -> dict[str, Node]:
    """MatMul operands that are another member times (or over) a constant number, read by
    nothing else and not outputs: the planner lets such a scale join as a prologue because
    (c A) B = c (A B), so the cube reads the unscaled operand and the vector unit scales the
    result. Scaled operand -> its Mul/Div. One decision for the generator (codegen/lower.py),
    the UB count (layout.py) and the byte count."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    uses: dict[str, int] = {}
    for node in nodes:
        for value in data_inputs(node):
            uses[value] = uses.get(value, 0) + 1
    found: dict[str, Node] = {}
    for node in nodes:
        if node.op_type not in _MATMULS:
            continue
        for value in node.inputs[:2]:
            while value in producer and scalar_factor(producer[value], graph) is not None \
                    and uses.get(value) == 1 and value not in outputs:
                found[value] = producer[value]
                value = scalar_factor(producer[value], graph)[0]
    return found


def _round16(value: int) -> int:
    return -(-value // 16) * 16


@dataclass(frozen=True)
class _Access:
    """A value the kernel reads from GM: a view of `storage` (a group input or a MatMul result)."""

    storage: str
    whole_rows: bool = False  # a slice of the last axis: the load may take whole rows of the storage
    pieces: tuple[tuple[str, int], ...] = ()  # slices of other axes (node, output): each its own load
    col: int = 0  # ... and the column of the storage's rows where the last-axis slice starts


class KernelTraffic:
    """The layout of one group's kernel as the code generator emits it, and the bytes it moves."""

    def __init__(self, model: CostModel, nodes: list[Node], inputs, outputs) -> None:
        self.model = model
        self.table = model.graph.derived(_data_table)
        self.outputs = tuple(outputs)
        self.shapes: dict[str, tuple[int, ...]] = {}  # values of our own (a Gemm's raw cube result)
        self.typed_as: dict[str, str] = {}  # ... and the ONNX value whose element type they have
        self.constant: set[str] = set()
        self.access: dict[str, _Access] = {}
        used = {v for n in nodes for v in self.data(n)}
        for value in inputs:
            small = model.graph.constant(value)
            if small is not None and small.size == 1:
                self.constant.add(value)  # a number compiled into the kernel
            elif value in used:
                self.access[value] = _Access(value)
        needed = self._needed(nodes)
        for node in needed:  # views of the inputs: strided reads of GM data, joining no part
            if node.op_type in _VIEWS and node.inputs[0] in self.access:
                self.access.update(self._viewed(node, self.access[node.inputs[0]]))
        self.matmuls = [n for n in needed if n.op_type in _MATMULS]
        self.results: set[str] = set()  # MatMul results (read like a streamed input, never kept whole)
        self.workspace: list[str] = []  # ... those the cube writes to the GM workspace
        self.scales = operand_scales(needed, model.graph, set(outputs))  # operand -> its Mul/Div by a number
        self.members: list[Node] = []
        for node in needed:
            if node.op_type in _MATMULS:
                self.members.extend(self._matmul(node))
            elif node.outputs[0] in self.scales:
                continue  # the generator scales the MatMul's result instead (codegen/lower.py)
            elif not all(o in self.access for o in node.outputs if o):
                self.members.append(node)

    # -- layout -------------------------------------------------------------------------------------

    def data(self, node: Node) -> tuple[str, ...] | list[str]:
        """The node's data inputs (from the per-graph table for the graph's own nodes)."""
        return self.table[node.id] if node.id >= 0 else data_inputs(node)

    def _needed(self, nodes: list[Node]) -> list[Node]:
        """Members whose results reach an output through data operands (shape arithmetic that
        only feeds a Reshape or Expand target is left out: kernels are built for static shapes)."""
        needed = set(self.outputs)
        keep: list[Node] = []
        for node in reversed(nodes):
            if any(o in needed for o in node.outputs if o):
                keep.append(node)
                needed.update(self.data(node))
                if node.op_type in _SLICES:
                    needed.update(v for v in node.inputs[1:] if v)
        return list(reversed(keep))

    def shape(self, value: str) -> tuple[int, ...]:
        if value in self.shapes:
            return self.shapes[value]
        shape = self.model.shape(value)
        if shape is None:
            raise UnknownShape(f"shape of '{value}' unknown")
        return shape

    def itemsize(self, value: str) -> int:
        return self.model.graph.type_of(self.typed_as.get(value, value)).itemsize or 4

    def nbytes(self, value: str) -> int:
        return math.prod(self.shape(value)) * self.itemsize(value)

    def _viewed(self, node: Node, source: _Access) -> list[tuple[str, _Access]]:
        """The outputs of a view node over GM data: views of the same GM tensor."""
        before = self.shape(node.inputs[0])
        views = []
        for index, out in enumerate(node.outputs):
            if not out:
                continue
            access = source
            if node.op_type in _SLICES:
                after = self.shape(out)
                if after[-1:] != before[-1:]:
                    access = _Access(access.storage, True, access.pieces, access.col + self._start(node, index))
                if after[:-1] != before[:-1]:
                    access = _Access(access.storage, access.whole_rows, (*access.pieces, (node.name, index)),
                                     access.col)
            views.append((out, access))
        return views

    def _start(self, node: Node, index: int) -> int:
        """Where output `index` of a Slice/Split starts along its axis (0 when unknown: such a
        slice gets no kernel, codegen/vector.py)."""
        shape = self.shape(node.inputs[0])
        graph = self.model.graph
        dims = [self.shape(o)[int(node.attrs.get("axis", 0)) % len(shape)] for o in node.outputs if o] \
            if node.op_type == "Split" else None
        bounds = [graph.constant(v) if v else None for v in node.inputs[1:5]]
        try:
            found = slice_bounds(node.op_type, node.attrs, shape, dims, [None if b is None else np.asarray(b)
                                                                         for b in bounds])
        except (ValueError, AttributeError, IndexError):
            return 0
        return found[index][1] if index < len(found) else 0

    def _matmul(self, node: Node) -> list[Node]:
        """The cube writes the result to the output it is, else to the workspace; a Gemm's bias
        and alpha/beta, and an operand's scale, are vector work on that result (one member
        reading it and the bias)."""
        result, a = node.outputs[0], node.inputs[0]
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
        epilogue = node.op_type == "Gemm" and (bias or node.attrs.get("alpha", 1.0) != 1.0) \
            or any(v in self.scales for v in node.inputs[:2])
        graph = self.model.graph
        direct = result in self.outputs and not epilogue and graph.type_of(result).dtype == graph.type_of(a).dtype
        raw = f"{result}@cube" if epilogue else result
        self.shapes[raw] = self.shape(result)
        self.typed_as[raw] = result
        self.results.add(raw)
        if not direct:
            self.workspace.append(raw)
        self.access[raw] = _Access(raw)
        if not epilogue:
            return []
        return [Node(-1, node.name, "Add" if bias else "Identity", "", (raw, bias) if bias else (raw,), (result,))]

    def _parts(self) -> list[list[Node]]:
        """The group's separate computations: members joined by the values they compute (inputs,
        constants and MatMul results are read by any part and join nothing). A part that writes
        no output is not emitted."""
        produced = {o: i for i, n in enumerate(self.members) for o in n.outputs if o}
        parent = list(range(len(self.members)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, node in enumerate(self.members):
            for value in node.inputs:
                j = produced.get(value)
                if j is not None:
                    parent[find(i)] = find(j)
        groups: dict[int, list[Node]] = {}
        for i, node in enumerate(self.members):
            groups.setdefault(find(i), []).append(node)
        wanted = set(self.outputs)
        return [g for g in groups.values() if any(o in wanted for n in g for o in n.outputs)]

    def _space(self, part: list[Node]) -> tuple[int, ...]:
        """The part's iteration space: its largest value (one an op computes, then an output,
        among equals)."""
        ranked = []
        for node in part:
            for value in node.outputs:
                if value:
                    shape = self.shape(value)
                    ranked.append((math.prod(shape), node.op_type not in _VIEWS, value in self.outputs, len(shape),
                                   shape))
        return max(ranked, key=lambda r: r[:4])[4] or (1,)

    # -- bytes ---------------------------------------------------------------------------------------

    def total(self, tile: Tile) -> int:
        """GM bytes read and written by the kernel walking `tile`."""
        moved = sum(self.nbytes(o) for o in self.outputs)
        moved += self._cube_bytes()
        for part in self._parts():
            moved += self._part_bytes(part, tile)
        produced = {o for n in self.members for o in n.outputs}
        direct = self.results.difference(self.workspace)
        for out in self.outputs:  # an output that is a view of GM data: a walk that copies it
            if out not in produced and out in self.access and out not in direct:
                copy = f"{out}@copy"
                self.shapes[copy], self.typed_as[copy] = self.shape(out), out
                moved += self._part_bytes([Node(-1, copy, "Copy", "", (out,), (copy,))], tile)
        return moved

    def _cube_bytes(self) -> int:
        """MatMul operands (per block, see matmul_split) and the results the cube writes to the
        workspace (a result that is an output is counted with the outputs)."""
        if not self.matmuls:
            return 0
        shapes = []
        for node in self.matmuls:
            trans_a = bool(node.attrs.get("transA", 0)) if node.op_type == "Gemm" else False
            trans_b = bool(node.attrs.get("transB", 0)) if node.op_type == "Gemm" else False
            shapes.append((node, cube_shape(self.shape(node.inputs[0]), self.shape(node.inputs[1]),
                                            self.shape(node.outputs[0]), trans_a, trans_b)))
        blocks = self.model.cube_cores(cube_flops(s for _, s in shapes))
        moved = 0
        for node, s in shapes:
            dim = cube_dim(blocks, s.batch)
            m_blocks, n_blocks = matmul_split(s.m, s.n, s.k, dim) if s.m * s.n * s.k else (1, 1)  # (nothing to read)
            size = self.itemsize(node.inputs[0])
            moved += s.batch * (s.m * s.k * size * n_blocks + s.k * s.n * size * m_blocks)
        return moved + sum(self.nbytes(raw) for raw in self.workspace)

    def _part_bytes(self, part: list[Node], tile: Tile) -> int:
        """What one vector walk reads: streamed tensors once per row at the width the row reads
        (per pass for a split row), small broadcast inputs once per core with tiles of the part,
        one-element values once per core."""
        space = self._space(part)
        numel, width = math.prod(space), space[-1] or 1
        rows = max(1, numel // width)
        if tile.scheme == "split_row":
            loads = [load for step in self._split_passes(part) for load in step]
            return sum(rows * width * self.itemsize(storage) for storage, *_ in loads)
        loads, residents = {}, set()
        walks_rows = tile.rows > 0
        for value, access in self._reads(part):
            shape, storage = self.shape(value), access.storage
            if math.prod(shape) == 1:
                loads[("scalar", storage, access.pieces)] = self.itemsize(storage) * max(tile.cores, 1)
                continue
            whole = math.prod(self.shape(storage))
            grows = tile.dynamic and self.model.symbolic((storage,))
            per_row = (shape[-1] if shape else 1) == 1 and width != 1
            if walks_rows and storage not in self.results \
                    and kept_whole(whole, self.itemsize(storage), numel, grows, per_row):
                residents.add(storage)
                continue
            if not walks_rows:
                loads[(storage, access.pieces)] = numel * self.itemsize(storage)
                continue
            last = self.shape(storage)[-1]
            if access.whole_rows and storage not in self.results and whole_rows(access.col % last, last, width):
                read, col = last, 0  # one load of whole rows serves every slice of them
            else:
                read, col = (shape[-1] if shape else 1), access.col
            loads[(storage, read, access.pieces, col)] = rows * read * self.itemsize(storage)
        moved = sum(loads.values())
        if residents:
            per_tile = tile.rows if tile.scheme == "rows" else tile.elements // width
            per_tile = max(1, min(per_tile, rows))
            workers = min(-(-rows // per_tile), max(tile.cores, 1))
            moved += workers * sum(self.nbytes(storage) for storage in residents)
        return moved

    def _reads(self, nodes: list[Node], copies: bool = True) -> list[tuple[str, _Access]]:
        """The GM views `nodes` read, run in order: a view of GM data is read where an op first
        uses it; a view of a value already read is a view of that tile (no GM read); an output
        that is a view of GM data is copied out (`copies`)."""
        pending = dict(self.access)
        reads = []
        for node in nodes:
            source = pending.get(node.inputs[0]) if node.inputs else None
            if source is not None and (node.op_type in _VIEWS or node.op_type in _SLICES):
                pending.update(self._viewed(node, source))
                continue
            if source is not None and self._element_gather(node):  # one element, read as a scalar
                pending[node.outputs[0]] = _Access(source.storage, source.whole_rows,
                                                   (*source.pieces, (node.name, 0)))
                continue
            for value in self.data(node):
                access = pending.pop(value, None)
                if access is not None:
                    reads.append((value, access))
        if copies:
            reads.extend((o, pending[o]) for n in nodes for o in n.outputs if o in self.outputs and o in pending)
        return reads

    def _element_gather(self, node: Node) -> bool:
        """A Gather of one constant index from a 1-D value: the generator reads that element as a
        scalar (codegen/vector.py _gather), once per core."""
        if node.op_type != "Gather" or len(node.inputs) < 2:
            return False
        index = self.model.graph.constant(node.inputs[1])
        return index is not None and index.size == 1 and len(self.shape(node.inputs[0])) == 1

    # -- split rows -------------------------------------------------------------------------------------

    def _split_passes(self, part: list[Node]) -> list[set[tuple]]:
        """The loads of each pass over a split row. Pass p accumulates the reductions whose inputs
        need only results of earlier passes; the last pass computes the outputs. A load is
        (storage, the selection) and each pass reads each of its loads once per row."""
        steps = self._expanded(part)
        constant = set(self.constant)
        levels: dict[str, int] = {}
        kinds: list[str] = []
        reduce_level: dict[int, int] = {}
        for index, node in enumerate(steps):
            data = self.data(node)
            if data and all(v in constant or _literal(v) for v in data) and node.op_type not in _VIEWS:
                constant.update(o for o in node.outputs if o)
            inputs = [v for v in data if v not in constant and not _literal(v)]
            level = max((levels.get(v, 0) for v in inputs), default=0)
            if node.op_type in _REDUCES:
                kinds.append("reduce")
                reduce_level[index] = level
                levels[node.outputs[0]] = level + 1
                continue
            per_row = self._per_row(node.outputs[0]) and all(self._per_row(v) for v in inputs)
            kinds.append("row" if per_row and inputs else "tile")
            for out in node.outputs:
                levels[out] = level
        part_outputs = {o for n in part for o in n.outputs if o in self.outputs}
        final = max([levels.get(o, 0) for o in part_outputs] + [0])
        passes = []
        for p in range(final + 1):
            targets = set(part_outputs) if p == final else set()
            reducing = [i for i, kind in enumerate(kinds) if kind == "reduce" and reduce_level[i] == p]
            for i in reducing:
                targets.update(self.data(steps[i]))
            wanted = set(reducing)
            for i in reversed(range(len(steps))):
                if kinds[i] == "tile" and any(o in targets for o in steps[i].outputs):
                    wanted.add(i)
                    targets.update(self.data(steps[i]))
            reads = self._reads([steps[i] for i in sorted(wanted)], copies=False)
            passes.append({(access.storage, access.pieces) for _, access in reads})
        return passes

    def _expanded(self, nodes: list[Node]) -> list[Node]:
        """The members with every op the vector unit runs as several steps written out as them (the
        code generator's table), with the shapes of the steps' values."""
        out: list[Node] = []
        for node in nodes:
            op = "GeluTanh" if node.op_type == "Gelu" and node.attrs.get("approximate", "none") == "tanh" \
                else node.op_type
            recipe = _recipes().get(op)
            if recipe is None:
                out.append(node)
                continue
            names = {f: a for f, a in zip(recipe["inputs"], node.inputs) if a}
            names.update({f: a for f, a in zip(recipe["outputs"], node.outputs) if a})
            row = self.shape(node.inputs[0])
            steps = []
            for i, (target, step_op, *args) in enumerate(recipe["steps"]):
                result = names.get(target) or f"{node.name}@{op}.{target}"
                if any(isinstance(a, str) and a in recipe["inputs"] and a not in names for a in args):
                    operands = (names.get(args[0]) or f"{node.name}@{op}.{args[0]}",)  # an absent optional input
                    step_op = "Identity"
                else:
                    operands = tuple(names.get(a) or f"{node.name}@{op}.{a}" if isinstance(a, str) and not a.startswith("$")
                                     else f"{_LITERAL}{i}.{j}" for j, a in enumerate(args))
                if result not in self.shapes and result not in node.outputs:
                    shapes = [() if _literal(v) else self.shape(v) for v in operands]
                    self.shapes[result] = row[:-1] + (1,) if step_op in _REDUCES else \
                        tuple(np.broadcast_shapes(*shapes))
                steps.append(Node(-1, node.name, step_op, "", operands, (result,)))
            out.extend(self._expanded(steps))
        return out

    def _per_row(self, value: str) -> bool:
        return _literal(value) or self.shape(value)[-1:] in ((1,), ())


_LITERAL = "@literal:"


def _literal(value: str) -> bool:
    return value.startswith(_LITERAL)


@lru_cache(maxsize=1)
def _recipes() -> dict:
    return read_yaml(_VECTOR_OPS, AutofuseError, "code generator op table")["decompose"]
