"""The kernel cost model: how long one kernel takes on the target, in microseconds.

    time = head + max(HBM time, compute time)

- head: the launch/head cost of one kernel, from few cores to all cores started, plus the
  extra cost of a mixed cube+vector kernel (profile `launch`);
- HBM time: the bytes the kernel moves through HBM over the bandwidth that its transfer size
  reaches (profile `dma` table). For a fused group these are the bytes its generated kernel
  reads and writes (traffic.py): the tensors crossing the group boundary, plus what the kernel
  reads again (small broadcast inputs once per core, broadcast rows once per row, a split row
  once per pass, MatMul operands once per cube block) and the MatMul results it writes to the
  GM workspace and reads back. Re-reads count as HBM traffic even where L2 may catch them;
- compute time: vector element operations over the vector throughput of the dtype the kernel
  computes in (half precision is computed in fp32, bf16 always is), cube FLOPs over the cube
  throughput. A group recomputes every member over its whole iteration space, so a small
  broadcast value folded into a large kernel is recomputed for every row that reads it.
Symbolic dims are bound to concrete sizes (`bind_dims`) before anything is priced.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from autofuse.cost.hardware import Hardware
from autofuse.cost.layout import kernel_layout, op_table
from autofuse.cost.tiling import (
    WHOLE_BROADCAST,
    DtypeLimit,
    Tile,
    TileOverflow,
    TileRequest,
    choose_tile,
    cores_for,
    resident_pitch,
)
from autofuse.cost.traffic import SHAPE_OPERANDS, KernelTraffic, UnknownShape
from autofuse.ir.graph import Graph, Node
from autofuse.ir.structure import digest, structure
from autofuse.ops.axes import reduction_signature
from autofuse.ops.table import OpClass, is_kernel, node_bytes, op_class

# Symbolic dims the user does not bind: batch-like names get 1, every other name this size.
DEFAULT_SYMBOLIC_DIM = 128
_BATCH_NAMES = ("batch", "n", "b")
# Vector instructions per element for one op, relative to an add (our estimate, confidence G:
# transcendental functions are polynomial/iterative sequences of several vector instructions).
_VECTOR_COST = {**{op: 4 for op in "Exp Log Sqrt Reciprocal Div Softplus".split()},
                **{op: 8 for op in "Tanh Erf Sigmoid Pow Gelu HardSwish Mish Selu Elu Celu".split()}}
_HALF = ("float16", "bfloat16")
_FP32_BYTES = 4
_BOOL = 9  # TensorProto.BOOL
_COMPARES = frozenset({"Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Equal", "Where", "IsNaN", "IsInf"})
_REDUCE_SCRATCH = 64

def bind_dims(graph: Graph, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """A size for every symbolic dim in the graph.

    Named dims (the model's inputs: batch, seq, ...) take the user's size, else the documented
    default. Dims that shape inference could only name (`unk__3`) are solved from the views that
    produce them (a Reshape keeps the element count); whatever is still open stays unbound, and
    what depends on it is unknown to the cost model (never guessed).
    """
    overrides = dict(overrides or {})
    names = sorted({d for t in graph.values.values() if t.shape for d in t.shape if isinstance(d, str)})
    bound: dict[str, int] = {}
    for name in names:
        if name in overrides:
            bound[name] = overrides[name]
        elif name.startswith("unk__"):
            continue
        elif is_batch_dim(name):
            bound[name] = 1
        else:
            bound[name] = DEFAULT_SYMBOLIC_DIM
    _solve_from_views(graph, bound)
    return bound


def is_batch_dim(name: str) -> bool:
    """A dim named like a batch (bound to 1 unless the user says otherwise)."""
    return name.lower() in _BATCH_NAMES or "batch" in name.lower()


def _solve_from_views(graph: Graph, bound: dict[str, int]) -> None:
    views = [n for n in graph.nodes if op_class(n) == OpClass.VIEW and n.inputs and n.outputs]
    for _ in range(4):  # a few sweeps: a solved dim can unlock the next view
        progress = False
        for node in views:
            before, after = graph.type_of(node.inputs[0]).shape, graph.type_of(node.outputs[0]).shape
            if before is None or after is None:
                continue
            for known, open_ in ((before, after), (after, before)):
                total = _product(known, bound)
                unknown = [d for d in open_ if isinstance(d, str) and d not in bound]
                if total is None or len(unknown) != 1 or open_.count(unknown[0]) != 1:
                    continue
                rest = _product([d for d in open_ if d != unknown[0]], bound)
                if rest and total % rest == 0:
                    bound[unknown[0]] = total // rest
                    progress = True
        if not progress:
            return


def _product(shape, bound: Mapping[str, int]) -> int | None:
    total = 1
    for d in shape:
        value = d if isinstance(d, int) else bound.get(d) if isinstance(d, str) else None
        if value is None:
            return None
        total *= value
    return total


@dataclass(frozen=True)
class Estimate:
    """The priced kernel (or, for a node that launches nothing, zero)."""

    time_us: float  # NaN when a shape the kernel needs is unknown
    hbm_bytes: int | None  # None when unknown
    head_us: float = 0.0
    memory_us: float = 0.0
    compute_us: float = 0.0
    launches: int = 1
    tile: Tile | None = None


NOTHING = Estimate(0.0, 0, launches=0)


class CostModel:
    """Prices single nodes (the unfused baseline) and fused groups on one target."""

    def __init__(self, graph: Graph, hw: Hardware, dims: Mapping[str, int],
                 static: Mapping[str, tuple[int, ...]] | None = None) -> None:
        self.graph = graph
        self.hw = hw
        self.dims = dict(dims)
        # Shapes a front end worked out with the dims above bound (preferred over the symbols).
        self.static = dict(static or {})
        self.kernel = [is_kernel(n, graph) for n in graph.nodes]
        self._node_estimates: dict[int, Estimate] = {}
        # Nodes with the same op, attributes and operand types cost the same: a stack of
        # identical layers is priced once per distinct node, not once per node.
        self._by_signature: dict[tuple, Estimate] = {}
        self._groups: dict[tuple, Estimate | Exception] = {}
        self._structures: dict[tuple, Estimate] = {}
        self._value_keys: dict[str, tuple] = {}

    # -- sizes --------------------------------------------------------------------------------

    def shape(self, value: str) -> tuple[int, ...] | None:
        if value in self.static:
            return self.static[value]
        shape = self.graph.type_of(value).shape
        if shape is None:
            return None
        out = []
        for d in shape:
            if d is None:
                return None
            if isinstance(d, str) and d not in self.dims:
                return None
            out.append(d if isinstance(d, int) else self.dims[d])
        return tuple(out)

    def numel(self, value: str) -> int | None:
        shape = self.shape(value)
        return None if shape is None else math.prod(shape)

    def nbytes(self, value: str) -> int | None:
        n, kind = self.numel(value), self.graph.type_of(value)
        return None if n is None or kind.itemsize is None else n * kind.itemsize

    def _bytes(self, values) -> int:
        total = 0
        for value in values:
            size = self.nbytes(value)
            if size is None:
                raise UnknownShape(f"shape of '{value}' unknown")
            total += size
        return total

    # -- time pieces ----------------------------------------------------------------------------

    def head_us(self, share: float, mix: bool = False) -> float:
        """Head cost of one kernel using `share` (0-1] of the chip's cores of its kind."""
        hw = self.hw
        share = min(max(share, 0.0), 1.0)
        head = hw.launch_us_few_cores + (hw.launch_us_all_cores - hw.launch_us_few_cores) * share
        return head + (hw.mix_extra_us if mix else 0.0)

    def cube_cores(self, flops: float) -> int:
        """Cube cores a MatMul of `flops` spreads over (one base block of 2^24 FLOPs per core)."""
        return min(self.hw.aic_cores, max(1, math.ceil(flops / 2**24)))

    def memory_us(self, nbytes: int, transfer: int) -> float:
        if nbytes <= 0:
            return 0.0
        bandwidth = self.hw.hbm_bandwidth * self.hw.dma_fraction(max(int(transfer), 1))
        return nbytes / bandwidth * 1e6

    def vector_us(self, ops: float, dtype: str | None) -> float:
        """Vector time; half precision is computed in fp32 (as Huawei's kernels and ours do)."""
        rates = self.hw.vector_ops
        compute = "float32" if dtype in _HALF or dtype not in rates else dtype
        rate = rates.get(compute) or max(rates.values())
        return ops / rate * 1e6

    def cube_us(self, flops: float, dtype: str | None) -> float:
        rates = self.hw.cube_flops
        rate = rates.get(dtype or "float16") or rates.get("float16") or max(rates.values())
        return flops / rate * 1e6

    # -- one node, unfused ------------------------------------------------------------------------

    def node(self, node: Node) -> Estimate:
        """The node as its own kernel (zero for nodes that launch none); computed once per node."""
        found = self._node_estimates.get(node.id)
        if found is None:
            found = self._node_estimates[node.id] = self._price_node(node)
        return found

    def _price_node(self, node: Node) -> Estimate:
        if not self.kernel[node.id] or op_class(node) in (OpClass.VIEW, OpClass.METADATA):
            return NOTHING
        key = self._signature(node)
        if key is None:
            return self._price_distinct(node)
        found = self._by_signature.get(key)
        if found is None:
            found = self._by_signature[key] = self._price_distinct(node)
        return found

    def _signature(self, node: Node) -> tuple | None:
        """What the price of `node` depends on, or None when an attribute is not hashable."""
        attrs = tuple(node.attrs.items())
        try:
            hash(attrs)
        except TypeError:
            return None
        operands = tuple((self.shape(v), self.graph.type_of(v).dtype, node.inputs.index(v)) if v else None
                         for v in node.inputs)
        results = tuple((self.shape(v), self.graph.type_of(v).dtype) if v else None for v in node.outputs)
        return node.op_type, node.domain, attrs, operands, results

    def _price_distinct(self, node: Node) -> Estimate:
        reads, writes = node_bytes(node, self.nbytes)
        if reads is None or writes is None:
            return Estimate(math.nan, None)
        total = reads + writes
        if node.op_type in ("MatMul", "Gemm"):
            flops = self._matmul_flops(node)
            cores = self.cube_cores(flops)
            compute = self.cube_us(flops, self.graph.type_of(node.inputs[0]).dtype)
            transfer = min(total // cores, 64 * 1024)
            memory = self.memory_us(total, transfer)
            head = self.head_us(cores / self.hw.aic_cores)
            return Estimate(head + max(memory, compute), total, head, memory, compute)
        out = node.outputs[0]
        elements = self.numel(out) or 0
        cores = cores_for(total, self.hw.aiv_cores)
        transfer = min(max(total // cores, 32), 32 * 1024)
        memory = self.memory_us(total, transfer)
        compute = self.vector_us(self._node_ops(node, elements), self.graph.type_of(out).dtype)
        head = self.head_us(cores / self.hw.aiv_cores)
        return Estimate(head + max(memory, compute), total, head, memory, compute)

    def _node_ops(self, node: Node, elements: int) -> float:
        kind = op_class(node)
        if kind in (OpClass.REDUCTION, OpClass.NORMALIZATION) and node.inputs:
            n = self.numel(node.inputs[0]) or 0
            return n * (1 if kind == OpClass.REDUCTION else 5)
        if kind in (OpClass.ELEMENTWISE, OpClass.BROADCAST):
            return elements * _VECTOR_COST.get(node.op_type, 1)
        return 0.0

    def _matmul_flops(self, node: Node) -> float:
        a = self.shape(node.inputs[0])
        out = self.numel(node.outputs[0])
        if not a or out is None:
            return 0.0
        k = a[0] if node.op_type == "Gemm" and node.attrs.get("transA", 0) else a[-1]
        return 2.0 * out * k

    # -- a fused group ----------------------------------------------------------------------------

    def group(self, members: frozenset[int], inputs: tuple[str, ...], outputs: tuple[str, ...],
              scheme: str) -> Estimate:
        """The group as one kernel. `scheme`: "vector", "matmul", "call_through" or "host".

        Raises UnknownShape, or TileOverflow when no tile fits the Unified Buffer. Computed once
        per group (the planner prices a candidate when rules and automatic fusion compete, and
        again when it keeps it).
        """
        key = (members, inputs, outputs, scheme)
        found = self._groups.get(key)
        if found is None:
            # The same block in every layer is priced once: groups of the same structure (ops,
            # wiring, dtypes, bound shapes, constant data) cost the same. Failures are not shared
            # (their messages name the group's own values).
            same = (scheme, structure(self.graph, sorted(members), inputs, outputs, self._value_key)[0])
            found = self._structures.get(same)
            if found is None:
                try:
                    found = self._structures[same] = self._price_group(members, inputs, outputs, scheme)
                except (UnknownShape, TileOverflow) as exc:
                    found = exc
            self._groups[key] = found
        if isinstance(found, Exception):
            raise found
        return found

    def _value_key(self, value: str) -> tuple:
        """What pricing reads of a value: dtype, bound shape, declared rank, constant or not, and
        the data of a small constant (axes, one-number operands). Kept per value: candidates
        that share values (every competing grouping of a layer) ask again."""
        found = self._value_keys.get(value)
        if found is None:
            kind = self.graph.type_of(value)
            found = self._value_keys[value] = (kind.dtype, self.shape(value), kind.rank, value in self.graph.constants,
                                               digest(self.graph.constant(value)))
        return found

    def _price_group(self, members: frozenset[int], inputs: tuple[str, ...], outputs: tuple[str, ...],
                     scheme: str) -> Estimate:
        nodes = [self.graph.nodes[m] for m in sorted(members)]
        crossing = self._bytes(list(inputs) + list(outputs))
        if scheme == "host":
            head = self.hw.launch_us_few_cores
            return Estimate(head, crossing, head, launches=1, tile=Tile("host", 0, note="shape arithmetic"))
        matmuls = [n for n in nodes if n.op_type in ("MatMul", "Gemm")]
        cube = sum(self.cube_us(self._matmul_flops(n), self.graph.type_of(n.inputs[0]).dtype) for n in matmuls)
        vector_nodes = [n for n in nodes if n.op_type not in ("MatMul", "Gemm")]
        if scheme == "call_through":
            space = max((self.numel(o) or 0 for o in outputs), default=0)
            vector = self.vector_us(sum(self._node_ops(n, self.numel(n.outputs[0]) or 0) for n in vector_nodes),
                                    self._compute_dtype(nodes))
            memory = self.memory_us(crossing, 64 * 1024)
            head = self.head_us(1.0, mix=bool(matmuls))
            tile = Tile("call_through", space, cores=self.hw.aiv_cores, note="a CANN kernel; its tiling is its own")
            return Estimate(head + max(memory, cube + vector), crossing, head, memory, cube + vector, tile=tile)
        if not self.hw.has_bf16_data:  # the generated kernel would copy and cast it: no such path
            bf16 = [v for v in (*inputs, *outputs) if self.graph.type_of(v).dtype == "bfloat16"]
            if bf16:
                raise DtypeLimit(f"'{bf16[0]}' is bfloat16, which {self.hw.name} cannot copy into the Unified Buffer "
                                 f"or cast there (profile features.bf16_data: false)", (), self.hw.ub_usable_bytes)
        vector_work = [n for n in vector_nodes
                       if op_class(n) not in (OpClass.VIEW, OpClass.METADATA) and n.op_type != "Constant"]
        traffic = KernelTraffic(self, nodes, inputs, outputs)
        if matmuls and not vector_work:  # sibling MatMuls merged into one cube kernel
            flops = sum(self._matmul_flops(n) for n in matmuls)
            cores = self.cube_cores(flops)
            tile = Tile("matmul", 0, cores=cores, note="cube only; L1/L0 tiling is the Matmul API's",
                        dynamic=self.symbolic((*inputs, *outputs)))
            moved = traffic.total(tile)
            memory = self.memory_us(moved, min(moved // cores, 64 * 1024))
            head = self.head_us(cores / self.hw.aic_cores)
            return Estimate(head + max(memory, cube), moved, head, memory, cube, tile=tile)
        request = self._tile_request(nodes, inputs, outputs, matmuls)
        tile = choose_tile(request, self.hw)
        moved = traffic.total(tile)
        # One DMA per tile of a streamed tensor (shape operands and small inputs are no tiles).
        transfer = tile.elements * max((size for _, size in (*request.full_inputs, *request.outputs)), default=4)
        memory = self.memory_us(moved, transfer)
        ops = sum(_VECTOR_COST.get(n.op_type, 1) * self._elements_computed(n, request) for n in vector_work)
        compute = cube + self.vector_us(ops, self._compute_dtype(nodes))
        if matmuls:  # a MIX kernel: the cube part sizes the launch, the epilogue runs beside it
            share = self.cube_cores(sum(self._matmul_flops(n) for n in matmuls)) / self.hw.aic_cores
            head = self.head_us(share, mix=True)
        else:
            head = self.head_us(tile.cores / self.hw.aiv_cores)
        return Estimate(head + max(memory, compute), moved, head, memory, compute, tile=tile)

    def generic_space(self, inputs, outputs, rows: bool) -> bool:
        """Whether the group's kernel may be shape-generic: its tensors have symbolic dims and,
        walked in rows, its row length is a static extent (a row as long as a symbolic dim would
        take a tile that grows with it). Such a kernel's buffers hold the largest tile the UB
        fits and its broadcast inputs that grow with a dim are read a tile at a time (tiling.py)."""
        if not self.symbolic((*inputs, *outputs)):
            return False
        if not rows:
            return True
        largest = max((*inputs, *outputs), key=lambda v: self.numel(v) or 0)  # the space's size
        shape = self.graph.type_of(largest).shape
        return bool(shape) and not isinstance(shape[-1], str)

    def symbolic(self, values) -> bool:
        """Some of `values` has a symbolic dim in the graph."""
        return any(isinstance(d, str) for v in values for d in (self.graph.type_of(v).shape or ()))

    def _elements_computed(self, node: Node, request: TileRequest) -> int:
        """A row kernel computes each per-row value once per row; an elementwise kernel walks
        flat tiles, so a broadcast operand's producers run again for every element."""
        if request.row_len:
            if op_class(node) in (OpClass.REDUCTION, OpClass.NORMALIZATION):
                return self.numel(node.inputs[0]) or request.space
            return self.numel(node.outputs[0]) or request.space
        return request.space

    def _compute_dtype(self, nodes: list[Node]) -> str:
        dtypes = {self.graph.type_of(o).dtype for n in nodes for o in n.outputs if o} - {None, "bool"}
        return dtypes.pop() if len(dtypes) == 1 and not dtypes & set(_HALF) else "float32"

    def _tile_request(self, nodes: list[Node], inputs, outputs, matmuls: list[Node]) -> TileRequest:
        produced = {o for n in nodes for o in n.outputs if o}
        if matmuls:
            spaces = [self.numel(m.outputs[0]) or 0 for m in matmuls]
        else:
            spaces = [self.numel(o) or 0 for n in nodes for o in n.outputs if o]
        rows = row_len = 0
        for n in nodes:
            if op_class(n) in (OpClass.REDUCTION, OpClass.NORMALIZATION):
                signature = reduction_signature(n, self.graph)
                if signature is not None:
                    shape = self.shape(n.inputs[0])
                    if shape:
                        row_len = math.prod(shape[a] for a in signature.axes) or 1
                        spaces.append(math.prod(shape))
        space = max(spaces, default=0)
        if row_len:
            rows = max(1, space // row_len)
        full, small = [], []
        for value in inputs:
            n, kind = self.numel(value), self.graph.type_of(value)
            if n is None or kind.itemsize is None:
                raise UnknownShape(f"shape of '{value}' unknown")
            if any(m.inputs[1:2] == (value,) or m.inputs[0:1] == (value,) for m in matmuls):
                continue  # MatMul operands stream through L1, not UB
            if n >= space and space:
                full.append((value, kind.itemsize))
            else:
                small.append((value, n * kind.itemsize, kind.itemsize))
        # The epilogue reads each MatMul result back into UB, a tile at a time (in the result's
        # type: the cube rounds it, codegen/lower.py).
        full += [(m.outputs[0], self.graph.type_of(m.outputs[0]).itemsize or _FP32_BYTES) for m in matmuls
                 if any(m.outputs[0] in n.inputs for n in nodes if n not in matmuls)]
        outs = [(value, self.graph.type_of(value).itemsize or 4) for value in outputs]
        # Everything but fp32 is converted to fp32 once loaded (a cast buffer each).
        casts = sum(1 for value, size in full if self.graph.type_of(value).dtype not in ("float32", None))
        temporaries = self._live_temporaries(nodes, produced, outputs, space)
        row_align = 0 if row_len else self._row_align(nodes, matmuls, space)
        compares = any(n.op_type in _COMPARES or (n.op_type == "Cast" and n.attrs.get("to") == _BOOL) for n in nodes)
        # The Unified Buffer is the generated kernel's (cost/layout.py lays the group out as the
        # code generator does); the counts above are an estimate for groups it cannot lower.
        try:
            layout = kernel_layout(self, nodes, inputs, outputs, rows=bool(row_len or row_align))
            parts, arguments = layout.parts, layout.arguments
        except Exception:  # noqa: BLE001 - Unlowerable (no kernel), or a bug there: never lose the plan to it
            # The estimate, and the kernel's GM arguments: inputs but one-number constants, outputs,
            # workspace, tiling.
            parts = None
            arguments = len(outputs) + 2 + sum(1 for v in inputs if (c := self.graph.constant(v)) is None or c.size != 1)
        # A group over a symbolic space gets a kernel sized for any size of it (cost/tiling.py WalkRule).
        dynamic = self.generic_space(inputs, outputs, rows=bool(row_len or row_align))
        return TileRequest(space, tuple(full), tuple(small), tuple(outs), temporaries, casts, row_len=row_len, rows=rows,
                           row_align=row_align, fixed_extra=self._resident_extra(small), compares=compares, parts=parts,
                           arguments=arguments, dynamic=dynamic)

    def _resident_extra(self, small: list[tuple[str, int, int]]) -> int:
        """UB a kernel keeps for its small inputs beyond their own bytes: each is held as fp32
        rows starting on 32 B blocks (and, when it is not fp32, also as loaded), plus reduction
        scratch."""
        extra = _REDUCE_SCRATCH
        for value, nbytes, itemsize in small:
            if nbytes > WHOLE_BROADCAST:
                continue
            shape = self.shape(value) or (1,)
            width = shape[-1] if shape else 1
            rows = max(1, math.prod(shape) // max(width, 1))
            pitch = resident_pitch(width, itemsize)
            loaded = rows * pitch * itemsize if self.graph.type_of(value).dtype != "float32" else 0
            extra += max(rows * pitch * _FP32_BYTES, 32) + loaded - nbytes
        return max(extra, 0)

    def _row_align(self, nodes: list[Node], matmuls: list[Node], space: int) -> int:
        """The last-axis length when an elementwise kernel must walk whole rows: a value it reads
        at a data position is neither the whole space nor a scalar (a per-row or per-column
        broadcast), or a member moves data (Concat, Slice, Split, Gather...). 0 otherwise."""
        # The walk covers the space (a scalar scale on a MatMul operand, larger than the result,
        # is applied to the result: codegen/lower.py).
        largest = next((o for n in nodes for o in n.outputs if o and self.numel(o) == space), None)
        shape = self.shape(largest) if largest else None
        if not shape or shape[-1] <= 1:
            return 0
        for n in nodes:
            if n in matmuls:  # a Gemm's bias is added by the vector epilogue
                if any(v and (self.numel(v) or 1) not in (1, space) for v in n.inputs[2:]):
                    return shape[-1]
                continue
            if op_class(n) in (OpClass.METADATA,) or n.op_type == "Constant":
                continue
            if op_class(n) in (OpClass.INJECTIVE, OpClass.BROADCAST) and n.op_type != "Expand":
                return shape[-1]
            skip = SHAPE_OPERANDS.get(n.op_type, ())
            for position, value in enumerate(n.inputs):
                if value and position not in skip and (self.numel(value) or 1) not in (1, space):
                    return shape[-1]
        return 0

    def _live_temporaries(self, nodes: list[Node], produced: set[str], outputs, space: int) -> int:
        """Most tile-sized intermediate values alive at once while the members run in order
        (per-row values such as a norm's mean live in the row scratch instead): the estimate for
        a group the code generator cannot lower (the others are laid out exactly, layout.py). An
        op the generator writes as steps keeps one more value alive while they run."""
        last_use: dict[str, int] = {}
        for position, n in enumerate(nodes):
            for value in n.all_inputs:
                if value in produced:
                    last_use[value] = position
        live, peak = set(), 0
        for position, n in enumerate(nodes):
            if op_class(n) in (OpClass.VIEW, OpClass.METADATA) or n.op_type in ("MatMul", "Gemm", "Constant"):
                continue
            for value in n.outputs:
                if value and value not in outputs and value in last_use and (self.numel(value) or 0) >= space:
                    live.add(value)
            internal = 2 if n.op_type in op_table()["decompose"] else 1
            peak = max(peak, len(live), len(live) - 1 + internal)
            live = {v for v in live if last_use.get(v, -1) > position}
        return max(peak, 1)


def group_scheme(kind: str, lowering: str | None, has_matmul: bool) -> str:
    """Which kind of kernel a group becomes."""
    if kind == "shape":
        return "host"
    if lowering == "call_through":
        return "call_through"
    return "matmul" if has_matmul else "vector"

