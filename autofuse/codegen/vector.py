"""Each member of a part as Ascend C vector calls (the table is codegen_templates/vector_ops.yaml).

A mixin of PartBuilder (codegen/part.py): the methods here turn one ONNX node into statements over
the part's UB buffers, folding constants, resolving views and broadcasts, and keeping every value
in fp32 while it is computed.
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np

from autofuse.codegen import views
from autofuse.codegen.names import comment_text
from autofuse.codegen.program import (
    GmArg,
    Store,
    UbBuffer,
)
from autofuse.codegen.values import (
    C_COMPARE,
    FLOAT,
    REDUCE_KINDS,
    VIEW_OPS,
    LoweringError,
    PerRow,
    RowVal,
    Scalar,
    Stored,
    TileVal,
    Value,
    Viewed,
    const_scalar,
    float_literal,
    is_int_result,
    op_table,
)
from autofuse.codegen.views import (
    View,
    moves_nothing,
)
from autofuse.cost.traffic import data_inputs
from autofuse.ir.graph import Node
from autofuse.ops.axes import reduction_signature


class VectorOps:
    """Node lowering for PartBuilder (which provides the buffers, operands and walk)."""

    # -- nodes -----------------------------------------------------------------------------------

    def _node(self, node: Node) -> None:
        op = node.op_type
        table = op_table()
        if op == "Constant":
            return
        data = data_inputs(node)
        self._budget(op)  # the spare temporaries vector_ops.yaml `temporaries` gives the op
        if op in ("Shape", "Size"):
            shape = np.asarray(self.shape(node.inputs[0]), dtype=np.int64)
            start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
            result = shape[start:end] if op == "Shape" else np.asarray(int(np.prod(shape)), dtype=np.int64)
            self.values[node.outputs[0]] = self.k.constant_value(node.outputs[0], result)
        elif data and all(self._is_constant(v) for v in data) and op not in VIEW_OPS:
            self._fold(node)
        elif op in VIEW_OPS:
            self._view(node)
        else:
            self.emit(f"// {comment_text(f'{op} {node.name}')}")
            if op == "Gelu" and node.attrs.get("approximate", "none") == "tanh":
                self._decompose(node, "GeluTanh")
            elif op in table["decompose"]:
                self._decompose(node, op)
            elif op in REDUCE_KINDS:
                self._reduce(node)
            elif op in table["binary"] or op in table["compare"] or op in ("Pow", "Sum", "Mean", "Xor"):
                self._binary_node(node)
            elif op in table["unary"]:
                self.values[node.outputs[0]] = self._unary(table["unary"][op], self.operand(node.inputs[0]), node)
            elif op == "Where":
                self._where(node)
            elif op in ("Cast", "CastLike"):
                self._cast(node)
            elif op == "Concat":
                self._concat(node)
            elif op == "Gather":
                self._gather(node)
            elif op in ("IsNaN", "IsInf"):
                self._is_special(node)
            elif op == "Clip":
                self._clip(node)
            else:
                raise LoweringError(f"op {op} ('{node.name}') has no vector lowering")
        for value in data:
            self._release(value)
        self._drop_transient()

    def _is_constant(self, value: str) -> bool:
        held = self.values.get(value)
        if isinstance(held, Scalar):
            return held.const is not None
        if isinstance(held, Stored):
            return self.k.storages[held.view.storage].arg is None
        return held is None and value in self.k.graph.constants

    def _fold(self, node: Node) -> None:
        """A member whose data inputs are all constants is evaluated now (onnx's reference
        runtime); its result is baked into the kernel."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        feeds = {}
        for value in node.inputs:
            if value:
                feeds[value] = self.k.constant_array(value, self.values.get(value))
        proto = helper.make_node(node.op_type, list(node.inputs), list(node.outputs), **dict(node.attrs))
        try:
            results = ReferenceEvaluator(proto).run(None, feeds)
        except Exception as exc:  # any failure means: not foldable here
            raise LoweringError(f"cannot evaluate constant node '{node.name}' ({node.op_type}): {exc}") from exc
        for name, result in zip(node.outputs, results):
            self.values[name] = self.k.constant_value(name, np.asarray(result))

    # views ----------------------------------------------------------------------------------------

    def _view(self, node: Node) -> None:
        op = node.op_type
        source = self.values.get(node.inputs[0])
        if source is None:
            constant = self.k.ctx.constant(node.inputs[0])
            if constant is None:
                raise LoweringError(f"'{node.name}': its input is not available")
            source = self.values[node.inputs[0]] = self.k.constant_value(node.inputs[0], constant)
        outs = [o for o in node.outputs if o]
        shapes = [self.shape(o) for o in outs]
        if isinstance(source, Scalar):
            for o in outs:
                self.values[o] = source
            return
        if isinstance(source, Stored):
            for o, view in zip(outs, self._view_of(node, source.view, shapes)):
                self.values[o] = Stored(view, source.dtype)
            return
        if op in ("Slice", "Split"):
            self._column_views(node, source, outs)
            return
        before = self.shape(node.inputs[0])
        shape = shapes[0]
        keeps_rows = shape[-1:] == before[-1:] and math.prod(shape[:-1]) == math.prod(before[:-1]) and \
            (op != "Transpose" or moves_nothing(before, node.attrs.get("perm")))
        if keeps_rows or self.flat_like and op != "Transpose" or isinstance(source, RowVal) and op != "Transpose":
            self.values[outs[0]] = source
            return
        if not isinstance(source, (TileVal, Viewed)):
            raise LoweringError(f"{op} '{node.name}' rearranges a per-row value")
        step = (op, tuple(node.attrs.get("perm") or reversed(range(len(before)))) if op == "Transpose" else before)
        if isinstance(source, Viewed):
            self.values[outs[0]] = replace(source, steps=source.steps + (step,))
        else:
            self.values[outs[0]] = Viewed(source, before, (step,))

    def _view_of(self, node: Node, view: View, shapes: list[tuple[int, ...]]) -> list[View]:
        op = node.op_type
        if op == "Transpose":
            perm = node.attrs.get("perm") or tuple(reversed(range(len(view.shape))))
            return [views.transpose(view, tuple(perm))]
        if op == "Expand":
            out = views.expand(view, shapes[0])
            if out is None:
                raise LoweringError(f"Expand '{node.name}' to {shapes[0]}")
            return [out]
        if op in ("Slice", "Split"):
            return [views.slice_axis(view, axis, start, stop) for axis, start, stop in self._slices(node, view.shape)]
        out = views.reshape(view, shapes[0])
        if out is None:
            raise LoweringError(f"{op} '{node.name}' reshapes a permuted view into {shapes[0]}")
        return [out]

    def _slices(self, node: Node, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
        outputs = [self.shape(o)[int(node.attrs.get("axis", 0)) % len(shape)] for o in node.outputs if o] \
            if node.op_type == "Split" else None
        bounds = [self._known(v) if v else None for v in node.inputs[1:5]]
        unknown = any(b is None for b, v in zip(bounds, node.inputs[1:5]) if v)
        if node.op_type == "Slice" and (len(bounds) < 2 or unknown):
            raise LoweringError(f"Slice '{node.name}' has bounds computed at run time")
        try:
            return views.slice_bounds(node.op_type, node.attrs, shape, outputs, bounds)
        except ValueError as exc:
            raise LoweringError(f"Slice '{node.name}': {exc}") from None

    def _known(self, value: str) -> np.ndarray | None:
        """The value of a compile-time operand (a constant, or shape arithmetic folded here)."""
        held = self.values.get(value)
        if isinstance(held, Scalar):
            return None if held.const is None else np.asarray([held.const])
        if isinstance(held, Stored) and self.k.storages[held.view.storage].arg is None:
            return self.k.constant_array(value, held)
        constant = self.k.ctx.constant(value)
        return None if constant is None else np.asarray(constant)

    def _column_views(self, node: Node, source: Value, outs: list[str]) -> None:
        shape = self.shape(node.inputs[0])
        if not isinstance(source, TileVal) or self.flat_like:
            raise LoweringError(f"{node.op_type} '{node.name}' of a value that is not a tile")
        for o, (axis, start, stop) in zip(outs, self._slices(node, shape)):
            if axis != len(shape) - 1:
                raise LoweringError(f"{node.op_type} '{node.name}' of computed data along axis {axis}")
            view = TileVal(source.buf, stop - start, source.col + start, source.owner)
            if view.col % 8 and view.width > 1 and self.uses.get(o, 0) > 0:
                view = self._realigned(view)
            self.values[o] = view

    def _realigned(self, view: TileVal) -> TileVal:
        """Columns of a tile that start off a 32-byte block (no vector operand may start there),
        copied by the scalar unit to column 0 of a temporary (layout.py takes the same one)."""
        dst = self._temp()
        source = f"{view.buf}.GetValue(r * {self.P} + {view.col} + j)"
        self._row_loop([], [f"for (uint32_t j = 0; j < {view.width}; ++j) {{",
                            f"    {dst.buf}.SetValue(r * {self.P} + j, {source});", "}"])
        self.emit("AfWaitScalar();")
        return TileVal(dst.buf, view.width, 0, dst.owner)

    # destinations ------------------------------------------------------------------------------

    def _width(self, value: str) -> int:
        if self.flat_like:
            return 0
        shape = self.shape(value)
        return shape[-1] if shape else 1

    def _dying(self, node: Node, operands: list[Value]) -> list[TileVal]:
        """Operands whose buffer this node may overwrite: temporaries nothing reads afterwards."""
        found = []
        for name, operand in zip([v for v in node.inputs if v], operands):
            if isinstance(operand, TileVal) and operand.owner >= 0 and operand.col == 0 \
                    and self.uses.get(name, 0) == list(node.inputs).count(name) \
                    and not self._live_owner(operand.owner, False, exclude=name):
                found.append(operand)
        return found

    def _dst(self, node: Node, reuse: list[TileVal], padded: bool = False) -> TileVal:
        """Where a tile result goes: its output's VECOUT tensor (fp32 outputs), a dying operand's
        buffer (in place), or a free temporary. `padded`: it must be a temporary (instructions
        with counts rounded up to 256 bytes)."""
        out = node.outputs[0]
        width = self._width(out)
        arg = next((a for a in self.outputs if a.onnx == out), None)
        if not padded and arg is not None and arg.dtype == FLOAT and self._store_width(arg) == width:
            return TileVal(self._out_local(arg), width, 0, -1)
        if reuse:
            return replace(reuse[0], width=width)
        return replace(self._temp(), width=width)

    def _out_local(self, arg: GmArg) -> str:
        local = self.out_locals.get(arg.onnx)
        if local is None:
            width = self._store_width(arg)
            queue = self.k.names.name(f"{self.tag}{arg.ident}", "q_")
            self.buffers.append(UbBuffer(queue, "out", arg.ctype, self.tile_elements, 2, comment_text(arg.onnx)))
            local = f"y_{queue}"
            self.out_locals[arg.onnx] = local
            self.stores.append(Store(arg, queue, local, width, self.P))
        return local

    def _store_width(self, arg: GmArg) -> int:
        if self.walk == "split_row":
            return 0
        if self.walk == "flat":
            if arg.numel != self.total:
                raise LoweringError(f"output '{arg.onnx}' of shape {arg.shape} is not the space {self.space}")
            return 0
        width = arg.shape[-1] if arg.shape else 1
        if arg.numel != self.total * width:
            raise LoweringError(f"output '{arg.onnx}' of shape {arg.shape} does not cover the rows of {self.space}")
        return width

    # whole tiles and rows ----------------------------------------------------------------------

    def _whole(self, v: Value, width: int) -> bool:
        if isinstance(v, Scalar):
            return True
        return isinstance(v, TileVal) and v.col == 0 and (v.width == width or self.flat_like)

    def _row_operand(self, v: Value, decls: list[str], tag: str, width: int) -> Value:
        """The operand inside a per-row loop (row r, global row R = rowStart + r)."""
        if isinstance(v, Scalar):
            return v
        if isinstance(v, TileVal):
            if v.width == 1 and width != 1:
                decls.append(f"const float {tag}Row = {v.buf}.GetValue(r * {self.P} + {v.col});")
                return Scalar(f"{tag}Row")
            if v.width != width:
                raise LoweringError(f"operands of {v.width} and {width} elements per row")
            if v.col % 8:
                raise LoweringError("a column slice that does not start on a 32-byte boundary")
            column = f" + {v.col}" if v.col else ""
            return TileVal(f"{v.buf}[r * {self.P}{column}]", width)
        if isinstance(v, RowVal):
            decls.append(f"const float {tag}Row = {v.buf}.GetValue(r);")
            return Scalar(f"{tag}Row")
        if isinstance(v, PerRow):
            if v.scalar is not None:
                decls.append(f"const float {tag}Row = {v.scalar};")
                return Scalar(f"{tag}Row")
            if v.width != width:
                raise LoweringError(f"operands of {v.width} and {width} elements per row")
            return TileVal(v.slice, width)
        raise LoweringError(f"operand {v!r} in a row loop")

    def _materialize(self, v: Value, width: int, padded: bool = False) -> TileVal:
        """A whole-tile fp32 copy of an operand, broadcast along rows and columns as needed.
        `padded`: the copy must be a temporary (counts rounded up to 256 bytes may read it)."""
        if isinstance(v, TileVal) and self._whole(v, width) and (not padded or v.owner >= 0):
            return v
        dst = replace(self._temp(), width=width)
        self.transient.append((dst.owner, False))
        if isinstance(v, Scalar):
            self.vec(f"Duplicate({dst.buf}, {v.expr}, {self.count});")
            return dst
        if isinstance(v, TileVal) and self.flat_like:
            self.vec(f"Muls({dst.buf}, {v.buf}, 1.0f, {self.count});")
            return dst
        decls: list[str] = []
        row = self._row_operand(v, decls, "v", width)
        self._row_loop(decls, self._in_rows(functools.partial(self._copy_row, f"{dst.buf}[r * {self.P}]", row, width)))
        return dst

    def _copy_row(self, target: str, row: Value, width: int) -> None:
        """One row of `width` elements: a number spread, or a row copied (Muls by 1 is exact)."""
        if isinstance(row, Scalar):
            self.vec(f"Duplicate({target}, {row.expr}, {width});")
        else:
            self.vec(f"Muls({target}, {row.buf}, 1.0f, {width});")

    # arithmetic ----------------------------------------------------------------------------------

    def _binary_node(self, node: Node) -> None:
        op = node.op_type
        names = [v for v in node.inputs if v]
        operands = [self.operand(v) for v in names]
        if len(operands) == 1:  # Sum/Mean/Max/Min of one input
            self.values[node.outputs[0]] = operands[0]
            return
        if len(operands) > 2:
            raise LoweringError(f"{op} '{node.name}' with {len(operands)} inputs")
        kind = {"Sum": "Add", "Mean": "Add"}.get(op, op)
        result = self._binary(kind, operands[0], operands[1], node)
        if op == "Mean":
            result = self._steps(node, [["Muls", 0.5]], result, reuse=True)
        self.values[node.outputs[0]] = result

    def _binary(self, op: str, a: Value, b: Value, node: Node, reuse: bool = True) -> Value:
        table = op_table()
        if isinstance(a, Scalar) and isinstance(b, Scalar):
            return self.k.scalar_binary(op, a, b, node.outputs[0], is_int_result(self.k.graph, node))
        if op in table["compare"]:
            return self._compare(table["compare"][op], a, b, node)
        if op == "Pow":
            return self._pow(a, b, node)
        if op == "Xor":
            return self._steps(node, [["Abs"]], self._binary("Sub", a, b, node), reuse=True)
        apis = table["binary"].get(op)
        if apis is None:
            raise LoweringError(f"op {op} has no vector lowering")
        identity = {"Mul": 1.0, "And": 1.0, "Or": 0.0}.get(op)
        for kept, other in ((a, b), (b, a)):
            if identity is not None and isinstance(other, Scalar) and other.const == identity and \
                    not isinstance(kept, Scalar):
                return kept  # x * 1, x AND true, x OR false
        if self._per_row_numbers(a) and self._per_row_numbers(b):
            return self._rowval_binary(op, apis, a, b, node, reuse)
        width = self._width(node.outputs[0])
        dst = self._dst(node, self._dying(node, [a, b]) if reuse else [])
        if self._whole(a, width) and self._whole(b, width):
            self._tensor_op(op, apis, dst.buf, a, b, self.count, "bcast")
        else:
            decls: list[str] = []
            row_a, row_b = self._row_operand(a, decls, "a", width), self._row_operand(b, decls, "b", width)
            target = f"{dst.buf}[r * {self.P}]"
            self._row_loop(decls, self._in_rows(lambda: self._tensor_op(op, apis, target, row_a, row_b, str(width),
                                                                        "row_bcast")))
        if is_int_result(self.k.graph, node) and op == "Div":
            self.vec(f"Cast({dst.buf}, {dst.buf}, RoundMode::CAST_TRUNC, {self.count});")
        return dst

    def _per_row_numbers(self, v: Value) -> bool:
        if self.walk == "flat":
            return isinstance(v, Scalar)
        return isinstance(v, (RowVal, Scalar)) or (isinstance(v, PerRow) and v.scalar is not None) \
            or (isinstance(v, TileVal) and v.width == 1 and self.width != 1)

    def _as_rowval(self, v: Value) -> RowVal | Scalar:
        if isinstance(v, (RowVal, Scalar)):
            return v
        dst = self._rowval()
        self.transient.append((dst.owner, True))
        decls: list[str] = []
        row = self._row_operand(v, decls, "v", 0)
        self._row_loop(decls, [f"{dst.buf}.SetValue(r, {row.expr});"])
        self.emit("AfWaitScalar();")
        return dst

    def _rowval_binary(self, op: str, apis: dict, a: Value, b: Value, node: Node, reuse: bool) -> RowVal:
        a, b = self._as_rowval(a), self._as_rowval(b)
        dst = None
        if reuse:
            for operand, name in zip((a, b), [v for v in node.inputs if v]):
                if isinstance(operand, RowVal) and operand.owner >= 0 and self.uses.get(name, 0) == 1 \
                        and not self._live_owner(operand.owner, True, exclude=name):
                    dst = operand
                    break
        dst = dst or self._rowval()
        self._tensor_op(op, apis, dst.buf, a, b, "rows", "row_values_bcast")
        return dst

    def _tensor_op(self, op: str, apis: dict, dst: str, a: Value, b: Value, count: str, scratch: str) -> None:
        """dst = a op b over `count` elements; a and b are tensors (expressions) or scalars."""
        if isinstance(a, Scalar) or isinstance(b, Scalar):
            scalar_first = isinstance(a, Scalar)
            tensor, scalar = (b, a) if scalar_first else (a, b)
            if apis.get("scalar") and (not scalar_first or op in ("Add", "Mul", "Max", "Min", "And", "Or")):
                self.vec(f"{apis['scalar']}({dst}, {tensor.buf}, {scalar.expr}, {count});")
            elif op == "Sub" and not scalar_first:
                self.vec(f"Adds({dst}, {tensor.buf}, -({scalar.expr}), {count});")
            elif op == "Sub":
                self.vec(f"Muls({dst}, {tensor.buf}, -1.0f, {count});")
                self.vec(f"Adds({dst}, {dst}, {scalar.expr}, {count});")
            elif op == "Div" and not scalar_first and scalar.const is not None and _exact_reciprocal(scalar.const):
                self.vec(f"Muls({dst}, {tensor.buf}, {float_literal(1.0 / scalar.const)}, {count});")
            elif op == "Div" and not scalar_first and scalar.const is None:
                # by a per-row or run-time number: times its reciprocal (within 1 ulp of the quotient,
                # and no tile-sized buffer for the divisor)
                self.vec(f"Muls({dst}, {tensor.buf}, 1.0f / ({scalar.expr}), {count});")
            else:
                if scratch == "bcast":
                    spread = self._spare()
                else:
                    spread = self._scratch(scratch, "float", -(-self.per_tile // 8) * 8 if scratch == "row_values_bcast"
                                           else -(-max(self.P, 8) // 64) * 64 + 64)
                self.vec(f"Duplicate({spread}, {scalar.expr}, {count});")
                first, second = (spread, tensor.buf) if scalar_first else (tensor.buf, spread)
                self.vec(f"{apis['tensor']}({dst}, {first}, {second}, {count});")
            return
        self.vec(f"{apis['tensor']}({dst}, {a.buf}, {b.buf}, {count});")

    def _pow(self, a: Value, b: Value, node: Node) -> Value:
        mul = op_table()["binary"]["Mul"]
        if isinstance(b, Scalar) and b.const in (1.0, 2.0, 3.0, 0.5, -1.0, -0.5):
            e = b.const
            if e == 1.0:
                return a
            if e in (2.0, 3.0):
                square = self._binary("Mul", a, a, node, reuse=e == 2.0)
                if e == 2.0:
                    return square
                if isinstance(square, RowVal):
                    return self._rowval_binary("Mul", mul, square, a, node, reuse=False)
                self._row_or_whole_mul(square, a)
                return square
            return self._steps(node, {0.5: [["Sqrt"]], -1.0: [["Reciprocal"]],
                                      -0.5: [["Sqrt"], ["Reciprocal"]]}[e], a)
        # a ** b = exp(b * ln(a)): defined for a > 0 (ONNX Pow of negative bases is not lowered)
        logged = self._steps(node, [["Ln"]], a)
        product = self._binary("Mul", logged, b, node, reuse=False)
        return self._steps(node, [["Exp"]], product, reuse=True)

    def _row_or_whole_mul(self, dst: TileVal, a: Value) -> None:
        mul = op_table()["binary"]["Mul"]
        if self._whole(a, dst.width):
            self._tensor_op("Mul", mul, dst.buf, dst, a, self.count, "bcast")
            return
        decls: list[str] = []
        row = self._row_operand(a, decls, "a", dst.width)
        target = TileVal(f"{dst.buf}[r * {self.P}]", dst.width)
        self._row_loop(decls, self._in_rows(lambda: self._tensor_op("Mul", mul, target.buf, target, row,
                                                                    str(dst.width), "row_bcast")))

    def _unary(self, steps: list, a: Value, node: Node) -> Value:
        return self._steps(node, steps, a, reuse=True)

    def _steps(self, node: Node, steps: list, a: Value, reuse: bool = False) -> Value:
        """In-place unary steps ([API] or [API, scalar]) applied to a copy of `a` (or to `a`
        itself when `reuse` and nothing else reads it)."""
        attrs = {**op_table()["attribute_defaults"].get(node.op_type, {}), **dict(node.attrs)}
        if isinstance(a, Scalar) and a.const is not None:
            return const_scalar(_fold_unary(steps, a.const, attrs))
        if self._per_row_numbers(a) and not isinstance(a, Scalar):
            source = self._as_rowval(a)
            dst = source if reuse and source.owner >= 0 and self.uses.get(node.inputs[0], 0) <= 1 \
                and not self._live_owner(source.owner, True, exclude=node.inputs[0]) else self._rowval()
            current = source.buf
            for step in steps:
                self._step(step, dst.buf, current, "rows", attrs)
                current = dst.buf
            return dst
        width = self._width(node.outputs[0])
        source = self._materialize(a, width)
        candidates = [source] if source is not a and source.owner >= 0 else []
        if reuse and not candidates and node.inputs:
            candidates = self._dying(node, [self.values.get(node.inputs[0], a)])[:1]
        dst = self._dst(node, candidates)
        current = source.buf
        for step in steps:
            self._step(step, dst.buf, current, self.count, attrs)
            current = dst.buf
        return dst

    def _step(self, step: list, dst: str, src: str, count: str, attrs: dict) -> None:
        api = step[0]
        if api == "Round":
            self.vec(f"Cast({dst}, {src}, RoundMode::{step[1]}, {count});")
        elif len(step) == 1:
            self.vec(f"{api}({dst}, {src}, {count});")
        else:
            value = step[1]
            if isinstance(value, str) and value.startswith("$"):
                value = attrs[value[1:]]
            self.vec(f"{api}({dst}, {src}, {float_literal(float(value))}, {count});")

    # comparisons and selection -------------------------------------------------------------------

    def _mask(self) -> str:
        return self._scratch("cmp_mask", "uint8_t", self.capacity // 8)

    @property
    def aligned_counts(self) -> bool:
        """Whole-tile counts are always a multiple of 64 fp32 (256 B): Compare and Select can run
        on any tile buffer, output queues included, without rounding their counts up."""
        return self.walk == "rows" and self.P % 64 == 0

    @property
    def compare_count(self) -> str:
        return self.count if self.aligned_counts else f"AfAlignUp({self.count}, 64)"

    def _compare(self, mode: str, a: Value, b: Value, node: Node) -> TileVal | RowVal:
        width = self._width(node.outputs[0])
        count = self.compare_count
        padded = not self.aligned_counts
        dying = self._dying(node, [a, b])
        if isinstance(a, Scalar) and isinstance(b, Scalar):  # two numbers: the scalar unit compares them
            return Scalar(f"((({a.expr}) {C_COMPARE[mode]} ({b.expr})) ? 1.0f : 0.0f)")
        if isinstance(a, Scalar):
            a, b = b, a
            mode = {"LT": "GT", "GT": "LT", "LE": "GE", "GE": "LE"}.get(mode, mode)
        if self._per_row_numbers(a) and self._per_row_numbers(b):
            return self._compare_rows(mode, self._as_rowval(a), self._as_rowval(b))
        src = self._materialize(a, width, padded=padded)
        mask = self._mask()
        if isinstance(b, Scalar):
            self.vec(f"Compares({mask}, {src.buf}, {b.expr}, CMPMODE::{mode}, {count});")
        else:
            other = self._materialize(b, width, padded=padded)
            self.vec(f"Compare({mask}, {src.buf}, {other.buf}, CMPMODE::{mode}, {count});")
        self._drop_transient()
        dst = self._dst(node, dying, padded=padded)
        self.vec(f"Duplicate({dst.buf}, 1.0f, {count});")
        self.vec(f"Select({dst.buf}, {mask}, {dst.buf}, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});")
        return dst

    def _compare_rows(self, mode: str, a: RowVal, b: RowVal | Scalar) -> RowVal:
        """A comparison of one number per row: over the row-value buffers (`rows` elements)."""
        mask = self._scratch("row_mask", "uint8_t", self.row_capacity // 8)
        count = "AfAlignUp(rows, 64)"
        if isinstance(b, Scalar):
            self.vec(f"Compares({mask}, {a.buf}, {b.expr}, CMPMODE::{mode}, {count});")
        else:
            self.vec(f"Compare({mask}, {a.buf}, {b.buf}, CMPMODE::{mode}, {count});")
        self._drop_transient()
        dst = self._rowval()
        self.vec(f"Duplicate({dst.buf}, 1.0f, {count});")
        self.vec(f"Select({dst.buf}, {mask}, {dst.buf}, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});")
        return dst

    def _where(self, node: Node) -> None:
        cond, a, b = (self.operand(v) for v in node.inputs)
        if all(self._per_row_numbers(v) for v in (cond, a, b)) and not all(isinstance(v, Scalar) for v in (cond, a, b)):
            self.values[node.outputs[0]] = self._where_rows(cond, a, b)
            return
        width = self._width(node.outputs[0])
        count = self.compare_count
        padded = not self.aligned_counts
        mode = "NE"
        if isinstance(a, Scalar) and not isinstance(b, Scalar):
            a, b, mode = b, a, "EQ"
        src = self._materialize(cond, width, padded=padded)
        mask = self._mask()
        self.vec(f"Compares({mask}, {src.buf}, 0.0f, CMPMODE::{mode}, {count});")
        self._drop_transient()
        # The condition is no longer needed once it is a mask: its buffer may take the result.
        reuse = self._dying(node, [cond, a, b]) if isinstance(a, Scalar) else []
        if isinstance(a, Scalar):
            dst = self._dst(node, reuse, padded=padded)
            self.vec(f"Duplicate({dst.buf}, {a.expr}, {count});")
            first = dst.buf
        else:
            first = self._materialize(a, width, padded=padded).buf
            dst = self._dst(node, [], padded=padded)
        if isinstance(b, Scalar):
            self.vec(f"Select({dst.buf}, {mask}, {first}, {b.expr}, SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});")
        else:
            second = self._materialize(b, width, padded=padded).buf
            self.vec(f"Select({dst.buf}, {mask}, {first}, {second}, SELMODE::VSEL_TENSOR_TENSOR_MODE, {count});")
        self.values[node.outputs[0]] = dst

    def _where_rows(self, cond: Value, a: Value, b: Value) -> RowVal:
        mask = self._scratch("row_mask", "uint8_t", self.row_capacity // 8)
        count = "AfAlignUp(rows, 64)"
        mode = "NE"
        if isinstance(a, Scalar) and not isinstance(b, Scalar):
            a, b, mode = b, a, "EQ"
        condition = self._as_rowval(cond)
        if isinstance(condition, Scalar):
            raise LoweringError("Where with a constant condition")
        self.vec(f"Compares({mask}, {condition.buf}, 0.0f, CMPMODE::{mode}, {count});")
        dst = self._rowval()
        if isinstance(a, Scalar):
            self.vec(f"Duplicate({dst.buf}, {a.expr}, {count});")
            first = dst.buf
        else:
            first = self._as_rowval(a).buf
        if isinstance(b, Scalar):
            self.vec(f"Select({dst.buf}, {mask}, {first}, {b.expr}, SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});")
        else:
            self.vec(f"Select({dst.buf}, {mask}, {first}, {self._as_rowval(b).buf}, "
                     f"SELMODE::VSEL_TENSOR_TENSOR_MODE, {count});")
        return dst

    def _is_special(self, node: Node) -> None:
        a = self.operand(node.inputs[0])
        if node.op_type == "IsNaN":
            self.values[node.outputs[0]] = self._compare("NE", a, a, node)
            return
        absolute = self._steps(node, [["Abs"]], a)
        self.values[node.outputs[0]] = self._compare("EQ", absolute, const_scalar(float("inf")), node)

    def _clip(self, node: Node) -> None:
        value = self.operand(node.inputs[0])
        bounds = [self.operand(v) if v else None for v in list(node.inputs[1:3]) + [""] * (3 - len(node.inputs))][:2]
        low = const_scalar(node.attrs["min"]) if "min" in node.attrs else bounds[0]
        high = const_scalar(node.attrs["max"]) if "max" in node.attrs else bounds[1]
        if low is not None:
            value = self._binary("Max", value, low, node, reuse=False)
        if high is not None:
            value = self._binary("Min", value, high, node, reuse=False)
        self.values[node.outputs[0]] = value

    def _cast(self, node: Node) -> None:
        source = self.operand(node.inputs[0])
        to = self.k.graph.type_of(node.outputs[0]).dtype or ""
        before = self.k.graph.type_of(node.inputs[0]).dtype or ""
        if isinstance(source, Scalar) and source.const is not None:
            self.values[node.outputs[0]] = const_scalar(_cast_number(source.const, to))
            return
        exact = to == before or to in (FLOAT, "float64") or before == "bool" or \
            (before.startswith(("int", "uint")) and to not in ("bool", "float16", "bfloat16"))
        if exact:
            self.values[node.outputs[0]] = source  # exact in the fp32 compute type
        elif to == "bool":
            self.values[node.outputs[0]] = self._compare("NE", source, const_scalar(0.0), node)
        elif to.startswith(("int", "uint")):
            self.values[node.outputs[0]] = self._steps(node, [["Round", "CAST_TRUNC"]], source, reuse=True)
        elif to in ("float16", "bfloat16") and self._per_row_numbers(source) and not isinstance(source, Scalar):
            ctype = "half" if to == "float16" else "bfloat16_t"
            rows = self._as_rowval(source)
            low = self._scratch(f"row_{ctype}", ctype, self.row_capacity)
            dst = self._rowval()
            self.vec(f"Cast({low}, {rows.buf}, RoundMode::CAST_RINT, rows);")
            self.vec(f"Cast({dst.buf}, {low}, RoundMode::CAST_NONE, rows);")
            self.values[node.outputs[0]] = dst
        elif to in ("float16", "bfloat16") and (isinstance(source, Scalar) or not self._per_row_numbers(source)):
            ctype = "half" if to == "float16" else "bfloat16_t"
            width = self._width(node.outputs[0])
            src = self._materialize(source, width)
            dst = self._dst(node, [src] if src is not source else self._dying(node, [source]))
            low = self._spare(ctype)
            self.vec(f"Cast({low}, {src.buf}, RoundMode::CAST_RINT, {self.count});")
            self.vec(f"Cast({dst.buf}, {low}, RoundMode::CAST_NONE, {self.count});")
            self.values[node.outputs[0]] = dst
        else:
            raise LoweringError(f"Cast '{node.name}' from {before} to {to}")

    # data movement -----------------------------------------------------------------------------

    def _concat(self, node: Node) -> None:
        shape = self.shape(node.outputs[0])
        axis = int(node.attrs.get("axis", 0)) % len(shape)
        if axis != len(shape) - 1 or self.flat_like:
            raise LoweringError(f"Concat '{node.name}' along axis {axis}")
        width = shape[-1]
        dst = self._dst(node, [])
        column = 0
        for value in node.inputs:
            part = self.operand(value)
            part_width = self.shape(value)[-1]
            if column % 8 or isinstance(part, TileVal) and part.col % 8:
                # Off a 32-byte boundary (a partial rotary's halves): no vector operand may start
                # there, so the scalar unit copies the part element by element (it is narrow).
                self._copy_unaligned(node, dst.buf, column, part, part_width)
                column += part_width
                continue
            decls: list[str] = []
            row = self._row_operand(part, decls, "v", part_width)
            target = f"{dst.buf}[r * {self.P} + {column}]" if column else f"{dst.buf}[r * {self.P}]"
            self._row_loop(decls, self._in_rows(functools.partial(self._copy_row, target, row, part_width)))
            column += part_width
        self.values[node.outputs[0]] = replace(dst, width=width)

    def _copy_unaligned(self, node: Node, dst: str, column: int, part: Value, width: int) -> None:
        """Columns [column, column + width) of every row of `dst` from `part`, by the scalar unit."""
        if isinstance(part, Scalar):
            source = part.expr
        elif isinstance(part, TileVal) and part.width == width:
            source = f"{part.buf}.GetValue(r * {self.P} + {part.col} + j)"
        else:
            raise LoweringError(f"Concat '{node.name}': a part at column {column} that is not a tile of its rows")
        self._row_loop([], [f"for (uint32_t j = 0; j < {width}; ++j) {{",
                            f"    {dst}.SetValue(r * {self.P} + {column} + j, {source});", "}"])
        self.emit("AfWaitScalar();")

    def _gather(self, node: Node) -> None:
        data, index = node.inputs[0], node.inputs[1]
        idx = self.k.ctx.constant(index)
        held = self.values.get(data)
        if idx is None or idx.size != 1 or not isinstance(held, Stored) or len(held.view.shape) != 1:
            raise LoweringError(f"Gather '{node.name}': only a constant index into a 1-D value")
        position = int(idx.reshape(-1)[0]) % held.view.shape[0]
        offset = held.view.offset + position * held.view.strides[0]
        self.values[node.outputs[0]] = self.k.scalar_read(node.outputs[0], offset, self.k.storages[held.view.storage])

    # rows ----------------------------------------------------------------------------------------

    def _reduce(self, node: Node) -> None:
        signature = reduction_signature(node, self.k.graph)
        if signature is not None and not signature.axes:  # axes absent, noop_with_empty_axes: reduces nothing
            self.values[node.outputs[0]] = self.operand(node.inputs[0])
            return
        if self.walk == "flat":
            raise LoweringError("a reduction in a flat (elementwise) tile")
        shape = self.shape(node.inputs[0])
        if signature is None or signature.axes != (len(shape) - 1,):
            raise LoweringError(f"{node.op_type} '{node.name}' is not over the last axis")
        self.values[node.outputs[0]] = self._reduce_rows(node.op_type, self.operand(node.inputs[0]), shape[-1])

    def _reduce_rows(self, op: str, source: Value, width: int) -> RowVal:
        source = self._materialize(source, width)
        kind = REDUCE_KINDS[op]
        repeats = -(-width // 64)
        work = self._scratch("reduce_work", "float", max(8, -(-repeats // 8) * 8))
        out = self._scratch("reduce_out", "float", 8)
        dst = self._rowval()
        index = ", false" if kind != "Sum" else ""
        self.emit("for (uint32_t r = 0; r < rows; ++r) {",
                  f"    Reduce{kind}({out}, {source.buf}[r * {self.P}], {work}, {width}{index});",
                  "    AfWaitVector();", f"    {dst.buf}.SetValue(r, {out}.GetValue(0));", "}",
                  "AfWaitScalar();")
        if op == "ReduceMean":
            self.vec(f"Muls({dst.buf}, {dst.buf}, {float_literal(1.0 / width)}, rows);")
        return dst

    def _decompose(self, node: Node, op: str) -> None:
        """An op written as a small graph of other ops (vector_ops.yaml `decompose`): its steps
        are lowered like members, with the node's inputs, outputs and attributes."""
        steps = self._expand(node, op)
        row_width = self.shape(node.inputs[0])[-1]
        for step in steps:
            for value in step.inputs:
                self.uses[value] = self.uses.get(value, 0) + 1
        for step in steps:
            if step.op_type in REDUCE_KINDS:
                self.emit(f"// {comment_text(f'{node.op_type} {node.name}: {step.outputs[0]}')}")
                self.values[step.outputs[0]] = self._reduce_rows(step.op_type, self.operand(step.inputs[0]),
                                                                 row_width)
                self._release(step.inputs[0])
            else:
                self._node(step)

    def _expand(self, node: Node, op: str) -> list[Node]:
        """The steps of a decomposed op as nodes (their constants and shapes registered)."""
        recipe = op_table()["decompose"][op]
        attrs = {**op_table()["attribute_defaults"].get(node.op_type, {}), **dict(node.attrs)}
        if node.op_type in ("LayerNormalization", "RMSNormalization", "Softmax", "LogSoftmax"):
            rank = len(self.shape(node.inputs[0]))
            if int(attrs.get("axis", -1)) % rank != rank - 1:
                raise LoweringError(f"{node.op_type} '{node.name}' is not over the last axis")
        names = {f: a for f, a in zip(recipe["inputs"], node.inputs) if a}
        names.update({f: a for f, a in zip(recipe["outputs"], node.outputs) if a})
        local = lambda n: names.get(n) or f"{node.name}@{op}.{n}"
        signature = reduction_signature(node, self.k.graph) if node.op_type.startswith("Reduce") else None
        reduces = signature is None or bool(signature.axes)  # a Reduce* with no axes and noop_with_empty_axes does not
        row_shape = self.shape(node.inputs[0])
        steps: list[Node] = []
        for i, (out, step_op, *args) in enumerate(recipe["steps"]):
            operands = []
            for j, arg in enumerate(args):
                if isinstance(arg, str) and (arg in recipe["inputs"]) and arg not in names:
                    operands = None  # an optional input that is absent: the step passes its input on
                    break
                if isinstance(arg, str) and not arg.startswith("$"):
                    operands.append(local(arg))
                    continue
                constant = f"{node.name}@{op}.c{i}.{j}"
                value = attrs[arg[1:]] if isinstance(arg, str) else arg
                self.values[constant] = const_scalar(float(value))
                operands.append(constant)
            target = local(out)
            if operands is None or step_op in REDUCE_KINDS and not reduces:
                # an absent optional input (or a reduction over no axes): the step passes its first operand on
                step_op, operands = "Identity", [local(args[0])]
            steps.append(Node(-1, node.name, step_op, "", tuple(operands), (target,)))
            reduced = step_op in REDUCE_KINDS
            self.step_shapes.setdefault(target, row_shape[:-1] + (1,) if reduced else self._step_shape(operands))
        return steps

    def _step_shape(self, operands: list[str]) -> tuple[int, ...]:
        shapes = []
        for value in operands:
            held = self.values.get(value)
            if isinstance(held, Scalar):
                continue
            shapes.append(self.shape(value))
        return views.broadcast_shape(*shapes) or shapes[0]


def _exact_reciprocal(value: float) -> bool:
    mantissa, _ = math.frexp(value)
    return value != 0 and abs(mantissa) == 0.5


def _cast_number(value: float, to: str | None) -> float:
    if to in ("float16",):
        return float(np.float16(value))
    if to == "bool":
        return 1.0 if value != 0 else 0.0
    if to and to.startswith(("int", "uint")):
        return float(math.trunc(value))
    return value


def _fold_unary(steps: list, value: float, attrs: dict) -> float:
    """A unary op of a constant, evaluated here in fp32 as the kernel would."""
    x = np.float32(value)
    with np.errstate(all="ignore"):
        for step in steps:
            api = step[0]
            arg = step[1] if len(step) > 1 else None
            if isinstance(arg, str) and arg.startswith("$"):
                arg = attrs[arg[1:]]
            x = np.float32(_UNARY_FOLD[api](x, arg))
    return float(x)


_UNARY_FOLD = {
    "Exp": lambda v, _: np.exp(v), "Ln": lambda v, _: np.log(v), "Sqrt": lambda v, _: np.sqrt(v),
    "Reciprocal": lambda v, _: np.float32(1) / v, "Abs": lambda v, _: np.abs(v),
    "Relu": lambda v, _: np.maximum(v, 0), "Muls": lambda v, a: v * np.float32(a),
    "Adds": lambda v, a: v + np.float32(a), "Maxs": lambda v, a: np.maximum(v, np.float32(a)),
    "Mins": lambda v, a: np.minimum(v, np.float32(a)), "Tanh": lambda v, _: np.tanh(v),
    "Sin": lambda v, _: np.sin(v), "Cos": lambda v, _: np.cos(v), "Erf": lambda v, _: math.erf(float(v)),
    "LeakyRelu": lambda v, a: v if v >= 0 else v * np.float32(a),
    "Round": lambda v, a: {"CAST_FLOOR": np.floor, "CAST_CEIL": np.ceil, "CAST_RINT": np.rint,
                           "CAST_TRUNC": np.trunc}[a](v),
}


