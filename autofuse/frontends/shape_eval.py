"""Exact shape evaluation for graphs whose shapes are computed at run time.

TorchScript exports compute many shapes inside the graph (``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape``, ``Where(Equal(shape, -1), 1, shape) -> Expand``). ONNX shape inference
gives up on several of these even with the graph inputs bound to static sizes. This module
walks the (topologically sorted) graph once and propagates two things:

* static shapes of values, and
* the *values* of small integer/bool tensors (shape arithmetic), as numpy arrays.

It never guesses: an output whose shape depends on anything unknown is left out, and a shape
already given in ``known`` is never replaced.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from autofuse.ir.graph import Graph, Node

Shape = tuple[int, ...]

# Largest integer/bool tensor whose elements are tracked (shape vectors, masks of shape arithmetic).
MAX_VALUE_ELEMENTS = 64

_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
                9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}

_UNARY = frozenset((
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Elu", "Erf",
    "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log",
    "LogSoftmax", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign",
    "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Cast",
    "CastLike", "Clip", "Hardmax", "Trilu", "CumSum", "BitwiseNot",
))
_BROADCAST = frozenset((
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or", "Xor", "Where", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor",
))
_NORMALIZATION = frozenset((
    "LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
))


def evaluate_shapes(graph: Graph, known: dict[str, Shape], constants: Mapping[str, np.ndarray]) -> dict[str, Shape]:
    """`known` extended with every output shape computable exactly from it and `constants`."""
    state = _State(graph, dict(known))
    for name, array in constants.items():
        array = np.asarray(array)
        state.set_shape(name, tuple(int(d) for d in array.shape))
        if state.shapes.get(name) == array.shape:
            state.keep_value(name, array)
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            state.visit(node)
        except Exception:  # noqa: BLE001, S112 - anything odd (bad attrs, mismatched shapes): stays unknown
            continue
    return state.shapes


def _is_small_int(array: np.ndarray) -> bool:
    return (array.dtype.kind in "biu") and array.size <= MAX_VALUE_ELEMENTS


def _int_list(array: np.ndarray | None) -> list[int] | None:
    if array is None or array.dtype.kind not in "iu":
        return None
    return [int(v) for v in array.reshape(-1)]


def _norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _broadcast(*shapes: Shape) -> Shape:
    return tuple(int(d) for d in np.broadcast_shapes(*shapes))


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.any(b == 0):
        raise ZeroDivisionError
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))


def _reshape_target(in_shape: Shape, target: list[int], allowzero: bool) -> Shape:
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            out.append(in_shape[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise ValueError("two -1 in Reshape target")
    total = math.prod(in_shape)
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or total % rest:
            raise ValueError("Reshape -1 does not divide")
        out[out.index(-1)] = total // rest
    if any(d < 0 for d in out) or math.prod(out) != total:
        raise ValueError("Reshape size mismatch")
    return tuple(out)


def _slice_objects(rank: int, starts: list[int], ends: list[int], axes: list[int] | None,
                   steps: list[int] | None) -> list[slice]:
    """Python slices with the ONNX Slice semantics (clamping of negative and out-of-range bounds)."""
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError("Slice parameter lengths differ")
    slices = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step == 0:
            raise ValueError("Slice step 0")
        slices[_norm_axis(axis, rank)] = slice(start, end, step)
    return slices


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise ValueError("MatMul of a scalar")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ValueError("MatMul inner dims differ")
    out = (*_broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


class _State:
    def __init__(self, graph: Graph, shapes: dict[str, Shape]):
        self.graph = graph
        self.opset = graph.opset or 18
        self.shapes = shapes
        self.values: dict[str, np.ndarray] = {}

    # -- bookkeeping -----------------------------------------------------------------------------

    def set_shape(self, name: str, shape: Sequence[int]) -> None:
        if name and name not in self.shapes:
            shape = tuple(int(d) for d in shape)
            if any(d < 0 for d in shape):
                raise ValueError("negative dim")
            self.shapes[name] = shape

    def keep_value(self, name: str, array: np.ndarray) -> None:
        if name and _is_small_int(array) and self.shapes.get(name) == tuple(array.shape):
            self.values[name] = array

    def put_value(self, name: str, array: np.ndarray) -> None:
        array = np.asarray(array)
        self.set_shape(name, array.shape)
        self.keep_value(name, array)

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name) if name else None

    def value(self, name: str) -> np.ndarray | None:
        return self.values.get(name) if name else None

    def inp(self, node: Node, i: int) -> str:
        return node.inputs[i] if i < len(node.inputs) else ""

    def axes(self, node: Node, input_index: int, since: int) -> list[int] | None:
        """Axes from the attribute (before opset `since`) or the input; None when absent or unknown."""
        if self.opset < since:
            axes = node.attrs.get("axes")
            return None if axes is None else [int(a) for a in axes]
        name = self.inp(node, input_index)
        return _int_list(self.value(name)) if name else None

    def has_axes(self, node: Node, input_index: int, since: int) -> bool:
        if self.opset < since:
            return "axes" in node.attrs
        return bool(self.inp(node, input_index))

    # -- dispatch --------------------------------------------------------------------------------

    def visit(self, node: Node) -> None:
        if all(o in self.shapes for o in node.outputs if o) and not self._may_compute_value(node):
            return
        handler: Callable[[Node], None] | None = getattr(self, f"_op_{node.op_type}", None)
        if handler is not None:
            handler(node)
        elif node.op_type in _UNARY:
            self._unary(node)
        elif node.op_type in _BROADCAST:
            self._broadcasting(node)
        elif node.op_type in _NORMALIZATION:
            self._normalization(node)
        elif node.op_type.startswith("Reduce") or node.op_type in ("ArgMax", "ArgMin"):
            self._reduce(node)

    def _may_compute_value(self, node: Node) -> bool:
        # Values flow through nodes whose output shapes are already known, too.
        return node.op_type in _VALUE_OPS

    # -- value ops -------------------------------------------------------------------------------

    def _op_Constant(self, node: Node) -> None:
        array = self.graph.constant(node.outputs[0])
        if array is not None:
            self.put_value(node.outputs[0], np.asarray(array))

    def _op_Shape(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        start = int(node.attrs.get("start", 0))
        end = node.attrs.get("end")
        picked = shape[slice(start, None if end is None else int(end))]
        self.put_value(node.outputs[0], np.array(picked, dtype=np.int64).reshape(len(picked)))

    def _op_Size(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None:
            self.put_value(node.outputs[0], np.array(math.prod(shape), dtype=np.int64))

    def _op_Identity(self, node: Node) -> None:
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value)
        else:
            self._unary(node)

    def _op_Gather(self, node: Node) -> None:
        data, indices = self.value(node.inputs[0]), self.value(node.inputs[1])
        axis = int(node.attrs.get("axis", 0))
        if data is not None and indices is not None:
            self.put_value(node.outputs[0], np.take(data, indices.astype(np.int64), axis=_norm_axis(axis, data.ndim)))
            return
        ds, ish = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if ds is not None and ish is not None:
            a = _norm_axis(axis, len(ds))
            self.set_shape(node.outputs[0], (*ds[:a], *ish, *ds[a + 1:]))

    def _op_GatherND(self, node: Node) -> None:
        ds, ish = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if ds is None or ish is None or not ish:
            return
        b, k = int(node.attrs.get("batch_dims", 0)), ish[-1]
        if b + k > len(ds) or ish[:b] != ds[:b]:
            return
        self.set_shape(node.outputs[0], (*ish[:-1], *ds[b + k:]))

    def _op_GatherElements(self, node: Node) -> None:
        ds, ish = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if ds is not None and ish is not None and len(ds) == len(ish):
            self.set_shape(node.outputs[0], ish)

    def _op_Unsqueeze(self, node: Node) -> None:
        axes = self.axes(node, 1, 13)
        shape = self.shape(node.inputs[0])
        if axes is None or shape is None:
            return
        rank = len(shape) + len(axes)
        norm = sorted(_norm_axis(a, rank) for a in axes)
        if len(set(norm)) != len(norm):
            return
        out = list(shape)
        for a in norm:
            out.insert(a, 1)
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value.reshape(out))
        else:
            self.set_shape(node.outputs[0], out)

    def _op_Squeeze(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        if self.has_axes(node, 1, 13):
            axes = self.axes(node, 1, 13)
            if axes is None:
                return
            norm = {_norm_axis(a, len(shape)) for a in axes}
            if any(shape[a] != 1 for a in norm):
                return
        else:
            norm = {i for i, d in enumerate(shape) if d == 1}
        out = [d for i, d in enumerate(shape) if i not in norm]
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value.reshape(out))
        else:
            self.set_shape(node.outputs[0], out)

    def _op_Concat(self, node: Node) -> None:
        names = [v for v in node.inputs if v]
        values = [self.value(v) for v in names]
        axis = int(node.attrs["axis"])
        if names and all(v is not None for v in values):
            self.put_value(node.outputs[0], np.concatenate(values, axis=_norm_axis(axis, values[0].ndim)))
            return
        shapes = [self.shape(v) for v in names]
        if not names or any(s is None for s in shapes):
            return
        rank = len(shapes[0])
        a = _norm_axis(axis, rank)
        if any(len(s) != rank or s[:a] != shapes[0][:a] or s[a + 1:] != shapes[0][a + 1:] for s in shapes):
            return
        self.set_shape(node.outputs[0], (*shapes[0][:a], sum(s[a] for s in shapes), *shapes[0][a + 1:]))

    def _op_Cast(self, node: Node) -> None:
        value = self.value(node.inputs[0])
        dtype = _ONNX_DTYPES.get(int(node.attrs.get("to", 0)))
        if value is not None and dtype is not None and np.dtype(dtype).kind in "biu":
            self.put_value(node.outputs[0], value.astype(dtype))
        else:
            self._unary(node)

    def _binary_value(self, node: Node, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> bool:
        names = [v for v in node.inputs if v]
        values = [self.value(v) for v in names]
        if len(names) < 2 or any(v is None for v in values):
            return False
        result = values[0]
        for v in values[1:]:
            result = fn(result, v)
        self.put_value(node.outputs[0], np.asarray(result))
        return True

    def _elementwise(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[Node], None]:
        def handle(node: Node) -> None:
            if not self._binary_value(node, fn):
                self._broadcasting(node)
        return handle

    def _op_Add(self, node: Node) -> None:
        self._elementwise(np.add)(node)

    def _op_Sub(self, node: Node) -> None:
        self._elementwise(np.subtract)(node)

    def _op_Mul(self, node: Node) -> None:
        self._elementwise(np.multiply)(node)

    def _op_Div(self, node: Node) -> None:
        self._elementwise(_trunc_div)(node)

    def _op_Mod(self, node: Node) -> None:
        fmod = int(node.attrs.get("fmod", 0))
        self._elementwise(np.fmod if fmod else np.mod)(node)

    def _op_Max(self, node: Node) -> None:
        names = [v for v in node.inputs if v]
        if len(names) == 1 and self.value(names[0]) is not None:
            self.put_value(node.outputs[0], self.value(names[0]))
            return
        self._elementwise(np.maximum)(node)

    def _op_Min(self, node: Node) -> None:
        names = [v for v in node.inputs if v]
        if len(names) == 1 and self.value(names[0]) is not None:
            self.put_value(node.outputs[0], self.value(names[0]))
            return
        self._elementwise(np.minimum)(node)

    def _op_Equal(self, node: Node) -> None:
        self._elementwise(np.equal)(node)

    def _op_Less(self, node: Node) -> None:
        self._elementwise(np.less)(node)

    def _op_LessOrEqual(self, node: Node) -> None:
        self._elementwise(np.less_equal)(node)

    def _op_Greater(self, node: Node) -> None:
        self._elementwise(np.greater)(node)

    def _op_GreaterOrEqual(self, node: Node) -> None:
        self._elementwise(np.greater_equal)(node)

    def _op_And(self, node: Node) -> None:
        self._elementwise(np.logical_and)(node)

    def _op_Or(self, node: Node) -> None:
        self._elementwise(np.logical_or)(node)

    def _op_Xor(self, node: Node) -> None:
        self._elementwise(np.logical_xor)(node)

    def _unary_value(self, node: Node, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], fn(value))
        else:
            self._unary(node)

    def _op_Not(self, node: Node) -> None:
        self._unary_value(node, np.logical_not)

    def _op_Abs(self, node: Node) -> None:
        self._unary_value(node, np.abs)

    def _op_Neg(self, node: Node) -> None:
        self._unary_value(node, np.negative)

    def _op_Where(self, node: Node) -> None:
        c, x, y = (self.value(v) for v in node.inputs[:3])
        if c is not None and x is not None and y is not None:
            self.put_value(node.outputs[0], np.where(c, x, y))
        else:
            self._broadcasting(node)

    def _slice_params(self, node: Node, rank: int) -> list[slice] | None:
        if self.opset < 10:
            starts, ends = node.attrs.get("starts"), node.attrs.get("ends")
            axes = node.attrs.get("axes")
            if starts is None or ends is None:
                return None
            return _slice_objects(rank, list(starts), list(ends), None if axes is None else list(axes), None)
        starts, ends = _int_list(self.value(self.inp(node, 1))), _int_list(self.value(self.inp(node, 2)))
        if starts is None or ends is None:
            return None
        axes = steps = None
        if self.inp(node, 3):
            axes = _int_list(self.value(self.inp(node, 3)))
            if axes is None:
                return None
        if self.inp(node, 4):
            steps = _int_list(self.value(self.inp(node, 4)))
            if steps is None:
                return None
        return _slice_objects(rank, starts, ends, axes, steps)

    def _op_Slice(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        slices = self._slice_params(node, len(shape))
        if slices is None:
            return
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value[tuple(slices)])
        else:
            self.set_shape(node.outputs[0], [len(range(*s.indices(d))) for s, d in zip(slices, shape)])

    def _op_ConstantOfShape(self, node: Node) -> None:
        target = _int_list(self.value(node.inputs[0]))
        if target is None:
            return
        fill = node.attrs.get("value")
        fill = np.zeros(1, dtype=np.float32) if fill is None else np.asarray(fill)
        if not isinstance(fill, np.ndarray) or fill.size != 1:
            self.set_shape(node.outputs[0], target)
            return
        if math.prod(target) <= MAX_VALUE_ELEMENTS and fill.dtype.kind in "biu":
            self.put_value(node.outputs[0], np.full(target, fill.reshape(-1)[0], dtype=fill.dtype))
        else:
            self.set_shape(node.outputs[0], target)

    def _op_Reshape(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        target = _int_list(self.value(node.inputs[1]))
        if shape is None or target is None:
            return
        out = _reshape_target(shape, target, bool(node.attrs.get("allowzero", 0)))
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value.reshape(out))
        else:
            self.set_shape(node.outputs[0], out)

    def _op_Flatten(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        axis = int(node.attrs.get("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        if not 0 <= axis <= len(shape):
            return
        out = (math.prod(shape[:axis]), math.prod(shape[axis:]))
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value.reshape(out))
        else:
            self.set_shape(node.outputs[0], out)

    def _op_Range(self, node: Node) -> None:
        start, limit, delta = (self.value(v) for v in node.inputs[:3])
        if start is None or limit is None or delta is None or start.size != 1 or delta.size != 1 or limit.size != 1:
            return
        s, lim, d = (int(a.reshape(-1)[0]) for a in (start, limit, delta))
        if d == 0:
            return
        count = max(-(-(lim - s) // d), 0)
        if count <= MAX_VALUE_ELEMENTS:
            self.put_value(node.outputs[0], np.arange(s, lim, d, dtype=start.dtype))
        else:
            self.set_shape(node.outputs[0], (count,))

    def _op_Expand(self, node: Node) -> None:
        target = _int_list(self.value(node.inputs[1]))
        shape = self.shape(node.inputs[0])
        if target is None or shape is None:
            return
        out = _broadcast(shape, tuple(target))
        value = self.value(node.inputs[0])
        if value is not None and math.prod(out) <= MAX_VALUE_ELEMENTS:
            self.put_value(node.outputs[0], np.broadcast_to(value, out).copy())
        else:
            self.set_shape(node.outputs[0], out)

    def _op_Tile(self, node: Node) -> None:
        shape, repeats = self.shape(node.inputs[0]), _int_list(self.value(node.inputs[1]))
        if shape is not None and repeats is not None and len(repeats) == len(shape):
            self.set_shape(node.outputs[0], [d * r for d, r in zip(shape, repeats)])

    # -- shape-only ops --------------------------------------------------------------------------

    def _unary(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None and node.outputs:
            self.set_shape(node.outputs[0], shape)

    def _op_Dropout(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None:
            for out in node.outputs:
                self.set_shape(out, shape)

    def _broadcasting(self, node: Node) -> None:
        shapes = [self.shape(v) for v in node.inputs if v]
        if shapes and all(s is not None for s in shapes):
            self.set_shape(node.outputs[0], _broadcast(*shapes))

    def _normalization(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        self.set_shape(node.outputs[0], shape)
        axis = _norm_axis(int(node.attrs.get("axis", -1)), len(shape))
        for out in node.outputs[1:]:
            self.set_shape(out, (*shape[:axis], *([1] * (len(shape) - axis))))

    def _op_Transpose(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        perm = node.attrs.get("perm")
        perm = list(range(len(shape)))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(len(shape))):
            return
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], np.transpose(value, perm))
        else:
            self.set_shape(node.outputs[0], [shape[p] for p in perm])

    def _op_MatMul(self, node: Node) -> None:
        a, b = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if a is not None and b is not None:
            self.set_shape(node.outputs[0], _matmul_shape(a, b))

    def _op_Gemm(self, node: Node) -> None:
        a, b = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return
        m, k = a[::-1] if node.attrs.get("transA", 0) else a
        k2, n = b[::-1] if node.attrs.get("transB", 0) else b
        if k != k2:
            return
        c = self.shape(self.inp(node, 2))
        if self.inp(node, 2) and (c is None or _broadcast(c, (m, n)) != (m, n)):
            return
        self.set_shape(node.outputs[0], (m, n))

    def _op_Split(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        axis = _norm_axis(int(node.attrs.get("axis", 0)), len(shape))
        dim = shape[axis]
        outs = [o for o in node.outputs]
        if self.opset >= 13 and self.inp(node, 1):
            sizes = _int_list(self.value(self.inp(node, 1)))
        elif self.opset < 13 and "split" in node.attrs:
            sizes = [int(s) for s in node.attrs["split"]]
        elif "num_outputs" in node.attrs:
            n = int(node.attrs["num_outputs"])
            chunk = -(-dim // n)
            sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(n)]
        else:
            if dim % len(outs):
                return
            sizes = [dim // len(outs)] * len(outs)
        if sizes is None or len(sizes) != len(outs) or sum(sizes) != dim:
            return
        for out, size in zip(outs, sizes):
            self.set_shape(out, (*shape[:axis], size, *shape[axis + 1:]))

    def _reduce(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        keepdims = bool(node.attrs.get("keepdims", 1))
        if node.op_type in ("ArgMax", "ArgMin"):
            axes: list[int] | None = [int(node.attrs.get("axis", 0))]
        else:
            since = 13 if node.op_type == "ReduceSum" else 18
            if self.has_axes(node, 1, since):
                axes = self.axes(node, 1, since)
                if axes is None:
                    return
            else:
                axes = []
            if not axes:
                if node.attrs.get("noop_with_empty_axes", 0):
                    self.set_shape(node.outputs[0], shape)
                    return
                axes = list(range(len(shape)))
        norm = {_norm_axis(a, len(shape)) for a in axes}
        out = [1 if i in norm else d for i, d in enumerate(shape) if keepdims or i not in norm]
        self.set_shape(node.outputs[0], out)


# Ops that can produce a tracked value even when their output shape is already known.
_VALUE_OPS = frozenset(
    name[4:] for name in dir(_State) if name.startswith("_op_")
) - {"MatMul", "Gemm", "Split", "Dropout", "Tile"}
