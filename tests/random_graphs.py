"""Hypothesis strategies that build small random ONNX DAGs for property tests.

Every generated model is a valid opset-17 / IR-10 model (``onnx.checker.check_model(
full_check=True)`` passes, declared output shapes included) that onnxruntime's CPU
provider can run on the concrete inputs that come with it.

The entry point is :func:`random_models`, a strategy of :class:`GraphCase`.  A
graph mixes

* elementwise unary/binary ops with broadcasting, comparisons, ``Where``, ``Cast``
  (fp32 <-> fp16, fp32 <-> int64, bool -> numeric), int64 and bool arithmetic;
* reductions (``ReduceSum`` with axes as an input, ``ReduceMean``/``ReduceMax`` with
  axes as an attribute -- the opset-17 forms), ``Softmax``, ``LayerNormalization``;
* view ops (``Reshape``, ``Unsqueeze``, ``Squeeze``, ``Flatten``, ``Identity``) and
  data movement (``Transpose``, ``Slice``, ``Concat``, ``Expand``);
* ``MatMul`` (weight or activation right-hand side) with elementwise epilogues;
* ops a fusion pass has to treat as opaque: ``Dropout``, ``If`` and ``Loop``
  with small subgraphs reading outer-scope values;
* values with 2-3 consumers, graph outputs taken from the middle of a chain,
  fp16 tensors, the symbolic dim ``N`` and occasionally empty (size-0) dims.

Numerics are kept tame so that "same outputs" is a meaningful check: every value
carries a bound on its magnitude, ``Exp`` only sees small inputs, ``Div`` only
divides by values bounded away from zero, ``Sqrt`` only sees ``Abs``, and a value
whose bound would grow too large is squashed with ``Tanh`` first.  Reductions
that are undefined on empty axes (``ReduceMax``/``ReduceMean``/``LayerNormalization``)
never reduce over a size-0 dim.  All leaves are graph outputs, so there is no dead
code a pass could legitimately delete.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 10
SYM = "N"  # the one symbolic dim name

F32, F16, I64, BOOL = "f32", "f16", "i64", "bool"
ONNX_TYPE = {F32: TensorProto.FLOAT, F16: TensorProto.FLOAT16, I64: TensorProto.INT64, BOOL: TensorProto.BOOL}
NP_TYPE = {F32: np.float32, F16: np.float16, I64: np.int64, BOOL: np.bool_}
FLOATS = (F32, F16)
# Largest magnitude a value may reach before it gets squashed with Tanh.
LIMIT = {F32: 100.0, F16: 8.0, I64: 1000.0, BOOL: 1.0}
MAX_RANK = 5
MAX_N = 3  # runtime values of N are drawn from 1..MAX_N



@dataclasses.dataclass
class Val:
    name: str
    dtype: str
    shape: tuple
    bound: float
    is_input: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def has_zero(self) -> bool:
        return 0 in self.shape


class GraphCase:
    """A generated model plus concrete inputs that keep its numerics well-behaved.

    Deliberately not a dataclass: hypothesis pretty-prints dataclasses field by field,
    but a falsifying example should show the model as ONNX text (``__repr__``)."""

    def __init__(self, model: onnx.ModelProto, inputs: dict, n: int):
        self.model = model
        self.inputs = inputs
        self.n = n  # runtime value of the symbolic dim N

    @property
    def symbolic(self) -> bool:
        """Whether some graph input has the symbolic dim N."""
        return any(d.dim_param for i in self.model.graph.input for d in i.type.tensor_type.shape.dim)

    def feeds_for(self, n: int, seed: int = 0) -> dict:
        """Fresh inputs (same ranges as `inputs`) with N set to n."""
        from_type = {t: k for k, t in ONNX_TYPE.items()}
        vals = [Val(i.name, from_type[i.type.tensor_type.elem_type],
                    tuple(d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim), 0.0)
                for i in self.model.graph.input]
        return make_feeds(vals, n, np.random.default_rng(seed))

    def __repr__(self) -> str:  # hypothesis prints this for a falsifying example
        feeds = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.inputs.items())
        return f"GraphCase(N={self.n}, inputs={{{feeds}}})\n" + onnx.printer.to_text(self.model)


# ----------------------------------------------------------------------------- shapes


def bcast(*shapes: Sequence) -> Optional[tuple]:
    """Numpy broadcast of symbolic shapes; None if not broadcastable for every N >= 1.

    ``N`` broadcasts only with ``N`` or ``1`` (never with a concrete dim > 1 or 0).
    """
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def sym_prod(dims: Sequence):
    """Product of dims; ``N`` only if every other factor is 1; None if not expressible."""
    if SYM in dims:
        rest = [d for d in dims if d != SYM]
        if dims.count(SYM) == 1 and all(d == 1 for d in rest):
            return SYM
        return None
    return int(np.prod(dims, dtype=np.int64)) if dims else 1


def numel_bound(dims: Sequence) -> int:
    return int(np.prod([MAX_N if d == SYM else d for d in dims], dtype=np.int64)) if dims else 1


def concrete(shape: Sequence, n: int) -> tuple:
    return tuple(n if d == SYM else d for d in shape)


def value_info(name: str, dtype: str, shape: Sequence) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, ONNX_TYPE[dtype], [d for d in shape])


# ----------------------------------------------------------------------------- builder


class Builder:
    def __init__(self, draw, rng: np.random.Generator):
        self.draw = draw
        self.rng = rng
        self.nodes: list = []
        self.inits: list = []
        self.inputs: list[Val] = []
        self.pool: list[Val] = []  # values ops may consume: graph inputs + node outputs
        self.consumed: set[str] = set()
        self.dense = False  # see random_models
        self._counter = 0

    # ---- naming / creation

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def add_input(self, dtype: str, shape: Sequence) -> Val:
        bound = {F32: 2.0, F16: 2.0, I64: 3.0, BOOL: 1.0}[dtype]
        v = Val(self.fresh("in"), dtype, tuple(shape), bound, is_input=True)
        self.inputs.append(v)
        self.pool.append(v)
        return v

    def const(self, dtype: str, shape: Sequence, values=None, lo=-1.0, hi=1.0) -> Val:
        shape = tuple(int(d) for d in shape)
        if values is None:
            if dtype in FLOATS:
                values = self.rng.uniform(lo, hi, size=shape)
            elif dtype == I64:
                values = self.rng.integers(int(lo), int(hi) + 1, size=shape)
            else:
                values = self.rng.random(size=shape) < 0.5
        arr = np.asarray(values, dtype=NP_TYPE[dtype]).reshape(shape)
        name = self.fresh("c")
        self.inits.append(onnx.numpy_helper.from_array(arr, name))
        bound = float(np.abs(arr.astype(np.float64)).max()) if arr.size and dtype != BOOL else 1.0
        return Val(name, dtype, shape, bound)

    def ints(self, values: Sequence[int]) -> str:
        return self.const(I64, (len(values),), list(values)).name

    def node(self, op: str, ins: Sequence, dtype: str, shape: Sequence, bound: float, **attrs) -> Val:
        in_names = []
        for x in ins:
            name = x if isinstance(x, str) else x.name
            in_names.append(name)
            if name:
                self.consumed.add(name)
        out = Val(self.fresh("t"), dtype, tuple(shape), float(bound))
        self.nodes.append(helper.make_node(op, in_names, [out.name], name=self.fresh(op.lower()), **attrs))
        self.pool.append(out)
        return out

    # ---- drawing helpers

    def pick(self, pred: Callable[[Val], bool] = lambda v: True) -> Optional[Val]:
        """A pool value satisfying pred; shrinks towards the most recent one."""
        cands = [v for v in reversed(self.pool) if pred(v)]
        if not cands:
            return None
        return cands[self.draw(st.integers(0, len(cands) - 1))]

    def flag(self) -> bool:
        return self.draw(st.booleans())

    def choice(self, options: Sequence):
        return self.draw(st.sampled_from(list(options)))

    def squash(self, v: Val, limit: float) -> Val:
        """Tanh v if its bound exceeds limit (floats only)."""
        if v.bound <= limit or v.dtype not in FLOATS:
            return v
        return self.node("Tanh", [v], v.dtype, v.shape, 1.0)

    def derived_shape(self, shape: Sequence) -> tuple:
        """A shape that broadcasts against `shape`: a suffix with some dims set to 1."""
        k = self.draw(st.integers(0, len(shape)))
        suffix = list(shape[len(shape) - k:])
        for i, d in enumerate(suffix):
            if d == SYM or self.draw(st.integers(0, 2)) == 0:
                suffix[i] = 1
        return tuple(suffix)

    def operand_like(self, a: Val, dtype: Optional[str] = None) -> Val:
        """A second operand broadcast-compatible with a: a pool value, a constant or a new input."""
        dtype = dtype or a.dtype
        # dense graphs mostly reuse pool values: reconvergent fan-out (diamonds)
        kind = self.draw(st.sampled_from([0, 0, 0, 1, 3] if self.dense else [0, 1, 2, 3]))
        if kind == 0:
            b = self.pick(lambda v: v.dtype == dtype and v.name != a.name and _fits(a.shape, v.shape))
            if b is not None:
                return b
        if kind == 1 and dtype == a.dtype:
            return a  # x op x
        if kind == 2 and len(self.inputs) < 5:
            shape = self.derived_shape(a.shape)
            if self.flag() and a.rank and a.shape[0] == SYM and len(shape) == a.rank:
                shape = (SYM,) + tuple(shape[1:])
            return self.add_input(dtype, shape)
        return self.const(dtype, self.derived_shape(a.shape), lo=-2 if dtype == I64 else -1, hi=2 if dtype == I64 else 1)


def _fits(a: Sequence, b: Sequence) -> bool:
    out = bcast(a, b)
    return out is not None and len(out) <= MAX_RANK and numel_bound(out) <= 1024


# ----------------------------------------------------------------------------- op builders
# Each takes the builder and returns True if it added at least one node.  Each adds at
# most 5 nodes.

UNARY_FLOAT = ["Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Erf", "Exp", "Sqrt", "Identity"]


def op_unary(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype != BOOL)
    if x is None:
        return False
    if x.dtype == I64:
        op = b.choice(["Neg", "Abs", "Identity"])
        b.node(op, [x], I64, x.shape, x.bound)
        return True
    return _unary_float(b, x, b.choice(UNARY_FLOAT)) is not None


def _unary_float(b: Builder, x: Val, op: str) -> Val:
    if op == "Exp":
        x = b.squash(x, 4.0 if x.dtype == F32 else 2.0)
        return b.node("Exp", [x], x.dtype, x.shape, math.exp(x.bound))
    if op == "Sqrt":
        a = b.node("Abs", [x], x.dtype, x.shape, x.bound)
        return b.node("Sqrt", [a], x.dtype, x.shape, math.sqrt(x.bound))
    bound = {"Sigmoid": 1.0, "Tanh": 1.0, "Erf": 1.0}.get(op, x.bound)
    return b.node(op, [x], x.dtype, x.shape, bound)


def op_binary(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype != BOOL)
    if x is None:
        return False
    if x.dtype == I64:
        y = b.operand_like(x)
        op = b.choice(["Add", "Sub", "Mul", "Max", "Min"])
        bound = x.bound * y.bound if op == "Mul" else x.bound + y.bound
        if bound > LIMIT[I64]:
            op, bound = "Max", max(x.bound, y.bound)
        b.node(op, [x, y], I64, bcast(x.shape, y.shape), bound)
        return True
    op = b.choice(["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
    lim = LIMIT[x.dtype]
    if op == "Pow":
        e = b.choice([2.0, 3.0, 0.5])
        if e == 0.5:
            x = b.node("Abs", [x], x.dtype, x.shape, x.bound)
        else:
            x = b.squash(x, lim ** (1.0 / e))
        exp = b.const(b.choice([x.dtype, F32]), (), [e])
        b.node("Pow", [x, exp], x.dtype, x.shape, x.bound ** e)
        return True
    y = b.operand_like(x)
    if op == "Div":
        if b.flag():  # divide by |y| + 1
            a = b.node("Abs", [y], y.dtype, y.shape, y.bound)
            one = b.const(y.dtype, (), [1.0])
            y = b.node("Add", [a, one], y.dtype, y.shape, y.bound + 1)
            bound = x.bound
        else:  # divide by a constant bounded away from zero
            y = b.const(x.dtype, b.derived_shape(x.shape), lo=0.5, hi=2.0)
            bound = 2 * x.bound
        b.node("Div", [x, y], x.dtype, bcast(x.shape, y.shape), bound)
        return True
    if op == "Mul":
        if x.bound * y.bound > lim:
            x = b.squash(x, 1.0)
        if x.bound * y.bound > lim:
            y = b.squash(y, 1.0)
        bound = x.bound * y.bound
    elif op in ("Add", "Sub"):
        if x.bound + y.bound > lim:
            x, y = b.squash(x, 1.0), b.squash(y, 1.0)
        bound = x.bound + y.bound
    else:
        bound = max(x.bound, y.bound)
    b.node(op, [x, y], x.dtype, bcast(x.shape, y.shape), bound)
    return True


def _compare(b: Builder, x: Val) -> Val:
    """A bool value broadcast-compatible with x, computed from x (or a bool pool value)."""
    if b.flag():
        c = b.pick(lambda v: v.dtype == BOOL and _fits(x.shape, v.shape))
        if c is not None:
            return c
    y = b.operand_like(x)
    if x.dtype == I64:
        op = b.choice(["Equal", "Greater", "Less"])
    else:
        op = b.choice(["Greater", "Less"])
    return b.node(op, [x, y], BOOL, bcast(x.shape, y.shape), 1.0)


def op_compare(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype != BOOL)
    if x is None:
        return False
    _compare(b, x)
    return True


def op_where(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype != BOOL)
    if x is None:
        return False
    cond = _compare(b, x)
    shape = bcast(x.shape, cond.shape)
    y = b.pick(lambda v: v.dtype == x.dtype and _fits(shape, v.shape)) if b.flag() else None
    if y is None:
        y = b.const(x.dtype, (), [0])
    xy = [x, y] if b.flag() else [y, x]
    b.node("Where", [cond] + xy, x.dtype, bcast(cond.shape, x.shape, y.shape), max(x.bound, y.bound))
    return True


def op_bool(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype == BOOL)
    if x is None:
        return False
    op = b.choice(["Not", "And", "Or", "Xor"])
    if op == "Not":
        b.node("Not", [x], BOOL, x.shape, 1.0)
    else:
        y = b.operand_like(x)
        b.node(op, [x, y], BOOL, bcast(x.shape, y.shape), 1.0)
    return True


def op_cast(b: Builder) -> bool:
    x = b.pick()
    if x is None:
        return False
    if x.dtype == F32:
        to = b.choice(["f16_roundtrip", F16, I64, BOOL])
        if to == "f16_roundtrip":
            x = b.squash(x, LIMIT[F16])
            h = b.node("Cast", [x], F16, x.shape, x.bound, to=ONNX_TYPE[F16])
            b.node("Cast", [h], F32, x.shape, x.bound, to=ONNX_TYPE[F32])
        elif to == F16:
            x = b.squash(x, LIMIT[F16])
            b.node("Cast", [x], F16, x.shape, x.bound, to=ONNX_TYPE[F16])
        elif to == I64:
            # scale up so the integer part carries information, then truncate
            s = b.const(F32, (), [4.0])
            x = b.squash(x, 2.0)
            m = b.node("Mul", [x, s], F32, x.shape, x.bound * 4)
            i = b.node("Cast", [m], I64, x.shape, m.bound, to=ONNX_TYPE[I64])
            if b.flag():
                b.node("Cast", [i], F32, x.shape, m.bound, to=ONNX_TYPE[F32])
        else:
            b.node("Cast", [x], BOOL, x.shape, 1.0, to=ONNX_TYPE[BOOL])
        return True
    if x.dtype == F16:
        to = b.choice([F32, "f32_roundtrip"])
        f = b.node("Cast", [x], F32, x.shape, x.bound, to=ONNX_TYPE[F32])
        if to == "f32_roundtrip":
            b.node("Cast", [f], F16, x.shape, x.bound, to=ONNX_TYPE[F16])
        return True
    to = b.choice([F32, F16] + ([BOOL] if x.dtype == I64 else [I64]))
    if to == F16 and x.bound > LIMIT[F16]:
        to = F32
    b.node("Cast", [x], to, x.shape, x.bound if to != BOOL else 1.0, to=ONNX_TYPE[to])
    return True


def op_reduce(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype in (F32, F16, I64) and v.rank >= 1)
    if x is None:
        return False
    op = b.choice(["ReduceSum", "ReduceMean", "ReduceMax"])
    all_axes = b.draw(st.integers(0, 5)) == 0
    if all_axes:
        axes = list(range(x.rank))
    else:
        axes = sorted(b.draw(st.sets(st.integers(0, x.rank - 1), min_size=1, max_size=x.rank)))
    if op != "ReduceSum" and any(x.shape[a] == 0 for a in axes):
        op = "ReduceSum"  # Max/Mean of an empty set are -inf/NaN
    keep = b.draw(st.integers(0, 1))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else tuple(
        d for i, d in enumerate(x.shape) if i not in axes)
    count = numel_bound([x.shape[a] for a in axes])
    if op == "ReduceSum" and x.dtype in FLOATS:
        x = b.squash(x, LIMIT[x.dtype] / max(count, 1))
    if op == "ReduceSum" and x.dtype == I64 and x.bound * count > LIMIT[I64]:
        op = "ReduceMax"
        if any(x.shape[a] == 0 for a in axes):
            return False
    bound = x.bound * count if op == "ReduceSum" else x.bound
    ax = [a - x.rank if b.flag() else a for a in axes]
    attrs = {"keepdims": keep}
    if op == "ReduceSum":  # opset 13+: axes is an input
        ins = [x] if all_axes and b.flag() else [x, b.ints(ax)]
    else:  # opset < 18: axes is an attribute
        ins = [x]
        if not (all_axes and b.flag()):
            attrs["axes"] = ax
    b.node(op, ins, x.dtype, out_shape, bound, **attrs)
    return True


def op_softmax(b: Builder) -> bool:
    x = b.pick(lambda v: v.dtype in FLOATS and v.rank >= 1)
    if x is None:
        return False
    axis = b.draw(st.integers(-x.rank, x.rank - 1))
    b.node("Softmax", [x], x.dtype, x.shape, 1.0, axis=axis)
    return True


def op_layernorm(b: Builder) -> bool:
    def ok_axes(v: Val):
        return [a for a in range(v.rank) if all(d != SYM and d > 0 for d in v.shape[a:])]

    x = b.pick(lambda v: v.dtype in FLOATS and v.rank >= 1 and ok_axes(v))
    if x is None:
        return False
    axis = b.choice(ok_axes(x))
    norm = x.shape[axis:]
    scale = b.const(x.dtype, norm, lo=0.5, hi=1.5)
    bias = b.const(x.dtype, norm, lo=-0.5, hi=0.5)
    attrs = {"axis": axis - x.rank if b.flag() else axis}
    attrs["epsilon"] = 1e-5 if x.dtype == F32 else 1e-2
    bound = math.sqrt(numel_bound(norm)) * 1.5 + 0.5
    b.node("LayerNormalization", [x, scale, bias], x.dtype, x.shape, bound, **attrs)
    return True


def op_matmul(b: Builder) -> bool:
    a = b.pick(lambda v: v.dtype in FLOATS and v.rank >= 2 and v.shape[-1] != SYM)
    if a is None:
        return False
    k = a.shape[-1]
    rhs = None
    if b.flag():
        rhs = b.pick(lambda v: v.dtype == a.dtype and v.rank >= 2 and v.shape[-2] == k
                     and v.shape[-1] != SYM and bcast(a.shape[:-2], v.shape[:-2]) is not None)
    if rhs is None:
        p = b.draw(st.integers(1, 5))
        rhs = b.const(a.dtype, (k, p), lo=-1.0 / math.sqrt(max(k, 1)), hi=1.0 / math.sqrt(max(k, 1)))
    lim = LIMIT[a.dtype]
    if k * a.bound * rhs.bound > lim:
        a = b.squash(a, 1.0)
    if k * a.bound * rhs.bound > lim:
        rhs = b.squash(rhs, 1.0)
    shape = bcast(a.shape[:-2], rhs.shape[:-2]) + (a.shape[-2], rhs.shape[-1])
    y = b.node("MatMul", [a, rhs], a.dtype, shape, max(k, 1) * a.bound * rhs.bound)
    epi = b.draw(st.integers(0, 3))
    if epi >= 1:  # bias
        bias = b.const(a.dtype, (shape[-1],), lo=-0.5, hi=0.5)
        y = b.node("Add", [y, bias], a.dtype, shape, y.bound + 0.5)
    if epi >= 2:  # activation
        _unary_float(b, y, b.choice(["Relu", "Sigmoid", "Tanh", "Erf"]))
    if epi == 3 and b.flag():  # residual-style binary epilogue
        r = b.operand_like(y)
        if _fits(y.shape, r.shape):
            b.node("Add", [b.squash(y, 1.0), b.squash(r, 1.0)], a.dtype, bcast(y.shape, r.shape), 2.0)
    return True


def op_view(b: Builder) -> bool:
    op = b.choice(["Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"])
    if op == "Identity":
        x = b.pick()
        if x is None:
            return False
        b.node("Identity", [x], x.dtype, x.shape, x.bound)
        return True
    if op == "Unsqueeze":
        x = b.pick(lambda v: v.rank < MAX_RANK)
        if x is None:
            return False
        n_new = b.draw(st.integers(1, min(2, MAX_RANK - x.rank)))
        out_rank = x.rank + n_new
        axes = sorted(b.draw(st.sets(st.integers(0, out_rank - 1), min_size=n_new, max_size=n_new)))
        it = iter(x.shape)
        shape = tuple(1 if i in axes else next(it) for i in range(out_rank))
        ax = [a - out_rank if b.flag() else a for a in axes]
        b.node("Unsqueeze", [x, b.ints(ax)], x.dtype, shape, x.bound)
        return True
    if op == "Squeeze":
        x = b.pick(lambda v: 1 in v.shape)
        if x is None:
            return False
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        axes = sorted(b.draw(st.sets(st.sampled_from(ones), min_size=1, max_size=len(ones))))
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        b.node("Squeeze", [x, b.ints(axes)], x.dtype, shape, x.bound)
        return True
    if op == "Flatten":
        x = b.pick(lambda v: v.rank >= 1)
        if x is None:
            return False
        axis = b.draw(st.integers(0, x.rank))
        left, right = sym_prod(x.shape[:axis]), sym_prod(x.shape[axis:])
        if left is None or right is None:
            return False
        b.node("Flatten", [x], x.dtype, (left, right), x.bound, axis=axis)
        return True
    # Reshape: no size-0 dims (0 means "copy" unless allowzero), N only at position 0
    x = b.pick(lambda v: v.rank >= 1 and not v.has_zero and SYM not in v.shape[1:])
    if x is None:
        return False
    sym = x.shape[0] == SYM
    total = numel_bound(x.shape[1:] if sym else x.shape)
    n_bins = b.draw(st.integers(1, 3 if sym else 4))
    dims = [1] * n_bins
    for f in _prime_factors(total):
        dims[b.draw(st.integers(0, n_bins - 1))] *= f
    spec = list(dims)
    if b.flag() and len(dims) > 0:
        spec[b.draw(st.integers(0, len(dims) - 1))] = -1
    if sym:
        dims, spec = [SYM] + dims, [0] + spec
    b.node("Reshape", [x, b.ints(spec)], x.dtype, tuple(dims), x.bound)
    return True


def _prime_factors(n: int) -> list:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def op_move(b: Builder) -> bool:
    op = b.choice(["Transpose", "Slice", "Concat", "Expand"])
    if op == "Transpose":
        x = b.pick(lambda v: v.rank >= 2)
        if x is None:
            return False
        perm = b.draw(st.permutations(range(x.rank)))
        attrs = {} if b.draw(st.integers(0, 4)) == 0 else {"perm": list(perm)}
        if not attrs:
            perm = list(reversed(range(x.rank)))
        b.node("Transpose", [x], x.dtype, tuple(x.shape[p] for p in perm), x.bound, **attrs)
        return True
    if op == "Slice":
        x = b.pick(lambda v: any(d != SYM and d > 0 for d in v.shape))
        if x is None:
            return False
        cands = [i for i, d in enumerate(x.shape) if d != SYM and d > 0]
        axes = sorted(b.draw(st.sets(st.sampled_from(cands), min_size=1, max_size=2)))
        starts, ends, steps, shape = [], [], [], list(x.shape)
        for a in axes:
            d = x.shape[a]
            step = b.choice([1, 2, -1])
            if step > 0:
                s = b.draw(st.integers(0, d))
                e = b.draw(st.integers(s, d + 1))
                e = 2**63 - 1 if e == d + 1 else e
            else:
                s = b.draw(st.integers(0, d - 1))
                e = b.draw(st.integers(-1, s))
                e = -(2**63) if e == -1 else e
            starts.append(s), ends.append(e), steps.append(step)
            shape[a] = len(range(d)[slice(s, e, step)])
        ins = [x, b.ints(starts), b.ints(ends)]
        if axes != list(range(len(axes))) or steps != [1] * len(axes) or b.flag():
            ins.append(b.ints(axes))
            if steps != [1] * len(axes) or b.flag():
                ins.append(b.ints(steps))
        b.node("Slice", ins, x.dtype, tuple(shape), x.bound)
        return True
    if op == "Concat":
        x = b.pick(lambda v: any(d != SYM for d in v.shape))
        if x is None:
            return False
        axis = b.choice([i for i, d in enumerate(x.shape) if d != SYM])
        parts = [x]
        for _ in range(b.draw(st.integers(1, 2))):
            def same_but_axis(v: Val) -> bool:
                return (v.dtype == x.dtype and v.rank == x.rank and v.shape[axis] != SYM
                        and all(v.shape[i] == x.shape[i] for i in range(x.rank) if i != axis))
            other = b.pick(same_but_axis) if b.flag() else None
            if other is None:
                shape = list(x.shape)
                shape[axis] = b.draw(st.integers(0 if b.draw(st.integers(0, 5)) == 0 else 1, 3))
                if SYM in shape:
                    other = b.add_input(x.dtype, shape) if len(b.inputs) < 5 else x
                else:
                    other = b.const(x.dtype, shape)
            parts.append(other)
        shape = list(x.shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        ax = axis - x.rank if b.flag() else axis
        b.node("Concat", parts, x.dtype, tuple(shape), max(p.bound for p in parts), axis=ax)
        return True
    # Expand
    x = b.pick(lambda v: v.rank < MAX_RANK and numel_bound(v.shape) <= 256)
    if x is None:
        return False
    target = [1 if d == SYM else (b.draw(st.integers(1, 3)) if d == 1 else d) for d in x.shape]
    if b.flag():
        target = [b.draw(st.integers(1, 3))] + target
    elif b.flag() and target and target[0] == 1:
        target = target[1:]  # a target of lower rank than the input is fine too
    shape = bcast(x.shape, target)
    b.node("Expand", [x, b.ints(target)], x.dtype, shape, x.bound)
    return True


def op_opaque(b: Builder) -> bool:
    op = b.choice(["Dropout", "If", "Loop"])
    x = b.pick(lambda v: v.dtype in FLOATS)
    if x is None:
        return False
    if op == "Dropout":
        b.node("Dropout", [x], x.dtype, x.shape, x.bound)
        return True
    if op == "If":
        cond = b.const(BOOL, (), [b.flag()])
        then_out, else_out = b.fresh("then_out"), b.fresh("else_out")
        then_g = helper.make_graph(
            [helper.make_node("Relu", [x.name], [then_out], name=b.fresh("then_relu"))],
            b.fresh("then"), [], [value_info(then_out, x.dtype, x.shape)])
        y = b.operand_like(x) if b.flag() else None
        if y is not None and _fits(x.shape, y.shape) and bcast(x.shape, y.shape) == x.shape:
            y = b.squash(y, 1.0)
            tmp = b.fresh("else_tmp")
            else_nodes = [helper.make_node("Mul", [x.name, y.name], [tmp], name=b.fresh("else_mul")),
                          helper.make_node("Neg", [tmp], [else_out], name=b.fresh("else_neg"))]
            b.consumed.add(y.name)
            ebound = x.bound * y.bound
        else:
            else_nodes = [helper.make_node("Neg", [x.name], [else_out], name=b.fresh("else_neg"))]
            ebound = x.bound
        else_g = helper.make_graph(else_nodes, b.fresh("else"), [], [value_info(else_out, x.dtype, x.shape)])
        b.consumed.add(x.name)  # read from inside the subgraphs
        b.node("If", [cond], x.dtype, x.shape, max(x.bound, ebound), then_branch=then_g, else_branch=else_g)
        return True
    # Loop: 1-3 iterations of v = Tanh(v) [+ outer x], loop-carried, no scan outputs
    x = b.squash(x, 1.0)
    trip = b.const(I64, (), [b.draw(st.integers(1, 3))])
    it, c_in, v_in = b.fresh("iter"), b.fresh("cond_in"), b.fresh("v_in")
    c_out, v_out, tmp = b.fresh("cond_out"), b.fresh("v_out"), b.fresh("loop_tmp")
    body_nodes = [helper.make_node("Identity", [c_in], [c_out], name=b.fresh("loop_cond"))]
    if b.flag():
        body_nodes += [helper.make_node("Tanh", [v_in], [tmp], name=b.fresh("loop_tanh")),
                       helper.make_node("Add", [tmp, x.name], [v_out], name=b.fresh("loop_add"))]
        bound = 4.0
    else:
        body_nodes += [helper.make_node("Tanh", [v_in], [v_out], name=b.fresh("loop_tanh"))]
        bound = 1.0
    body = helper.make_graph(
        body_nodes, b.fresh("body"),
        [value_info(it, I64, ()), value_info(c_in, BOOL, ()), value_info(v_in, x.dtype, x.shape)],
        [value_info(c_out, BOOL, ()), value_info(v_out, x.dtype, x.shape)])
    b.node("Loop", [trip, "", x], x.dtype, x.shape, bound, body=body)
    return True


def op_fanout(b: Builder) -> bool:
    """One value consumed by 2-3 new elementwise nodes (explicit multi-consumer)."""
    x = b.pick(lambda v: v.dtype in FLOATS)
    if x is None:
        return False
    for _ in range(b.draw(st.integers(2, 3))):
        _unary_float(b, x, b.choice(["Relu", "Neg", "Sigmoid", "Tanh", "Abs", "Exp"]))
    return True


def op_ladder(b: Builder) -> bool:
    """Two elementwise chains from one value with cross edges between them (5 nodes).

    The pattern where two groups, each convex on its own, feed each other (A -> B through
    one pair of members and B -> A through another), so contracting both makes a cycle."""
    x = b.pick(lambda v: v.dtype in FLOATS)
    if x is None:
        return False
    start = len(b.nodes)
    x = b.squash(x, 2.0)
    unary = ["Relu", "Neg", "Tanh", "Sigmoid", "Abs"]
    chains = [[_unary_float(b, x, b.choice(unary))], [_unary_float(b, x, b.choice(unary))]]
    for _ in range(3):
        side = b.draw(st.integers(0, 1))
        mine, other = chains[side], chains[1 - side]
        left = 5 - (len(b.nodes) - start)
        if b.draw(st.integers(0, 2)) == 0:
            if left >= 1:
                mine.append(_unary_float(b, mine[-1], b.choice(unary)))
            continue
        y = other[b.draw(st.integers(0, len(other) - 1))]
        op = b.choice(["Add", "Sub", "Max", "Min", "Mul", "Greater"])
        tip = mine[-1]
        cost = {"Greater": 2, "Mul": 1 + (tip.bound > 1) + (y.bound > 1)}.get(op, 1)
        if cost > left:
            continue
        if op == "Greater":  # Where(tip > y, 0, tip)
            cond = b.node("Greater", [tip, y], BOOL, x.shape, 1.0)
            mine.append(b.node("Where", [cond, b.const(x.dtype, (), [0.0]), tip], x.dtype, x.shape, tip.bound))
            continue
        if op == "Mul":
            tip, y = b.squash(tip, 1.0), b.squash(y, 1.0)
        bound = {"Add": tip.bound + y.bound, "Sub": tip.bound + y.bound, "Mul": tip.bound * y.bound}.get(
            op, max(tip.bound, y.bound))
        mine.append(b.node(op, [tip, y], x.dtype, x.shape, bound))
    return True


OPS = {
    "ladder": op_ladder,
    "unary": op_unary,
    "binary": op_binary,
    "view": op_view,
    "move": op_move,
    "reduce": op_reduce,
    "matmul": op_matmul,
    "where": op_where,
    "cast": op_cast,
    "softmax": op_softmax,
    "layernorm": op_layernorm,
    "fanout": op_fanout,
    "compare": op_compare,
    "bool": op_bool,
    "opaque": op_opaque,
}
# Ordered simplest first (hypothesis shrinks sampled_from towards the front); weights by
# repetition.
OP_CHOICES = (["unary"] * 4 + ["binary"] * 4 + ["view"] * 2 + ["move"] * 2 + ["reduce"] * 2
              + ["matmul", "where", "cast", "softmax", "layernorm", "fanout", "compare", "bool", "opaque",
                 "ladder", "ladder"])


DENSE_CHOICES = (["unary"] * 3 + ["binary"] * 5 + ["fanout"] * 2 + ["ladder"] * 4
                 + ["where", "compare", "cast", "reduce", "softmax", "view", "matmul", "opaque"])


# ----------------------------------------------------------------------------- strategies


@st.composite
def input_shapes(draw, allow_sym: bool = True, allow_empty: bool = True):
    rank = draw(st.integers(1, 4))
    dims = [draw(st.integers(1, 5)) for _ in range(rank)]
    if allow_sym and draw(st.integers(0, 2)) == 0:
        dims[0] = SYM
    if allow_empty and draw(st.integers(0, 11)) == 0:
        dims[draw(st.integers(0, rank - 1))] = 0
    return tuple(dims)


@st.composite
def random_models(draw, min_nodes: int = 2, max_nodes: int = 20):
    """Strategy of GraphCase: a random DAG of at most max_nodes + 5 nodes.

    max_nodes <= 20 keeps graphs at 25 nodes or fewer (an op builder adds at most 5).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    b = Builder(draw, rng)
    allow_empty = draw(st.integers(0, 5)) == 0
    # One graph in three is "dense": one float input shape, mostly elementwise ops whose
    # operands are earlier values -- many reconvergent paths for the grouping to get wrong.
    b.dense = draw(st.integers(0, 2)) == 0
    if b.dense:
        shape = draw(input_shapes(allow_empty=allow_empty))
        for _ in range(draw(st.integers(1, 2))):
            b.add_input(draw(st.sampled_from([F32, F32, F16])), shape)
    else:
        for _ in range(draw(st.integers(1, 3))):
            dtype = draw(st.sampled_from([F32, F32, F32, F16, I64, BOOL]))
            b.add_input(dtype, draw(input_shapes(allow_empty=allow_empty)))
    if not any(v.dtype in FLOATS for v in b.inputs):
        b.add_input(F32, draw(input_shapes(allow_empty=allow_empty)))
    target = draw(st.integers(min_nodes, max_nodes))
    choices = DENSE_CHOICES if b.dense else OP_CHOICES
    attempts = 0
    while len(b.nodes) < target and attempts < 4 * max_nodes:
        attempts += 1
        OPS[draw(st.sampled_from(choices))](b)
    while len(b.nodes) < min_nodes:
        op_unary(b)
    return finish(b, n=draw(st.sampled_from([2, 3, 1])), extra_outputs=draw(st.lists(st.booleans(), max_size=30)))


def finish(b: Builder, n: int, extra_outputs: Sequence[bool] = ()) -> GraphCase:
    """Make the model: every unconsumed node output is a graph output, plus the
    intermediate values flagged in extra_outputs (outputs from the middle of a chain)."""
    produced = [v for v in b.pool if not v.is_input]
    flags = list(extra_outputs) + [False] * len(produced)
    outs = [v for v, f in zip(produced, flags) if f or v.name not in b.consumed]
    used = {i for node in b.nodes for i in node.input}
    used |= {i for node in b.nodes for a in node.attribute if a.g.node for n2 in a.g.node for i in n2.input}
    graph = helper.make_graph(
        b.nodes, "random_dag",
        [value_info(v.name, v.dtype, v.shape) for v in b.inputs],
        [value_info(v.name, v.dtype, v.shape) for v in outs],
        initializer=[t for t in b.inits if t.name in used],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="autofuse-tests")
    return GraphCase(model, make_feeds(b.inputs, n, b.rng), n)


def make_feeds(inputs: Sequence[Val], n: int, rng: np.random.Generator) -> dict:
    feeds = {}
    for v in inputs:
        shape = concrete(v.shape, n)
        if v.dtype in FLOATS:
            arr = rng.uniform(-2.0, 2.0, size=shape)
        elif v.dtype == I64:
            arr = rng.integers(-3, 4, size=shape)
        else:
            arr = rng.random(size=shape) < 0.5
        feeds[v.name] = np.asarray(arr, dtype=NP_TYPE[v.dtype])
    return feeds


# ----------------------------------------------------------------------------- hand-written cases


def _hand(build: Callable[[Builder], Sequence[str]], n: int = 2, seed: int = 0) -> GraphCase:
    """Run a hand-written builder; it returns the names of intermediate values that
    should also be graph outputs."""
    b = Builder(None, np.random.default_rng(seed))  # hand-written builders never draw
    mid = set(build(b) or ())
    return finish(b, n, [v.name in mid for v in b.pool if not v.is_input])


def diamond_case() -> GraphCase:
    """x -> a = Relu(x), x -> b = Exp(Tanh(x)); a + b."""
    def build(b: Builder):
        x = b.add_input(F32, (2, 3, 4))
        a = b.node("Relu", [x], F32, x.shape, 2.0)
        t = b.node("Tanh", [x], F32, x.shape, 1.0)
        e = b.node("Exp", [t], F32, x.shape, math.e)
        b.node("Add", [a, e], F32, x.shape, 5.0)
    return _hand(build)


def mid_output_chain_case() -> GraphCase:
    """Relu -> Mul -> Sigmoid -> Sub where the Mul result is also a graph output."""
    def build(b: Builder):
        x = b.add_input(F32, (3, 5))
        r = b.node("Relu", [x], F32, x.shape, 2.0)
        m = b.node("Mul", [r, b.const(F32, (5,))], F32, x.shape, 2.0)
        s = b.node("Sigmoid", [m], F32, x.shape, 1.0)
        b.node("Sub", [s, b.const(F32, ())], F32, x.shape, 2.0)
        return [m.name]
    return _hand(build, seed=1)


def fp16_chain_case() -> GraphCase:
    """fp16 input -> Mul -> Add -> Tanh -> Softmax -> ReduceSum, fp16 throughout."""
    def build(b: Builder):
        x = b.add_input(F16, (2, 4, 8))
        m = b.node("Mul", [x, b.const(F16, (8,))], F16, x.shape, 2.0)
        a = b.node("Add", [m, b.const(F16, (4, 1))], F16, x.shape, 3.0)
        t = b.node("Tanh", [a], F16, x.shape, 1.0)
        s = b.node("Softmax", [t], F16, x.shape, 1.0, axis=-1)
        b.node("ReduceSum", [s, b.ints([-1])], F16, (2, 4, 1), 1.0, keepdims=1)
    return _hand(build, seed=2)


def symbolic_dim_case() -> GraphCase:
    """[N, 4] input through MatMul + bias + Relu, LayerNorm, Reshape keeping N, Transpose."""
    def build(b: Builder):
        x = b.add_input(F32, (SYM, 4))
        w = b.const(F32, (4, 6), lo=-0.5, hi=0.5)
        mm = b.node("MatMul", [x, w], F32, (SYM, 6), 4.0)
        a = b.node("Add", [mm, b.const(F32, (6,))], F32, (SYM, 6), 5.0)
        r = b.node("Relu", [a], F32, (SYM, 6), 5.0)
        ln = b.node("LayerNormalization", [r, b.const(F32, (6,), lo=0.5, hi=1.5), b.const(F32, (6,))],
                    F32, (SYM, 6), 5.0, axis=-1, epsilon=1e-5)
        rs = b.node("Reshape", [ln, b.ints([0, 2, 3])], F32, (SYM, 2, 3), 5.0)
        b.node("Transpose", [rs], F32, (SYM, 3, 2), 5.0, perm=[0, 2, 1])
    return _hand(build, n=3, seed=3)


def empty_interleaved_case() -> GraphCase:
    """Two candidate groups whose members interleave, on size-0 tensors.  A shrunk
    hypothesis example: before commit d858d56 the level-3 planner contracted the groups
    into a cycle (PlanInvariantError); that happens with non-empty dims too."""
    def build(b: Builder):
        x = b.add_input(F32, (0,))
        b.add_input(F32, (0,))  # unused input
        t3 = b.node("Relu", [x], F32, x.shape, 2.0)
        t5 = b.node("Relu", [t3], F32, x.shape, 2.0)
        t7 = b.node("Relu", [x], F32, x.shape, 2.0)
        b.node("Add", [t7, t5], F32, x.shape, 4.0)
        t11 = b.node("Relu", [t7], F32, x.shape, 2.0)
        t13 = b.node("Greater", [t3, t11], BOOL, x.shape, 1.0)
        b.node("Where", [t13, b.const(F32, (), [0.0]), t3], F32, x.shape, 2.0)
    return _hand(build, seed=4)


def cross_chains_case() -> GraphCase:
    """Two one-node chains from x, each feeding the other's consumer (the shrunk form of
    ``op_ladder``; before commit d858d56 it made the level-3 planner raise)."""
    def build(b: Builder):
        x = b.add_input(F32, (SYM,))
        a = b.node("Relu", [x], F32, x.shape, 2.0)
        c = b.node("Relu", [x], F32, x.shape, 2.0)
        b.node("Add", [c, a], F32, x.shape, 4.0)
        g = b.node("Greater", [a, c], BOOL, x.shape, 1.0)
        b.node("Where", [g, b.const(F32, (), [0.0]), a], F32, x.shape, 2.0)
    return _hand(build, seed=5)


HAND_CASES = {
    "cross_chains": cross_chains_case,
    "empty_interleaved": empty_interleaved_case,
    "diamond": diamond_case,
    "mid_output_chain": mid_output_chain_case,
    "fp16_chain": fp16_chain_case,
    "symbolic_dim": symbolic_dim_case,
}
