"""Exact evaluation of run-time shape arithmetic (autofuse.frontends.shape_eval)."""
from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from autofuse.frontends.onnx import concrete_shapes, load_onnx
from autofuse.frontends.shape_eval import evaluate_shapes
from autofuse.ops.table import is_kernel
from tests.graphs import model

HEADER18 = '<ir_version: 8, opset_import: ["" : 18]>\n'
DIMS = {"batch": 1, "seq": 128}


def _shapes(text: str, known: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    graph = load_onnx(model(text, HEADER18)).graph
    return evaluate_shapes(graph, dict(known), graph.constant_values)


def test_shape_gather_concat_reshape_chain():
    shapes = _shapes("""
    g (float[B, S, 64] x) => (float[B, S, 4, 16] y) {
        s = Shape(x)
        i0 = Constant<value = int64 {0}>()
        i1 = Constant<value = int64 {1}>()
        ax = Constant<value = int64[1] {0}>()
        b = Gather<axis = 0>(s, i0)
        n = Gather<axis = 0>(s, i1)
        bu = Unsqueeze(b, ax)
        nu = Unsqueeze(n, ax)
        heads = Constant<value = int64[2] {4, 16}>()
        target = Concat<axis = 0>(bu, nu, heads)
        y = Reshape(x, target)
    }""", {"x": (2, 7, 64)})
    assert shapes["s"] == (3,)
    assert shapes["target"] == (4,)
    assert shapes["y"] == (2, 7, 4, 16)


def test_where_equal_guard_before_expand():
    # The TorchScript GQA pattern: Where(Equal(shape, -1), ConstantOfShape(1), shape) -> Expand.
    shapes = _shapes("""
    g (float[B, 2, 1, S, 16] kv) => (float[B, 2, 3, S, 16] y) {
        s = Shape(kv)
        i0 = Constant<value = int64 {0}>()
        i3 = Constant<value = int64 {3}>()
        ax = Constant<value = int64[1] {0}>()
        b0 = Gather<axis = 0>(s, i0)
        n0 = Gather<axis = 0>(s, i3)
        b = Unsqueeze(b0, ax)
        n = Unsqueeze(n0, ax)
        fixed1 = Constant<value = int64[2] {2, 3}>()
        fixed2 = Constant<value = int64[1] {16}>()
        target = Concat<axis = 0>(b, fixed1, n, fixed2)
        five = Constant<value = int64[1] {5}>()
        ones = ConstantOfShape<value = int64[1] {1}>(five)
        minus = Constant<value = int64 {-1}>()
        neg = Mul(ones, minus)
        eq = Equal(target, neg)
        guarded = Where(eq, ones, target)
        y = Expand(kv, guarded)
    }""", {"kv": (1, 2, 1, 128, 16)})
    assert shapes["guarded"] == (5,)
    assert shapes["y"] == (1, 2, 3, 128, 16)


def test_reshape_zero_copies_and_minus_one_infers():
    shapes = _shapes("""
    g (float[A, B, C] x) => (float[A, N] y) {
        t = Constant<value = int64[2] {0, -1}>()
        y = Reshape(x, t)
        t2 = Constant<value = int64[3] {-1, 0, 2}>()
        z = Reshape(x, t2)
    }""", {"x": (3, 4, 10)})
    assert shapes["y"] == (3, 40)
    assert shapes["z"] == (15, 4, 2)


def test_slice_negative_and_huge_ends():
    shapes = _shapes("""
    g (float[A, B] x) => (float[C, D] y) {
        st = Constant<value = int64[2] {1, -3}>()
        en = Constant<value = int64[2] {9223372036854775807, -1}>()
        ax = Constant<value = int64[2] {0, 1}>()
        y = Slice(x, st, en, ax)
        rst = Constant<value = int64[1] {-1}>()
        ren = Constant<value = int64[1] {-9223372036854775807}>()
        rax = Constant<value = int64[1] {1}>()
        rsp = Constant<value = int64[1] {-1}>()
        r = Slice(x, rst, ren, rax, rsp)
        s = Shape(x)
        s1 = Constant<value = int64[1] {-1}>()
        s2 = Constant<value = int64[1] {100}>()
        last = Slice(s, s1, s2)
    }""", {"x": (5, 8)})
    assert shapes["y"] == (4, 2)
    assert shapes["r"] == (5, 8)
    assert shapes["last"] == (1,)


def test_integer_division_truncates_toward_zero():
    shapes = _shapes("""
    g (float[A] x) => (float[N, K] y) {
        s = Shape(x)
        three = Constant<value = int64[1] {-3}>()
        q = Div(s, three)
        neg = Neg(q)
        k = Constant<value = int64[1] {-1}>()
        t = Concat<axis = 0>(neg, k)
        y = Reshape(x, t)
    }""", {"x": (7,)})
    # 7 / -3 -> -2 (truncated, not floored), so neg == 2 and the -1 cannot divide 7: unknown.
    assert "y" not in shapes
    shapes = _shapes("""
    g (float[A] x) => (float[N, K] y) {
        s = Shape(x)
        three = Constant<value = int64[1] {-3}>()
        q = Div(s, three)
        neg = Neg(q)
        k = Constant<value = int64[1] {-1}>()
        t = Concat<axis = 0>(neg, k)
        y = Reshape(x, t)
    }""", {"x": (8,)})
    assert shapes["y"] == (2, 4)  # floor division would give 3, which does not divide 8


def test_unknown_stays_unknown_and_known_is_never_replaced():
    shapes = _shapes("""
    g (float[A, B] x, int64[2] t) => (float[C, D] y) {
        y = Reshape(x, t)
        z = Relu(y)
        s = Shape(x)
        w = Reshape(x, s)
    }""", {"x": (2, 6), "w": (99, 99)})
    assert "y" not in shapes and "z" not in shapes and "t" not in shapes
    assert shapes["w"] == (99, 99)
    # Nothing known about x at all: nothing downstream of it either.
    shapes = _shapes("""
    g (float[A, B] x) => (float[C] y) {
        s = Shape(x)
        y = ConstantOfShape(s)
    }""", {})
    assert "s" not in shapes and "y" not in shapes


def test_data_op_shapes():
    shapes = _shapes("""
    g (float[B, S, 64] x, float[64, 32] w) => (float[B, S, 32] y) {
        y = MatMul(x, w)
        t = Transpose<perm = [0, 2, 1]>(y)
        a, b = Split<axis = 2, num_outputs = 2>(y)
        ax = Constant<value = int64[1] {-1}>()
        m = ReduceMean<keepdims = 1>(x, ax)
        m2 = ReduceMean<keepdims = 0>(x)
        sm = Softmax<axis = -1>(y)
        u = Unsqueeze(y, ax)
        q = Squeeze(u, ax)
    }""", {"x": (2, 5, 64), "w": (64, 32)})
    assert shapes["y"] == (2, 5, 32)
    assert shapes["t"] == (2, 32, 5)
    assert shapes["a"] == shapes["b"] == (2, 5, 16)
    assert shapes["m"] == (2, 5, 1)
    assert shapes["m2"] == ()
    assert shapes["sm"] == (2, 5, 32)
    assert shapes["u"] == (2, 5, 32, 1)
    assert shapes["q"] == (2, 5, 32)


# --------------------------------------------------------------------------
# the corpus: every TorchScript export is sized completely, and exactly as onnxruntime runs it

_HAS_CORPUS_DEPS = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "onnxscript"))


@pytest.fixture(scope="module")
def corpus_module():
    if not _HAS_CORPUS_DEPS:
        pytest.skip("torch/transformers/onnxscript are needed to export the corpus")
    from autofuse.testing import corpus

    return corpus


def _ort_shapes(m: onnx.ModelProto, batch: int, seq: int) -> dict[str, tuple[int, ...]]:
    """Shapes of every node output as onnxruntime produces them (all intermediates exposed)."""
    m = onnx.ModelProto.FromString(m.SerializeToString())
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for n in m.graph.node for o in n.output
                          if o and o not in have)
    weights = {t.name for t in m.graph.initializer}
    feeds = {}
    for inp in m.graph.input:
        if inp.name in weights:
            continue
        if inp.name == "token_type_ids":
            feeds[inp.name] = np.zeros((batch, seq), dtype=np.int64)
        else:
            feeds[inp.name] = np.ones((batch, seq), dtype=np.int64)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return {name: tuple(out.shape) for name, out in zip(names, sess.run(None, feeds))}


@pytest.mark.corpus
@pytest.mark.parametrize("arch", ["gpt2", "bert", "llama", "qwen2"])
def test_torchscript_exports_are_sized_exactly(arch, corpus_module):
    path = corpus_module.corpus_model(arch, "torchscript", 2).path
    loaded = load_onnx(str(path))
    graph = loaded.graph
    shapes = concrete_shapes(loaded, DIMS)
    unsized = sorted({v for n in graph.nodes if is_kernel(n, graph) for v in n.all_inputs if v not in shapes})
    assert not unsized, f"{arch}: kernel inputs without a static shape: {unsized[:10]}"
    actual = _ort_shapes(loaded.model, DIMS["batch"], DIMS["seq"])
    wrong = {v: (shapes[v], s) for v, s in actual.items() if v in shapes and tuple(shapes[v]) != s}
    assert not wrong, f"{arch}: shapes differ from onnxruntime (ours, ort): {dict(list(wrong.items())[:10])}"
    missing = [v for v in actual if v not in shapes]
    assert not missing, f"{arch}: values left unsized: {missing[:10]}"


def test_concrete_shapes_put_the_sizes_into_inferred_shapes():
    """Symbolic shapes that ONNX inference already wrote in the inputs' dims get the sizes put in:
    no second inference is needed, and the answer is what a static model infers."""
    loaded = load_onnx(model("""
    g (float[batch, seq, 8] x, float[8, 4] w) => (float[batch, seq, 4] y) {
        h = MatMul(x, w)
        y = Relu(h)
    }""", HEADER18))
    shapes = concrete_shapes(loaded, {"batch": 3, "seq": 5})
    assert shapes["h"] == shapes["y"] == (3, 5, 4)
    assert shapes["x"] == (3, 5, 8) and shapes["w"] == (8, 4)


def test_concrete_shapes_reinfer_what_symbolic_inference_could_not_size():
    """A convolution over symbolic spatial dims: symbolic inference leaves its output unsized,
    so ONNX inference runs again with the sizes put in (the fallback must size it)."""
    loaded = load_onnx(model("""
    g (float[1, 2, H, W] x, float[4, 2, 3, 3] w) => (float[1, 4, ?, ?] y) {
        c = Conv<kernel_shape = [3, 3]>(x, w)
        y = Relu(c)
    }""", HEADER18))
    assert any(isinstance(d, str) or d is None for d in (loaded.graph.type_of("c").shape or (None,)))
    shapes = concrete_shapes(loaded, {"H": 10, "W": 7})
    assert shapes["c"] == shapes["y"] == (1, 4, 8, 5)


@pytest.mark.corpus
@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_concrete_shapes_agree_with_a_second_onnx_inference(exporter, corpus_module):
    """The shortcut (sizes put into the inferred shapes) gives exactly what re-running ONNX shape
    inference with static inputs gives, on every value of a real export."""
    from autofuse.cost.model import bind_dims
    from autofuse.frontends.onnx import _reinferred, _substituted

    loaded = load_onnx(str(corpus_module.corpus_model("llama", exporter, 2).path))
    graph = loaded.graph
    dims = bind_dims(graph)
    assert _substituted(graph, dims) is not None  # the shortcut is taken
    fast = concrete_shapes(loaded, dims)
    slow = evaluate_shapes(graph, _reinferred(loaded.model, dims), graph.constant_values)
    assert fast == slow and len(fast) > len(graph.nodes)
