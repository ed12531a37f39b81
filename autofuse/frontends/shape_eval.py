"""Exact shape evaluation once the graph inputs have static shapes.

ONNX shape inference leaves values unsized where a shape is computed at run time (TorchScript
exports write ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``, ``Where(Equal(shape, -1), 1,
shape) -> Expand``, pads computed for ``Pad``, sizes for ``Resize``) and, with symbolic dims, after
any op whose output size is arithmetic on a dim (a convolution, a pad). This module walks the
(topologically sorted) graph once and propagates two things:

* static shapes of values: every default-domain op whose output shape follows from its input
  shapes, its attributes and the values of its parameter inputs (pads, targets, repeats, starts
  and ends, scales and sizes, k, depth, split sizes, frame and DFT lengths), and
* the *values* of small tensors (shape arithmetic and such parameters), as numpy arrays.

It never guesses: an output whose shape depends on anything unknown is left out, and a shape
already given in ``known`` is never replaced. Outputs whose shape depends on tensor data
(NonZero, Unique's values, Compress, NonMaxSuppression, StringSplit's widest row, ...) are never
sized. If, Loop and Scan are sized through their bodies where that is exact: the branch a known
condition takes (or what both branches agree on), loop-carried values whose shape the body keeps,
scan outputs when the number of iterations is known.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from autofuse.ir.graph import Graph, Node

Shape = tuple[int, ...]

# Largest tensor whose elements are tracked (shape vectors, masks of shape arithmetic, scales).
MAX_VALUE_ELEMENTS = 64
# A Loop body whose shapes depend on the iteration number is evaluated once per iteration, up to
# this many iterations.
_MAX_UNROLLED = 64
# Node visits one evaluation may spend inside If/Loop/Scan/SequenceMap bodies (unrolled and
# nested loops multiply): past it, what a body would size stays unknown.
_SUBGRAPH_BUDGET = 50_000

_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
                9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}

# Output 0 has the shape of input 0.
_UNARY = frozenset((
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Elu", "Erf",
    "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log",
    "LogSoftmax", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign",
    "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Cast",
    "CastLike", "Clip", "Hardmax", "Trilu", "CumSum", "BitwiseNot",
    "BitCast", "Swish", "CumProd", "LpNormalization", "LRN", "MeanVarianceNormalization",
    "InstanceNormalization", "GroupNormalization", "QuantizeLinear", "DequantizeLinear", "RotaryEmbedding",
    "ReverseSequence", "Scatter", "ScatterElements", "ScatterND", "TensorScatter", "EyeLike", "Bernoulli",
    "RandomNormalLike", "RandomUniformLike", "RegexFullMatch", "SwiGLU",
))
# Output 0 has the broadcast shape of all inputs.
_BROADCAST = frozenset((
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or", "Xor", "Where", "Max", "Min", "Sum", "Mean", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", "StringConcat",
))
_NORMALIZATION = frozenset((
    "LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
))
_POOLS = frozenset(("AveragePool", "MaxPool", "LpPool"))
_GLOBAL_POOLS = frozenset(("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"))
_WINDOWS = frozenset(("BlackmanWindow", "HammingWindow", "HannWindow"))


def evaluate_shapes(graph: Graph, known: dict[str, Shape], constants: Mapping[str, np.ndarray],
                    sequences: Mapping[str, Sequence[Shape]] | None = None) -> dict[str, Shape]:
    """`known` extended with every output shape computable exactly from it and `constants` (and
    from `sequences`, the element shapes of sequence-typed values, where a graph has such inputs)."""
    return evaluate(graph, known, constants, sequences).shapes


def evaluate(graph: Graph, known: dict[str, Shape], constants: Mapping[str, np.ndarray],
             sequences: Mapping[str, Sequence[Shape]] | None = None) -> _State:
    """The whole evaluation: `.shapes`, `.values` (small tensors) and `.sequences` (element shapes)."""
    state = _State(graph, dict(known))
    if sequences:
        state.sequences.update((name, tuple(tuple(s) for s in shapes)) for name, shapes in sequences.items())
    with np.errstate(all="ignore"):
        state.run(constants)
    return state


def _is_small(array: np.ndarray) -> bool:
    return (array.dtype.kind in "biuf") and array.size <= MAX_VALUE_ELEMENTS


def _int_list(array: np.ndarray | None) -> list[int] | None:
    if array is None or array.dtype.kind not in "iu":
        return None
    return [int(v) for v in array.reshape(-1)]


def _number_list(array: np.ndarray | None) -> list[float] | None:
    if array is None or array.dtype.kind not in "iuf":
        return None
    return [v for v in array.reshape(-1).tolist()]


def _scalar(array: np.ndarray | None) -> int | None:
    """The one integer of a scalar or one-element tensor (None when absent or not an integer)."""
    values = _int_list(array)
    return values[0] if values is not None and len(values) == 1 else None


def _norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _broadcast(*shapes: Shape) -> Shape:
    return tuple(int(d) for d in np.broadcast_shapes(*shapes))


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "iu" or b.dtype.kind not in "iu":
        return np.divide(a, b).astype(np.result_type(a, b))
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


def _window_params(node: Node, n: int, kernel: Sequence[int]) -> tuple[list[int], list[int], list[int], str]:
    """(strides, dilations, pads, auto_pad) of a convolution or pooling over `n` spatial axes."""
    if len(kernel) != n:
        raise ValueError("kernel rank differs from the spatial rank")
    strides = [int(s) for s in node.attrs.get("strides") or [1] * n]
    dilations = [int(d) for d in node.attrs.get("dilations") or [1] * n]
    pads = [int(p) for p in node.attrs.get("pads") or [0] * (2 * n)]
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n or min(strides) < 1 or min(dilations) < 1:
        raise ValueError("bad window attributes")
    return strides, dilations, pads, str(node.attrs.get("auto_pad", "NOTSET"))


def _conv_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int, auto_pad: str) -> int:
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return -(-size // stride)
    if auto_pad == "VALID":
        pad_begin = pad_end = 0
    room = size + pad_begin + pad_end - span
    if room < 0:
        raise ValueError("window larger than the padded input")
    return room // stride + 1


def _pool_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int, auto_pad: str,
               ceil_mode: bool) -> int:
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") or not ceil_mode:
        return _conv_size(size, kernel, stride, dilation, pad_begin, pad_end, auto_pad)
    if auto_pad == "VALID":
        pad_begin = pad_end = 0
    room = size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)
    if room < 0:
        raise ValueError("window larger than the padded input")
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:  # the last window must start inside the input or the begin pad
        out -= 1
    return out


def _einsum_shape(equation: str, shapes: list[Shape]) -> Shape:
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError("Einsum operand count differs")
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    ellipsis: Shape | None = None
    for term, shape in zip(terms, shapes):
        if "..." in term:
            before, _, after = term.partition("...")
            n = len(shape) - len(before) - len(after)
            if n < 0:
                raise ValueError("Einsum term longer than its operand")
            part = tuple(shape[len(before):len(before) + n])
            ellipsis = part if ellipsis is None else _broadcast(ellipsis, part)
            letters, dims = before + after, (*shape[:len(before)], *shape[len(before) + n:])
        else:
            letters, dims = term, tuple(shape)
            if len(letters) != len(dims):
                raise ValueError("Einsum term rank differs from its operand")
        for letter, dim in zip(letters, dims):
            if not letter.isalpha():
                raise ValueError("bad Einsum subscript")
            counts[letter] = counts.get(letter, 0) + 1
            if sizes.get(letter, dim) != dim:
                if sizes[letter] != 1 and dim != 1:
                    raise ValueError("Einsum sizes differ")
                dim = max(dim, sizes[letter])
            sizes[letter] = dim
    if not arrow:
        rhs = ("..." if ellipsis is not None else "") + "".join(sorted(c for c, n in counts.items() if n == 1))
    out: list[int] = []
    before, dots, after = rhs.partition("...")
    for letter in before:
        out.append(sizes[letter])
    if dots:
        out.extend(ellipsis or ())
    for letter in after:
        out.append(sizes[letter])
    return tuple(out)


class _Shared:
    """What the evaluation of a graph and of all its bodies share: the bodies' IR, built once per
    graph attribute, and the budget of node visits inside bodies."""

    def __init__(self) -> None:
        self.bodies: dict[int, tuple[object, Graph | None]] = {}
        self.budget = _SUBGRAPH_BUDGET


class _State:
    def __init__(self, graph: Graph, shapes: dict[str, Shape], shared: _Shared | None = None):
        self.graph = graph
        self.shared = shared if shared is not None else _Shared()
        self.opset = graph.opset or 18
        self.shapes = shapes
        self.values: dict[str, np.ndarray] = {}
        # Sequence values: the shapes of their elements, in order.
        self.sequences: dict[str, tuple[Shape, ...]] = {}
        # Optionals known to be empty.
        self.empty: set[str] = set()

    def run(self, constants: Mapping[str, np.ndarray]) -> None:
        for name, array in constants.items():
            array = np.asarray(array)
            if array.dtype.kind == "V":  # bfloat16, float8 (ml_dtypes): every such number is a float32
                array = array.astype(np.float32)
            self.set_shape(name, tuple(int(d) for d in array.shape))
            if self.shapes.get(name) == array.shape:
                self.keep_value(name, array)
        for node in self.graph.nodes:
            if node.domain not in ("", "ai.onnx"):
                continue
            try:
                self.visit(node)
            except Exception:  # noqa: BLE001, S112 - anything odd (bad attrs, mismatched shapes): stays unknown
                continue

    # -- bookkeeping -----------------------------------------------------------------------------

    def set_shape(self, name: str, shape: Sequence[int]) -> None:
        if name and name not in self.shapes:
            shape = tuple(int(d) for d in shape)
            if any(d < 0 for d in shape):
                raise ValueError("negative dim")
            self.shapes[name] = shape

    def keep_value(self, name: str, array: np.ndarray) -> None:
        if name and _is_small(array) and self.shapes.get(name) == tuple(array.shape):
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

    def out(self, node: Node, i: int) -> str:
        return node.outputs[i] if i < len(node.outputs) else ""

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

    def optional_int(self, node: Node, i: int, default: int) -> int | None:
        """The scalar integer value of optional input `i`: `default` when omitted, None when unknown."""
        if not self.inp(node, i):
            return default
        return _scalar(self.value(self.inp(node, i)))

    def set_like(self, node: Node, source: Shape) -> None:
        """Every output gets shape `source`."""
        for out in node.outputs:
            self.set_shape(out, source)

    # -- dispatch --------------------------------------------------------------------------------

    def visit(self, node: Node) -> None:
        if all(o in self.shapes for o in node.outputs if o) and node.op_type not in _VALUE_OPS:
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
        elif node.op_type in _POOLS:
            self._pool(node)
        elif node.op_type in _GLOBAL_POOLS:
            self._global_pool(node)
        elif node.op_type in _WINDOWS:
            self._window(node)

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
        if node.inputs[0] in self.sequences:
            self.sequences[node.outputs[0]] = self.sequences[node.inputs[0]]
            return
        value = self.value(node.inputs[0])
        if value is not None:
            self.put_value(node.outputs[0], value)
        else:
            self._unary(node)

    def _op_Gather(self, node: Node) -> None:
        data, indices = self.value(node.inputs[0]), self.value(node.inputs[1])
        axis = int(node.attrs.get("axis", 0))
        if data is not None and indices is not None and indices.dtype.kind in "iu":
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
        self.set_shape(node.outputs[0], _concat_shape(shapes, axis))

    def _op_Cast(self, node: Node) -> None:
        value = self.value(node.inputs[0])
        dtype = _ONNX_DTYPES.get(int(node.attrs.get("to", 0)))
        if value is not None and dtype is not None:
            self.put_value(node.outputs[0], value.astype(dtype))
        else:
            self._unary(node)

    def _binary_value(self, node: Node, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> bool:
        names = [v for v in node.inputs if v]
        values = [self.value(v) for v in names]
        if len(names) < 2 or any(v is None for v in values):
            return False
        try:
            result = values[0]
            for v in values[1:]:
                result = fn(result, v)
        except (ArithmeticError, ValueError, TypeError):
            return False  # the value stays unknown; the shape still broadcasts
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

    def _unary_value(self, node: Node, fn: Callable[[np.ndarray], np.ndarray], kinds: str = "biuf") -> None:
        value = self.value(node.inputs[0])
        if value is not None and value.dtype.kind in kinds:
            self.put_value(node.outputs[0], np.asarray(fn(value)).astype(value.dtype))
        else:
            self._unary(node)

    def _op_Not(self, node: Node) -> None:
        self._unary_value(node, np.logical_not, "b")

    def _op_Abs(self, node: Node) -> None:
        self._unary_value(node, np.abs)

    def _op_Neg(self, node: Node) -> None:
        self._unary_value(node, np.negative)

    def _op_Floor(self, node: Node) -> None:
        self._unary_value(node, np.floor, "f")

    def _op_Ceil(self, node: Node) -> None:
        self._unary_value(node, np.ceil, "f")

    def _op_Round(self, node: Node) -> None:
        self._unary_value(node, np.round, "f")  # half to even, as ONNX Round

    def _op_Sqrt(self, node: Node) -> None:
        self._unary_value(node, np.sqrt, "f")

    def _op_Reciprocal(self, node: Node) -> None:
        self._unary_value(node, np.reciprocal, "f")

    def _op_Sign(self, node: Node) -> None:
        self._unary_value(node, np.sign)

    def _op_Relu(self, node: Node) -> None:
        self._unary_value(node, lambda v: np.maximum(v, 0))

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
        if math.prod(target) <= MAX_VALUE_ELEMENTS and fill.dtype.kind in "biuf":
            self.put_value(node.outputs[0], np.full(target, fill.reshape(-1)[0], dtype=fill.dtype))
        else:
            self.set_shape(node.outputs[0], target)

    def _op_Reshape(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        target = _int_list(self.value(node.inputs[1]))
        if target is None:
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
        if all(a.dtype.kind in "iu" for a in (start, limit, delta)):
            s, lim, d = (int(a.reshape(-1)[0]) for a in (start, limit, delta))
            if d == 0:
                return
            count = max(-(-(lim - s) // d), 0)
            if count <= MAX_VALUE_ELEMENTS:
                self.put_value(node.outputs[0], np.arange(s, lim, d, dtype=start.dtype))
            else:
                self.set_shape(node.outputs[0], (count,))
            return
        # Floating point: onnxruntime's count, ceil((limit - start) / delta), the difference in the
        # inputs' type and the division in double.
        dtype = start.dtype
        if self.graph.type_of(node.inputs[0]).dtype == "bfloat16":  # widened to float32 when read
            import ml_dtypes

            dtype = ml_dtypes.bfloat16
        span = float(np.asarray(limit.reshape(-1)[0]).astype(dtype) - np.asarray(start.reshape(-1)[0]).astype(dtype))
        step = float(delta.reshape(-1)[0])
        if step == 0 or not math.isfinite(span / step):
            return
        self.set_shape(node.outputs[0], (max(math.ceil(span / step), 0),))

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
        if shape is None or repeats is None or len(repeats) != len(shape):
            return
        value = self.value(node.inputs[0])
        out = [d * r for d, r in zip(shape, repeats)]
        if value is not None and math.prod(out) <= MAX_VALUE_ELEMENTS:
            self.put_value(node.outputs[0], np.tile(value, repeats))
        else:
            self.set_shape(node.outputs[0], out)

    # -- shape-only ops --------------------------------------------------------------------------

    def _unary(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None and node.outputs:
            self.set_shape(node.outputs[0], shape)

    def _op_Dropout(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None:
            self.set_like(node, shape)

    def _broadcasting(self, node: Node) -> None:
        shapes = [self.shape(v) for v in node.inputs if v]
        if shapes and all(s is not None for s in shapes):
            self.set_shape(node.outputs[0], _broadcast(*shapes))

    def _op_PRelu(self, node: Node) -> None:
        # The slope broadcasts to X (unidirectionally): the output is X's shape.
        x, slope = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is not None and slope is not None and _broadcast(x, slope) == x:
            self.set_shape(node.outputs[0], x)

    def _normalization(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        self.set_shape(node.outputs[0], shape)
        axis = _norm_axis(int(node.attrs.get("axis", -1)), len(shape))
        for out in node.outputs[1:]:
            self.set_shape(out, (*shape[:axis], *([1] * (len(shape) - axis))))

    def _op_BatchNormalization(self, node: Node) -> None:
        # Y is X's shape; the statistics outputs (running or saved mean and variance) are per channel,
        # shaped as the scale input.
        x, scale = self.shape(node.inputs[0]), self.shape(self.inp(node, 1))
        if x is None:
            return
        self.set_shape(node.outputs[0], x)
        if scale is not None:
            for out in node.outputs[1:]:
                self.set_shape(out, scale)

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

    def _matmul(self, node: Node, a_index: int, b_index: int) -> None:
        a, b = self.shape(self.inp(node, a_index)), self.shape(self.inp(node, b_index))
        if a is not None and b is not None:
            self.set_shape(node.outputs[0], _matmul_shape(a, b))

    def _op_MatMul(self, node: Node) -> None:
        self._matmul(node, 0, 1)

    def _op_MatMulInteger(self, node: Node) -> None:
        self._matmul(node, 0, 1)

    def _op_QLinearMatMul(self, node: Node) -> None:
        self._matmul(node, 0, 3)

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

    def _op_Einsum(self, node: Node) -> None:
        shapes = [self.shape(v) for v in node.inputs]
        if all(s is not None for s in shapes):
            self.set_shape(node.outputs[0], _einsum_shape(str(node.attrs["equation"]), shapes))  # type: ignore[arg-type]

    def _op_Det(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is not None and len(shape) >= 2 and shape[-1] == shape[-2]:
            self.set_shape(node.outputs[0], shape[:-2])

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
        value = self.value(node.inputs[0])
        if value is not None:
            for out, part in zip(outs, np.split(value, np.cumsum(sizes)[:-1], axis=axis)):
                self.put_value(out, part)
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
        reduce = _VALUE_REDUCTIONS.get(node.op_type)
        value = self.value(node.inputs[0])
        if reduce is not None and value is not None and value.dtype.kind in "iu" and value.size:
            self.put_value(node.outputs[0], reduce(value, axis=tuple(sorted(norm))).reshape(out).astype(value.dtype))
        else:
            self.set_shape(node.outputs[0], out)

    # -- ops sized by parameter values -----------------------------------------------------------

    def _op_Pad(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        if self.opset < 11:
            pads = [int(p) for p in node.attrs["pads"]]
            axes: list[int] | None = None
        else:
            pads = _int_list(self.value(self.inp(node, 1)))
            axes = list(range(len(shape)))
            if self.inp(node, 3):
                axes = _int_list(self.value(self.inp(node, 3)))
        if pads is None or axes is None:
            return
        axes = list(range(len(shape))) if axes is None else [_norm_axis(a, len(shape)) for a in axes]
        if len(pads) != 2 * len(axes):
            return
        out = list(shape)
        for i, a in enumerate(axes):
            out[a] += pads[i] + pads[i + len(axes)]
        self.set_shape(node.outputs[0], out)

    def _op_CenterCropPad(self, node: Node) -> None:
        shape, target = self.shape(node.inputs[0]), _int_list(self.value(node.inputs[1]))
        if shape is None or target is None:
            return
        axes = [int(a) for a in node.attrs.get("axes") or range(len(shape))]
        if len(axes) != len(target):
            return
        out = list(shape)
        for a, size in zip(axes, target):
            out[_norm_axis(a, len(shape))] = size
        self.set_shape(node.outputs[0], out)

    def _resize(self, node: Node, shape: Shape, scales: list[float] | None, sizes: list[int] | None) -> None:
        rank = len(shape)
        axes = [_norm_axis(int(a), rank) for a in node.attrs.get("axes") or range(rank)]
        out = list(shape)
        if sizes:
            if len(sizes) != len(axes):
                return
            policy = str(node.attrs.get("keep_aspect_ratio_policy", "stretch"))
            if policy == "stretch":
                for a, size in zip(axes, sizes):
                    out[a] = size
            else:
                ratios = [size / shape[a] for a, size in zip(axes, sizes)]
                scale = min(ratios) if policy == "not_larger" else max(ratios)
                for a in axes:
                    out[a] = int(math.floor(scale * shape[a] + 0.5))
        elif scales:
            if len(scales) != len(axes):
                return
            for a, scale in zip(axes, scales):
                # onnxruntime multiplies in single precision.
                out[a] = int(math.floor(np.float32(shape[a]) * np.float32(scale)))
        else:
            return
        self.set_shape(node.outputs[0], out)

    def _op_Resize(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        if self.opset < 11:
            scales = _number_list(self.value(self.inp(node, 1)))
            if scales is not None:
                self._resize(node, shape, scales, None)
            return
        sizes = scales = None
        if self.inp(node, 3):
            sizes = _int_list(self.value(self.inp(node, 3)))
            if sizes is None:
                return
        if not sizes and self.inp(node, 2):
            scales = _number_list(self.value(self.inp(node, 2)))
            if scales is None:
                return
        self._resize(node, shape, scales, sizes)

    def _op_Upsample(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        if self.inp(node, 1):
            scales = _number_list(self.value(self.inp(node, 1)))
        else:
            scales = [float(s) for s in node.attrs.get("scales", ())] or None
        if scales is not None and len(scales) == len(shape):
            self.set_shape(node.outputs[0], [int(math.floor(np.float32(d) * np.float32(s)))
                                             for d, s in zip(shape, scales)])

    def _op_TopK(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        k = int(node.attrs["k"]) if self.opset < 10 else _scalar(self.value(self.inp(node, 1)))
        if k is None or k < 0:
            return
        axis = _norm_axis(int(node.attrs.get("axis", -1)), len(shape))
        if k > shape[axis]:
            return
        self.set_like(node, (*shape[:axis], k, *shape[axis + 1:]))

    def _op_OneHot(self, node: Node) -> None:
        shape, depth = self.shape(node.inputs[0]), self.value(node.inputs[1])
        if shape is None or depth is None or depth.size != 1 or depth.dtype.kind not in "iuf":
            return
        d = int(depth.reshape(-1)[0])  # a floating-point depth is truncated, as a cast to int64
        if d < 1:
            return
        rank = len(shape) + 1
        axis = _norm_axis(int(node.attrs.get("axis", -1)), rank)
        self.set_shape(node.outputs[0], (*shape[:axis], d, *shape[axis:]))

    def _op_MaxUnpool(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        if x is None or len(x) < 3:
            return
        if self.inp(node, 2):
            target = _int_list(self.value(self.inp(node, 2)))
            if target is not None and len(target) == len(x):
                self.set_shape(node.outputs[0], target)
            return
        kernel = [int(k) for k in node.attrs["kernel_shape"]]
        n = len(x) - 2
        strides, _, pads, _ = _window_params(node, n, kernel)
        spatial = [(d - 1) * s + k - pads[i] - pads[i + n] for i, (d, s, k) in enumerate(zip(x[2:], strides, kernel))]
        self.set_shape(node.outputs[0], (*x[:2], *spatial))

    def _op_Col2Im(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        image, block = _int_list(self.value(node.inputs[1])), _int_list(self.value(node.inputs[2]))
        if x is None or image is None or block is None or len(x) != 3 or len(image) != len(block):
            return
        cells = math.prod(block)
        if cells <= 0 or x[1] % cells:
            return
        self.set_shape(node.outputs[0], (x[0], x[1] // cells, *image))

    def _op_AffineGrid(self, node: Node) -> None:
        size = _int_list(self.value(node.inputs[1]))
        if size is None or len(size) not in (4, 5):
            return
        self.set_shape(node.outputs[0], (size[0], *size[2:], len(size) - 2))

    def _op_DFT(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None or len(shape) < 3 or shape[-1] not in (1, 2):
            return
        if self.opset < 20:
            axis: int | None = int(node.attrs.get("axis", 1))
        else:
            axis = self.optional_int(node, 2, -2)
        length = self.optional_int(node, 1, -1)
        if axis is None or length is None:
            return
        rank = len(shape)
        axis = axis + rank if axis < 0 else axis
        if not 0 < axis < rank - 1:
            return
        onesided, inverse = bool(node.attrs.get("onesided", 0)), bool(node.attrs.get("inverse", 0))
        if onesided and inverse:  # IRFFT: a one-sided complex spectrum in, the full real signal out
            n = 2 * (shape[axis] - 1) if length == -1 else length
        else:
            n = shape[axis] if length == -1 else length
            if onesided:  # RFFT
                n = n // 2 + 1
        out = list(shape)
        out[axis], out[-1] = n, 1 if onesided and inverse else 2
        self.set_shape(node.outputs[0], out)

    def _op_STFT(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        step = _scalar(self.value(node.inputs[1]))
        if shape is None or step is None or step < 1 or len(shape) != 3:
            return
        if self.inp(node, 3):
            frame = _scalar(self.value(self.inp(node, 3)))
        else:
            window = self.shape(self.inp(node, 2))
            frame = window[0] if window is not None and len(window) == 1 else None
        if frame is None or frame < 1 or frame > shape[1]:
            return
        bins = frame // 2 + 1 if node.attrs.get("onesided", 1) else frame
        self.set_shape(node.outputs[0], (shape[0], (shape[1] - frame) // step + 1, bins, 2))

    def _window(self, node: Node) -> None:
        size = _scalar(self.value(node.inputs[0]))
        if size is not None:
            self.set_shape(node.outputs[0], (size,))

    def _op_MelWeightMatrix(self, node: Node) -> None:
        bins, length = _scalar(self.value(node.inputs[0])), _scalar(self.value(node.inputs[1]))
        if bins is not None and length is not None:
            self.set_shape(node.outputs[0], (length // 2 + 1, bins))

    # -- convolution and pooling -----------------------------------------------------------------

    def _conv(self, node: Node, x_index: int, w_index: int) -> None:
        x, w = self.shape(self.inp(node, x_index)), self.shape(self.inp(node, w_index))
        if x is None or w is None or len(x) < 3 or len(w) != len(x):
            return
        kernel = [int(k) for k in node.attrs.get("kernel_shape") or w[2:]]
        n = len(x) - 2
        strides, dilations, pads, auto_pad = _window_params(node, n, kernel)
        spatial = [_conv_size(x[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n], auto_pad)
                   for i in range(n)]
        self.set_shape(node.outputs[0], (x[0], w[0], *spatial))

    def _op_Conv(self, node: Node) -> None:
        self._conv(node, 0, 1)

    def _op_ConvInteger(self, node: Node) -> None:
        self._conv(node, 0, 1)

    def _op_QLinearConv(self, node: Node) -> None:
        self._conv(node, 0, 3)

    def _op_DeformConv(self, node: Node) -> None:
        self._conv(node, 0, 1)

    def _op_ConvTranspose(self, node: Node) -> None:
        x, w = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is None or w is None or len(x) < 3 or len(w) != len(x):
            return
        n = len(x) - 2
        kernel = [int(k) for k in node.attrs.get("kernel_shape") or w[2:]]
        strides, dilations, pads, auto_pad = _window_params(node, n, kernel)
        channels = w[1] * int(node.attrs.get("group", 1))
        given = [int(d) for d in node.attrs.get("output_shape") or ()]
        if given:
            if len(given) < n:
                return
            spatial = given[-n:]
        else:
            extra = [int(p) for p in node.attrs.get("output_padding") or [0] * n]
            if len(extra) != n:
                return
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                spatial = [d * s for d, s in zip(x[2:], strides)]
            else:
                if auto_pad == "VALID":
                    pads = [0] * (2 * n)
                spatial = [s * (d - 1) + e + (k - 1) * dl + 1 - pads[i] - pads[i + n]
                           for i, (d, s, e, k, dl) in enumerate(zip(x[2:], strides, extra, kernel, dilations))]
        self.set_shape(node.outputs[0], (x[0], channels, *spatial))

    def _pool(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        if x is None or len(x) < 3:
            return
        kernel = [int(k) for k in node.attrs["kernel_shape"]]
        n = len(x) - 2
        strides, dilations, pads, auto_pad = _window_params(node, n, kernel)
        ceil_mode = bool(node.attrs.get("ceil_mode", 0))
        spatial = [_pool_size(x[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n], auto_pad, ceil_mode)
                   for i in range(n)]
        self.set_like(node, (*x[:2], *spatial))  # MaxPool's indices have the output's shape

    def _global_pool(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        if x is not None and len(x) >= 2:
            self.set_shape(node.outputs[0], (*x[:2], *([1] * (len(x) - 2))))

    def _op_MaxRoiPool(self, node: Node) -> None:
        x, rois = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        pooled = [int(d) for d in node.attrs["pooled_shape"]]
        if x is not None and rois is not None and len(x) == 4 and len(pooled) == 2:
            self.set_shape(node.outputs[0], (rois[0], x[1], *pooled))

    def _op_RoiAlign(self, node: Node) -> None:
        x, rois = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is not None and rois is not None and len(x) == 4 and len(rois) == 2:
            self.set_shape(node.outputs[0], (rois[0], x[1], int(node.attrs.get("output_height", 1)),
                                             int(node.attrs.get("output_width", 1))))

    def _op_GridSample(self, node: Node) -> None:
        x, grid = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is not None and grid is not None and len(x) == len(grid) >= 3 and grid[-1] == len(x) - 2:
            self.set_shape(node.outputs[0], (x[0], x[1], *grid[1:-1]))

    def _op_SpaceToDepth(self, node: Node) -> None:
        x, b = self.shape(node.inputs[0]), int(node.attrs["blocksize"])
        if x is not None and len(x) == 4 and b > 0 and x[2] % b == 0 and x[3] % b == 0:
            self.set_shape(node.outputs[0], (x[0], x[1] * b * b, x[2] // b, x[3] // b))

    def _op_DepthToSpace(self, node: Node) -> None:
        x, b = self.shape(node.inputs[0]), int(node.attrs["blocksize"])
        if x is not None and len(x) == 4 and b > 0 and x[1] % (b * b) == 0:
            self.set_shape(node.outputs[0], (x[0], x[1] // (b * b), x[2] * b, x[3] * b))

    # -- recurrent, attention ---------------------------------------------------------------------

    def _recurrent(self, node: Node, gates: int) -> None:
        x, w = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is None or len(x) != 3:
            return
        hidden = node.attrs.get("hidden_size")
        if hidden is None:
            if w is None or len(w) != 3 or w[1] % gates:
                return
            hidden = w[1] // gates
        hidden = int(hidden)
        directions = 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1
        if int(node.attrs.get("layout", 0)):
            batch, seq = x[0], x[1]
            shapes = [(batch, seq, directions, hidden), (batch, directions, hidden), (batch, directions, hidden)]
        else:
            seq, batch = x[0], x[1]
            shapes = [(seq, directions, batch, hidden), (directions, batch, hidden), (directions, batch, hidden)]
        for out, shape in zip(node.outputs, shapes):
            self.set_shape(out, shape)

    def _op_RNN(self, node: Node) -> None:
        self._recurrent(node, 1)

    def _op_GRU(self, node: Node) -> None:
        self._recurrent(node, 3)

    def _op_LSTM(self, node: Node) -> None:
        self._recurrent(node, 4)

    def _op_Attention(self, node: Node) -> None:
        q, k, v = (self.shape(self.inp(node, i)) for i in range(3))
        if q is None or k is None or v is None or not len(q) == len(k) == len(v):
            return
        if len(q) == 4:
            batch, q_heads, q_seq = q[0], q[1], q[2]
            kv_heads, kv_seq, head, v_head = k[1], k[2], k[3], v[3]
            y: Shape = (batch, q_heads, q_seq, v_head)
        elif len(q) == 3:
            q_heads, kv_heads = int(node.attrs["q_num_heads"]), int(node.attrs["kv_num_heads"])
            if k[2] % kv_heads or v[2] % kv_heads:
                return
            batch, q_seq, kv_seq, head, v_head = q[0], q[1], k[1], k[2] // kv_heads, v[2] // kv_heads
            y = (batch, q_seq, q_heads * v_head)
        else:
            return
        past = 0
        if self.inp(node, 4):
            past_key = self.shape(self.inp(node, 4))
            if past_key is None or len(past_key) != 4:
                self.set_shape(node.outputs[0], y)
                return
            past = past_key[2]
        total = past + kv_seq
        for out, shape in zip(node.outputs, (y, (batch, kv_heads, total, head), (batch, kv_heads, total, v_head),
                                             (batch, q_heads, q_seq, total))):
            self.set_shape(out, shape)

    def _op_LinearAttention(self, node: Node) -> None:
        q, k, v = (self.shape(self.inp(node, i)) for i in range(3))
        if q is None or k is None or v is None or not len(q) == len(k) == len(v) == 3:
            return
        q_heads, kv_heads = int(node.attrs["q_num_heads"]), int(node.attrs["kv_num_heads"])
        if k[2] % kv_heads or v[2] % kv_heads:
            return
        d_k, d_v = k[2] // kv_heads, v[2] // kv_heads
        self.set_shape(node.outputs[0], (q[0], q[1], q_heads * d_v))
        self.set_shape(self.out(node, 1), (q[0], kv_heads, d_k, d_v))

    def _op_CausalConvWithState(self, node: Node) -> None:
        x, w = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if x is None:
            return
        self.set_shape(node.outputs[0], x)
        if w is not None and len(w) == 3 and len(x) == 3:
            self.set_shape(self.out(node, 1), (x[0], x[1], w[2] - 1))

    # -- losses, quantization, randomness, strings -----------------------------------------------

    def _op_NegativeLogLikelihoodLoss(self, node: Node) -> None:
        target = self.shape(node.inputs[1])
        if target is not None:
            self.set_shape(node.outputs[0], target if node.attrs.get("reduction", "mean") == "none" else ())

    def _op_SoftmaxCrossEntropyLoss(self, node: Node) -> None:
        scores, labels = self.shape(node.inputs[0]), self.shape(node.inputs[1])
        if labels is not None:
            self.set_shape(node.outputs[0], labels if node.attrs.get("reduction", "mean") == "none" else ())
        if scores is not None:
            self.set_shape(self.out(node, 1), scores)

    def _op_DynamicQuantizeLinear(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        if x is not None:
            self.set_shape(node.outputs[0], x)
            self.set_shape(self.out(node, 1), ())
            self.set_shape(self.out(node, 2), ())

    def _op_Multinomial(self, node: Node) -> None:
        x = self.shape(node.inputs[0])
        if x is not None and len(x) == 2:
            self.set_shape(node.outputs[0], (x[0], int(node.attrs.get("sample_size", 1))))

    def _op_RandomNormal(self, node: Node) -> None:
        self.set_shape(node.outputs[0], [int(d) for d in node.attrs["shape"]])

    def _op_RandomUniform(self, node: Node) -> None:
        self.set_shape(node.outputs[0], [int(d) for d in node.attrs["shape"]])

    def _op_TfIdfVectorizer(self, node: Node) -> None:
        # The output width is one past the largest n-gram index, an attribute.
        x, indexes = self.shape(node.inputs[0]), node.attrs.get("ngram_indexes")
        if x is None or not indexes or len(x) not in (1, 2):
            return
        width = max(int(i) for i in indexes) + 1
        self.set_shape(node.outputs[0], (width,) if len(x) == 1 else (x[0], width))

    def _op_StringSplit(self, node: Node) -> None:
        # Y's last dim is the most substrings in any element (data); Z, the count per element, is X's shape.
        x = self.shape(node.inputs[0])
        if x is not None:
            self.set_shape(self.out(node, 1), x)

    def _op_StringNormalizer(self, node: Node) -> None:
        # Without stop words every element stays (an empty result would become [""] instead).
        x = self.shape(node.inputs[0])
        if x is not None and not node.attrs.get("stopwords") and all(x):
            self.set_shape(node.outputs[0], x)

    def _op_Unique(self, node: Node) -> None:
        # Y, indices and counts are as long as the number of distinct elements (data); inverse_indices
        # has one entry per input element (per slice along `axis` when given).
        x = self.shape(node.inputs[0])
        if x is None:
            return
        axis = node.attrs.get("axis")
        self.set_shape(self.out(node, 2), (math.prod(x),) if axis is None else (x[_norm_axis(int(axis), len(x))],))

    # -- subgraphs: If, Loop, Scan ----------------------------------------------------------------

    def _body(self, node: Node, attr: str, formals: Sequence[tuple[Shape | None, np.ndarray | None]],
              sequences: Sequence[tuple[Shape, ...] | None] = ()) -> _State | None:
        """The evaluation of the graph attribute `attr` of `node`, its formal inputs sized (and valued)
        as given, `sequences` giving the element shapes of formal inputs that are sequences (by
        position after the first len(formals) - len(sequences)), the outer values it reads known as
        they are here. None without such a body."""
        body = self._subgraph(node.attrs.get(attr))
        if body is None or len(formals) > len(body.inputs) or self.shared.budget < len(body.nodes):
            return None
        self.shared.budget -= len(body.nodes)
        outer = [v for v in (*node.inputs, *node.implicit_inputs) if v]
        state = _State(body, {v: self.shapes[v] for v in outer if v in self.shapes}, self.shared)
        state.values = {v: self.values[v] for v in outer if v in self.values}
        state.sequences = {v: self.sequences[v] for v in outer if v in self.sequences}
        state.empty = {v for v in outer if v in self.empty}
        for name in body.initializers:
            kind = body.type_of(name)
            if kind.is_static:
                state.set_shape(name, kind.shape)  # type: ignore[arg-type]
        for name, (shape, value) in zip(body.inputs, formals):
            state.shapes.pop(name, None)
            state.values.pop(name, None)
            state.sequences.pop(name, None)
            if shape is not None:
                state.shapes[name] = shape
                if value is not None:
                    state.keep_value(name, value)
        for name, seq in zip(body.inputs[len(formals) - len(sequences):], sequences):
            if seq is not None:
                state.sequences[name] = seq
        state.run(body.constant_values)
        return state

    def _subgraph(self, attr: object) -> Graph | None:
        from autofuse.frontends.onnx import subgraph_ir  # the front end reads protobuf; it imports us

        cached = self.shared.bodies.get(id(attr))
        if cached is None or cached[0] is not attr:
            cached = self.shared.bodies[id(attr)] = (attr, subgraph_ir(attr, self.opset))
        return cached[1]

    def _op_If(self, node: Node) -> None:
        # The branch taken when the condition is known; otherwise what both branches agree on.
        cond = self.value(node.inputs[0])
        if cond is not None and cond.size == 1:
            branches = ["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]
        else:
            branches = ["then_branch", "else_branch"]
        states = [self._body(node, b, ()) for b in branches]
        if any(s is None or len(s.graph.outputs) != len(node.outputs) for s in states):
            return
        for i, out in enumerate(node.outputs):
            shapes = {s.shape(s.graph.outputs[i]) for s in states}  # type: ignore[union-attr]
            if len(shapes) == 1 and None not in shapes:
                values = [s.value(s.graph.outputs[i]) for s in states]  # type: ignore[union-attr]
                first = values[0]
                if first is not None and all(v is not None and v.dtype == first.dtype and np.array_equal(v, first)
                                             for v in values):
                    self.put_value(out, first)
                else:
                    self.set_shape(out, shapes.pop())  # type: ignore[arg-type]
            seqs = {s.sequences.get(s.graph.outputs[i]) for s in states}  # type: ignore[union-attr]
            if len(seqs) == 1 and None not in seqs:
                self.sequences[out] = seqs.pop()  # type: ignore[assignment]

    def _op_Loop(self, node: Node) -> None:
        carried = list(node.inputs[2:])
        trips = self.optional_int(node, 0, -1)  # -1: no trip count; None: unknown
        first = self.value(self.inp(node, 1)) if self.inp(node, 1) else np.array(True)
        if trips is not None and first is not None and first.size == 1 and (
                trips <= _MAX_UNROLLED or not bool(first.reshape(-1)[0])) and self._unrolled_loop(node, trips, first):
            return
        # Too many iterations, or a count not known: one evaluation with the iteration number and
        # the loop-carried values unknown (only their shapes given), the condition true (an
        # iteration only runs when it is).
        shapes = [self.shape(v) for v in carried]
        state = self._body(node, "body", [((), None), ((), np.array(True)), *((s, None) for s in shapes)])
        if state is None:
            return
        body_out = state.graph.outputs
        if len(node.outputs) != len(body_out) - 1 or len(body_out) < 1 + len(carried):
            return
        for i, (out, shape) in enumerate(zip(node.outputs, shapes)):
            # A value whose shape the body keeps has that shape whatever the number of iterations.
            if shape is not None and state.shape(body_out[1 + i]) == shape:
                self.set_shape(out, shape)
        again = state.value(body_out[0])
        if trips is None or trips < 0 or first is None or first.size != 1 or not bool(first.reshape(-1)[0]):
            return
        if again is None or again.size != 1 or not bool(again.reshape(-1)[0]):
            return  # the count depends on when the condition turns false
        for out, name in zip(node.outputs[len(carried):], body_out[1 + len(carried):]):
            element = state.shape(name)
            if element is not None:
                self.set_shape(out, (trips, *element))

    def _unrolled_loop(self, node: Node, trips: int, first: np.ndarray) -> bool:
        """Run the loop iteration by iteration (at most _MAX_UNROLLED of them), carrying shapes,
        small values and sequences, as onnxruntime would. False when the number of iterations
        cannot be known that way (a condition left unknown, more iterations than the limit)."""
        carried = list(node.inputs[2:])
        # (shape, value, sequence) of each loop-carried value.
        current = [(self.shape(v), self.value(v), self.sequences.get(v)) for v in carried]
        elements: list[list[Shape | None]] = []
        going = bool(first.reshape(-1)[0])
        count = 0
        while going and (trips < 0 or count < trips):
            if count == _MAX_UNROLLED:
                return False
            formals = [((), np.array(count, dtype=np.int64)), ((), np.array(True))]
            formals += [(shape, value) for shape, value, _ in current]
            state = self._body(node, "body", formals, [seq for _, _, seq in current])
            if state is None:
                return False
            body_out = state.graph.outputs
            if len(node.outputs) != len(body_out) - 1 or len(body_out) < 1 + len(carried):
                return False
            again = state.value(body_out[0])
            if again is None or again.size != 1:
                return False
            going = bool(again.reshape(-1)[0])
            current = [(state.shape(v), state.value(v), state.sequences.get(v)) for v in body_out[1:1 + len(carried)]]
            elements.append([state.shape(v) for v in body_out[1 + len(carried):]])
            count += 1
        for out, (shape, value, seq) in zip(node.outputs, current):
            if value is not None:
                self.put_value(out, value)
            elif shape is not None:
                self.set_shape(out, shape)
            if seq is not None:
                self.sequences[out] = seq
        for k, out in enumerate(node.outputs[len(carried):]):
            shapes = {e[k] for e in elements}
            if count and len(shapes) == 1 and None not in shapes:
                self.set_shape(out, (count, *shapes.pop()))  # type: ignore[misc]
        return True

    def _op_Scan(self, node: Node) -> None:
        n_scan = int(node.attrs["num_scan_inputs"])
        if self.opset < 9:  # Scan-8: a batch axis 0 everywhere, the sequence axis 1
            inputs = list(node.inputs[1:])
            states, scans = inputs[:len(inputs) - n_scan], inputs[len(inputs) - n_scan:]
            state_shapes, scan_shapes = [self.shape(v) for v in states], [self.shape(v) for v in scans]
            if any(s is None or len(s) < 2 for s in scan_shapes) or any(s is None or not s for s in state_shapes):
                return
            batch, seq = scan_shapes[0][0], scan_shapes[0][1]  # type: ignore[index]
            formals = [(s[1:], None) for s in state_shapes] + [(s[2:], None) for s in scan_shapes]  # type: ignore[index]
            lead: tuple[int, ...] = (batch,)
            out_axes = [1] * len(node.outputs)
        else:
            states, scans = list(node.inputs[:len(node.inputs) - n_scan]), list(node.inputs[len(node.inputs) - n_scan:])
            state_shapes, scan_shapes = [self.shape(v) for v in states], [self.shape(v) for v in scans]
            if any(s is None for s in scan_shapes) or any(s is None for s in state_shapes):
                return
            in_axes = [int(a) for a in node.attrs.get("scan_input_axes") or [0] * n_scan]
            slices, lengths = [], set()
            for shape, axis in zip(scan_shapes, in_axes):
                a = _norm_axis(axis, len(shape))  # type: ignore[arg-type]
                lengths.add(shape[a])  # type: ignore[index]
                slices.append((*shape[:a], *shape[a + 1:]))  # type: ignore[index]
            if len(lengths) != 1:
                return
            seq = lengths.pop()
            formals = [(s, None) for s in state_shapes] + [(s, None) for s in slices]
            lead = ()
            out_axes = [int(a) for a in node.attrs.get("scan_output_axes") or [0] * len(node.outputs)]
        state = self._body(node, "body", formals)  # type: ignore[arg-type]
        if state is None or len(state.graph.outputs) != len(node.outputs):
            return
        body_out = state.graph.outputs
        for i, out in enumerate(node.outputs[:len(states)]):
            if state.shape(body_out[i]) == formals[i][0]:
                self.set_shape(out, (*lead, *formals[i][0]))  # type: ignore[misc]
        for k, out in enumerate(node.outputs[len(states):]):
            element = state.shape(body_out[len(states) + k])
            if element is None:
                continue
            if self.opset < 9:
                self.set_shape(out, (*lead, seq, *element))
            else:
                a = _norm_axis(out_axes[k], len(element) + 1)
                self.set_shape(out, (*element[:a], seq, *element[a:]))

    # -- sequences and optionals -----------------------------------------------------------------

    def _op_SequenceEmpty(self, node: Node) -> None:
        self.sequences[node.outputs[0]] = ()

    def _op_SequenceConstruct(self, node: Node) -> None:
        shapes = [self.shape(v) for v in node.inputs]
        if all(s is not None for s in shapes):
            self.sequences[node.outputs[0]] = tuple(shapes)  # type: ignore[arg-type]

    def _sequence_position(self, node: Node, length: int, default: int, inclusive: bool) -> int | None:
        position = self.optional_int(node, 2 if node.op_type == "SequenceInsert" else 1, default)
        if position is None:
            return None
        limit = length + 1 if inclusive else length
        if position < 0:
            position += length
        return position if 0 <= position < limit else None

    def _op_SequenceInsert(self, node: Node) -> None:
        seq, shape = self.sequences.get(node.inputs[0]), self.shape(node.inputs[1])
        if seq is None or shape is None:
            return
        position = self._sequence_position(node, len(seq), len(seq), inclusive=True)
        if position is not None:
            self.sequences[node.outputs[0]] = (*seq[:position], shape, *seq[position:])

    def _op_SequenceErase(self, node: Node) -> None:
        seq = self.sequences.get(node.inputs[0])
        if seq is None:
            return
        position = self._sequence_position(node, len(seq), -1, inclusive=False)
        if position is not None:
            self.sequences[node.outputs[0]] = (*seq[:position], *seq[position + 1:])

    def _op_SequenceLength(self, node: Node) -> None:
        seq = self.sequences.get(node.inputs[0])
        if seq is not None:
            self.put_value(node.outputs[0], np.array(len(seq), dtype=np.int64))

    def _op_SequenceAt(self, node: Node) -> None:
        seq = self.sequences.get(node.inputs[0])
        position = _scalar(self.value(node.inputs[1]))
        if seq is None or position is None:
            return
        if -len(seq) <= position < len(seq):
            self.set_shape(node.outputs[0], seq[position])

    def _op_ConcatFromSequence(self, node: Node) -> None:
        seq = self.sequences.get(node.inputs[0])
        if not seq:
            return
        axis = int(node.attrs["axis"])
        if not node.attrs.get("new_axis", 0):
            self.set_shape(node.outputs[0], _concat_shape(list(seq), axis))
            return
        if any(s != seq[0] for s in seq):
            return
        a = _norm_axis(axis, len(seq[0]) + 1)
        self.set_shape(node.outputs[0], (*seq[0][:a], len(seq), *seq[0][a:]))

    def _op_SplitToSequence(self, node: Node) -> None:
        shape = self.shape(node.inputs[0])
        if shape is None:
            return
        axis = _norm_axis(int(node.attrs.get("axis", 0)), len(shape))
        dim = shape[axis]
        keep = True
        if self.inp(node, 1):
            split = self.value(self.inp(node, 1))
            sizes = _int_list(split)
            if sizes is None or split is None:
                return
            if split.ndim == 0:
                chunk = sizes[0]
                if chunk < 1:
                    return
                sizes = [min(chunk, dim - start) for start in range(0, dim, chunk)]
            if sum(sizes) != dim:
                return
        else:
            sizes = [1] * dim
            keep = bool(node.attrs.get("keepdims", 1))
        parts = [(*shape[:axis], *((size,) if keep else ()), *shape[axis + 1:]) for size in sizes]
        self.sequences[node.outputs[0]] = tuple(parts)

    def _op_SequenceMap(self, node: Node) -> None:
        # The body runs once per element of the first input sequence; its outputs are sequences.
        inputs = [v for v in node.inputs]
        if not inputs or inputs[0] not in self.sequences:
            return
        length = len(self.sequences[inputs[0]])
        per_element: list[list[Shape | None]] = []
        for v in inputs:
            if v in self.sequences:
                if len(self.sequences[v]) != length:
                    return
                per_element.append(list(self.sequences[v]))
            else:
                shape = self.shape(v)
                if shape is None:
                    return
                per_element.append([shape] * length)
        outputs: list[list[Shape]] = [[] for _ in node.outputs]
        for j in range(length):
            state = self._body(node, "body", [(column[j], None) for column in per_element])
            if state is None or len(state.graph.outputs) != len(node.outputs):
                return
            for k, name in enumerate(state.graph.outputs):
                shape = state.shape(name)
                if shape is None:
                    outputs[k] = None  # type: ignore[call-overload]
                elif outputs[k] is not None:
                    outputs[k].append(shape)
        for out, shapes in zip(node.outputs, outputs):
            if shapes is not None:
                self.sequences[out] = tuple(shapes)

    def _op_Optional(self, node: Node) -> None:
        # An optional holding a value is sized (or sequenced) as the value, read by OptionalGetElement.
        if not self.inp(node, 0):
            self.empty.add(node.outputs[0])
        elif self.inp(node, 0) in self.sequences:
            self.sequences[node.outputs[0]] = self.sequences[node.inputs[0]]
        else:
            self._unary(node)

    def _op_OptionalGetElement(self, node: Node) -> None:
        if node.inputs[0] in self.sequences:
            self.sequences[node.outputs[0]] = self.sequences[node.inputs[0]]
        else:
            self._unary(node)

    def _op_OptionalHasElement(self, node: Node) -> None:
        # A scalar; true where the optional is known to hold a value (it is sized, or a sequence).
        name = self.inp(node, 0)
        if not name or name in self.empty:
            self.put_value(node.outputs[0], np.array(False))
        elif name in self.shapes or name in self.sequences:
            self.put_value(node.outputs[0], np.array(True))
        else:
            self.set_shape(node.outputs[0], ())


def _concat_shape(shapes: list[Shape], axis: int) -> Shape:
    rank = len(shapes[0])
    a = _norm_axis(axis, rank)
    if any(len(s) != rank or s[:a] != shapes[0][:a] or s[a + 1:] != shapes[0][a + 1:] for s in shapes):
        raise ValueError("Concat shapes differ off the axis")
    return (*shapes[0][:a], sum(s[a] for s in shapes), *shapes[0][a + 1:])


_VALUE_REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "ReduceSum": np.sum, "ReduceProd": np.prod, "ReduceMax": np.max, "ReduceMin": np.min,
}

# Ops that can produce a tracked value (or a sequence) even when their output shape is already
# known: they are visited whatever `known` says.
_VALUE_OPS = frozenset((
    "Constant", "Shape", "Size", "Identity", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub",
    "Mul", "Div", "Mod", "Max", "Min", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And",
    "Or", "Xor", "Not", "Abs", "Neg", "Floor", "Ceil", "Round", "Sqrt", "Reciprocal", "Sign", "Relu", "Where",
    "Slice", "ConstantOfShape", "Reshape", "Flatten", "Range", "Expand", "Tile", "Transpose", "Split",
    "ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "SequenceEmpty", "SequenceConstruct",
    "SequenceInsert", "SequenceErase", "SequenceLength", "SplitToSequence", "OptionalGetElement", "If",
    "SequenceMap", "Loop", "Scan", "Optional",
))
