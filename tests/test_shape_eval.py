"""Exact evaluation of run-time shape arithmetic (autofuse.frontends.shape_eval)."""
from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from autofuse.frontends.onnx import concrete_shapes, load_onnx
from autofuse.frontends.shape_eval import evaluate, evaluate_shapes
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


def _all_ort_shapes(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Shapes onnxruntime gives every tensor node output (all intermediates exposed)."""
    m = onnx.ModelProto.FromString(m.SerializeToString())
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for n in m.graph.node for o in n.output
                          if o and o not in have)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return {n: tuple(v.shape) for n, v in zip(names, sess.run(None, feeds)) if isinstance(v, np.ndarray)}


def _spy_reinference(monkeypatch) -> list[dict]:
    """Calls of the fallback (ONNX shape inference re-run with static inputs) by concrete_shapes."""
    import autofuse.frontends.onnx as frontend

    calls: list[dict] = []
    real = frontend._reinferred

    def spy(m, dims):
        calls.append(dims)
        return real(m, dims)

    monkeypatch.setattr(frontend, "_reinferred", spy)
    return calls


# Issue 12: the TorchScript exporter's F.pad turns torch-order pads (last dim first, begin/end
# pairs) into ONNX order at run time: Reshape(-1, 2) -> Slice(step -1) -> Transpose -> Reshape(-1)
# -> Cast. ONNX inference cannot follow it; the Pad, and everything after it, stayed unsized.
PAD_COMPUTED = """
g (float[batch, 3, 7, 7] x, float[4, 3, 3, 3] w, float[1, 4, 1, 1] b) => (float[batch, 4, ?, ?] y) {
    s = Shape(x)
    i3 = Constant<value = int64 {3}>()
    wdim = Gather<axis = 0>(s, i3)
    win = Constant<value = int64 {4}>()
    r = Mod(wdim, win)
    d = Sub(win, r)
    pr = Mod(d, win)
    ax = Constant<value = int64[1] {0}>()
    pru = Unsqueeze(pr, ax)
    zeros = Constant<value = int64[1] {0}>()
    torch_pads = Concat<axis = 0>(zeros, pru, zeros, pru, zeros, zeros, zeros, zeros)
    shp = Constant<value = int64[2] {-1, 2}>()
    pairs = Reshape(torch_pads, shp)
    st = Constant<value = int64[1] {-1}>()
    en = Constant<value = int64[1] {-9223372036854775807}>()
    sax = Constant<value = int64[1] {0}>()
    stp = Constant<value = int64[1] {-1}>()
    rev = Slice(pairs, st, en, sax, stp)
    tr = Transpose<perm = [1, 0]>(rev)
    flat_shape = Constant<value = int64[1] {-1}>()
    flat = Reshape(tr, flat_shape)
    pads = Cast<to = 7>(flat)
    p = Pad(x, pads)
    c = Conv<kernel_shape = [3, 3], pads = [1, 1, 1, 1]>(p, w)
    y = Add(c, b)
}"""


def test_pad_with_pads_computed_at_run_time_sizes_everything_after_it():
    loaded = load_onnx(model(PAD_COMPUTED, HEADER18))
    assert not loaded.graph.type_of("p").is_static  # what ONNX inference leaves
    shapes = concrete_shapes(loaded, {"batch": 2})
    feeds = {"x": np.zeros((2, 3, 7, 7), np.float32), "w": np.zeros((4, 3, 3, 3), np.float32),
             "b": np.zeros((1, 4, 1, 1), np.float32)}
    actual = _all_ort_shapes(loaded.model, feeds)
    assert shapes["p"] == (2, 3, 8, 8)  # W = 7 padded up to a multiple of 4, on both spatial axes
    assert {v: shapes.get(v) for v in actual} == actual


def test_constant_pads_and_strided_conv_over_a_symbolic_batch():
    loaded = load_onnx(model("""
    g (float[batch, 3, 9, 9] x, float[8, 3, 3, 3] w) => (float[batch, 8, ?, ?] y) {
        pads = Constant<value = int64[8] {0, 0, 1, 2, 0, 0, 0, 1}>()
        p = Pad(x, pads)
        c = Conv<kernel_shape = [3, 3], strides = [2, 2]>(p, w)
        m = MaxPool<kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1>(c)
        y = Relu(m)
    }""", HEADER18))
    shapes = concrete_shapes(loaded, {"batch": 3})
    actual = _all_ort_shapes(loaded.model, {"x": np.zeros((3, 3, 9, 9), np.float32),
                                            "w": np.zeros((8, 3, 3, 3), np.float32)})
    assert shapes["p"] == (3, 3, 10, 12) and shapes["c"] == (3, 8, 4, 5) and shapes["m"] == (3, 8, 2, 3)
    assert {v: shapes.get(v) for v in actual} == actual


def test_resize_sized_by_float_shape_arithmetic():
    # The TorchScript export of interpolate(scale_factor=...): sizes = floor(float(shape) * scale).
    loaded = load_onnx(model("""
    g (float[batch, 2, 5, 7] x) => (float[batch, 2, ?, ?] y) {
        s = Shape(x)
        st = Constant<value = int64[1] {2}>()
        en = Constant<value = int64[1] {4}>()
        hw = Slice(s, st, en)
        hwf = Cast<to = 1>(hw)
        scale = Constant<value = float[2] {1.5, 0.5}>()
        scaled = Mul(hwf, scale)
        fl = Floor(scaled)
        hwi = Cast<to = 7>(fl)
        zero = Constant<value = int64[1] {0}>()
        nc = Slice(s, zero, st)
        sizes = Concat<axis = 0>(nc, hwi)
        y = Resize<mode = "nearest">(x, , , sizes)
        three = Constant<value = float {3.0}>()
        two = Constant<value = float {2.0}>()
        q = Div(three, two)
    }""", HEADER18))
    graph = loaded.graph
    state = evaluate(graph, {"x": (2, 2, 5, 7)}, graph.constant_values)
    assert state.shapes["y"] == (2, 2, 7, 3)  # floor(5 * 1.5), floor(7 * 0.5)
    assert float(state.values["q"]) == 1.5  # floating-point division, not truncated
    actual = _all_ort_shapes(loaded.model, {"x": np.zeros((2, 2, 5, 7), np.float32)})
    assert {v: state.shapes.get(v) for v in actual} == actual


def test_ops_no_backend_node_case_runs_in_onnxruntime():
    # The default-domain ops the conformance cases never give onnxruntime a tensor output of.
    m = model("""
    g (float[2, 3, 8, 8] x, float[4, 5] rois, float[2, 6] logits) => (float[2, 3, 1, 1] lp) {
        lp = GlobalLpPool(x)
        roi = MaxRoiPool<pooled_shape = [2, 3]>(x, rois)
        draws = Multinomial<sample_size = 7>(logits)
        normal = RandomNormal<shape = [3, 5]>()
        normal_like = RandomNormalLike(logits)
        uniform = RandomUniform<shape = [4]>()
        uniform_like = RandomUniformLike(x)
        seq = SequenceConstruct(x, lp, logits)
        one = Constant<value = int64 {1}>()
        shorter = SequenceErase(seq, one)
        last = SequenceAt(shorter, one)
        same = SequenceConstruct(logits, logits, logits)
        stacked = ConcatFromSequence<axis = 1, new_axis = 1>(same)
        joined = ConcatFromSequence<axis = 0>(same)
        opt = Optional(roi)
        got = OptionalGetElement(opt)
    }""", HEADER18)
    graph = load_onnx(m).graph
    known = {"x": (2, 3, 8, 8), "rois": (4, 5), "logits": (2, 6)}
    shapes = evaluate_shapes(graph, known, graph.constant_values)
    feeds = {"x": np.random.default_rng(0).random((2, 3, 8, 8), np.float32),
             "rois": np.array([[0, 0, 0, 3, 3]] * 4, np.float32), "logits": np.zeros((2, 6), np.float32)}
    actual = _all_ort_shapes(m, feeds)
    assert {"roi", "draws", "normal", "uniform_like", "last", "stacked", "joined", "got"} <= set(actual)
    assert {v: shapes.get(v) for v in actual} == actual
    assert shapes["last"] == (2, 6) and shapes["stacked"] == (2, 3, 6) and shapes["joined"] == (6, 6)


def test_if_takes_the_known_branch_and_otherwise_only_what_both_agree_on():
    text = """
    g (float[4, 6] x, bool c) => (float[?, ?] y) {
        s = Shape(x)
        i0 = Constant<value = int64 {0}>()
        rows = Gather<axis = 0>(s, i0)
        four = Constant<value = int64 {4}>()
        known = Equal(rows, four)
        y, same = If(COND) <
            then_branch = t () => (float[2, 12] a, float[4] sa) {
                ts = Constant<value = int64[2] {2, 12}>()
                a = Reshape(x, ts)
                sa = ReduceSum<keepdims = 0>(x)
            },
            else_branch = e () => (float[24] b, float[4] sb) {
                es = Constant<value = int64[1] {24}>()
                b = Reshape(x, es)
                sb = ReduceMax<keepdims = 0>(x)
            }
        >
    }"""
    shapes = _shapes(text.replace("COND", "known"), {"x": (4, 6)})
    assert shapes["y"] == (2, 12)  # rows == 4, worked out from the shape: the then branch
    shapes = _shapes(text.replace("COND", "c"), {"x": (4, 6), "c": ()})
    assert "y" not in shapes  # the branches disagree and the condition is data: not guessed
    assert shapes["same"] == ()  # both reduce to a scalar


LOOP = """
g (float[3] x, int64 n) => (float[3] y, float[?, ?] steps) {
    t = Constant<value = bool {1}>()
    y, steps = Loop(n, t, x) <
        body = b (int64 i, bool c, float[3] acc) => (bool co, float[3] out, float[?] piece) {
            co = Identity(c)
            out = Relu(acc)
            ax = Constant<value = int64[1] {0}>()
            zero = Constant<value = int64[1] {0}>()
            one = Constant<value = int64 {1}>()
            i1 = Add(i, one)
            end = Unsqueeze(i1, ax)
            piece = Slice(acc, zero, end)
        }
    >
}"""


@pytest.mark.parametrize("trips", [2, 3])
def test_loop_runs_iteration_by_iteration_when_the_count_is_known(trips):
    # piece is acc[:i + 1]: its length depends on the iteration, so the scan output is sized only
    # for one iteration (all pieces alike); the loop-carried value keeps its shape.
    graph = load_onnx(model(LOOP, HEADER18)).graph
    one = _shapes(LOOP, {"x": (3,), "n": ()})
    assert one["y"] == (3,) and "steps" not in one  # count unknown
    constants = {**graph.constant_values, "n": np.array(1, dtype=np.int64)}
    assert evaluate_shapes(graph, {"x": (3,)}, constants)["steps"] == (1, 1)
    constants["n"] = np.array(trips, dtype=np.int64)
    shapes = evaluate_shapes(graph, {"x": (3,)}, constants)
    assert shapes["y"] == (3,) and "steps" not in shapes  # pieces of lengths 1, 2, (3) differ


def test_loop_longer_than_the_unrolling_limit_is_sized_only_where_iterations_agree():
    text = LOOP.replace("piece = Slice(acc, zero, end)", "piece = Identity(acc)")
    graph = load_onnx(model(text, HEADER18)).graph
    constants = {**graph.constant_values, "n": np.array(1000, dtype=np.int64)}
    shapes = evaluate_shapes(graph, {"x": (3,)}, constants)
    assert shapes["y"] == (3,) and shapes["steps"] == (1000, 3)
    constants = {**load_onnx(model(LOOP, HEADER18)).graph.constant_values, "n": np.array(1000, dtype=np.int64)}
    shapes = evaluate_shapes(load_onnx(model(LOOP, HEADER18)).graph, {"x": (3,)}, constants)
    assert shapes["y"] == (3,) and "steps" not in shapes  # too many iterations to run one by one


def test_concrete_shapes_size_a_conv_over_symbolic_spatial_dims_without_reinference(monkeypatch):
    """Symbolic inference leaves a convolution over symbolic spatial dims unsized; the evaluator
    sizes it from the bound input, so ONNX inference is not run a second time."""
    calls = _spy_reinference(monkeypatch)
    loaded = load_onnx(model("""
    g (float[1, 2, H, W] x, float[4, 2, 3, 3] w) => (float[1, 4, ?, ?] y) {
        c = Conv<kernel_shape = [3, 3]>(x, w)
        y = Relu(c)
    }""", HEADER18))
    assert any(isinstance(d, str) or d is None for d in (loaded.graph.type_of("c").shape or (None,)))
    shapes = concrete_shapes(loaded, {"H": 10, "W": 7})
    assert shapes["c"] == shapes["y"] == (1, 4, 8, 5)
    assert not calls


def test_concrete_shapes_fall_back_to_onnx_inference_with_static_inputs(monkeypatch):
    """What the evaluator cannot size (here the output of a model-local function: it only reads
    default-domain ops) is left to ONNX shape inference re-run with the inputs made static, which
    infers through the function; the evaluator then sizes what follows."""
    calls = _spy_reinference(monkeypatch)
    m = onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 18, "local" : 1]>
    g (float[batch, 2, H, W] x, float[4, 2, 3, 3] w) => (float[batch, 4, ?, ?] y) {
        c = local.ConvRelu(x, w)
        s = Shape(c)
        two = Constant<value = int64[4] {1, 1, 2, 1}>()
        twice = Constant<value = int64[4] {1, 2, 1, 1}>()
        half = Div(s, two)
        moved = Mul(half, twice)
        y = Reshape(c, moved)
    }
    <domain: "local", opset_import: ["" : 18]>
    ConvRelu (a, b) => (r) {
        t = Conv<kernel_shape = [3, 3]>(a, b)
        r = Relu(t)
    }""")
    onnx.checker.check_model(m)
    loaded = load_onnx(m)
    assert evaluate_shapes(loaded.graph, {"x": (2, 2, 10, 7), "w": (4, 2, 3, 3)},
                           loaded.graph.constant_values).get("c") is None
    shapes = concrete_shapes(loaded, {"batch": 2, "H": 10, "W": 7})
    assert calls == [{"batch": 2, "H": 10, "W": 7}]
    assert shapes["c"] == (2, 4, 8, 5) and shapes["y"] == (2, 8, 4, 5)


def _mini_swin():
    """torchvision's shifted-window attention block, shrunk (no torchvision here): the pads that
    take H and W up to a multiple of the window are computed from the input's shape, then roll,
    window partition, attention per window, reverse, crop; a strided patch-embedding Conv first."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    class Block(nn.Module):
        def __init__(self, shift: int, dim: int = 16, heads: int = 2, window: int = 4):
            super().__init__()
            self.norm, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.heads, self.window, self.shift = heads, window, shift

        def forward(self, x):
            b, h, w, c = x.shape
            win = self.window
            y = F.pad(self.norm(x), (0, 0, 0, (win - w % win) % win, 0, (win - h % win) % win))
            _, ph, pw, _ = y.shape
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            nh, nw = ph // win, pw // win
            y = y.view(b, nh, win, nw, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, win * win, c)
            qkv = self.qkv(y).reshape(y.size(0), y.size(1), 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            att = (qkv[0] @ qkv[1].transpose(-2, -1)) * (c // self.heads) ** -0.5
            y = self.proj((att.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(y.size(0), y.size(1), c))
            y = y.view(b, nh, nw, win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
            return x + y[:, :h, :w, :].contiguous()

    class MiniSwin(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 16, kernel_size=4, stride=4)
            self.blocks = nn.Sequential(Block(shift=2), Block(shift=0))
            self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

        def forward(self, img):
            x = self.blocks(self.embed(img).permute(0, 2, 3, 1))
            return self.head(self.pool(x.permute(0, 3, 1, 2)).flatten(1))

    torch.manual_seed(0)
    return MiniSwin().eval()


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "symbolic-batch"])
def test_swin_style_torchscript_export_is_sized_exactly(dynamic, tmp_path):
    """Issue 12 in small: a fully static Swin export left 665 of 3,174 values unsized."""
    torch = pytest.importorskip("torch")
    import warnings

    path = tmp_path / "swin.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_mini_swin(), (torch.zeros(1, 3, 56, 40),), str(path), dynamo=False, opset_version=17,
                          input_names=["img"], output_names=["logits"],
                          dynamic_axes={"img": {0: "batch"}} if dynamic else None)
    loaded = load_onnx(str(path))
    graph = loaded.graph
    assert any(n.op_type == "Pad" for n in graph.nodes)
    dims = {"batch": 2} if dynamic else {}
    shapes = concrete_shapes(loaded, dims)
    actual = _all_ort_shapes(loaded.model, {"img": np.zeros((2 if dynamic else 1, 3, 56, 40), np.float32)})
    values = [v for n in graph.nodes for v in n.outputs if v]
    assert [v for v in values if v not in shapes] == []
    assert {v: shapes[v] for v in actual} == actual


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
