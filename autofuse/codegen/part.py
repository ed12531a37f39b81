"""One part of a kernel: the tile walk over its space, its UB buffers, and the copies in and out.

A part lowers its members over the shape of its largest output (codegen/lower.py splits a group
into parts). This module owns the walk (rows, flat or split-row, as the cost model's tile says),
the UB buffers and their reuse, the loads of inputs (streamed per tile or resident per core) and
the stores of outputs; how each member becomes Ascend C calls is codegen/vector.py.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from autofuse.codegen import views
from autofuse.codegen.names import comment_text
from autofuse.codegen.program import (
    ITEMSIZE,
    GmArg,
    Load,
    Part,
    Pass,
    Resident,
    Store,
    UbBuffer,
)
from autofuse.codegen.values import (
    FLOAT,
    REDUCE_KINDS,
    VIEW_OPS,
    LoweringError,
    PerRow,
    RowVal,
    Scalar,
    Storage,
    Stored,
    TileVal,
    Value,
    Viewed,
    float_literal,
    op_table,
)

# -- one part -----------------------------------------------------------------------------------
from autofuse.codegen.vector import VectorOps
from autofuse.codegen.views import (
    View,
    merge_dims,
    pitched,
    row_index_expr,
    rows_contiguous,
)
from autofuse.cost.layout import spare_temporaries
from autofuse.cost.tiling import (
    kept_whole,
    resident_pitch,
    row_pitch,
    row_value_elements,
    shared_queues,
    streamed_input,
    temp_elements,
    tile_elements,
    whole_rows,
)
from autofuse.cost.traffic import data_inputs
from autofuse.ir.graph import Node
from autofuse.ops.table import OpClass, op_class

if TYPE_CHECKING:
    from autofuse.codegen.lower import KernelBuilder


class PartBuilder(VectorOps):
    """Lowers the members of one part over its own space (the shape of its largest output).

    Every tile buffer of a part holds `rows` rows of `P` elements (the widest row rounded up to
    a 32-byte block of the narrowest element type), so a value of any width reads row r at
    `buf[r * P + column]` and whole-tile instructions run over `rows * P` elements (flat walks:
    over `len` elements).
    """

    def __init__(self, kernel: KernelBuilder, index: int, members: list[Node], outputs: list[GmArg]) -> None:
        self.k = kernel
        self.ctx = kernel.ctx
        self.index = index
        self.members = members
        self.outputs = outputs
        self.values: dict[str, Value] = dict(kernel.values)
        self.tag = f"p{index}_" if index else ""
        self.lines: list[str] = []
        self.buffers: list[UbBuffer] = []
        self.locals: list[str] = []
        self.loads: dict[tuple, Load] = {}
        self.load_values: dict[tuple, TileVal] = {}
        self.residents: dict[str, Resident] = {}
        self.init: list[str] = []
        self.free: list[int] = []
        self.slots: list[str] = []
        self.row_free: list[int] = []
        self.row_slots: list[str] = []
        self.shared: dict[str, str] = {}
        self.uses: dict[str, int] = {}
        self.out_locals: dict[str, str] = {}
        self.stores: list[Store] = []
        self.step_shapes: dict[str, tuple[int, ...]] = dict(kernel.step_shapes)
        self.transient: list[tuple[int, bool]] = []  # (slot, is a row-value slot) of this node's copies
        self.pass_loads: set[int] = set()  # split_row: the loads the current pass reads
        self.tile_context = False  # split_row: lowering a chunk's statements (row values are numbers)
        self.spare_op = ""  # the op being lowered, and the spare temporaries the op table gives it
        self.spare_budget = 0

    # -- the walk ------------------------------------------------------------------------------

    def build(self) -> Part:
        tile = self.k.tile
        # The space: the largest value the part computes; among equals, one an op computes (not a
        # view of it), then an output.
        names = {a.onnx for a in self.outputs}
        computed = {o for n in self.members if n.op_type not in VIEW_OPS for o in n.outputs if o}
        produced = [o for n in self.members for o in n.outputs if o] + list(names)
        largest = max(produced, key=lambda v: (math.prod(self.shape(v)), v in computed, v in names,
                                               len(self.shape(v))))
        self.space = self.shape(largest) or (1,)
        scheme = tile.scheme
        reductions = [n for n in self.members if op_class(n) in (OpClass.REDUCTION, OpClass.NORMALIZATION)]
        if scheme == "split_row":
            return self._build_split()
        if scheme == "rows" or tile.rows:
            self.walk = "rows"
            self.width = self.space[-1]
            if reductions and tile.row_len != self.width:
                raise LoweringError(f"the tile's rows of {tile.row_len} elements are not the last axis "
                                    f"({self.width}) of {self.space}")
        else:
            if reductions:
                raise LoweringError("a reduction in a flat (elementwise) tile")
            self.walk = "flat"
            self.width = 0
        numel = math.prod(self.space)
        self.total = numel // self.width if self.width else numel
        # The tile's units (rows of the tile's row length, or elements) in this part's own rows:
        # the same scale the generated tiling function applies at run time (tiling_func.h.j2).
        self.scale = (tile.row_len, self.width) if self.walk == "rows" and scheme != "rows" else (1, 1)
        cap = tile.rule.cap if tile.rule is not None else (tile.rows or tile.elements)
        self.per_tile = cap * self.scale[0] // self.scale[1]
        # Buffers for the tile the rule's cap allows: a static space sizes them for this part's
        # own size, a symbolic one for any size (cost/tiling.py sizes the UB the same way).
        self.per_tile = max(1, self.per_tile if tile.dynamic else min(self.per_tile, self.total))
        widths = [ITEMSIZE[a.ctype] for a in self.outputs]
        widths += [ITEMSIZE[a.ctype] for a in self.k.inputs
                   if streamed_input(a.numel, numel, tile.dynamic and self.ctx.model.symbolic((a.onnx,)))]
        self.P = row_pitch(self.width, widths) if self.walk == "rows" else 0
        self._count_uses(self.members)
        for node in self.members:
            self._node(node)
        self._finish_outputs()
        self._share_queues()
        # tiles at the bound sizes: the tile the cost model priced there, in this part's rows
        walked = max(1, min((tile.rows or tile.elements) * self.scale[0] // self.scale[1], self.total))
        tiles = -(-self.total // walked)
        return Part(self.index, self.walk, self.space, self.width, self.total, self.per_tile, tiles, self.scale,
                    nodes=tuple(comment_text(f"{n.op_type} {n.name}") for n in self.members),
                    loads=tuple(self.loads.values()), stores=tuple(self.stores),
                    residents=tuple(self.residents.values()), buffers=tuple(self.buffers), init=tuple(self.init),
                    locals=tuple(self.locals), body=tuple(self.lines))

    def _count_uses(self, nodes: list[Node]) -> None:
        for node in nodes:
            for value in data_inputs(node):
                self.uses[value] = self.uses.get(value, 0) + 1
        for arg in self.outputs:
            self.uses[arg.onnx] = self.uses.get(arg.onnx, 0) + 1

    def shape(self, value: str) -> tuple[int, ...]:
        found = self.step_shapes.get(value)
        return found if found is not None else self.ctx.shape(value)

    # -- geometry and UB -----------------------------------------------------------------------

    @property
    def flat_like(self) -> bool:
        """A tile is one run of `len` elements (a flat walk, or a chunk of a split row)."""
        return self.walk in ("flat", "split_row")

    @property
    def capacity(self) -> int:
        """fp32 elements of a tile temporary: a whole tile, rounded up for Compare's 256-byte
        counts, plus one row of slack for per-row instructions rounded to 64 elements (the
        cost model sizes it with the same formula, cost/tiling.py)."""
        return temp_elements(self.tile_elements)

    @property
    def row_capacity(self) -> int:
        """fp32 elements of a one-value-per-row buffer (room for Compare's 256-byte counts)."""
        return row_value_elements(self.walk, self.per_tile)

    @property
    def tile_elements(self) -> int:
        return tile_elements(self.walk, self.per_tile, self.P)

    @property
    def count(self) -> str:
        """Elements a whole-tile instruction covers."""
        return "len" if self.flat_like else f"rows * {self.P}"

    def _buffer(self, kind: str, ctype: str, elements: int, purpose: str, copies: int = 1) -> str:
        name = self.k.names.name(f"{self.tag}{purpose}")
        self.buffers.append(UbBuffer(name, kind, ctype, elements, copies, purpose))
        return name

    def _calc(self, ctype: str, elements: int, purpose: str) -> str:
        buf = self._buffer("calc", ctype, elements, purpose)
        local = f"t_{buf}"
        self.locals.append(f"LocalTensor<{ctype}> {local} = {buf}.Get<{ctype}>();")
        return local

    def _temp(self) -> TileVal:
        if self.free:
            slot = self.free.pop()
        else:
            self.slots.append(self._calc("float", self.capacity, f"tmp{len(self.slots)}"))
            slot = len(self.slots) - 1
        return TileVal(self.slots[slot], 0, 0, slot)

    def _rowval(self) -> RowVal:
        if self.row_free:
            slot = self.row_free.pop()
        else:
            self.row_slots.append(self._calc("float", self.row_capacity, f"row{len(self.row_slots)}"))
            slot = len(self.row_slots) - 1
        return RowVal(self.row_slots[slot], slot)

    def _scratch(self, key: str, ctype: str, elements: int) -> str:
        """A small buffer used by one kind of instruction (a mask, reduction scratch)."""
        if key not in self.shared:
            self.shared[key] = self._calc(ctype, elements, key)
        return self.shared[key]

    def _spare(self, ctype: str = "float") -> str:
        """A tile-sized temporary for this node only (another type reinterprets its bytes). An op
        takes no more of them than the op table gives it (vector_ops.yaml `temporaries`): the
        cost model counts those."""
        if self.spare_budget <= 0:
            raise LoweringError(f"{self.spare_op or 'an op'} needs a spare temporary that vector_ops.yaml "
                                "`temporaries` does not give it (the cost model would not count it)")
        self.spare_budget -= 1
        return self._scratch_tile(ctype)

    def _scratch_tile(self, ctype: str = "float") -> str:
        spare = self._temp()
        self.transient.append((spare.owner, False))
        return spare.buf if ctype == "float" else f"{spare.buf}.ReinterpretCast<{ctype}>()"

    def _budget(self, op: str) -> None:
        """The spare temporaries the op table gives `op`, the node lowered next."""
        self.spare_op, self.spare_budget = op, spare_temporaries(op)

    def _drop_transient(self) -> None:
        """Operand copies made for the current instruction are free again."""
        for slot, row in self.transient:
            pool = self.row_free if row else self.free
            if slot not in pool and not self._live_owner(slot, row):
                pool.append(slot)
        self.transient = []

    def _live_owner(self, owner: int, row: bool, exclude: str = "") -> bool:
        for name, held in self.values.items():
            if name == exclude or self.uses.get(name, 0) <= 0:
                continue
            if row and isinstance(held, RowVal) and held.owner == owner:
                return True
            if not row and isinstance(held, TileVal) and held.owner == owner:
                return True
        if not row:  # a converted load that views not yet read (other slices of its rows) will read
            loaded = {key[0] for key, tile in self.load_values.items() if tile.owner == owner}
            return any(isinstance(held, Stored) and held.view.storage in loaded and self.uses.get(name, 0) > 0
                       for name, held in self.values.items() if name != exclude)
        return False

    def _release(self, value: str) -> None:
        """One read of `value` done; its buffer is free once no live value holds it."""
        if value not in self.uses:
            return
        self.uses[value] -= 1
        if self.uses[value] > 0:
            return
        held = self.values.get(value)
        if isinstance(held, TileVal) and held.owner >= 0 and held.owner not in self.free \
                and not self._live_owner(held.owner, False):
            self.free.append(held.owner)
        elif isinstance(held, RowVal) and held.owner >= 0 and held.owner not in self.row_free \
                and not self._live_owner(held.owner, True) and self.walk != "split_row":
            self.row_free.append(held.owner)  # (a split row's values are read again by later passes)

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    def vec(self, call: str) -> None:
        """One vector instruction. TBuf memory has no automatic synchronisation: a barrier on the
        vector pipe orders it before the next instruction (as ops-nn's kernels do)."""
        self.lines.extend((call, "PipeBarrier<PIPE_V>();"))

    def _row_loop(self, decls: list[str], body: list[str]) -> None:
        if self.flat_like:
            raise LoweringError("a broadcast operand in a flat (elementwise) tile")
        self.emit("AfWaitVector();", "for (uint32_t r = 0; r < rows; ++r) {")
        if any(re.search(r"\bR\b", line) for line in decls + body):
            self.emit("    const uint64_t R = rowStart + r;")
        self.emit(*(f"    {line}" for line in decls + body))
        self.emit("}")

    def _in_rows(self, build: Callable[[], None]) -> list[str]:
        saved, self.lines = self.lines, []
        build()
        body, self.lines = self.lines, saved
        return body

    # -- operands --------------------------------------------------------------------------------

    def operand(self, value: str) -> Value:
        held = self.values.get(value)
        if held is None:
            constant = self.k.ctx.constant(value)
            if constant is None:
                raise LoweringError(f"value '{value}' is not available in the kernel")
            held = self.k.constant_value(value, constant)
            self.values[value] = held
        if isinstance(held, Stored):
            resolved = self._resolve(value, held)
            self.values[value] = resolved
            return resolved
        if self.tile_context and isinstance(held, RowVal):
            return Scalar(f"{held.buf}.GetValue(0)")  # this row's value (the chunk waits for it)
        return held

    def _aligned(self, view: View) -> tuple[View, int]:
        """The view against the part's rows: leading axes broadcast to the space's row axes, the
        last axis kept. Returns it with its width (1: one number per row)."""
        if self.walk == "flat":
            full = views.expand(view, self.space)
            if full is None or any(d != 1 and s != r for d, s, r in
                                   zip(self.space, full.strides, views.row_major(self.space))):
                raise LoweringError(f"a flat (elementwise) tile reads a broadcast or permuted value of shape "
                                    f"{view.shape} in a space of {self.space}")
            return full, 0
        width = view.shape[-1] if view.shape else 1
        last_stride = view.strides[-1] if view.shape else 0
        base = View(view.storage, tuple(view.shape[:-1]), tuple(view.strides[:-1]), view.offset)
        expanded = views.expand(base, tuple(self.space[:-1]))
        if expanded is None:
            raise LoweringError(f"a value of shape {view.shape} does not broadcast over the rows {self.space[:-1]}")
        if width > 1 and last_stride != 1:
            if last_stride:
                raise LoweringError(f"a value of shape {view.shape} is read with a column stride of {last_stride}")
            width = 1
        return View(view.storage, expanded.shape + (width,), expanded.strides + (1,), expanded.offset), width

    def _resolve(self, value: str, held: Stored) -> Value:
        storage = self.k.storages[held.view.storage]
        if held.view.numel == 1:
            return self.k.scalar_read(value, held.view.offset, storage)
        if self.walk == "split_row":
            return self._resolve_chunk(value, held, storage)
        aligned, width = self._aligned(held.view)
        if storage.arg is None:
            return self._resident_access(value, aligned, width, storage)
        grows = self.k.tile.dynamic and self.ctx.model.symbolic((storage.arg.onnx,))
        per_row = self.walk == "rows" and width == 1 and self.width != 1
        whole = kept_whole(math.prod(storage.shape), ITEMSIZE[storage.arg.ctype], math.prod(self.space), grows, per_row)
        if not whole or storage.arg.role == "workspace":
            if self.walk == "rows" and width == 1 and self.width != 1:
                raise LoweringError(f"'{value}' is a large per-row broadcast; only small ones are kept in UB")
            return self._stream(value, aligned, width, storage)
        return self._resident_access(value, aligned, width, storage)

    def _resolve_chunk(self, value: str, held: Stored, storage: Storage) -> TileVal:
        """split_row: a tensor is read a chunk of a row at a time (GM row of R, from `start`)."""
        view = held.view
        width, last_stride = (view.shape[-1], view.strides[-1]) if view.shape else (1, 0)
        base = View(view.storage, tuple(view.shape[:-1]), tuple(view.strides[:-1]), view.offset)
        rows = views.expand(base, tuple(self.space[:-1]))
        if rows is None or width != self.width or last_stride != 1 or storage.arg is None:
            raise LoweringError(f"a split row reads '{value}' of shape {view.shape}: only whole rows are chunked")
        aligned = View(view.storage, rows.shape + (width,), rows.strides + (1,), rows.offset)
        return self._stream(value, aligned, 0, storage)

    def _stream(self, value: str, view: View, width: int, storage: Storage) -> TileVal:
        offset, col, load_width = view.offset, 0, width
        last = storage.shape[-1] if storage.shape else 1
        if self.walk == "rows" and storage.arg.role != "workspace" and width < last \
                and whole_rows(offset % last, last, self.width) \
                and offset % last + width <= last and all(st % last == 0 for st in view.strides[:-1]):
            # a last-axis slice: load whole rows once, use its columns in UB
            load_width = last
            col = offset % load_width
            offset -= col
        if self.walk == "rows" and load_width > self.width:
            raise LoweringError(f"'{value}' has rows of {load_width} elements, wider than the space's {self.width}")
        rowwise = self.walk in ("rows", "split_row")
        dims, strides = merge_dims(tuple(self.space[:-1]), view.strides[:-1]) if rowwise else ((), ())
        key = (view.storage, offset, dims, strides, load_width)
        if key not in self.loads:
            arg = storage.arg
            queue = self.k.names.name(f"{self.tag}{arg.ident if arg.role != 'workspace' else 'mm'}", "q_")
            # A broadcast input too large to keep whole is read a tile at a time, single-buffered
            # (as the cost model's tile counts it).
            copies = 1 if math.prod(storage.shape) < math.prod(self.space) else self.k.queue_copies
            self.buffers.append(UbBuffer(queue, "in", arg.ctype, self.tile_elements, copies, comment_text(value)))
            contiguous = self.walk == "flat" or self.walk == "rows" and rows_contiguous(dims, strides, load_width)
            self.loads[key] = Load(arg, queue, f"x_{queue}", load_width if self.walk == "rows" else 0, self.P,
                                   offset, dims, strides, contiguous)
        if key not in self.load_values:
            self.load_values[key] = self._convert_load(self.loads[key])
        self.pass_loads.add(list(self.loads).index(key))
        loaded = self.load_values[key]
        return TileVal(loaded.buf, width, col, loaded.owner)

    def _convert_load(self, load: Load) -> TileVal:
        """The load as fp32: the queue tensor itself for float32, else a converted temporary."""
        if load.ctype == "float":
            return TileVal(load.local, load.width, 0, -1)
        dst = self._temp()
        if load.ctype in ("half", "bfloat16_t", "int32_t"):
            self.vec(f"Cast({dst.buf}, {load.local}, RoundMode::CAST_NONE, {self.count});")
        elif load.ctype == "uint8_t":
            half = self._scratch_tile("half")  # the load's own step (uint8 -> half -> float)
            self.vec(f"Cast({half}, {load.local}, RoundMode::CAST_NONE, {self.count});")
            self.vec(f"Cast({dst.buf}, {half}, RoundMode::CAST_NONE, {self.count});")
        else:  # int64: no vector conversion on A2/A3, the scalar unit converts element by element
            self.emit("AfWaitVector();", f"for (uint32_t i = 0; i < {self.count}; ++i) {{",
                      f"    {dst.buf}.SetValue(i, static_cast<float>({load.local}.GetValue(i)));", "}",
                      "AfWaitScalar();")
        return TileVal(dst.buf, load.width, 0, dst.owner)

    def _resident(self, key: str, storage: Storage) -> Resident:
        found = self.residents.get(key)
        if found is not None:
            return found
        shape = storage.shape or (1,)
        width = shape[-1]
        rows = math.prod(shape) // width
        loaded = ITEMSIZE[storage.arg.ctype] if storage.arg is not None else 4
        pitch = resident_pitch(width, loaded)
        label = storage.arg.ident if storage.arg is not None else "const"
        value = self.k.names.name(f"{self.tag}res_{label}")
        elements = max(rows * pitch, 8)
        self.buffers.append(UbBuffer(value, "calc", "float", elements, 1, comment_text(label)))
        if storage.arg is None:  # a constant member of the group: written into UB once
            arg = GmArg(value, key, FLOAT, shape, "constant")
            stage = value
            data = np.asarray(storage.data, dtype=np.float64).reshape(-1)
            self.init.extend(f"t_{value}.SetValue({(i // width) * pitch + i % width}, {float_literal(x)});"
                             for i, x in enumerate(data))
        else:
            arg = storage.arg
            stage = value
            if arg.ctype != "float":
                stage = self.k.names.name(f"{self.tag}res_{label}_raw")
                self.buffers.append(UbBuffer(stage, "calc", arg.ctype, elements, 1, comment_text(label)))
        self.locals.append(f"LocalTensor<float> t_{value} = {value}.Get<float>();")
        resident = Resident(arg, stage, value, rows, width, pitch)
        self.residents[key] = resident
        return resident

    def _resident_access(self, value: str, view: View, width: int, storage: Storage) -> Value:
        if self.walk == "flat":
            raise LoweringError(f"a flat (elementwise) tile reads '{value}' through a broadcast")
        resident = self._resident(view.storage, storage)
        local = f"t_{resident.value}"
        dims, strides = merge_dims(tuple(self.space[:-1]), view.strides[:-1])
        index = row_index_expr(dims, strides, view.offset, "R")
        at = pitched(index, resident.width, resident.pitch)
        if width == 1 and self.width != 1:
            return PerRow(f"{local}.GetValue({at})", None, 1)
        if resident.width == 1 or (view.offset % resident.width) % 8 or \
                any(s % resident.width for s in strides):
            raise LoweringError(f"'{value}' is read from UB at a column that is not 32-byte aligned")
        return PerRow(None, f"{local}[{at}]", width)

    # -- the split-row walk ------------------------------------------------------------------------

    def _build_split(self) -> Part:
        """A row longer than the Unified Buffer holds: each core takes whole rows and walks each
        row in chunks (the Tile's elements), once per level of reduction. Pass p accumulates the
        reductions whose inputs need only results of earlier passes; values that are one number
        per row are computed between passes; the last pass computes and stores the outputs. A
        chunk is computed like a flat tile of `len` elements."""
        tile = self.k.tile
        self.walk, self.P = "split_row", 0
        self.width = self.space[-1]
        self.total = math.prod(self.space) // self.width
        self.per_tile = max(1, min(tile.elements, self.width))
        if tile.row_len != self.width:
            raise LoweringError(f"the split rows of {tile.row_len} elements are not the last axis of {self.space}")
        nodes = self._expanded(self.members)
        kinds, levels, reduce_level = self._split_levels(nodes)
        for arg in self.outputs:
            if arg.shape[-1:] != (self.width,) or arg.numel != self.total * self.width:
                raise LoweringError(f"output '{arg.onnx}' of a split row is not a whole row")
        final = max([levels.get(a.onnx, 0) for a in self.outputs] + [0])
        persistent = dict(self.values)
        passes = []
        outputs = {a.onnx for a in self.outputs}
        for p in range(final + 1):
            self.values, self.load_values, self.pass_loads = dict(persistent), {}, set()
            self.free = list(range(len(self.slots)))
            wanted = self._split_wanted(nodes, kinds, reduce_level, p, final)
            reducing = [n for n in nodes if kinds[id(n)] == "reduce" and reduce_level[id(n)] == p]
            self.uses = {}
            self._count_uses([n for n in nodes if n in wanted] + reducing)
            if p < final:
                self.uses = {k: v for k, v in self.uses.items() if k not in outputs or any(k in n.inputs for n in nodes)}
            start, body, end = [], [], []
            for node in nodes:
                kind = kinds[id(node)]
                if node in reducing:
                    persistent[node.outputs[0]] = self.values[node.outputs[0]] = \
                        self._split_reduce(node, start, body, end)
                elif kind == "row" and levels[node.outputs[0]] == p + 1:
                    self.lines, self.tile_context = end, False
                    self._node(node)
                    persistent[node.outputs[0]] = self.values[node.outputs[0]]
                elif node in wanted:
                    self.lines, self.tile_context = body, True
                    self._node(node)
            if p == final:
                self.lines, self.tile_context = body, True
                self._finish_outputs()
            if body:
                body.insert(0, "AfWaitVector();  // this row's values, computed by the vector unit")
            passes.append(Pass(tuple(start), tuple(body), tuple(end), tuple(sorted(self.pass_loads))))
        self.tile_context = False
        self._share_queues()
        loads = list(self.loads.values())
        passes = [replace(p, opens=tuple(_ends(loads, p.loads, first=True)), closes=tuple(_ends(loads, p.loads, first=False)))
                  for p in passes]
        return Part(self.index, self.walk, self.space, self.width, self.total, self.per_tile, self.total,
                    nodes=tuple(comment_text(f"{n.op_type} {n.name}") for n in self.members),
                    loads=tuple(loads), stores=tuple(self.stores), buffers=tuple(self.buffers),
                    locals=tuple(self.locals), passes=tuple(passes))

    # -- queues -------------------------------------------------------------------------------------

    def _share_queues(self) -> None:
        """More queue buffers on a TPosition than the target has (profile `limits`): neighbouring
        tensors share one queue buffer, each its tile at a 32-byte-aligned offset, by the rule the
        cost model counts with (cost/tiling.py shared_queues)."""
        limit = self.ctx.hw.max_queue_buffers_per_position
        for kind in ("in", "out"):
            queues = [b for b in self.buffers if b.kind == kind]
            try:
                groups = shared_queues([b.copies for b in queues], limit)
            except ValueError as exc:
                raise LoweringError(f"the {kind}put queues do not fit {limit} buffers: {exc}") from None
            if len(groups) == len(queues):
                continue
            placed: dict[str, tuple[str, str, int]] = {}  # queue -> (shared queue, its buffer, offset)
            merged: dict[str, UbBuffer] = {}
            for group in groups:
                if len(group) < 2:
                    continue
                members = [queues[i] for i in group]
                ident = members[0].ident
                share = self.k.names.name(f"{ident}_tiles")
                offset = 0
                for member in members:
                    placed[member.ident] = (ident, share, offset)
                    offset += member.bytes
                merged[ident] = UbBuffer(ident, kind, "uint8_t", offset, members[0].copies,
                                         comment_text(" + ".join(m.purpose for m in members)))
            self.buffers = [merged.get(b.ident, b) for b in self.buffers
                            if b.ident in merged or b.ident not in placed]
            if kind == "in":
                self.loads = {key: _placed(load, placed) for key, load in self.loads.items()}
                self.loads = dict(zip(self.loads, _mark_ends(list(self.loads.values()))))
            else:
                self.stores = _mark_ends([_placed(store, placed) for store in self.stores])

    def _expanded(self, nodes: list[Node]) -> list[Node]:
        """The members with every decomposed op written out as its steps."""
        out: list[Node] = []
        for node in nodes:
            op = "GeluTanh" if node.op_type == "Gelu" and node.attrs.get("approximate", "none") == "tanh" \
                else node.op_type
            if op in op_table()["decompose"]:
                out.extend(self._expanded(self._expand(node, op)))
            else:
                out.append(node)
        return out

    def _split_levels(self, nodes: list[Node]) -> tuple[dict, dict, dict]:
        """Each node's kind (reduce / row: one number per row / tile), each value's level (the
        pass after which it is known) and each reduction's pass."""
        kinds, levels, reduce_level = {}, {}, {}
        for node in nodes:
            inputs = [v for v in data_inputs(node) if not self._is_constant(v)]
            level = max((levels.get(v, 0) for v in inputs), default=0)
            out = node.outputs[0]
            if node.op_type in REDUCE_KINDS:
                kinds[id(node)], reduce_level[id(node)] = "reduce", level
                levels[out] = level + 1
                continue
            per_row = self.shape(out)[-1:] in ((1,), ()) and all(self.shape(v)[-1:] in ((1,), ()) for v in inputs)
            if per_row and level == 0 and inputs:
                raise LoweringError(f"'{node.name}' computes a per-row value from inputs in a split row")
            kinds[id(node)] = "row" if per_row and inputs else "tile"
            for extra in node.outputs:
                levels[extra] = level
        return kinds, levels, reduce_level

    def _split_wanted(self, nodes: list[Node], kinds: dict, reduce_level: dict, p: int, final: int) -> set:
        """The chunk-level nodes pass p computes: what its reductions read, and in the last pass
        what the outputs need (per-row values and earlier reductions are known already)."""
        targets = {a.onnx for a in self.outputs} if p == final else set()
        for node in nodes:
            if kinds[id(node)] == "reduce" and reduce_level[id(node)] == p:
                targets.update(data_inputs(node))
        wanted = set()
        for node in reversed(nodes):
            if kinds[id(node)] == "tile" and any(o in targets for o in node.outputs):
                wanted.add(node)
                targets.update(data_inputs(node))
        return wanted

    def _split_reduce(self, node: Node, start: list[str], body: list[str], end: list[str]) -> RowVal:
        """A reduction over a row in chunks: each chunk is reduced and folded into the row's
        accumulator (an fp32 value in UB); the mean is scaled once the row is done."""
        kind = REDUCE_KINDS[node.op_type]
        acc = self._rowval()
        init = {"Sum": "0.0f", "Max": float_literal(-math.inf), "Min": float_literal(math.inf)}[kind]
        self.lines, self.tile_context = start, False
        self.vec(f"Duplicate({acc.buf}, {init}, 8);")
        self.lines, self.tile_context = body, True
        self.emit(f"// {comment_text(f'{node.op_type} {node.name}')} (this chunk)")
        source = self._materialize(self.operand(node.inputs[0]), 0)
        repeats = -(-self.per_tile // 64)  # ReduceSum's scratch: one value per 256-byte repeat
        work = self._scratch("reduce_work", "float", max(8, -(-repeats // 8) * 8))
        out = self._scratch("reduce_out", "float", 8)
        index = ", false" if kind != "Sum" else ""
        self.vec(f"Reduce{kind}({out}, {source.buf}, {work}, len{index});")
        fold = {"Sum": "Add", "Max": "Max", "Min": "Min"}[kind]
        self.vec(f"{fold}({acc.buf}, {acc.buf}, {out}, 1);")
        self._release(node.inputs[0])
        self._drop_transient()
        if node.op_type == "ReduceMean":
            self.lines, self.tile_context = end, False
            self.vec(f"Muls({acc.buf}, {acc.buf}, {float_literal(1.0 / self.width)}, 1);")
        return acc

    # outputs -------------------------------------------------------------------------------------

    def _finish_outputs(self) -> None:
        for arg in self.outputs:
            value = self.values.get(arg.onnx)
            if value is None:
                raise LoweringError(f"output '{arg.onnx}' is not computed by the group")
            if isinstance(value, Viewed):
                local = self._scattered_store(arg, value)
                value = value.tile
            else:
                local = self._out_local(arg)
            if isinstance(value, TileVal) and value.buf == local:
                continue
            if isinstance(value, Stored):
                value = self._resolve(arg.onnx, value)
            self.emit(f"// output {comment_text(arg.onnx)}")
            width = value.width if isinstance(value, TileVal) and local in {s.local for s in self.stores if s.scattered} \
                else self._store_width(arg)
            count = self.count
            if isinstance(value, (RowVal, PerRow)) or (isinstance(value, Scalar) and width == 1):
                source = self._as_rowval(value).buf if not isinstance(value, Scalar) else None
                if source is None:
                    source = self._rowval().buf
                    self.vec(f"Duplicate({source}, {value.expr}, rows);")
                if width != 1:
                    raise LoweringError(f"output '{arg.onnx}' is one value per row but has rows of {width}")
                self._store_rows(arg, local, source)
                continue
            source = self._materialize(value, width).buf
            if arg.ctype == "float":
                self.vec(f"Muls({local}, {source}, 1.0f, {count});")
            elif arg.ctype in ("half", "bfloat16_t"):
                self.vec(f"Cast({local}, {source}, RoundMode::CAST_RINT, {count});")
            elif arg.ctype == "int32_t":
                self.vec(f"Cast({local}, {source}, RoundMode::CAST_TRUNC, {count});")
            else:
                self.emit("AfWaitVector();", f"for (uint32_t i = 0; i < {count}; ++i) {{",
                          f"    {local}.SetValue(i, static_cast<{arg.ctype}>({source}.GetValue(i)));", "}",
                          "AfWaitScalar();")

    def _scattered_store(self, arg: GmArg, viewed: Viewed) -> str:
        """The VECOUT queue of an output that is a Reshape/Transpose of a computed value: the
        value is stored row by row, each row in `chunks` pieces, through the inverse view of the
        output's own (row-major) layout."""
        if self.walk != "rows" or viewed.shape[:-1] != tuple(self.space[:-1]) and \
                math.prod(viewed.shape[:-1]) != self.total:
            raise LoweringError(f"output '{arg.onnx}' rearranges a value that is not in rows")
        view = View.contiguous(arg.onnx, arg.shape)
        first = len(viewed.steps) - 1
        for index in range(first, -1, -1):
            op, param = viewed.steps[index]
            if op == "Transpose":
                view = views.transpose(view, tuple(int(i) for i in np.argsort(param)))
                continue
            undone = views.reshape(view, param)
            if undone is None and index == 0:
                break  # the first reshape split the rows into chunks: keep the split view
            if undone is None:
                raise LoweringError(f"output '{arg.onnx}': a reshape no strides describe")
            view = undone
        else:
            index = -1
        width = viewed.shape[-1]
        if index == 0:  # view has shape rows + (chunks, chunk)
            lead = view.shape[:len(viewed.shape) - 1]
            if tuple(lead) != tuple(viewed.shape[:-1]):
                raise LoweringError(f"output '{arg.onnx}': a reshape regroups the rows")
            chunks, piece = math.prod(view.shape[len(lead):-1]), view.shape[-1]
            tail = view.strides[len(lead):-1]
            if chunks * piece != width or view.strides[-1] != 1 or len([d for d in view.shape[len(lead):-1] if d > 1]) > 1:
                raise LoweringError(f"output '{arg.onnx}': its rows are not whole pieces of the computed rows")
            chunk_stride = next((st for d, st in zip(view.shape[len(lead):-1], tail) if d > 1), 0)
            if piece * ITEMSIZE[arg.ctype] % 32:
                raise LoweringError(f"output '{arg.onnx}': pieces of {piece} elements are not 32-byte blocks in UB")
        else:
            lead, chunks, chunk_stride = view.shape[:-1], 1, 0
            if view.strides[-1] != 1:
                raise LoweringError(f"output '{arg.onnx}' has a column stride of {view.strides[-1]}")
        rows = View(view.storage, tuple(lead), tuple(view.strides[:len(lead)]), view.offset)
        expanded = views.expand(rows, tuple(self.space[:-1]))
        if expanded is None:
            raise LoweringError(f"output '{arg.onnx}' does not follow the rows of {self.space}")
        dims, strides = merge_dims(tuple(self.space[:-1]), expanded.strides)
        queue = self.k.names.name(f"{self.tag}{arg.ident}", "q_")
        self.buffers.append(UbBuffer(queue, "out", arg.ctype, self.tile_elements, 2, comment_text(arg.onnx)))
        local = f"y_{queue}"
        self.out_locals[arg.onnx] = local
        self.stores.append(Store(arg, queue, local, width, self.P, dims, strides, view.offset, chunks, chunk_stride))
        return local

    def _store_rows(self, arg: GmArg, local: str, source: str) -> None:
        """A one-value-per-row output: row r's value goes to column 0 of row r."""
        if arg.ctype == "float" and self.P == 1:
            self.vec(f"Muls({local}, {source}, 1.0f, rows);")
            return
        self.emit("AfWaitVector();", "for (uint32_t r = 0; r < rows; ++r) {",
                  f"    {local}.SetValue(r * {self.P}, static_cast<{arg.ctype}>({source}.GetValue(r)));", "}",
                  "AfWaitScalar();")


def _placed(item, placed: dict[str, tuple[str, str, int]]):
    """A Load or Store moved into its shared queue (unchanged when its queue is its own)."""
    found = placed.get(item.queue)
    if found is None:
        return item
    queue, share, offset = found
    return replace(item, queue=queue, share=share, byte_offset=offset)


def _mark_ends(items: list) -> list:
    """Flags the first and the last tensor of every shared queue, in the order given."""
    first = {}
    last = {}
    for i, item in enumerate(items):
        if item.share:
            first.setdefault(item.share, i)
            last[item.share] = i
    return [replace(item, opens=first.get(item.share) == i, closes=last.get(item.share) == i) if item.share else item
            for i, item in enumerate(items)]


def _ends(loads: list, indices: tuple[int, ...], first: bool) -> list[int]:
    """The loads among `indices` (one split-row pass) that open / close their shared queue."""
    seen: dict[str, int] = {}
    for index in indices:
        share = loads[index].share
        if share and (not first or share not in seen):
            seen[share] = index
    return sorted(seen.values())
