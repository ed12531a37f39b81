"""FusionGroup + its member nodes + the cost model's Tile -> a KernelProgram.

The tile walk comes from the Tile the cost model chose (`FusionGroup.cost.tile`): rows per tile
(or elements per tile), cores and single/double buffering are read from it, never chosen here.
What lowering decides is how each member runs: every value of the group is computed in fp32 over
the tile (half precision and integers are converted on load, as Huawei's own kernels compute
fp16 norms in fp32), views read their GM data through strides (views.py), and each ONNX op
becomes a few Ascend C API calls (codegen_templates/vector_ops.yaml).

This module is the kernel level: the group's GM arguments, its MatMul members and its parts. A
group whose members form separate computations becomes one part per computation (run one after
the other), each lowered by part.py (the walk, UB buffers, copies in and out) and vector.py (the
members as vector calls); values.py holds what they share. MatMul/Gemm members run first on the
cube unit through the high-level Matmul API and write their results to GM (the workspace; on
A2/A3 there is no L0C->UB path), which the vector parts then read like any input.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from autofuse.codegen import views
from autofuse.codegen.names import Namer, camel_case, comment_text, snake_case
from autofuse.codegen.part import PartBuilder
from autofuse.codegen.program import (
    CTYPES,
    CallThrough,
    GmArg,
    HostOnly,
    KernelProgram,
    MatmulCall,
    Part,
    Unsupported,
)
from autofuse.codegen.values import (
    BOUND_OPS,
    MATMUL_OPS,
    VIEW_OPS,
    LoweringError,
    Scalar,
    Storage,
    Stored,
    Value,
    const_scalar,
)
from autofuse.codegen.views import View
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel
from autofuse.cost.traffic import cube_flops, cube_shape, data_inputs, operand_scales
from autofuse.ir.graph import Graph, Node
from autofuse.ops.table import scalar_factor
from autofuse.planner.plan import FusionGroup


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
    # What codegen/reuse.py's signatures read of each value, kept per value (layers share values).
    value_keys: dict = field(default_factory=dict, compare=False)

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
        return KernelBuilder(ctx, group).build()
    except LoweringError as exc:
        return Unsupported(group.id, str(exc))


def _matrix_offset(dims: tuple[int, ...], strides: tuple[int, ...], offset: int) -> str:
    """C++ element offset of matrix `bt` of a batched operand: `bt` counts the result's matrices
    over batch axes `dims`; the operand steps `strides` along them (0 where it is broadcast)."""
    terms = [str(offset)] if offset else []
    inner = 1
    for axis in reversed(range(len(dims))):
        if strides[axis]:
            coord = f"bt / {inner}" if inner > 1 else "bt"
            coord = f"{coord} % {dims[axis]}" if axis else coord  # (the outermost axis needs no wrap)
            terms.append(f"({coord}) * {strides[axis]}" if coord != "bt" else f"bt * {strides[axis]}")
        inner *= dims[axis]
    return " + ".join(terms) or "0"


# -- the builder --------------------------------------------------------------------------------


class KernelBuilder:
    def __init__(self, ctx: LowerContext, group: FusionGroup) -> None:
        self.ctx = ctx
        self.group = group
        self.graph = ctx.graph
        self.nodes = [ctx.graph.nodes[m] for m in group.members]
        self.tile = group.cost.tile
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
        self.queue_copies = 1 if self.tile.single_buffered else 2

    # -- constants and scalars -------------------------------------------------------------------

    def constant_value(self, name: str, array: np.ndarray) -> Value:
        """A constant of the group: a literal when it is one number, else data baked into UB."""
        array = np.asarray(array)
        if array.size == 1:
            return const_scalar(float(np.asarray(array, dtype=np.float64).reshape(-1)[0]))
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
            return const_scalar(float(np.asarray(storage.data, dtype=np.float64).reshape(-1)[offset]))
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
            return const_scalar(float(np.trunc(folded) if is_int and op == "Div" else folded))
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
            parts.append(PartBuilder(self, len(parts), [], [arg]).build())
        family = self._family()
        op_name = op_name_for(self.group)
        cores = self.tile.cores
        program = KernelProgram(
            op_name=op_name, kernel_name=snake_case(op_name), family=family, group_id=self.group.id,
            group_kind=self.group.kind, rule=self.group.rule, target=self.ctx.hw.name, soc=self.ctx.hw.name,
            nodes=tuple(comment_text(f"{n.op_type} {n.name}") for n in self.nodes),
            inputs=tuple(self.inputs), outputs=tuple(self.outputs), tile=self.tile, cores=cores,
            buffer_num=1 if self.tile.single_buffered else 2, has_datacopy_pad=self.ctx.hw.has_datacopy_pad,
            parts=tuple(parts), scalars=tuple(self.scalar_inits), matmuls=tuple(self.matmuls),
            cube_blocks=self._cube_blocks() if self.matmuls else 0, workspace=tuple(self.workspace),
            workspace_bytes=self.workspace_bytes,
        )
        capacity = self.ctx.hw.ub_usable_bytes
        if program.ub_bytes > capacity:
            raise LoweringError(f"the kernel's UB buffers need {program.ub_bytes} B, more than the "
                                f"{capacity} B usable on {self.ctx.hw.name}")
        count = max((sum(b.copies for b in part.buffers) for part in parts), default=0)
        if count > self.ctx.hw.max_queue_buffers_total:
            raise LoweringError(f"the kernel needs {count} UB buffers, more than the "
                                f"{self.ctx.hw.max_queue_buffers_total} a kernel may have on {self.ctx.hw.name}")
        return program

    def _family(self) -> str:
        if self.matmuls:
            return "matmul_epilogue"
        if self.tile.scheme in ("rows", "split_row"):
            return "row_reduction"
        return "elementwise"

    def _cube_blocks(self) -> int:
        return self.ctx.model.cube_cores(cube_flops(self.matmuls))

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
                self.values[value] = const_scalar(float(np.asarray(constant, dtype=np.float64).reshape(-1)[0]))
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
                if node.op_type in BOUND_OPS:  # bounds the kernel needs at compile time
                    needed.update(v for v in node.inputs[1:] if v)
        return list(reversed(keep))

    def _views_of_inputs(self) -> None:
        """Views of the group's inputs (a Reshape before a MatMul, a Transpose before a rotary)
        are strided views of GM data: worked out once here, read by any part."""
        for node in self.nodes:
            source = self.values.get(node.inputs[0]) if node.inputs else None
            if node.op_type not in VIEW_OPS or node.op_type in ("Slice", "Split") or not isinstance(source, Stored):
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
        scales = operand_scales(self.nodes, self.graph, {a.onnx for a in self.outputs})
        for node in self.nodes:
            if node.op_type not in MATMUL_OPS:
                if node.outputs[0] in scales:
                    continue  # applied to the MatMul's result instead (cost/traffic.py operand_scales)
                if not all(o in self.values for o in node.outputs if o):
                    rest.append(node)
                continue
            if len(self.matmuls) == 4:
                raise LoweringError("more than 4 MatMuls in one kernel (REGIST_MATMUL_OBJ takes 4 objects)")
            rest.extend(self._matmul(node, outputs, scales))
        return rest

    def _unscaled(self, value: str, scales: dict[str, Node]) -> tuple[str, list[Node]]:
        """The operand the cube reads for `value`, and the scales to apply to the result (innermost first)."""
        steps: list[Node] = []
        while value in scales:
            steps.append(scales[value])
            value = scalar_factor(scales[value], self.graph)[0]
        return value, steps[::-1]

    def _matmul(self, node: Node, outputs: dict[str, GmArg], scales: dict[str, Node]) -> list[Node]:
        a_name, a_scales = self._unscaled(node.inputs[0], scales)
        b_name, b_scales = self._unscaled(node.inputs[1], scales)
        a, b = self.values.get(a_name), self.values.get(b_name)
        if not all(isinstance(x, Stored) and x.view.storage in self.storages
                   and self.storages[x.view.storage].arg is not None for x in (a, b)):
            raise LoweringError(f"MatMul '{node.name}': operands must be inputs of the group")
        trans_a = bool(node.attrs.get("transA", 0)) if node.op_type == "Gemm" else False
        trans_b = bool(node.attrs.get("transB", 0)) if node.op_type == "Gemm" else False
        c_shape = self.ctx.shape(node.outputs[0])
        if len(a.view.shape) < 2 or len(b.view.shape) < 2:
            raise LoweringError(f"MatMul '{node.name}': a 1-D operand")
        geometry = cube_shape(a.view.shape, b.view.shape, c_shape, trans_a, trans_b)
        m, n, k = geometry.m, geometry.n, geometry.k
        if geometry.batch == 1 and len(b.view.shape) == 2:  # the activation's rows flattened
            if not views.is_contiguous(a.view):
                raise LoweringError(f"MatMul '{node.name}': the activation is read through a view the cube cannot take")
            if trans_a and len(a.view.shape) != 2:
                raise LoweringError(f"Gemm '{node.name}': transA on a batched operand")
            a_offset = "0"
            trans_b, b_offset = self._cube_operand(node, "B", b.view, trans_b, ())
        else:  # one product per matrix of the result: each operand's matrix found by its batch strides
            trans_a, a_offset = self._cube_operand(node, "A", a.view, trans_a, c_shape[:-2])
            trans_b, b_offset = self._cube_operand(node, "B", b.view, trans_b, c_shape[:-2])
        if a.dtype != b.dtype:
            raise LoweringError(f"MatMul '{node.name}': operands of different dtypes")
        result = node.outputs[0]
        extra: list[Node] = []
        gemm_epilogue = node.op_type == "Gemm" and (len(node.inputs) > 2 and node.inputs[2]
                                                    or node.attrs.get("alpha", 1.0) != 1.0)
        scaled = a_scales + b_scales
        if scaled and gemm_epilogue:
            raise LoweringError(f"Gemm '{node.name}': a scaled operand and a bias or alpha")
        direct = result in outputs and not gemm_epilogue and not scaled and self.ctx.dtype(result) == a.dtype
        if direct:  # the cube writes the output itself; vector members read it back from there
            target = outputs[result].ident
            self.storages[result] = Storage(outputs[result], a.dtype, c_shape)
            self.values[result] = Stored(View.contiguous(result, c_shape), a.dtype)
        else:
            target = self._workspace_for(result, c_shape, self.ctx.dtype(result))
        index = len(self.matmuls)
        raw = f"{result}@cube" if gemm_epilogue or scaled else result
        self.matmuls.append(MatmulCall(index, comment_text(f"{node.op_type} {node.name}"),
                                       self.storages[a.view.storage].arg, self.storages[b.view.storage].arg,
                                       m, n, k, trans_a, trans_b, a.dtype, target,
                                       geometry.batch, a_offset, b_offset))
        if not direct:
            arg = self.workspace[-1][0]
            self.storages[raw] = Storage(arg, arg.dtype, c_shape)
            self.values[raw] = Stored(View.contiguous(raw, c_shape), arg.dtype)
        if gemm_epilogue:  # alpha * (A B) + beta * C as vector work on the cube's result
            extra = self._gemm_epilogue(node, raw)
        if scaled:
            extra = self._result_scales(result, raw, scaled)
        return extra

    def _cube_operand(self, node: Node, role: str, view: View, trans: bool,
                      batch: tuple[int, ...]) -> tuple[bool, str]:
        """How the cube reads one operand of a batched MatMul: whether each matrix is stored
        transposed (a Transpose of the last two axes, or a Gemm's trans flag), and the C++
        expression of the element offset of matrix `bt` (broadcast batch axes have stride 0)."""
        rows, cols = view.shape[-2:]
        row_stride, col_stride = view.strides[-2:]
        if trans:  # the logical operand is the stored matrix transposed
            rows, cols, row_stride, col_stride = cols, rows, col_stride, row_stride
        if (cols == 1 or col_stride == 1) and (rows == 1 or row_stride == cols):
            stored_transposed = False
        elif (rows == 1 or row_stride == 1) and (cols == 1 or col_stride == rows):
            stored_transposed = True
        else:
            raise LoweringError(f"MatMul '{node.name}': each matrix of operand {role} must be contiguous "
                                f"(row-major or transposed), not strides {view.strides[-2:]}")
        rank = len(batch)
        dims = view.shape[:-2]
        if len(dims) > rank:
            raise LoweringError(f"MatMul '{node.name}': operand {role} has more batch axes than the result")
        strides = (0,) * (rank - len(dims)) + tuple(s if d != 1 else 0 for d, s in zip(dims, view.strides[:-2]))
        return stored_transposed, _matrix_offset(*views.merge_dims(batch, strides), view.offset)

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
            factor = scalar_factor(scale, self.graph)[1]
            steps.append(Node(-1, scale.name, scale.op_type, "", (current, factor), (out,)))
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
            self.values[f"{out}@alpha"] = const_scalar(alpha)
            steps.append(Node(-1, node.name, "Mul", "", (current, f"{out}@alpha"), (f"{out}@scaled",)))
            current = f"{out}@scaled"
        if len(node.inputs) > 2 and node.inputs[2]:
            bias = node.inputs[2]
            if beta != 1.0:
                self.values[f"{out}@beta"] = const_scalar(beta)
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
        return PartBuilder(self, index, members, outputs).build()


