"""The Unified Buffer layout of a fused vector kernel, as the code generator writes it.

The generator (codegen/lower.py, part.py, vector.py) gives every streamed tensor a queue, keeps
small broadcast inputs resident, and computes every value in fp32 tile temporaries that it takes
from a pool and reuses as soon as no later instruction reads them: an op writes its result over
an operand nothing reads afterwards, straight into an fp32 output's queue, or into a free
temporary; Compare/Select work on temporaries (their counts are rounded up to 256 bytes); an op
the table writes as steps (codegen_templates/vector_ops.yaml `decompose`: GELU, the norms,
softmax ...) keeps its inputs alive until its last step reads them. This module walks a group
the way the generator lowers it, without writing code, and returns for every part of the kernel
the allocations it makes. Their sizes are the tile's business (tiling.py sizes them with the
same formulas part.py uses), so the Unified Buffer the cost model prices is the one the
generated kernel takes, byte for byte, for flat and whole-row walks (a row split into chunks is
laid out as a whole-row walk at chunk size, which counts from above: tiling.py _split_tile).
tests/test_ub_accounting.py compares the two for every op the generator lowers.

What an op's lowering takes besides its operands is read from the op table
(vector_ops.yaml `temporaries`), which the generator checks itself against. A change to how
the generator allocates is a change here too; the test says where they part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from autofuse.cost.tiling import (PartLayout, UbAlloc, kept_whole, resident_pitch, row_pitch, streamed_input,
                                  whole_rows)
from autofuse.cost.traffic import data_inputs, operand_scales
from autofuse.ir import views
from autofuse.ir.graph import Node
from autofuse.ir.views import View, merge_dims
from autofuse.ops.axes import reduction_signature
from autofuse.ops.table import scalar_factor
from autofuse.ops.vector_ops import op_table

if TYPE_CHECKING:
    from autofuse.cost.model import CostModel

ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1, "uint8": 1, "int8": 1,
            "int16": 2}
_VIEW_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand", "Transpose", "Slice", "Split"}
_MATMUL_OPS = ("MatMul", "Gemm")
_BOUND_OPS = ("Slice", "Split")
_REDUCE_KINDS = {"ReduceSum": "Sum", "ReduceMean": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}
_FLOAT = "float32"


def spare_temporaries(op: str) -> int:
    """Tile temporaries the lowering of `op` takes for itself while it runs (vector_ops.yaml
    `temporaries`; the generator checks its own use against this)."""
    return int(op_table().get("temporaries", {}).get(op, {}).get("spare", 0))


class Unlowerable(Exception):
    """Something the generator refuses to lower: the group gets no kernel, so no layout."""


# -- values (what the generator's values.py holds, without the C++) ------------------------------


@dataclass(frozen=True)
class _Stored:
    view: View
    dtype: str


@dataclass(frozen=True)
class _Scalar:
    const: float | None = None


@dataclass(frozen=True)
class _Tile:
    buf: str
    width: int
    col: int = 0
    owner: int = -1


@dataclass(frozen=True)
class _Row:
    buf: str
    owner: int = -1


@dataclass(frozen=True)
class _PerRow:
    number: bool
    width: int = 1


@dataclass(frozen=True)
class _Viewed:
    tile: _Tile


@dataclass
class _Storage:
    role: str | None  # "input", "workspace", "output"; None for a constant baked into the kernel
    dtype: str
    shape: tuple[int, ...]
    data: object = None  # a constant's numpy array


@dataclass(frozen=True)
class _Arg:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


# -- the kernel ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelLayout:
    parts: tuple[PartLayout, ...]  # the allocations of every tile walk
    arguments: int  # GM arguments of the kernel entry (inputs, outputs, workspace, tiling)


def kernel_layout(model: CostModel, nodes: list[Node], inputs, outputs, rows: bool) -> KernelLayout:
    """The allocations of every part of the group's kernel (`rows`: the tile walks whole rows).
    Raises Unlowerable where the generator would refuse the group."""
    kernel = _Kernel(model, nodes, tuple(inputs), tuple(outputs), rows)
    parts = kernel.parts()
    return KernelLayout(parts, len(kernel.inputs) + len(kernel.outputs) + 2)


class _Kernel:
    """codegen/lower.py's KernelBuilder: the GM arguments, the MatMul members and the parts."""

    def __init__(self, model: CostModel, nodes: list[Node], inputs, outputs, rows: bool) -> None:
        self.model = model
        self.dynamic = model.generic_space(inputs, outputs, rows)  # as the tile request says (model.py)
        self.graph = model.graph
        self.nodes = nodes
        self.group_inputs = inputs
        self.group_outputs = outputs
        self.rows = rows
        self.storages: dict[str, _Storage] = {}
        self.values: dict = {}
        self.inputs: list[_Arg] = []
        self.outputs: list[_Arg] = []
        self.step_shapes: dict[str, tuple[int, ...]] = {}
        self.results: list[str] = []
        self.queue_copies = 0  # the tile decides: 2, or 1 when single-buffered

    def shape(self, value: str) -> tuple[int, ...]:
        found = self.step_shapes.get(value)
        if found is not None:
            return found
        shape = self.model.shape(value)
        if shape is None:
            raise Unlowerable(f"shape of '{value}' unknown")
        return shape

    def dtype(self, value: str) -> str:
        dtype = self.graph.type_of(value).dtype
        if dtype not in ITEMSIZE:
            raise Unlowerable(f"'{value}' has dtype {dtype}")
        return dtype

    def constant_value(self, name: str, array) -> object:
        array = np.asarray(array)
        if array.size == 1:
            return _Scalar(float(np.asarray(array, dtype=np.float64).reshape(-1)[0]))
        shape = tuple(int(d) for d in array.shape)
        self.storages[name] = _Storage(None, str(array.dtype), shape, array)
        return _Stored(View.contiguous(name, shape), str(array.dtype))

    def constant_array(self, value: str, held) -> np.ndarray:
        """The numpy value of a constant operand (lower.py constant_array)."""
        kind = self.graph.type_of(value)
        if isinstance(held, _Scalar) and held.const is not None:
            dtype = np.dtype(kind.dtype) if kind.dtype not in (None, "bfloat16") else np.dtype("float32")
            shape = kind.shape if kind.shape is not None and all(isinstance(d, int) for d in kind.shape) else ()
            return np.asarray(held.const).astype(dtype).reshape(shape)
        if isinstance(held, _Stored):
            data = np.asarray(self.storages[held.view.storage].data)
            flat = data.reshape(-1)
            return np.lib.stride_tricks.as_strided(flat[held.view.offset:], held.view.shape,
                                                   [st * flat.itemsize for st in held.view.strides]).copy()
        constant = self.graph.constant(value)
        if constant is None:
            raise Unlowerable(f"'{value}' is not a constant")
        return np.asarray(constant)

    def parts(self) -> tuple[PartLayout, ...]:
        uses = self._data_uses()
        for value in self.group_inputs:
            small = self.graph.constant(value)
            if small is not None and small.size == 1:
                self.values[value] = _Scalar(float(small.reshape(-1)[0]))
                continue
            if value not in uses:
                continue
            arg = _Arg(value, self.dtype(value), self.shape(value))
            self.inputs.append(arg)
            self.storages[value] = _Storage("input", arg.dtype, arg.shape)
            self.values[value] = _Stored(View.contiguous(value, arg.shape), arg.dtype)
        for value in self.group_outputs:
            self.outputs.append(_Arg(value, self.dtype(value), self.shape(value)))
        self.nodes = self._needed()
        self._views_of_inputs()
        vector_nodes = self._run_matmuls()
        parts = [_Part(self, members, [a for a in self.outputs if any(a.name in n.outputs for n in members)]).layout()
                 for members in self._parts(vector_nodes)]
        produced = {o for n in vector_nodes for o in n.outputs}
        for arg in self.outputs:  # a MatMul result copied out of the workspace
            if arg.name not in produced and arg.name not in self.results:
                parts.append(_Part(self, [], [arg]).layout())
        return tuple(parts)

    def _data_uses(self) -> dict[str, int]:
        uses: dict[str, int] = {}
        for node in self.nodes:
            for value in data_inputs(node):
                uses[value] = uses.get(value, 0) + 1
        return uses

    def _needed(self) -> list[Node]:
        needed = {a.name for a in self.outputs}
        keep: list[Node] = []
        for node in reversed(self.nodes):
            if any(o in needed for o in node.outputs if o):
                keep.append(node)
                needed.update(data_inputs(node))
                if node.op_type in _BOUND_OPS:
                    needed.update(v for v in node.inputs[1:] if v)
        return list(reversed(keep))

    def _views_of_inputs(self) -> None:
        for node in self.nodes:
            source = self.values.get(node.inputs[0]) if node.inputs else None
            if node.op_type not in _VIEW_OPS or node.op_type in _BOUND_OPS or not isinstance(source, _Stored):
                continue
            shape = self.shape(node.outputs[0])
            if node.op_type == "Transpose":
                perm = node.attrs.get("perm") or tuple(reversed(range(len(source.view.shape))))
                view = views.transpose(source.view, tuple(perm))
            elif node.op_type == "Expand":
                view = views.expand(source.view, shape)
            else:
                view = views.reshape(source.view, shape)
            if view is not None:
                self.values[node.outputs[0]] = _Stored(view, source.dtype)

    def _run_matmuls(self) -> list[Node]:
        rest: list[Node] = []
        outputs = {a.name: a for a in self.outputs}
        scales = operand_scales(self.nodes, self.graph, {a.name for a in self.outputs})
        for node in self.nodes:
            if node.op_type not in _MATMUL_OPS:
                if node.outputs[0] in scales:
                    continue
                if not all(o in self.values for o in node.outputs if o):
                    rest.append(node)
                continue
            rest.extend(self._matmul(node, outputs, scales))
        return rest

    def _matmul(self, node: Node, outputs: dict[str, _Arg], scales: dict[str, Node]) -> list[Node]:
        steps_a = self._unscaled(node.inputs[0], scales)
        steps_b = self._unscaled(node.inputs[1], scales)
        a = self.values.get(steps_a[0])
        if not isinstance(a, _Stored):
            raise Unlowerable(f"MatMul '{node.name}': operands must be inputs of the group")
        result = node.outputs[0]
        c_shape = self.shape(result)
        bias = node.inputs[2] if node.op_type == "Gemm" and len(node.inputs) > 2 and node.inputs[2] else ""
        epilogue = node.op_type == "Gemm" and (bias or node.attrs.get("alpha", 1.0) != 1.0)
        scaled = steps_a[1] + steps_b[1]
        direct = result in outputs and not epilogue and not scaled and self.dtype(result) == a.dtype
        self.results.append(result)
        raw = f"{result}@cube" if epilogue or scaled else result
        if direct:
            self.storages[result] = _Storage("output", a.dtype, c_shape)
            self.values[result] = _Stored(View.contiguous(result, c_shape), a.dtype)
            return []
        dtype = self.dtype(result)
        self.storages[raw] = _Storage("workspace", dtype, c_shape)
        self.values[raw] = _Stored(View.contiguous(raw, c_shape), dtype)
        self.step_shapes[raw] = c_shape
        if epilogue:
            return self._gemm_epilogue(node, raw)
        if scaled:
            steps, current = [], raw
            for i, scale in enumerate(scaled):
                out = result if i == len(scaled) - 1 else f"{result}@scale{i}"
                self.step_shapes[out] = c_shape
                steps.append(Node(-1, scale.name, scale.op_type, "", (current, scalar_factor(scale, self.graph)[1]),
                                  (out,)))
                current = out
            return steps
        return []

    def _unscaled(self, value: str, scales: dict[str, Node]) -> tuple[str, list[Node]]:
        steps: list[Node] = []
        while value in scales:
            steps.append(scales[value])
            value = scalar_factor(scales[value], self.graph)[0]
        return value, steps[::-1]

    def _gemm_epilogue(self, node: Node, raw: str) -> list[Node]:
        alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
        out = node.outputs[0]
        shape = self.shape(out)
        self.step_shapes.update({f"{out}@scaled": shape})
        steps: list[Node] = []
        current = raw
        if alpha != 1.0:
            self.values[f"{out}@alpha"] = _Scalar(alpha)
            steps.append(Node(-1, node.name, "Mul", "", (current, f"{out}@alpha"), (f"{out}@scaled",)))
            current = f"{out}@scaled"
        if len(node.inputs) > 2 and node.inputs[2]:
            bias = node.inputs[2]
            self.step_shapes[f"{out}@bias"] = self.shape(bias)
            if beta != 1.0:
                self.values[f"{out}@beta"] = _Scalar(beta)
                steps.append(Node(-1, node.name, "Mul", "", (bias, f"{out}@beta"), (f"{out}@bias",)))
                bias = f"{out}@bias"
            steps.append(Node(-1, node.name, "Add", "", (current, bias), (out,)))
        else:
            steps.append(Node(-1, node.name, "Identity", "", (current,), (out,)))
        return steps

    def _parts(self, nodes: list[Node]) -> list[list[Node]]:
        produced = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
        parent = list(range(len(nodes)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, node in enumerate(nodes):
            for value in node.inputs:
                j = produced.get(value)
                if j is not None:
                    parent[find(i)] = find(j)
        groups: dict[int, list[Node]] = {}
        for i, node in enumerate(nodes):
            groups.setdefault(find(i), []).append(node)
        names = {a.name for a in self.outputs}
        return [g for g in groups.values() if any(o in names for n in g for o in n.outputs)]


# -- one part --------------------------------------------------------------------------------------


class _Part:
    """codegen/part.py's PartBuilder and vector.py's VectorOps, allocation only."""

    def __init__(self, kernel: _Kernel, members: list[Node], outputs: list[_Arg]) -> None:
        self.k = kernel
        self.members = members
        self.outputs = outputs
        self.values: dict = dict(kernel.values)
        self.step_shapes = dict(kernel.step_shapes)
        self.uses: dict[str, int] = {}
        self.free: list[int] = []
        self.slots = 0
        self.row_free: list[int] = []
        self.row_slots = 0
        self.transient: list[tuple[int, bool]] = []
        self.loads: dict[tuple, tuple[str, int]] = {}  # key -> (dtype, copies)
        self.load_values: dict[tuple, _Tile] = {}
        self.residents: dict[str, tuple[int, str | None]] = {}  # storage -> (elements, stage dtype)
        self.scratch: dict[str, UbAlloc] = {}
        self.outs: list[str] = []  # output queues, in order (their dtype from the arg)
        self.out_dtype: dict[str, str] = {}
        self.spare_budget = 0

    def shape(self, value: str) -> tuple[int, ...]:
        found = self.step_shapes.get(value)
        return found if found is not None else self.k.shape(value)

    # -- walk ---------------------------------------------------------------------------------------

    def layout(self) -> PartLayout:
        names = {a.name for a in self.outputs}
        computed = {o for n in self.members if n.op_type not in _VIEW_OPS for o in n.outputs if o}
        produced = [o for n in self.members for o in n.outputs if o] + list(names)
        largest = max(produced, key=lambda v: (math.prod(self.shape(v)), v in computed, v in names, len(self.shape(v))))
        self.space = self.shape(largest) or (1,)
        self.walk = "rows" if self.k.rows else "flat"
        self.width = self.space[-1] if self.walk == "rows" else 0
        numel = math.prod(self.space)
        self.total = numel // self.width if self.width else numel
        widths = [ITEMSIZE[a.dtype] for a in self.outputs]
        widths += [ITEMSIZE[a.dtype] for a in self.k.inputs
                   if streamed_input(a.numel, numel, self.k.dynamic and self.k.model.symbolic((a.name,)))]
        self.P = row_pitch(self.width, widths) if self.walk == "rows" else 0
        for node in self.members:
            for value in data_inputs(node):
                self.uses[value] = self.uses.get(value, 0) + 1
        for arg in self.outputs:
            self.uses[arg.name] = self.uses.get(arg.name, 0) + 1
        for node in self.members:
            self._node(node)
        self._finish_outputs()
        allocs: list[UbAlloc] = []
        for (storage, *_), (dtype, copies) in self.loads.items():
            allocs.append(UbAlloc(f"in:{storage}", "tile", ITEMSIZE[dtype], copies, "in"))
        for name in self.outs:
            allocs.append(UbAlloc(f"out:{name}", "tile", ITEMSIZE[self.out_dtype[name]], 2, "out"))
        for storage, (elements, stage) in self.residents.items():
            allocs.append(UbAlloc(f"res:{storage}", "fixed", 4, elements=elements))
            if stage is not None:
                allocs.append(UbAlloc(f"raw:{storage}", "fixed", ITEMSIZE[stage], elements=elements))
        allocs += [UbAlloc(f"tmp{i}", "temp") for i in range(self.slots)]
        allocs += [UbAlloc(f"row{i}", "row") for i in range(self.row_slots)]
        allocs += self.scratch.values()
        return PartLayout(self.walk, self.total, self.width, self.P, tuple(allocs))

    # -- buffers ------------------------------------------------------------------------------------

    @property
    def flat(self) -> bool:
        return self.walk == "flat"

    def _temp(self) -> _Tile:
        if self.free:
            slot = self.free.pop()
        else:
            slot, self.slots = self.slots, self.slots + 1
        return _Tile(f"tmp{slot}", 0, 0, slot)

    def _rowval(self) -> _Row:
        if self.row_free:
            slot = self.row_free.pop()
        else:
            slot, self.row_slots = self.row_slots, self.row_slots + 1
        return _Row(f"row{slot}", slot)

    def _scratch(self, key: str, alloc: UbAlloc) -> None:
        self.scratch.setdefault(key, alloc)

    def _spare(self) -> _Tile:
        if self.spare_budget <= 0:
            raise Unlowerable("an op took a temporary the op table does not give it")
        self.spare_budget -= 1
        spare = self._temp()
        self.transient.append((spare.owner, False))
        return spare

    def _drop_transient(self) -> None:
        for slot, row in self.transient:
            pool = self.row_free if row else self.free
            if slot not in pool and not self._live_owner(slot, row):
                pool.append(slot)
        self.transient = []

    def _live_owner(self, owner: int, row: bool, exclude: str = "") -> bool:
        for name, held in self.values.items():
            if name == exclude or self.uses.get(name, 0) <= 0:
                continue
            if isinstance(held, _Viewed):
                held = held.tile
            if row and isinstance(held, _Row) and held.owner == owner:
                return True
            if not row and isinstance(held, _Tile) and held.owner == owner:
                return True
        if not row:  # a converted load that views not yet read (other slices of its rows) will read
            loaded = {key[0] for key, tile in self.load_values.items() if tile.owner == owner}
            return any(isinstance(held, _Stored) and held.view.storage in loaded and self.uses.get(name, 0) > 0
                       for name, held in self.values.items() if name != exclude)
        return False

    def _release(self, value: str) -> None:
        if value not in self.uses:
            return
        self.uses[value] -= 1
        if self.uses[value] > 0:
            return
        held = self.values.get(value)
        if isinstance(held, _Viewed):
            held = held.tile
        if isinstance(held, _Tile) and held.owner >= 0 and held.owner not in self.free \
                and not self._live_owner(held.owner, False):
            self.free.append(held.owner)
        elif isinstance(held, _Row) and held.owner >= 0 and held.owner not in self.row_free \
                and not self._live_owner(held.owner, True):
            self.row_free.append(held.owner)

    # -- operands -------------------------------------------------------------------------------------

    def operand(self, value: str):
        held = self.values.get(value)
        if held is None:
            constant = self.k.graph.constant(value)
            if constant is None:
                raise Unlowerable(f"value '{value}' is not available in the kernel")
            held = self.values[value] = self.k.constant_value(value, constant)
        if isinstance(held, _Stored):
            held = self.values[value] = self._resolve(held)
        return held

    def _aligned(self, view: View) -> tuple[View, int]:
        if self.flat:
            full = views.expand(view, self.space)
            if full is None or any(d != 1 and s != r for d, s, r in
                                   zip(self.space, full.strides, views.row_major(self.space))):
                raise Unlowerable("a flat tile reads a broadcast or permuted value")
            return full, 0
        width = view.shape[-1] if view.shape else 1
        last_stride = view.strides[-1] if view.shape else 0
        base = View(view.storage, tuple(view.shape[:-1]), tuple(view.strides[:-1]), view.offset)
        expanded = views.expand(base, tuple(self.space[:-1]))
        if expanded is None:
            raise Unlowerable("a value does not broadcast over the rows")
        if width > 1 and last_stride != 1:
            if last_stride:
                raise Unlowerable("a column stride")
            width = 1
        return View(view.storage, expanded.shape + (width,), expanded.strides + (1,), expanded.offset), width

    def _resolve(self, held: _Stored):
        storage = self.k.storages[held.view.storage]
        if held.view.numel == 1:
            return _Scalar()  # read once per core (or a number compiled in)
        aligned, width = self._aligned(held.view)
        if storage.role is None:
            return self._resident_access(held.view.storage, aligned, width, storage)
        grows = self.k.dynamic and self.k.model.symbolic((held.view.storage,))
        per_row = self.walk == "rows" and width == 1 and self.width != 1
        whole = kept_whole(math.prod(storage.shape), ITEMSIZE[storage.dtype], math.prod(self.space), grows, per_row)
        if not whole or storage.role == "workspace":
            if self.walk == "rows" and width == 1 and self.width != 1:
                raise Unlowerable("a large per-row broadcast")
            return self._stream(aligned, width, storage)
        return self._resident_access(held.view.storage, aligned, width, storage)

    def _stream(self, view: View, width: int, storage: _Storage) -> _Tile:
        offset, col, load_width = view.offset, 0, width
        last = storage.shape[-1] if storage.shape else 1
        if self.walk == "rows" and storage.role != "workspace" and width < last \
                and whole_rows(offset % last, last, self.width) \
                and offset % last + width <= last and all(st % last == 0 for st in view.strides[:-1]):
            load_width = last
            col = offset % load_width
            offset -= col
        if self.walk == "rows" and load_width > self.width:
            raise Unlowerable("rows wider than the space's")
        dims, strides = merge_dims(tuple(self.space[:-1]), view.strides[:-1]) if self.walk == "rows" else ((), ())
        key = (view.storage, offset, dims, strides, load_width)
        if key not in self.loads:
            copies = 1 if math.prod(storage.shape) < math.prod(self.space) else self.k.queue_copies
            self.loads[key] = (storage.dtype, copies)
        if key not in self.load_values:
            self.load_values[key] = self._convert_load(key, storage.dtype)
        loaded = self.load_values[key]
        return _Tile(loaded.buf, width, col, loaded.owner)

    def _convert_load(self, key: tuple, dtype: str) -> _Tile:
        if dtype == _FLOAT:
            return _Tile(f"in:{key}", 0, 0, -1)
        dst = self._temp()
        if dtype in ("bool", "uint8"):
            spare = self._temp()  # the half step of uint8 -> half -> float
            self.transient.append((spare.owner, False))
        return _Tile(dst.buf, 0, 0, dst.owner)

    def _resident(self, key: str, storage: _Storage) -> None:
        if key in self.residents:
            return
        shape = storage.shape or (1,)
        width = shape[-1]
        rows = math.prod(shape) // width
        loaded = ITEMSIZE[storage.dtype] if storage.role is not None else 4
        elements = max(rows * resident_pitch(width, loaded), 8)
        stage = storage.dtype if storage.role is not None and storage.dtype != _FLOAT else None
        self.residents[key] = (elements, stage)

    def _resident_access(self, key: str, view: View, width: int, storage: _Storage) -> _PerRow:
        if self.flat:
            raise Unlowerable("a flat tile reads a broadcast")
        self._resident(key, storage)
        if width == 1 and self.width != 1:
            return _PerRow(True, 1)
        return _PerRow(False, width)

    # -- nodes ----------------------------------------------------------------------------------------

    def _node(self, node: Node) -> None:
        op = node.op_type
        table = op_table()
        if op == "Constant":
            return
        data = data_inputs(node)
        self.spare_budget = spare_temporaries(op)
        if op in ("Shape", "Size"):
            shape = np.asarray(self.shape(node.inputs[0]), dtype=np.int64)
            start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
            result = shape[start:end] if op == "Shape" else np.asarray(int(np.prod(shape)), dtype=np.int64)
            self.values[node.outputs[0]] = self.k.constant_value(node.outputs[0], result)
        elif data and all(self._is_constant(v) for v in data) and op not in _VIEW_OPS:
            self._fold(node)
        elif op in _VIEW_OPS:
            self._view(node)
        elif op == "Gelu" and node.attrs.get("approximate", "none") == "tanh":
            self._decompose(node, "GeluTanh")
        elif op in table["decompose"]:
            self._decompose(node, op)
        elif op in _REDUCE_KINDS:
            self._reduce(node)
        elif op in table["binary"] or op in table["compare"] or op in ("Pow", "Sum", "Mean", "Xor"):
            self._binary_node(node)
        elif op in table["unary"]:
            self.values[node.outputs[0]] = self._steps(node, self.operand(node.inputs[0]), reuse=True)
        elif op == "Where":
            self._where(node)
        elif op in ("Cast", "CastLike"):
            self._cast(node)
        elif op == "Concat":
            self._concat(node)
        elif op == "Gather":
            self.values[node.outputs[0]] = _Scalar()
        elif op in ("IsNaN", "IsInf"):
            self._is_special(node)
        elif op == "Clip":
            self._clip(node)
        else:
            raise Unlowerable(f"op {op} has no vector lowering")
        for value in data:
            self._release(value)
        self._drop_transient()

    def _is_constant(self, value: str) -> bool:
        held = self.values.get(value)
        if isinstance(held, _Scalar):
            return held.const is not None
        if isinstance(held, _Stored):
            return self.k.storages[held.view.storage].role is None
        return held is None and value in self.k.graph.constants

    def _fold(self, node: Node) -> None:
        """A member whose data inputs are all constants is evaluated (as vector.py _fold does)."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        feeds = {v: self.k.constant_array(v, self.values.get(v)) for v in node.inputs if v}
        proto = helper.make_node(node.op_type, list(node.inputs), list(node.outputs), **dict(node.attrs))
        try:
            results = ReferenceEvaluator(proto).run(None, feeds)
        except Exception as exc:  # noqa: BLE001 - the generator refuses the group then
            raise Unlowerable(f"cannot evaluate constant node '{node.name}': {exc}") from exc
        for name, result in zip(node.outputs, results):
            self.values[name] = self.k.constant_value(name, np.asarray(result))

    def _view(self, node: Node) -> None:
        op = node.op_type
        source = self.values.get(node.inputs[0])
        if source is None:
            constant = self.k.graph.constant(node.inputs[0])
            if constant is None:
                raise Unlowerable(f"'{node.name}': its input is not available")
            source = self.values[node.inputs[0]] = self.k.constant_value(node.inputs[0], constant)
        outs = [o for o in node.outputs if o]
        if isinstance(source, _Scalar):
            for o in outs:
                self.values[o] = source
            return
        if isinstance(source, _Stored):
            for o, view in zip(outs, self._view_of(node, source.view, [self.shape(o) for o in outs])):
                self.values[o] = _Stored(view, source.dtype)
            return
        if op in ("Slice", "Split"):
            if not isinstance(source, _Tile) or self.flat:
                raise Unlowerable(f"{op} of a value that is not a tile")
            shape = self.shape(node.inputs[0])
            for o, (axis, start, stop) in zip(outs, self._slices(node, shape)):
                if axis != len(shape) - 1:
                    raise Unlowerable(f"{op} of computed data along axis {axis}")
                view = _Tile(source.buf, stop - start, source.col + start, source.owner)
                if view.col % 8 and view.width > 1 and self.uses.get(o, 0) > 0:  # vector.py _realigned
                    view = replace(self._temp(), width=view.width)
                self.values[o] = view
            return
        before, shape = self.shape(node.inputs[0]), self.shape(outs[0])
        keeps_rows = shape[-1:] == before[-1:] and math.prod(shape[:-1]) == math.prod(before[:-1]) and \
            (op != "Transpose" or views.moves_nothing(before, node.attrs.get("perm")))
        if keeps_rows or self.flat and op != "Transpose" or isinstance(source, _Row) and op != "Transpose":
            self.values[outs[0]] = source
            return
        if not isinstance(source, (_Tile, _Viewed)):
            raise Unlowerable(f"{op} rearranges a per-row value")
        self.values[outs[0]] = source if isinstance(source, _Viewed) else _Viewed(source)

    def _view_of(self, node: Node, view: View, shapes: list[tuple[int, ...]]) -> list[View]:
        op = node.op_type
        if op == "Transpose":
            perm = node.attrs.get("perm") or tuple(reversed(range(len(view.shape))))
            return [views.transpose(view, tuple(perm))]
        if op == "Expand":
            out = views.expand(view, shapes[0])
            if out is None:
                raise Unlowerable("Expand")
            return [out]
        if op in ("Slice", "Split"):
            return [views.slice_axis(view, axis, start, stop) for axis, start, stop in self._slices(node, view.shape)]
        out = views.reshape(view, shapes[0])
        if out is None:
            raise Unlowerable("a reshape of a permuted view")
        return [out]

    def _slices(self, node: Node, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
        outputs = [self.shape(o)[int(node.attrs.get("axis", 0)) % len(shape)] for o in node.outputs if o] \
            if node.op_type == "Split" else None
        bounds = [self._known(v) if v else None for v in node.inputs[1:5]]
        unknown = any(b is None for b, v in zip(bounds, node.inputs[1:5]) if v)
        if node.op_type == "Slice" and (len(bounds) < 2 or unknown):
            raise Unlowerable("Slice bounds computed at run time")
        try:
            return views.slice_bounds(node.op_type, node.attrs, shape, outputs, [
                None if b is None else np.asarray(b) for b in bounds])
        except ValueError as exc:
            raise Unlowerable(str(exc)) from None

    def _known(self, value: str):
        held = self.values.get(value)
        if isinstance(held, _Scalar):
            return None if held.const is None else np.asarray([held.const])
        if isinstance(held, _Stored) and self.k.storages[held.view.storage].role is None:
            return self.k.constant_array(value, held)
        constant = self.k.graph.constant(value)
        return None if constant is None else np.asarray(constant)

    # -- destinations ---------------------------------------------------------------------------------

    def _width(self, value: str) -> int:
        if self.flat:
            return 0
        shape = self.shape(value)
        return shape[-1] if shape else 1

    def _dying(self, node: Node, operands: list) -> list[_Tile]:
        found = []
        for name, operand in zip([v for v in node.inputs if v], operands):
            if isinstance(operand, _Tile) and operand.owner >= 0 and operand.col == 0 \
                    and self.uses.get(name, 0) == list(node.inputs).count(name) \
                    and not self._live_owner(operand.owner, False, exclude=name):
                found.append(operand)
        return found

    def _dst(self, node: Node, reuse: list[_Tile], padded: bool = False) -> _Tile:
        out = node.outputs[0]
        width = self._width(out)
        arg = next((a for a in self.outputs if a.name == out), None)
        if not padded and arg is not None and arg.dtype == _FLOAT and self._store_width(arg) == width:
            return _Tile(self._out_local(arg), width, 0, -1)
        if reuse:
            return replace(reuse[0], width=width)
        return replace(self._temp(), width=width)

    def _out_local(self, arg: _Arg) -> str:
        local = f"out:{arg.name}"
        if arg.name not in self.out_dtype:
            self.outs.append(arg.name)
            self.out_dtype[arg.name] = arg.dtype
        return local

    def _store_width(self, arg: _Arg) -> int:
        if self.flat:
            return 0
        return arg.shape[-1] if arg.shape else 1

    def _whole(self, v, width: int) -> bool:
        if isinstance(v, _Scalar):
            return True
        return isinstance(v, _Tile) and v.col == 0 and (v.width == width or self.flat)

    def _per_row_numbers(self, v) -> bool:
        if self.flat:
            return isinstance(v, _Scalar)
        return isinstance(v, (_Row, _Scalar)) or (isinstance(v, _PerRow) and v.number) \
            or (isinstance(v, _Tile) and v.width == 1 and self.width != 1)

    def _materialize(self, v, width: int, padded: bool = False) -> _Tile:
        if isinstance(v, _Tile) and self._whole(v, width) and (not padded or v.owner >= 0):
            return v
        dst = replace(self._temp(), width=width)
        self.transient.append((dst.owner, False))
        return dst

    def _as_rowval(self, v):
        if isinstance(v, (_Row, _Scalar)):
            return v
        dst = self._rowval()
        self.transient.append((dst.owner, True))
        return dst

    # -- arithmetic -----------------------------------------------------------------------------------

    def _binary_node(self, node: Node) -> None:
        op = node.op_type
        names = [v for v in node.inputs if v]
        operands = [self.operand(v) for v in names]
        if len(operands) == 1:
            self.values[node.outputs[0]] = operands[0]
            return
        if len(operands) > 2:
            raise Unlowerable(f"{op} with {len(operands)} inputs")
        kind = {"Sum": "Add", "Mean": "Add"}.get(op, op)
        result = self._binary(kind, operands[0], operands[1], node)
        if op == "Mean":
            result = self._steps(node, result, reuse=True)
        self.values[node.outputs[0]] = result

    def _binary(self, op: str, a, b, node: Node, reuse: bool = True):
        table = op_table()
        if isinstance(a, _Scalar) and isinstance(b, _Scalar):
            return _scalar_binary(op, a, b)
        if op in table["compare"]:
            return self._compare(a, b, node)
        if op == "Pow":
            return self._pow(a, b, node)
        if op == "Xor":
            return self._steps(node, self._binary("Sub", a, b, node), reuse=True)
        apis = table["binary"].get(op)
        if apis is None:
            raise Unlowerable(f"op {op} has no vector lowering")
        identity = {"Mul": 1.0, "And": 1.0, "Or": 0.0}.get(op)
        for kept, other in ((a, b), (b, a)):
            if identity is not None and isinstance(other, _Scalar) and other.const == identity \
                    and not isinstance(kept, _Scalar):
                return kept
        if self._per_row_numbers(a) and self._per_row_numbers(b):
            return self._rowval_binary(op, apis, a, b, node, reuse)
        width = self._width(node.outputs[0])
        dst = self._dst(node, self._dying(node, [a, b]) if reuse else [])
        if self._whole(a, width) and self._whole(b, width):
            self._tensor_op(op, apis, a, b, "bcast")
        else:  # row by row: a per-row number is a scalar there (vector.py _row_operand)
            self._tensor_op(op, apis, self._in_row(a, width), self._in_row(b, width), "row_bcast")
        return dst

    def _in_row(self, v, width: int):
        if isinstance(v, (_Row, _Scalar)) or isinstance(v, _PerRow) and v.number \
                or isinstance(v, _Tile) and v.width == 1 and width != 1:
            return v if isinstance(v, _Scalar) else _Scalar()
        return v

    def _rowval_binary(self, op: str, apis: dict, a, b, node: Node, reuse: bool) -> _Row:
        a, b = self._as_rowval(a), self._as_rowval(b)
        dst = None
        if reuse:
            for operand, name in zip((a, b), [v for v in node.inputs if v]):
                if isinstance(operand, _Row) and operand.owner >= 0 and self.uses.get(name, 0) == 1 \
                        and not self._live_owner(operand.owner, True, exclude=name):
                    dst = operand
                    break
        dst = dst or self._rowval()
        self._tensor_op(op, apis, a, b, "row_values_bcast")
        return dst

    def _tensor_op(self, op: str, apis: dict, a, b, scratch: str) -> None:
        """Where an op with a number operand has no tensor-scalar instruction: the number is
        spread over a temporary (`bcast`) or a scratch row (see vector.py _tensor_op)."""
        if not (isinstance(a, _Scalar) or isinstance(b, _Scalar)):
            return
        scalar_first = isinstance(a, _Scalar)
        scalar = a if scalar_first else b
        if apis.get("scalar") and (not scalar_first or op in ("Add", "Mul", "Max", "Min", "And", "Or")):
            return
        if op == "Sub":
            return
        if op == "Div" and not scalar_first and (scalar.const is None or _exact_reciprocal(scalar.const)):
            return
        if scratch == "bcast":
            self._spare()
        elif scratch == "row_values_bcast":
            self._scratch(scratch, UbAlloc(scratch, "row_values_bcast"))
        else:
            self._scratch(scratch, UbAlloc(scratch, "fixed", elements=-(-max(self.P, 8) // 64) * 64 + 64))

    def _pow(self, a, b, node: Node):
        if isinstance(b, _Scalar) and b.const in (1.0, 2.0, 3.0, 0.5, -1.0, -0.5):
            e = b.const
            if e == 1.0:
                return a
            if e in (2.0, 3.0):
                square = self._binary("Mul", a, a, node, reuse=e == 2.0)
                if e == 3.0 and isinstance(square, _Row):
                    return self._rowval_binary("Mul", op_table()["binary"]["Mul"], square, a, node, reuse=False)
                return square
            return self._steps(node, a)
        logged = self._steps(node, a)
        product = self._binary("Mul", logged, b, node, reuse=False)
        return self._steps(node, product, reuse=True)

    def _steps(self, node: Node, a, reuse: bool = False):
        """vector.py _steps: unary steps in place on a copy of `a` (or on `a` when it dies here)."""
        if isinstance(a, _Scalar) and a.const is not None:
            return _Scalar(_fold_unary(node, a.const))
        if self._per_row_numbers(a) and not isinstance(a, _Scalar):
            source = self._as_rowval(a)
            if reuse and source.owner >= 0 and self.uses.get(node.inputs[0], 0) <= 1 \
                    and not self._live_owner(source.owner, True, exclude=node.inputs[0]):
                return source
            return self._rowval()
        width = self._width(node.outputs[0])
        source = self._materialize(a, width)
        candidates = [source] if source is not a and source.owner >= 0 else []
        if reuse and not candidates and node.inputs:
            candidates = self._dying(node, [self.values.get(node.inputs[0], a)])[:1]
        return self._dst(node, candidates)

    # -- comparisons and selection -------------------------------------------------------------------

    def _mask(self) -> None:
        self._scratch("cmp_mask", UbAlloc("cmp_mask", "temp_mask", 1))

    @property
    def aligned_counts(self) -> bool:
        return self.walk == "rows" and self.P % 64 == 0

    def _compare(self, a, b, node: Node):
        width = self._width(node.outputs[0])
        padded = not self.aligned_counts
        dying = self._dying(node, [a, b])
        if isinstance(a, _Scalar) and isinstance(b, _Scalar):
            return _Scalar()
        if isinstance(a, _Scalar):
            a, b = b, a
        if self._per_row_numbers(a) and self._per_row_numbers(b):
            self._scratch("row_mask", UbAlloc("row_mask", "row_mask", 1))
            self._as_rowval(a), self._as_rowval(b)
            self._drop_transient()
            return self._rowval()
        self._materialize(a, width, padded=padded)
        self._mask()
        if not isinstance(b, _Scalar):
            self._materialize(b, width, padded=padded)
        self._drop_transient()
        return self._dst(node, dying, padded=padded)

    def _where(self, node: Node) -> None:
        cond, a, b = (self.operand(v) for v in node.inputs)
        if all(self._per_row_numbers(v) for v in (cond, a, b)) and not all(isinstance(v, _Scalar) for v in (cond, a, b)):
            self._scratch("row_mask", UbAlloc("row_mask", "row_mask", 1))
            if isinstance(a, _Scalar) and not isinstance(b, _Scalar):
                a, b = b, a
            self._as_rowval(cond)
            dst = self._rowval()
            if not isinstance(a, _Scalar):
                self._as_rowval(a)
            if not isinstance(b, _Scalar):
                self._as_rowval(b)
            self.values[node.outputs[0]] = dst
            return
        width = self._width(node.outputs[0])
        padded = not self.aligned_counts
        if isinstance(a, _Scalar) and not isinstance(b, _Scalar):
            a, b = b, a
        self._materialize(cond, width, padded=padded)
        self._mask()
        self._drop_transient()
        reuse = self._dying(node, [cond, a, b]) if isinstance(a, _Scalar) else []
        if isinstance(a, _Scalar):
            dst = self._dst(node, reuse, padded=padded)
        else:
            self._materialize(a, width, padded=padded)
            dst = self._dst(node, [], padded=padded)
        if not isinstance(b, _Scalar):
            self._materialize(b, width, padded=padded)
        self.values[node.outputs[0]] = dst

    def _is_special(self, node: Node) -> None:
        a = self.operand(node.inputs[0])
        if node.op_type == "IsInf":
            a = self._steps(node, a)
        self.values[node.outputs[0]] = self._compare(a, a if node.op_type == "IsNaN" else _Scalar(math.inf), node)

    def _clip(self, node: Node) -> None:
        value = self.operand(node.inputs[0])
        bounds = [self.operand(v) if v else None for v in list(node.inputs[1:3]) + [""] * (3 - len(node.inputs))][:2]
        low = _Scalar(float(node.attrs["min"])) if "min" in node.attrs else bounds[0]
        high = _Scalar(float(node.attrs["max"])) if "max" in node.attrs else bounds[1]
        if low is not None:
            value = self._binary("Max", value, low, node, reuse=False)
        if high is not None:
            value = self._binary("Min", value, high, node, reuse=False)
        self.values[node.outputs[0]] = value

    def _cast(self, node: Node) -> None:
        source = self.operand(node.inputs[0])
        to = self.k.graph.type_of(node.outputs[0]).dtype or ""
        before = self.k.graph.type_of(node.inputs[0]).dtype or ""
        if isinstance(source, _Scalar) and source.const is not None:
            self.values[node.outputs[0]] = _Scalar(0.0)
            return
        exact = to == before or to in (_FLOAT, "float64") or before == "bool" or \
            (before.startswith(("int", "uint")) and to not in ("bool", "float16", "bfloat16"))
        if exact:
            self.values[node.outputs[0]] = source
        elif to == "bool":
            self.values[node.outputs[0]] = self._compare(source, _Scalar(0.0), node)
        elif to.startswith(("int", "uint")):
            self.values[node.outputs[0]] = self._steps(node, source, reuse=True)
        elif to in ("float16", "bfloat16") and self._per_row_numbers(source) and not isinstance(source, _Scalar):
            self._as_rowval(source)
            self._scratch(f"row_{to}", UbAlloc(f"row_{to}", "row", 2))
            self.values[node.outputs[0]] = self._rowval()
        elif to in ("float16", "bfloat16"):
            width = self._width(node.outputs[0])
            src = self._materialize(source, width)
            dst = self._dst(node, [src] if src is not source else self._dying(node, [source]))
            self._spare()
            self.values[node.outputs[0]] = dst
        else:
            raise Unlowerable(f"Cast from {before} to {to}")

    def _concat(self, node: Node) -> None:
        shape = self.shape(node.outputs[0])
        axis = int(node.attrs.get("axis", 0)) % len(shape)
        if axis != len(shape) - 1 or self.flat:
            raise Unlowerable("Concat along another axis")
        dst = self._dst(node, [])
        for value in node.inputs:
            self.operand(value)
        self.values[node.outputs[0]] = replace(dst, width=shape[-1])

    # -- rows -----------------------------------------------------------------------------------------

    def _reduce(self, node: Node) -> None:
        signature = reduction_signature(node, self.k.graph)
        if signature is not None and not signature.axes:
            self.values[node.outputs[0]] = self.operand(node.inputs[0])
            return
        if self.flat:
            raise Unlowerable("a reduction in a flat tile")
        shape = self.shape(node.inputs[0])
        if signature is None or signature.axes != (len(shape) - 1,):
            raise Unlowerable("a reduction not over the last axis")
        self.values[node.outputs[0]] = self._reduce_rows(self.operand(node.inputs[0]), shape[-1])

    def _reduce_rows(self, source, width: int) -> _Row:
        self._materialize(source, width)
        repeats = -(-width // 64)
        self._scratch("reduce_work", UbAlloc("reduce_work", "fixed", elements=max(8, -(-repeats // 8) * 8)))
        self._scratch("reduce_out", UbAlloc("reduce_out", "fixed", elements=8))
        return self._rowval()

    def _decompose(self, node: Node, op: str) -> None:
        steps = self._expand(node, op)
        row_width = self.shape(node.inputs[0])[-1]
        for step in steps:
            for value in step.inputs:
                self.uses[value] = self.uses.get(value, 0) + 1
        for step in steps:
            if step.op_type in _REDUCE_KINDS:
                self.values[step.outputs[0]] = self._reduce_rows(self.operand(step.inputs[0]), row_width)
                self._release(step.inputs[0])
            else:
                self._node(step)

    def _expand(self, node: Node, op: str) -> list[Node]:
        recipe = op_table()["decompose"][op]
        attrs = {**op_table()["attribute_defaults"].get(node.op_type, {}), **dict(node.attrs)}
        names = {f: a for f, a in zip(recipe["inputs"], node.inputs) if a}
        names.update({f: a for f, a in zip(recipe["outputs"], node.outputs) if a})
        local = lambda n: names.get(n) or f"{node.name}@{op}.{n}"  # noqa: E731
        signature = reduction_signature(node, self.k.graph) if node.op_type.startswith("Reduce") else None
        reduces = signature is None or bool(signature.axes)
        row_shape = self.shape(node.inputs[0])
        steps: list[Node] = []
        for i, (out, step_op, *args) in enumerate(recipe["steps"]):
            operands: list[str] | None = []
            for j, arg in enumerate(args):
                if isinstance(arg, str) and arg in recipe["inputs"] and arg not in names:
                    operands = None
                    break
                if isinstance(arg, str) and not arg.startswith("$"):
                    operands.append(local(arg))
                    continue
                constant = f"{node.name}@{op}.c{i}.{j}"
                value = attrs[arg[1:]] if isinstance(arg, str) else arg
                self.values[constant] = _Scalar(float(value))
                operands.append(constant)
            target = local(out)
            if operands is None or step_op in _REDUCE_KINDS and not reduces:
                step_op, operands = "Identity", [local(args[0])]
            steps.append(Node(-1, node.name, step_op, "", tuple(operands), (target,)))
            if step_op in _REDUCE_KINDS:
                self.step_shapes.setdefault(target, row_shape[:-1] + (1,))
            else:
                shapes = [self.shape(v) for v in operands if not isinstance(self.values.get(v), _Scalar)]
                self.step_shapes.setdefault(target, views.broadcast_shape(*shapes) or shapes[0])
        return steps

    # -- outputs --------------------------------------------------------------------------------------

    def _finish_outputs(self) -> None:
        for arg in self.outputs:
            value = self.values.get(arg.name)
            if value is None:
                raise Unlowerable(f"output '{arg.name}' is not computed by the group")
            scattered = isinstance(value, _Viewed)
            if scattered:  # stored row by row through the inverse view: the tile as it is
                self._out_local(arg)
                value = value.tile
                local = ""
            else:
                local = self._out_local(arg)
            if isinstance(value, _Tile) and value.buf == local:
                continue
            if isinstance(value, _Stored):
                value = self._resolve(value)
            width = value.width if scattered else self._store_width(arg)
            if isinstance(value, (_Row, _PerRow)) or (isinstance(value, _Scalar) and width == 1):
                if isinstance(value, _Scalar):
                    self._rowval()
                elif not isinstance(value, _Row):
                    self._as_rowval(value)
                continue
            self._materialize(value, width)


def _scalar_binary(op: str, a: _Scalar, b: _Scalar) -> _Scalar:
    """Two numbers: folded when both are constants (lower.py scalar_binary), else a number the
    kernel computes once per core."""
    if a.const is None or b.const is None:
        return _Scalar()
    x, y = np.float32(a.const), np.float32(b.const)
    with np.errstate(all="ignore"):
        folded = {"Add": x + y, "Sub": x - y, "Mul": x * y, "Div": x / y, "Max": max(x, y), "Min": min(x, y),
                  "Pow": np.power(x, y), "And": x * y, "Or": max(x, y)}.get(op)
    return _Scalar(float(folded) if folded is not None else 0.0)


def _fold_unary(node: Node, value: float) -> float:
    """A unary op of a constant (its value matters only where it decides a lowering: a Pow's
    exponent, a Div's divisor)."""
    steps = op_table()["unary"].get(node.op_type, [])
    x = np.float32(value)
    with np.errstate(all="ignore"):
        for step in steps:
            api, arg = step[0], (step[1] if len(step) > 1 and not isinstance(step[1], str) else None)
            x = np.float32({"Exp": np.exp, "Ln": np.log, "Sqrt": np.sqrt, "Abs": np.abs,
                            "Reciprocal": lambda v: np.float32(1) / v}.get(api, lambda v: v)(x))
            if api == "Muls" and arg is not None:
                x = np.float32(x * np.float32(arg))
            elif api == "Adds" and arg is not None:
                x = np.float32(x + np.float32(arg))
    return float(x)


def _exact_reciprocal(value: float) -> bool:
    mantissa, _ = math.frexp(value)
    return value != 0 and abs(mantissa) == 0.5
