"""FusionGroup + its member nodes + the cost model's Tile -> a KernelProgram.

The tile walk comes from the Tile the cost model chose (`FusionGroup.cost.tile`): rows per tile
(or elements per tile), cores and single/double buffering are read from it, never chosen here.
What this module decides is how each member runs on the vector unit: every value of the group is
computed in fp32 over the tile (half precision and integers are converted on load, as Huawei's
own kernels compute fp16 norms in fp32), views read their GM data through strides (views.py),
and each ONNX op becomes a few Ascend C API calls (codegen_templates/vector_ops.yaml).

A group whose members form separate computations becomes one part per computation (run one after
the other). MatMul/Gemm members run first on the cube unit through the high-level Matmul API and
write their results to GM (the workspace; on A2/A3 there is no L0C->UB path), which the vector
parts then read like any input.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from autofuse.codegen import views
from autofuse.codegen.names import Namer, camel_case, comment_text, snake_case
from autofuse.codegen.program import (
    CTYPES,
    ITEMSIZE,
    CallThrough,
    GmArg,
    HostOnly,
    KernelProgram,
    Load,
    MatmulCall,
    Part,
    Pass,
    Resident,
    Store,
    UbBuffer,
    Unsupported,
)
from autofuse.codegen.views import View
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import SHAPE_OPERANDS, CostModel
from autofuse.cost.tiling import WHOLE_BROADCAST
from autofuse.errors import AutofuseError
from autofuse.ir.graph import Graph, Node
from autofuse.ops.axes import reduction_signature
from autofuse.ops.table import OpClass, op_class
from autofuse.planner.plan import FusionGroup
from autofuse.yamlfile import read_yaml

TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"
_FLOAT = "float32"
_REDUCE_KINDS = {"ReduceSum": "Sum", "ReduceMean": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}
_VIEWS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand", "Transpose", "Slice", "Split"}
_MATMUL = ("MatMul", "Gemm")
_BOUNDS = ("Slice", "Split")  # ops whose non-data operands must be known when the kernel is built


_C_COMPARE = {"LT": "<", "GT": ">", "EQ": "==", "LE": "<=", "GE": ">=", "NE": "!="}

class LoweringError(Exception):
    """The group uses something the generator cannot lower (the message says what)."""


@lru_cache(maxsize=1)
def op_table() -> dict:
    """codegen_templates/vector_ops.yaml, parsed once."""
    return read_yaml(TEMPLATES / "vector_ops.yaml", AutofuseError, "code generator op table")


@dataclass(frozen=True)
class LowerContext:
    """What lowering needs besides the group: the graph, the target and the cost model's sizes."""

    graph: Graph
    hw: Hardware
    model: CostModel  # shapes at the bound dims, as the cost model saw them
    rules: Mapping[str, object] = field(default_factory=dict)  # rule name -> Rule
    # Values whose constant data lowering has read (codegen/reuse.py compares them before it
    # reuses one group's lowering for another). Cleared by whoever wants a fresh record.
    constants_read: set = field(default_factory=set, compare=False)

    def constant(self, value: str):
        """The data of a small constant (None when `value` is not one); every read is recorded."""
        self.constants_read.add(value)
        return self.graph.constant(value)

    def shape(self, value: str) -> tuple[int, ...]:
        shape = self.model.shape(value)
        if shape is None:
            raise LoweringError(f"shape of '{value}' unknown")
        return shape

    def dtype(self, value: str) -> str:
        dtype = self.graph.type_of(value).dtype
        if dtype not in CTYPES:
            raise LoweringError(f"'{value}' has dtype {dtype}, which the vector unit does not handle")
        return dtype


def op_name_for(group: FusionGroup) -> str:
    """The CANN op type of a group's kernel: our prefix keeps it apart from CANN's own ops."""
    return "Autofuse" + camel_case(group.op_type)


def lower_group(ctx: LowerContext, group: FusionGroup) -> KernelProgram | CallThrough | HostOnly | Unsupported:
    """The kernel program of one fused group, or the record saying why it has no source."""
    if group.kind == "shape":
        return HostOnly(group.id)
    if group.lowering == "call_through":
        rule = ctx.rules.get(group.rule or "")
        cann = getattr(rule, "lowering", {}).get("cann") if rule is not None else None
        return CallThrough(group.id, op_name_for(group), cann or group.op_type, group.rule)
    if group.cost is None or not group.cost.tile:
        return Unsupported(group.id, "the cost model could not price this group (a shape is unknown)")
    try:
        return _Builder(ctx, group).build()
    except LoweringError as exc:
        return Unsupported(group.id, str(exc))


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A value read through a view of GM data (an input, a MatMul result or a constant)."""

    view: View
    dtype: str


@dataclass(frozen=True)
class Scalar:
    """One number: a compile-time constant or a float member read once per core."""

    expr: str
    const: float | None = None


@dataclass(frozen=True)
class TileVal:
    """A value computed in UB: per tile row, `width` elements from column `col` of `buf`."""

    buf: str
    width: int
    col: int = 0
    owner: int = -1  # allocator slot (-1: not reusable)


@dataclass(frozen=True)
class RowVal:
    """One fp32 value per tile row (a reduction result), `rows` elements of `buf`."""

    buf: str
    owner: int = -1


Value = Stored | Scalar | TileVal | RowVal


@dataclass
class Storage:
    arg: GmArg | None  # None for a constant baked into the kernel
    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None


def _float_literal(value: float) -> str:
    """The shortest C++ float literal that reads back as the same fp32 number."""
    value = float(np.float32(value))
    if math.isnan(value):
        return "AfBitsToFloat(0x7fc00000u)"
    if math.isinf(value):
        return "AfBitsToFloat(0x7f800000u)" if value > 0 else "AfBitsToFloat(0xff800000u)"
    text = str(np.float32(value))
    text = text if any(c in text for c in ".e") else text + ".0"
    return f"{text}f"


def _const(value: float) -> Scalar:
    return Scalar(_float_literal(value), float(np.float32(value)))


# -- the builder --------------------------------------------------------------------------------


class _Builder:
    def __init__(self, ctx: LowerContext, group: FusionGroup) -> None:
        self.ctx = ctx
        self.group = group
        self.graph = ctx.graph
        self.nodes = [ctx.graph.nodes[m] for m in group.members]
        self.tile = dict(group.cost.tile)
        self.names = Namer(reserved=("workspace", "tiling", "rows", "len", "r", "c", "R", "pipe", "td"))
        self.storages: dict[str, Storage] = {}
        self.inputs: list[GmArg] = []
        self.outputs: list[GmArg] = []
        self.scalar_inits: list[str] = []
        self.matmuls: list[MatmulCall] = []
        self.values: dict[str, Value] = {}
        self.workspace: list[tuple[GmArg, int]] = []  # MatMul results: (GM tensor, byte offset)
        self.workspace_bytes = 0
        self.step_shapes: dict[str, tuple[int, ...]] = {}
        self.queue_copies = 1 if self.tile.get("single_buffered") else 2

    # -- constants and scalars -------------------------------------------------------------------

    def constant_value(self, name: str, array: np.ndarray) -> Value:
        """A constant of the group: a literal when it is one number, else data baked into UB."""
        array = np.asarray(array)
        if array.size == 1:
            return _const(float(np.asarray(array, dtype=np.float64).reshape(-1)[0]))
        shape = tuple(int(d) for d in array.shape)
        self.storages[name] = Storage(None, str(array.dtype), shape, array)
        return Stored(View.contiguous(name, shape), str(array.dtype))

    def constant_array(self, value: str, held: Value | None) -> np.ndarray:
        """The numpy value of a constant operand (to evaluate constant members)."""
        kind = self.graph.type_of(value)
        if isinstance(held, Scalar) and held.const is not None:
            dtype = np.dtype(kind.dtype) if kind.dtype not in (None, "bfloat16") else np.dtype("float32")
            shape = kind.shape if kind.shape is not None and all(isinstance(d, int) for d in kind.shape) else ()
            return np.asarray(held.const).astype(dtype).reshape(shape)
        if isinstance(held, Stored):
            data = np.asarray(self.storages[held.view.storage].data)
            flat = data.reshape(-1)
            return np.lib.stride_tricks.as_strided(flat[held.view.offset:], held.view.shape,
                                                   [s * flat.itemsize for s in held.view.strides]).copy()
        constant = self.ctx.constant(value)
        if constant is None:
            raise LoweringError(f"'{value}' is not a constant")
        return np.asarray(constant)

    def scalar_read(self, value: str, offset: int, storage: Storage) -> Scalar:
        """One element of an input, read once per core into a float member."""
        if storage.data is not None:
            return _const(float(np.asarray(storage.data, dtype=np.float64).reshape(-1)[offset]))
        name = self.names.name(f"s{len(self.scalar_inits)}")
        self.scalar_inits.append(f"{name} = static_cast<float>({storage.arg.ident}Gm.GetValue({offset}));"
                                 f"  // {comment_text(value)}")
        return Scalar(name)

    def scalar_binary(self, op: str, a: Scalar, b: Scalar, out: str, is_int: bool) -> Scalar:
        if a.const is not None and b.const is not None:
            x, y = np.float32(a.const), np.float32(b.const)
            with np.errstate(all="ignore"):
                folded = {"Add": x + y, "Sub": x - y, "Mul": x * y, "Div": x / y, "Max": max(x, y),
                          "Min": min(x, y), "Pow": np.power(x, y), "And": x * y, "Or": max(x, y)}.get(op)
            if folded is None:
                raise LoweringError(f"{op} of two constants")
            return _const(float(np.trunc(folded) if is_int and op == "Div" else folded))
        symbol = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}.get(op)
        name = self.names.name(f"s{len(self.scalar_inits)}")
        if symbol:
            self.scalar_inits.append(f"{name} = {a.expr} {symbol} {b.expr};")
        elif op in ("Max", "Min"):
            cmp = ">" if op == "Max" else "<"
            self.scalar_inits.append(f"{name} = ({a.expr} {cmp} {b.expr}) ? {a.expr} : {b.expr};")
        else:
            raise LoweringError(f"{op} of two run-time scalars")
        return Scalar(name)

    # -- driver ------------------------------------------------------------------------------

    def build(self) -> KernelProgram:
        for node in self.nodes:
            if node.domain not in ("", "ai.onnx"):
                raise LoweringError(f"node '{node.name}' is in domain '{node.domain}'")
        self._bind_inputs()
        self._bind_outputs()
        if any(a.numel == 0 for a in (*self.inputs, *self.outputs)):
            raise LoweringError("a tensor of the group has no elements")
        self.nodes = self._needed()
        self._views_of_inputs()
        vector_nodes = self._run_matmuls()
        parts = [self._lower_part(i, members) for i, members in enumerate(self._parts(vector_nodes))]
        for arg in self._orphans(vector_nodes):
            parts.append(_PartBuilder(self, len(parts), [], [arg]).build())
        family = self._family()
        op_name = op_name_for(self.group)
        cores = int(self.tile.get("cores", 1))
        program = KernelProgram(
            op_name=op_name, kernel_name=snake_case(op_name), family=family, group_id=self.group.id,
            group_kind=self.group.kind, rule=self.group.rule, target=self.ctx.hw.name, soc=self.ctx.hw.name,
            nodes=tuple(comment_text(f"{n.op_type} {n.name}") for n in self.nodes),
            inputs=tuple(self.inputs), outputs=tuple(self.outputs), tile=self.tile, cores=cores,
            buffer_num=1 if self.tile.get("single_buffered") else 2, has_datacopy_pad=self.ctx.hw.has_datacopy_pad,
            parts=tuple(parts), scalars=tuple(self.scalar_inits), matmuls=tuple(self.matmuls),
            cube_blocks=self._cube_blocks() if self.matmuls else 0, workspace=tuple(self.workspace),
            workspace_bytes=self.workspace_bytes,
        )
        capacity = self.ctx.hw.ub_usable_bytes
        if program.ub_bytes > capacity:
            raise LoweringError(f"the kernel's UB buffers need {program.ub_bytes} B, more than the "
                                f"{capacity} B usable on {self.ctx.hw.name}")
        return program

    def _family(self) -> str:
        if self.matmuls:
            return "matmul_epilogue"
        if self.tile.get("scheme") in ("rows", "split_row"):
            return "row_reduction"
        return "elementwise"

    def _cube_blocks(self) -> int:
        flops = sum(2.0 * c.m * c.n * c.k for c in self.matmuls)
        return self.ctx.model.cube_cores(flops)

    # -- boundary ------------------------------------------------------------------------------

    def _data_uses(self) -> dict[str, int]:
        """How many times members read each value at a data position (shape operands excluded)."""
        uses: dict[str, int] = {}
        for node in self.nodes:
            for value in data_inputs(node):
                uses[value] = uses.get(value, 0) + 1
        return uses

    def _bind_inputs(self) -> None:
        uses = self._data_uses()
        for value in self.group.inputs:
            shape = self.ctx.shape(value)
            small = self.graph.constant(value)  # only its size matters here, unless it is one number
            if small is not None and small.size == 1:
                constant = self.ctx.constant(value)
                self.values[value] = _const(float(np.asarray(constant, dtype=np.float64).reshape(-1)[0]))
                continue
            if value not in uses:
                continue  # a shape operand: the kernel is built for static shapes
            dtype = self.ctx.dtype(value)
            arg = GmArg(self._arg_name(value, "x", len(self.inputs)), value, dtype, shape, "input",
                        comment_text(value))
            self.inputs.append(arg)
            self.storages[value] = Storage(arg, dtype, shape)
            self.values[value] = Stored(View.contiguous(value, shape), dtype)

    def _bind_outputs(self) -> None:
        for value in self.group.outputs:
            dtype = self.ctx.dtype(value)
            self.outputs.append(GmArg(self._arg_name(value, "y", len(self.outputs)), value, dtype,
                                      self.ctx.shape(value), "output", comment_text(value)))

    def _arg_name(self, value: str, role: str, index: int) -> str:
        """A kernel argument's name: the rule's name for it (a rule group), else x0, x1, ... /
        y0, y1, ... The ONNX name only goes into comments, so that the same kernel in every layer
        of a model is the same source."""
        rule = self.ctx.rules.get(self.group.rule or "")
        if rule is not None:
            names = list(rule.inputs) if role == "x" else list(rule.outputs or ("y",))
            values = list(self.group.inputs if role == "x" else self.group.outputs)[:len(names)]
            if value in values:
                return self.names.name(names[values.index(value)])
        return self.names.name(f"{role}{index}")

    def _needed(self) -> list[Node]:
        """Members whose results reach an output through data operands (shape arithmetic that only
        feeds a Reshape or Expand target is dropped: the kernel is built for static shapes)."""
        needed = {a.onnx for a in self.outputs}
        keep: list[Node] = []
        for node in reversed(self.nodes):
            if any(o in needed for o in node.outputs if o):
                keep.append(node)
                needed.update(data_inputs(node))
                if node.op_type in _BOUNDS:  # bounds the kernel needs at compile time
                    needed.update(v for v in node.inputs[1:] if v)
        return list(reversed(keep))

    def _views_of_inputs(self) -> None:
        """Views of the group's inputs (a Reshape before a MatMul, a Transpose before a rotary)
        are strided views of GM data: worked out once here, read by any part."""
        for node in self.nodes:
            source = self.values.get(node.inputs[0]) if node.inputs else None
            if node.op_type not in _VIEWS or node.op_type in ("Slice", "Split") or not isinstance(source, Stored):
                continue
            shape = self.ctx.shape(node.outputs[0])
            if node.op_type == "Transpose":
                perm = node.attrs.get("perm") or tuple(reversed(range(len(source.view.shape))))
                view = views.transpose(source.view, tuple(perm))
            elif node.op_type == "Expand":
                view = views.expand(source.view, shape)
            else:
                view = views.reshape(source.view, shape)
            if view is not None:
                self.values[node.outputs[0]] = Stored(view, source.dtype)

    # -- MatMul members ----------------------------------------------------------------------------

    def _run_matmuls(self) -> list[Node]:
        """Plan the cube work; returns the members left for the vector parts."""
        rest: list[Node] = []
        outputs = {a.onnx: a for a in self.outputs}
        uses = self._data_uses()
        scales = self._operand_scales(uses)
        for node in self.nodes:
            if node.op_type not in _MATMUL:
                if node.outputs[0] in scales:
                    continue  # applied to the MatMul's result instead (see _operand_scales)
                if not all(o in self.values for o in node.outputs if o):
                    rest.append(node)
                continue
            if len(self.matmuls) == 4:
                raise LoweringError("more than 4 MatMuls in one kernel (REGIST_MATMUL_OBJ takes 4 objects)")
            rest.extend(self._matmul(node, outputs, scales))
        return rest

    def _operand_scales(self, uses: dict[str, int]) -> dict[str, Node]:
        """MatMul operands that are another member times (or over) a constant number: the planner
        lets such a scale join as a prologue because (c A) B = c (A B), so the cube reads the
        unscaled operand and the vector unit scales the result. Scaled operand -> its Mul/Div."""
        producer = {o: n for n in self.nodes for o in n.outputs if o}
        found: dict[str, Node] = {}
        for node in self.nodes:
            if node.op_type not in _MATMUL:
                continue
            for value in node.inputs[:2]:
                while value in producer and self._scalar_factor(producer[value]) is not None \
                        and uses.get(value) == 1 and value not in {a.onnx for a in self.outputs}:
                    found[value] = producer[value]
                    value = self._scalar_factor(producer[value])[0]
        return found

    def _scalar_factor(self, node: Node) -> tuple[str, str] | None:
        """(data operand, constant operand) of `x * c`, `c * x` or `x / c` with one float number c."""
        if node.op_type not in ("Mul", "Div") or len(node.inputs) != 2:
            return None
        for position in ((1,) if node.op_type == "Div" else (1, 0)):
            constant = self.graph.constant(node.inputs[position])
            if constant is not None and constant.size == 1 and constant.dtype.kind == "f":
                return node.inputs[1 - position], node.inputs[position]
        return None

    def _unscaled(self, value: str, scales: dict[str, Node]) -> tuple[str, list[Node]]:
        """The operand the cube reads for `value`, and the scales to apply to the result (innermost first)."""
        steps: list[Node] = []
        while value in scales:
            steps.append(scales[value])
            value = self._scalar_factor(scales[value])[0]
        return value, steps[::-1]

    def _matmul(self, node: Node, outputs: dict[str, GmArg], scales: dict[str, Node]) -> list[Node]:
        a_name, a_scales = self._unscaled(node.inputs[0], scales)
        b_name, b_scales = self._unscaled(node.inputs[1], scales)
        a, b = self.values.get(a_name), self.values.get(b_name)
        if not isinstance(a, Stored) or not isinstance(b, Stored) or a.view.storage not in self.storages \
                or self.storages[a.view.storage].arg is None:
            raise LoweringError(f"MatMul '{node.name}': operands must be inputs of the group")
        trans_a = bool(node.attrs.get("transA", 0)) if node.op_type == "Gemm" else False
        trans_b = bool(node.attrs.get("transB", 0)) if node.op_type == "Gemm" else False
        b_shape = b.view.shape
        if len(b_shape) != 2 or not views.is_contiguous(b.view):
            raise LoweringError(f"MatMul '{node.name}': the weight must be a 2-D tensor of the group's inputs")
        if not views.is_contiguous(a.view):
            raise LoweringError(f"MatMul '{node.name}': the activation is read through a view the cube cannot take")
        if trans_a and len(a.view.shape) != 2:
            raise LoweringError(f"Gemm '{node.name}': transA on a batched operand")
        k = a.view.shape[-2] if trans_a else a.view.shape[-1]
        m = math.prod(a.view.shape) // k
        n = b_shape[0] if trans_b else b_shape[1]
        if a.dtype != b.dtype:
            raise LoweringError(f"MatMul '{node.name}': operands of different dtypes")
        result = node.outputs[0]
        c_shape = self.ctx.shape(result)
        extra: list[Node] = []
        gemm_epilogue = node.op_type == "Gemm" and (len(node.inputs) > 2 and node.inputs[2]
                                                    or node.attrs.get("alpha", 1.0) != 1.0)
        scaled = a_scales + b_scales
        if scaled and gemm_epilogue:
            raise LoweringError(f"Gemm '{node.name}': a scaled operand and a bias or alpha")
        direct = result in outputs and not gemm_epilogue and not scaled and self.ctx.dtype(result) == a.dtype
        if direct:  # the cube writes the output itself; vector members read it back from there
            target, offset = outputs[result].ident, 0
            self.storages[result] = Storage(outputs[result], a.dtype, c_shape)
            self.values[result] = Stored(View.contiguous(result, c_shape), a.dtype)
        else:
            target, offset = self._workspace_for(result, c_shape, self.ctx.dtype(result)), 0
        index = len(self.matmuls)
        raw = f"{result}@cube" if gemm_epilogue or scaled else result
        self.matmuls.append(MatmulCall(index, comment_text(f"{node.op_type} {node.name}"),
                                       self.storages[a.view.storage].arg, self.storages[b.view.storage].arg,
                                       m, n, k, trans_a, trans_b, a.dtype, target, offset))
        if not direct:
            arg = self.workspace[-1][0]
            self.storages[raw] = Storage(arg, arg.dtype, c_shape)
            self.values[raw] = Stored(View.contiguous(raw, c_shape), arg.dtype)
        if gemm_epilogue:  # alpha * (A B) + beta * C as vector work on the cube's result
            extra = self._gemm_epilogue(node, raw)
        if scaled:
            extra = self._result_scales(result, raw, scaled)
        return extra

    def _workspace_for(self, result: str, shape: tuple[int, ...], dtype: str) -> str:
        """A region of the user workspace for one MatMul result, in the result's own dtype (the
        cube rounds C to it, as the unfused MatMul does), 512 B aligned."""
        arg = GmArg(self.names.name(f"c{len(self.workspace)}"), result, dtype, shape, "workspace",
                    comment_text(f"MatMul result {result}"))
        self.workspace.append((arg, self.workspace_bytes))
        self.workspace_bytes += -(-arg.nbytes // 512) * 512
        return arg.ident

    def _result_scales(self, result: str, raw: str, scales: list[Node]) -> list[Node]:
        """The operands' scales as vector steps on the cube's result: raw * c1 / c2 ... -> result."""
        shape = self.ctx.shape(result)
        steps, current = [], raw
        self.step_shapes[raw] = shape
        for i, scale in enumerate(scales):
            out = result if i == len(scales) - 1 else f"{result}@scale{i}"
            self.step_shapes[out] = shape
            steps.append(Node(-1, scale.name, scale.op_type, "", (current, self._scalar_factor(scale)[1]), (out,)))
            current = out
        return steps

    def _gemm_epilogue(self, node: Node, raw: str) -> list[Node]:
        alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
        out = node.outputs[0]
        shape = self.ctx.shape(out)
        self.step_shapes.update({raw: shape, f"{out}@scaled": shape})
        if len(node.inputs) > 2 and node.inputs[2]:
            self.step_shapes[f"{out}@bias"] = self.ctx.shape(node.inputs[2])
        steps: list[Node] = []
        current = raw
        if alpha != 1.0:
            self.values[f"{out}@alpha"] = _const(alpha)
            steps.append(Node(-1, node.name, "Mul", "", (current, f"{out}@alpha"), (f"{out}@scaled",)))
            current = f"{out}@scaled"
        if len(node.inputs) > 2 and node.inputs[2]:
            bias = node.inputs[2]
            if beta != 1.0:
                self.values[f"{out}@beta"] = _const(beta)
                steps.append(Node(-1, node.name, "Mul", "", (bias, f"{out}@beta"), (f"{out}@bias",)))
                bias = f"{out}@bias"
            steps.append(Node(-1, node.name, "Add", "", (current, bias), (out,)))
        else:
            steps.append(Node(-1, node.name, "Identity", "", (current,), (out,)))
        return steps

    # -- parts ---------------------------------------------------------------------------------

    def _parts(self, nodes: list[Node]) -> list[list[Node]]:
        """Connected computations: members joined by the values they compute (inputs, constants
        and MatMul results are read by any part and do not join)."""
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
        return [g for g in groups.values() if any(o in {a.onnx for a in self.outputs} for n in g for o in n.outputs)]

    def _orphans(self, nodes: list[Node]) -> list[GmArg]:
        """Outputs no vector member produces and no MatMul writes directly (a MatMul result
        copied out of the workspace)."""
        produced = {o for n in nodes for o in n.outputs}
        written = {c.target for c in self.matmuls}
        return [a for a in self.outputs if a.onnx not in produced and a.ident not in written]

    def _lower_part(self, index: int, members: list[Node]) -> Part:
        outputs = [a for a in self.outputs if any(a.onnx in n.outputs for n in members)]
        return _PartBuilder(self, index, members, outputs).build()


# -- one part -----------------------------------------------------------------------------------


class _PartBuilder:
    """Lowers the members of one part over its own space (the shape of its largest output).

    Every tile buffer of a part holds `rows` rows of `P` elements (the widest row rounded up to
    a 32-byte block of the narrowest element type), so a value of any width reads row r at
    `buf[r * P + column]` and whole-tile instructions run over `rows * P` elements (flat walks:
    over `len` elements).
    """

    def __init__(self, kernel: _Builder, index: int, members: list[Node], outputs: list[GmArg]) -> None:
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

    # -- the walk ------------------------------------------------------------------------------

    def build(self) -> Part:
        tile = self.k.tile
        # The space: the largest value the part computes; among equals, one an op computes (not a
        # view of it), then an output.
        names = {a.onnx for a in self.outputs}
        computed = {o for n in self.members if n.op_type not in _VIEWS for o in n.outputs if o}
        produced = [o for n in self.members for o in n.outputs if o] + list(names)
        largest = max(produced, key=lambda v: (math.prod(self.shape(v)), v in computed, v in names,
                                               len(self.shape(v))))
        self.space = self.shape(largest) or (1,)
        scheme = tile.get("scheme")
        reductions = [n for n in self.members if op_class(n) in (OpClass.REDUCTION, OpClass.NORMALIZATION)]
        if scheme == "split_row":
            return self._build_split()
        if scheme == "rows" or tile.get("rows_per_tile"):
            self.walk = "rows"
            self.width = self.space[-1]
            if reductions and tile.get("row_len") != self.width:
                raise LoweringError(f"the tile's rows of {tile.get('row_len')} elements are not the last axis "
                                    f"({self.width}) of {self.space}")
        else:
            if reductions:
                raise LoweringError("a reduction in a flat (elementwise) tile")
            self.walk = "flat"
            self.width = 0
        numel = math.prod(self.space)
        self.total = numel // self.width if self.width else numel
        if self.walk == "rows":
            per_tile = int(tile["rows_per_tile"]) if scheme == "rows" else int(tile["elements_per_tile"]) // self.width
            self.per_tile = max(1, min(per_tile, self.total))
        else:
            self.per_tile = max(1, min(int(tile["elements_per_tile"]), self.total))
        widths = [ITEMSIZE[a.ctype] for a in self.outputs]
        widths += [ITEMSIZE[a.ctype] for a in self.k.inputs if a.numel >= numel]
        block = 32 // min(widths + [4])
        self.P = -(-self.width // block) * block if self.walk == "rows" else 0
        self._count_uses(self.members)
        for node in self.members:
            self._node(node)
        self._finish_outputs()
        tiles = -(-self.total // self.per_tile)
        return Part(self.index, self.walk, self.space, self.width, self.total, self.per_tile, tiles,
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
        counts, plus one row of slack for per-row instructions rounded to 64 elements."""
        n = self.per_tile * self.P if self.walk == "rows" else self.per_tile
        return -(-n // 64) * 64 + 64

    @property
    def row_capacity(self) -> int:
        """fp32 elements of a one-value-per-row buffer (room for Compare's 256-byte counts)."""
        return 64 if self.walk == "split_row" else -(-self.per_tile // 64) * 64

    @property
    def tile_elements(self) -> int:
        return self.per_tile * self.P if self.walk == "rows" else self.per_tile

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
        """A tile-sized temporary for this node only (another type reinterprets its bytes)."""
        spare = self._temp()
        self.transient.append((spare.owner, False))
        return spare.buf if ctype == "float" else f"{spare.buf}.ReinterpretCast<{ctype}>()"

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
        size = math.prod(storage.shape)
        big = size >= math.prod(self.space) or size * ITEMSIZE[storage.arg.ctype] > WHOLE_BROADCAST
        if big or storage.arg.role == "workspace":
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
                and offset % last + width <= last and all(st % last == 0 for st in view.strides[:-1]):
            # a last-axis slice: load whole rows once, use its columns in UB
            load_width = last
            col = offset % load_width
            offset -= col
        if self.walk == "rows" and load_width > self.width:
            raise LoweringError(f"'{value}' has rows of {load_width} elements, wider than the space's {self.width}")
        rowwise = self.walk in ("rows", "split_row")
        dims, strides = _merge_dims(tuple(self.space[:-1]), view.strides[:-1]) if rowwise else ((), ())
        key = (view.storage, offset, dims, strides, load_width)
        if key not in self.loads:
            arg = storage.arg
            queue = self.k.names.name(f"{self.tag}{arg.ident if arg.role != 'workspace' else 'mm'}", "q_")
            # A broadcast input too large to keep whole is read a tile at a time, single-buffered
            # (as the cost model's tile counts it).
            copies = 1 if math.prod(storage.shape) < math.prod(self.space) else self.k.queue_copies
            self.buffers.append(UbBuffer(queue, "in", arg.ctype, self.tile_elements, copies, comment_text(value)))
            contiguous = self.walk == "flat" or self.walk == "rows" and _contiguous(dims, strides, load_width)
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
            half = self._spare("half")
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
        pitch = 1 if width == 1 else -(-width // 8) * 8
        label = storage.arg.ident if storage.arg is not None else "const"
        value = self.k.names.name(f"{self.tag}res_{label}")
        elements = max(rows * pitch, 8)
        self.buffers.append(UbBuffer(value, "calc", "float", elements, 1, comment_text(label)))
        if storage.arg is None:  # a constant member of the group: written into UB once
            arg = GmArg(value, key, _FLOAT, shape, "constant")
            stage = value
            data = np.asarray(storage.data, dtype=np.float64).reshape(-1)
            self.init.extend(f"t_{value}.SetValue({(i // width) * pitch + i % width}, {_float_literal(x)});"
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
        dims, strides = _merge_dims(tuple(self.space[:-1]), view.strides[:-1])
        index = _row_index_expr(dims, strides, view.offset, "R")
        pitched = _pitched(index, resident.width, resident.pitch)
        if width == 1 and self.width != 1:
            return _PerRow(f"{local}.GetValue({pitched})", None, 1)
        if resident.width == 1 or (view.offset % resident.width) % 8 or \
                any(s % resident.width for s in strides):
            raise LoweringError(f"'{value}' is read from UB at a column that is not 32-byte aligned")
        return _PerRow(None, f"{local}[{pitched}]", width)

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
        self.per_tile = max(1, min(int(tile["elements_per_tile"]), self.width))
        if int(tile.get("row_len", self.width)) != self.width:
            raise LoweringError(f"the split rows of {tile.get('row_len')} elements are not the last axis of {self.space}")
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
        return Part(self.index, self.walk, self.space, self.width, self.total, self.per_tile, self.total,
                    nodes=tuple(comment_text(f"{n.op_type} {n.name}") for n in self.members),
                    loads=tuple(self.loads.values()), stores=tuple(self.stores), buffers=tuple(self.buffers),
                    locals=tuple(self.locals), passes=tuple(passes))

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
            if node.op_type in _REDUCE_KINDS:
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
        kind = _REDUCE_KINDS[node.op_type]
        acc = self._rowval()
        init = {"Sum": "0.0f", "Max": _float_literal(-math.inf), "Min": _float_literal(math.inf)}[kind]
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
            self.vec(f"Muls({acc.buf}, {acc.buf}, {_float_literal(1.0 / self.width)}, 1);")
        return acc

    # -- nodes -----------------------------------------------------------------------------------

    def _node(self, node: Node) -> None:
        op = node.op_type
        table = op_table()
        if op == "Constant":
            return
        data = data_inputs(node)
        if op in ("Shape", "Size"):
            shape = np.asarray(self.shape(node.inputs[0]), dtype=np.int64)
            start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
            result = shape[start:end] if op == "Shape" else np.asarray(int(np.prod(shape)), dtype=np.int64)
            self.values[node.outputs[0]] = self.k.constant_value(node.outputs[0], result)
        elif data and all(self._is_constant(v) for v in data) and op not in _VIEWS:
            self._fold(node)
        elif op in _VIEWS:
            self._view(node)
        else:
            self.emit(f"// {comment_text(f'{op} {node.name}')}")
            if op == "Gelu" and node.attrs.get("approximate", "none") == "tanh":
                self._decompose(node, "GeluTanh")
            elif op in table["decompose"]:
                self._decompose(node, op)
            elif op in _REDUCE_KINDS:
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
            (op != "Transpose" or _moves_nothing(before, node.attrs.get("perm")))
        if keeps_rows or self.flat_like and op != "Transpose" or isinstance(source, RowVal) and op != "Transpose":
            self.values[outs[0]] = source
            return
        if not isinstance(source, (TileVal, _Viewed)):
            raise LoweringError(f"{op} '{node.name}' rearranges a per-row value")
        step = (op, tuple(node.attrs.get("perm") or reversed(range(len(before)))) if op == "Transpose" else before)
        if isinstance(source, _Viewed):
            self.values[outs[0]] = replace(source, steps=source.steps + (step,))
        else:
            self.values[outs[0]] = _Viewed(source, before, (step,))

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
        rank = len(shape)
        if node.op_type == "Split":
            axis = int(node.attrs.get("axis", 0)) % rank
            sizes = [self.shape(o)[axis] for o in node.outputs if o]
            starts = np.cumsum([0] + sizes[:-1])
            return [(axis, int(s), int(s + n)) for s, n in zip(starts, sizes)]
        bounds = [self._known(v) if v else None for v in node.inputs[1:5]]
        if any(b is None for b, v in zip(bounds, node.inputs[1:5]) if v):
            raise LoweringError(f"Slice '{node.name}' has bounds computed at run time")
        starts, ends = bounds[0].reshape(-1), bounds[1].reshape(-1)
        axes = bounds[2].reshape(-1) if len(bounds) > 2 and bounds[2] is not None else np.arange(len(starts))
        steps = bounds[3].reshape(-1) if len(bounds) > 3 and bounds[3] is not None else np.ones(len(starts))
        if len(axes) != 1 or int(steps[0]) != 1:
            raise LoweringError(f"Slice '{node.name}': one axis with step 1 is supported")
        axis = int(axes[0]) % rank
        size = shape[axis]
        start, end = int(starts[0]), int(ends[0])
        start = max(0, min(size, start + size if start < 0 else start))
        end = max(0, min(size, end + size if end < 0 else end))
        return [(axis, start, end)]

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
            self.values[o] = TileVal(source.buf, stop - start, source.col + start, source.owner)

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
        if not padded and arg is not None and arg.dtype == _FLOAT and self._store_width(arg) == width:
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
        if isinstance(v, _PerRow):
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
            return self.k.scalar_binary(op, a, b, node.outputs[0], _is_int(self.k.graph, node))
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
        if _is_int(self.k.graph, node) and op == "Div":
            self.vec(f"Cast({dst.buf}, {dst.buf}, RoundMode::CAST_TRUNC, {self.count});")
        return dst

    def _per_row_numbers(self, v: Value) -> bool:
        if self.walk == "flat":
            return isinstance(v, Scalar)
        return isinstance(v, (RowVal, Scalar)) or (isinstance(v, _PerRow) and v.scalar is not None) \
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
                self.vec(f"Muls({dst}, {tensor.buf}, {_float_literal(1.0 / scalar.const)}, {count});")
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
            return _const(_fold_unary(steps, a.const, attrs))
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
            self.vec(f"{api}({dst}, {src}, {_float_literal(float(value))}, {count});")

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
            return Scalar(f"((({a.expr}) {_C_COMPARE[mode]} ({b.expr})) ? 1.0f : 0.0f)")
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
        self.values[node.outputs[0]] = self._compare("EQ", absolute, _const(float("inf")), node)

    def _clip(self, node: Node) -> None:
        value = self.operand(node.inputs[0])
        bounds = [self.operand(v) if v else None for v in list(node.inputs[1:3]) + [""] * (3 - len(node.inputs))][:2]
        low = _const(node.attrs["min"]) if "min" in node.attrs else bounds[0]
        high = _const(node.attrs["max"]) if "max" in node.attrs else bounds[1]
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
            self.values[node.outputs[0]] = _const(_cast_number(source.const, to))
            return
        exact = to == before or to in (_FLOAT, "float64") or before == "bool" or \
            (before.startswith(("int", "uint")) and to not in ("bool", "float16", "bfloat16"))
        if exact:
            self.values[node.outputs[0]] = source  # exact in the fp32 compute type
        elif to == "bool":
            self.values[node.outputs[0]] = self._compare("NE", source, _const(0.0), node)
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
            if column % 8:
                raise LoweringError(f"Concat '{node.name}': a part starts at column {column}, not on a 32-byte boundary")
            decls: list[str] = []
            row = self._row_operand(part, decls, "v", part_width)
            target = f"{dst.buf}[r * {self.P} + {column}]" if column else f"{dst.buf}[r * {self.P}]"
            self._row_loop(decls, self._in_rows(functools.partial(self._copy_row, target, row, part_width)))
            column += part_width
        self.values[node.outputs[0]] = replace(dst, width=width)

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
        if self.walk == "flat":
            raise LoweringError("a reduction in a flat (elementwise) tile")
        shape = self.shape(node.inputs[0])
        signature = reduction_signature(node, self.k.graph)
        if signature is None or signature.axes != (len(shape) - 1,):
            raise LoweringError(f"{node.op_type} '{node.name}' is not over the last axis")
        self.values[node.outputs[0]] = self._reduce_rows(node.op_type, self.operand(node.inputs[0]), shape[-1])

    def _reduce_rows(self, op: str, source: Value, width: int) -> RowVal:
        source = self._materialize(source, width)
        kind = _REDUCE_KINDS[op]
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
            self.vec(f"Muls({dst.buf}, {dst.buf}, {_float_literal(1.0 / width)}, rows);")
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
            if step.op_type in _REDUCE_KINDS:
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
                self.values[constant] = _const(float(value))
                operands.append(constant)
            target = local(out)
            if operands is None:
                steps.append(Node(-1, node.name, "Identity", "", (local(args[0]),), (target,)))
            else:
                steps.append(Node(-1, node.name, step_op, "", tuple(operands), (target,)))
            reduced = step_op in _REDUCE_KINDS
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

    # outputs -------------------------------------------------------------------------------------

    def _finish_outputs(self) -> None:
        for arg in self.outputs:
            value = self.values.get(arg.onnx)
            if value is None:
                raise LoweringError(f"output '{arg.onnx}' is not computed by the group")
            if isinstance(value, _Viewed):
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
            if isinstance(value, (RowVal, _PerRow)) or (isinstance(value, Scalar) and width == 1):
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

    def _scattered_store(self, arg: GmArg, viewed: _Viewed) -> str:
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
        dims, strides = _merge_dims(tuple(self.space[:-1]), expanded.strides)
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


@dataclass(frozen=True)
class _Viewed:
    """A computed value seen through Reshape/Transpose steps that move its rows around: only
    an output may be one (the store scatters the rows)."""

    tile: TileVal
    shape: tuple[int, ...]  # the computed value's shape
    steps: tuple[tuple[str, tuple[int, ...]], ...]  # ("Transpose", perm) or (op, shape before it)

    @property
    def owner(self) -> int:
        return self.tile.owner


@dataclass(frozen=True)
class _PerRow:
    """A resident value read per tile row: a number (`scalar`, a C++ expression of R) or a row
    slice (`slice`, a LocalTensor expression of R)."""

    scalar: str | None
    slice: str | None
    width: int = 1


# -- helpers ------------------------------------------------------------------------------------


def _merge_dims(dims: tuple[int, ...], strides: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row dims and their strides with size-1 dims dropped and nesting neighbours merged."""
    pairs = [(d, s) for d, s in zip(dims, strides) if d != 1]
    merged: list[list[int]] = []
    for d, s in pairs:
        if merged and merged[-1][1] == s * d:
            merged[-1] = [merged[-1][0] * d, s]
        else:
            merged.append([d, s])
    return tuple(d for d, _ in merged), tuple(s for _, s in merged)


def _contiguous(dims: tuple[int, ...], strides: tuple[int, ...], width: int) -> bool:
    return len(dims) <= 1 and (not dims or strides[0] == width)


def _row_index_expr(dims: tuple[int, ...], strides: tuple[int, ...], offset: int, row: str) -> str:
    """C++ expression of the storage element index of global row `row`."""
    terms = [str(offset)] if offset else []
    inner = 1
    for d, s in reversed(list(zip(dims, strides))):
        if s:
            coord = f"({row} / {inner})" if inner > 1 else row
            terms.append(f"(({coord} % {d}) * {s})" if d > 1 else f"({coord} * {s})")
        inner *= d
    return " + ".join(terms) or "0"


def _pitched(index: str, width: int, pitch: int) -> str:
    if pitch == width:
        return index if index.isdigit() else f"({index})"
    return f"((({index}) / {width}) * {pitch} + ({index}) % {width})"


def _moves_nothing(shape: tuple[int, ...], perm) -> bool:
    if perm is None:
        return len([d for d in shape if d != 1]) <= 1
    order = [p for p in perm if shape[p] != 1]
    return order == sorted(order)


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


def data_inputs(node: Node) -> list[str]:
    """The inputs a node reads as tensor data (shape operands, axes and Shape/Size excluded)."""
    if node.op_type in ("Shape", "Size"):
        return []
    skip = SHAPE_OPERANDS.get(node.op_type, ())
    return [v for i, v in enumerate(node.inputs) if v and i not in skip]


def _is_int(graph: Graph, node: Node) -> bool:
    dtype = graph.type_of(node.outputs[0]).dtype or ""
    return dtype.startswith(("int", "uint"))
