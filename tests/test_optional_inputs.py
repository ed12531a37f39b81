"""Absent optional inputs and outputs ("" in ONNX, or left off the end) of every op the planner
may fuse: planned, priced, rewritten and verified in onnxruntime, and -- for the ops the code
generator lowers -- turned into a kernel that compiles on the CPU emulator, matches onnxruntime
and moves the GM bytes the cost model predicted.

CASES holds one model per absent input; test_every_optional_input_of_a_fusible_op_has_a_case
checks against the ONNX schemas that every optional input (and output) of every op the op table
lets the planner fuse has one, so an op added to the table brings its cases along.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import TensorProto, defs, helper, numpy_helper

from autofuse import fuse
from autofuse.ops.table import OP_CLASS, OpClass, op_class
from autofuse.ir.graph import Node

F = TensorProto.FLOAT
R, C = 8, 64
WEIGHT = (np.random.default_rng(7).random(C) + 0.5).astype(np.float32)


def _rand(*shape: int) -> np.ndarray:
    """Small weights, the same for a case whichever cases run before it."""
    return (np.random.default_rng(sum(shape)).random(shape) / 8).astype(np.float32)


def _ints(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).integers(0, 4, shape).astype(np.uint8)


@dataclass(frozen=True)
class Case:
    name: str
    op: str
    absent: tuple[str, ...]  # schema names of the optional inputs/outputs the model leaves out
    build: Callable[[], onnx.ModelProto]
    # kernel: the generator lowers the op, its group must get a kernel that verifies;
    # any: it may not (the group is then reported without a kernel, with the reason).
    expect: str = "kernel"
    runs: bool = True  # onnxruntime has a kernel for the op (else the model is only planned)


def _vi(name: str, shape, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, None if shape is None else list(shape))


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _model(nodes, inputs, outputs, inits=(), opset: int = 18, check: bool = True) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10 if opset > 21 else 9
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def _between(op_nodes, out_shape=(R, C), in_shape=(R, C), inits=(), extra=(), opset: int = 18,
             check: bool = True) -> onnx.ModelProto:
    """x -> Add(x, x) = a -> the op's nodes (reading a, writing r) -> Relu -> y: the op sits inside
    a group, with computed data on both sides."""
    nodes = [helper.make_node("Add", ["x", "x"], ["a"], name="pre"), *op_nodes,
             helper.make_node("Relu", ["r"], ["y"], name="post")]
    return _model(nodes, [_vi("x", in_shape), *extra], [_vi("y", out_shape)], inits, opset, check)


def _node(op: str, inputs, outputs=("r",), **attrs) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=f"the_{op.lower()}", **attrs)


def _layer_norm_outputs(outputs, used):
    """LayerNormalization writing `outputs` ("" = absent); `used` of them leave the graph."""
    def build():
        nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
                 _node("LayerNormalization", ["a", "scale"], outputs, axis=-1),
                 helper.make_node("Relu", [outputs[0]], ["y"])]
        nodes += [helper.make_node("Neg", [v], [f"{v}_out"]) for v in used]
        outs = [_vi("y", (R, C))] + [_vi(f"{v}_out", (R, 1)) for v in used]
        return _model(nodes, [_vi("x", (R, C))], outs, [_const("scale", WEIGHT)], 17)
    return build


def _reduce_all(op: str):
    """`op` with no axes input: every axis of a 1-D value reduced (the last one)."""
    def build():
        nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node(op, ["a"], ["s"], keepdims=1),
                 helper.make_node("Neg", ["s"], ["y"])]
        return _model(nodes, [_vi("x", (C,))], [_vi("y", (1,))], opset=13 if op == "ReduceSum" else 18)
    return build


def _reduce_noop(op: str):
    """`op` with axes "" and noop_with_empty_axes: nothing reduced (ReduceSumSquare squares,
    ReduceL1 takes |x|, ReduceL2 sqrt(x*x), the others copy)."""
    def build():
        nodes = [helper.make_node("Sub", ["x", "h"], ["a"]),
                 _node(op, ["a", ""], ["s"], keepdims=1, noop_with_empty_axes=1),
                 helper.make_node("Neg", ["s"], ["y"])]
        return _model(nodes, [_vi("x", (R, C))], [_vi("y", (R, C))], [_const("h", np.float32(0.5))],
                      opset=13 if op == "ReduceSum" else 18)
    return build


def _split(inputs, opset, **attrs):
    def build():
        nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node("Split", inputs, ["p", "q"], axis=-1, **attrs),
                 helper.make_node("Mul", ["p", "q"], ["y"])]
        return _model(nodes, [_vi("x", (R, C))], [_vi("y", (R, C // 2))], opset=opset)
    return build


def _squeeze_input():
    nodes = [_node("Squeeze", ["x"], ["s"]), helper.make_node("Exp", ["s"], ["e"]),
             helper.make_node("Relu", ["e"], ["y"])]
    return _model(nodes, [_vi("x", (1, R, 1, C))], [_vi("y", (R, C))])


def _quantized(op: str):
    def build():
        if op == "DequantizeLinear":
            nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
                     helper.make_node("Cast", ["a"], ["i"], to=TensorProto.INT8),
                     _node(op, ["i", "s"], ["d"]), helper.make_node("Relu", ["d"], ["y"])]
        else:
            nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node(op, ["a", "s"], ["q"]),
                     helper.make_node("Cast", ["q"], ["y"], to=F)]
        return _model(nodes, [_vi("x", (R, C))], [_vi("y", (R, C))], [_const("s", np.float32(0.5))])
    return build


def _conv(op: str, opset: int = 18, check: bool = True):
    def build():
        w = _rand(4, 4, 3, 3)
        if op == "DeformConv":
            inputs, extra = ["a", "w", "o"], [_vi("o", (1, 18, 6, 6))]
        else:
            inputs, extra = ["a", "w"], []
        out = (1, 4, 10, 10) if op == "ConvTranspose" else (1, 4, 6, 6)
        nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node(op, inputs, ["c"], kernel_shape=[3, 3]),
                 helper.make_node("Relu", ["c"], ["y"])]
        return _model(nodes, [_vi("x", (1, 4, 8, 8)), *extra], [_vi("y", out)], [_const("w", w)], opset, check)
    return build


def _integer(op: str):
    def build():
        x = _vi("x", (1, 4, 8, 8) if op == "ConvInteger" else (R, C), TensorProto.UINT8)
        w = _ints(4, 4, 3, 3) if op == "ConvInteger" else _ints(C, 16)
        out = (1, 4, 6, 6) if op == "ConvInteger" else (R, 16)
        nodes = [_node(op, ["x", "w"], ["i"]), helper.make_node("Cast", ["i"], ["f"], to=F),
                 helper.make_node("Relu", ["f"], ["y"])]
        return _model(nodes, [x], [_vi("y", out)], [_const("w", w)])
    return build


def _qlinear_conv():
    x = _vi("x", (1, 4, 8, 8), TensorProto.UINT8)
    inits = [_const("xs", np.float32(0.1)), _const("xz", np.uint8(1)), _const("w", _ints(4, 4, 3, 3)),
             _const("ws", np.float32(0.1)), _const("wz", np.uint8(0)), _const("ys", np.float32(0.5)),
             _const("yz", np.uint8(2))]
    nodes = [_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["q"]),
             helper.make_node("Cast", ["q"], ["f"], to=F), helper.make_node("Relu", ["f"], ["y"])]
    return _model(nodes, [x], [_vi("y", (1, 4, 6, 6))], inits)


def _attention(inputs, outputs, opset: int = 24):
    def build():
        shape = (1, 2, 4, 8)
        nodes = [helper.make_node("Add", ["q", "q"], ["a"]), _node("Attention", ["a", *inputs], ["r", *outputs]),
                 helper.make_node("Relu", ["r"], ["y"])]
        return _model(nodes, [_vi("q", shape), _vi("k", shape), _vi("v", shape)], [_vi("y", shape)], opset=opset)
    return build


def _linear_attention():
    shape = (1, 2, 4, 8)
    nodes = [helper.make_node("Add", ["q", "q"], ["a"]), _node("LinearAttention", ["a", "k", "v", "", "", ""]),
             helper.make_node("Relu", ["r"], ["y"])]
    return _model(nodes, [_vi("q", shape), _vi("k", shape), _vi("v", shape)], [_vi("y", shape)], opset=27, check=False)


def _batch_norm():
    w = WEIGHT[:4]
    params = [_const(n, v) for n, v in (("s", w), ("b", w - 1), ("m", w / 2), ("v", w))]
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node("BatchNormalization", ["a", "s", "b", "m", "v"]),
             helper.make_node("Relu", ["r"], ["y"])]
    return _model(nodes, [_vi("x", (2, 4, 8, 8))], [_vi("y", (2, 4, 8, 8))], params)


def _rotary():
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]), _node("RotaryEmbedding", ["a", "cos", "sin"], num_heads=2),
             helper.make_node("Relu", ["r"], ["y"])]
    return _model(nodes, [_vi("x", (1, 4, 32)), _vi("cos", (1, 4, 8)), _vi("sin", (1, 4, 8))], [_vi("y", (1, 4, 32))],
                  opset=23)


def _tensor_scatter():
    nodes = [helper.make_node("Add", ["c", "c"], ["a"]), _node("TensorScatter", ["a", "u"]),
             helper.make_node("Relu", ["r"], ["y"])]
    return _model(nodes, [_vi("c", (1, 2, 8, 4)), _vi("u", (1, 2, 1, 4))], [_vi("y", (1, 2, 8, 4))], opset=24)


CASES = [
    # LayerNormalization: B, and the Mean / InvStdDev outputs
    Case("layernorm-no-bias", "LayerNormalization", ("B", "Mean", "InvStdDev"),
         lambda: _between([_node("LayerNormalization", ["a", "scale"], axis=-1)], inits=[_const("scale", WEIGHT)],
                          opset=17)),
    Case("layernorm-bias-empty", "LayerNormalization", ("B",),
         lambda: _between([_node("LayerNormalization", ["a", "scale", ""], axis=-1)], inits=[_const("scale", WEIGHT)],
                          opset=17)),
    Case("layernorm-no-bias-scale-an-input", "LayerNormalization", ("B",),
         lambda: _between([_node("LayerNormalization", ["a", "scale"], axis=-1)], extra=[_vi("scale", (C,))],
                          opset=17)),
    Case("layernorm-no-bias-mean-out", "LayerNormalization", ("B", "InvStdDev"),
         _layer_norm_outputs(["n", "mean"], ["mean"])),
    Case("layernorm-no-mean-invstd-out", "LayerNormalization", ("B", "Mean"),
         _layer_norm_outputs(["n", "", "inv"], ["inv"])),
    # Clip: min, max
    Case("clip-no-bounds", "Clip", ("min", "max"), lambda: _between([_node("Clip", ["a"])])),
    Case("clip-empty-bounds", "Clip", ("min", "max"), lambda: _between([_node("Clip", ["a", "", ""])])),
    Case("clip-min-only", "Clip", ("max",),
         lambda: _between([_node("Clip", ["a", "lo"])], inits=[_const("lo", np.float32(0.3))])),
    Case("clip-max-only", "Clip", ("min",),
         lambda: _between([_node("Clip", ["a", "", "hi"])], inits=[_const("hi", np.float32(0.7))])),
    Case("clip-max-only-an-input", "Clip", ("min",),
         lambda: _between([_node("Clip", ["a", "", "hi"])], extra=[_vi("hi", ())])),
    Case("clip-max-only-opset11", "Clip", ("min",),
         lambda: _between([_node("Clip", ["a", "", "hi"])], inits=[_const("hi", np.float32(0.7))], opset=11)),
    # Gemm: C
    Case("gemm-no-c", "Gemm", ("C",),
         lambda: _between([_node("Gemm", ["a", "w"])], (R, 32), inits=[_const("w", _rand(C, 32))])),
    Case("gemm-empty-c-alpha-transb", "Gemm", ("C",),
         lambda: _between([_node("Gemm", ["a", "w", ""], alpha=0.5, transB=1)], (R, 32),
                          inits=[_const("w", _rand(32, C))])),
    Case("gemm-no-c-beta-opset11", "Gemm", ("C",),
         lambda: _between([_node("Gemm", ["a", "w"], beta=0.5)], (R, 32),
                          inits=[_const("w", _rand(C, 32))], opset=11)),
    # Slice: axes, steps
    Case("slice-no-axes-no-steps", "Slice", ("axes", "steps"),
         lambda: _between([_node("Slice", ["a", "st", "en"])], (32,), (C,), [_const("st", [16]), _const("en", [48])])),
    Case("slice-steps-without-axes", "Slice", ("axes",),
         lambda: _between([_node("Slice", ["a", "st", "en", "", "sp"])], (32,), (C,),
                          [_const("st", [16]), _const("en", [48]), _const("sp", [1])])),
    Case("slice-axes-without-steps", "Slice", ("steps",),
         lambda: _between([_node("Slice", ["a", "st", "en", "ax"])], (R, 32),
                          inits=[_const("st", [16]), _const("en", [48]), _const("ax", [-1])])),
    # Split: split
    Case("split-num-outputs", "Split", ("split",), _split(["a"], 18, num_outputs=2)),
    Case("split-empty-split-opset13", "Split", ("split",), _split(["a", ""], 13)),
    # Squeeze: axes
    Case("squeeze-no-axes", "Squeeze", ("axes",), _squeeze_input),
    # Reduce*: axes (reduce every axis; or, with noop_with_empty_axes, none)
    *(Case(f"{op.lower()}-no-axes", op, ("axes",), _reduce_all(op))
      for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare")),
    *(Case(f"{op.lower()}-empty-axes-noop", op, ("axes",), _reduce_noop(op))
      for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare")),
    # Ops the generator does not lower: planned, priced and reported without stumbling.
    *(Case(f"{op.lower()}-no-axes", op, ("axes",), _reduce_all(op), "any")
      for op in ("ReduceLogSum", "ReduceLogSumExp", "ReduceProd")),
    *(Case(f"{op.lower()}-empty-axes-noop", op, ("axes",), _reduce_noop(op), "any")
      for op in ("ReduceLogSum", "ReduceLogSumExp", "ReduceProd")),
    Case("pad-no-value-no-axes", "Pad", ("constant_value", "axes"),
         lambda: _between([_node("Pad", ["a", "pads"])], (R, C + 8), inits=[_const("pads", [0, 0, 0, 8])]), "any"),
    Case("pad-axes-no-value", "Pad", ("constant_value",),
         lambda: _between([_node("Pad", ["a", "pads", "", "ax"])], (R, C + 8),
                          inits=[_const("pads", [0, 8]), _const("ax", [1])]), "any"),
    Case("resize-scales", "Resize", ("roi", "sizes"),
         lambda: _between([_node("Resize", ["a", "", "sc"])], (R, 2 * C), inits=[_const("sc", np.float32([1, 2]))]),
         "any"),
    Case("resize-sizes", "Resize", ("roi", "scales"),
         lambda: _between([_node("Resize", ["a", "", "", "sz"])], (R, 2 * C), inits=[_const("sz", [R, 2 * C])]), "any"),
    Case("trilu-no-k", "Trilu", ("k",), lambda: _between([_node("Trilu", ["a"])]), "any"),
    Case("dequantizelinear-no-zero-point", "DequantizeLinear", ("x_zero_point",), _quantized("DequantizeLinear"),
         "any"),
    Case("quantizelinear-no-zero-point", "QuantizeLinear", ("y_zero_point",), _quantized("QuantizeLinear"), "any"),
    Case("conv-no-bias", "Conv", ("B",), _conv("Conv"), "any"),
    Case("convtranspose-no-bias", "ConvTranspose", ("B",), _conv("ConvTranspose"), "any"),
    Case("deformconv-no-bias-no-mask", "DeformConv", ("B", "mask"), _conv("DeformConv", 19), "any"),
    Case("convinteger-no-zero-points", "ConvInteger", ("x_zero_point", "w_zero_point"), _integer("ConvInteger"), "any"),
    Case("matmulinteger-no-zero-points", "MatMulInteger", ("a_zero_point", "b_zero_point"), _integer("MatMulInteger"),
         "any"),
    Case("qlinearconv-no-bias", "QLinearConv", ("B",), _qlinear_conv, "any"),
    Case("batchnorm-inference-outputs", "BatchNormalization", ("running_mean", "running_var"), _batch_norm, "any"),
    Case("attention-no-mask-no-cache", "Attention",
         ("attn_mask", "past_key", "past_value", "nonpad_kv_seqlen", "present_key", "present_value",
          "qk_matmul_output"),
         _attention(["k", "v"], []), "any"),
    Case("attention-empty-mask-and-cache", "Attention", ("attn_mask", "past_key", "past_value"),
         _attention(["k", "v", "", "", ""], ["", "", ""]), "any"),
    Case("linearattention-no-state", "LinearAttention", ("past_state", "decay", "beta"), _linear_attention, "any",
         runs=False),  # onnxruntime 1.32 has no LinearAttention kernel: planned only
    Case("rotaryembedding-no-position-ids", "RotaryEmbedding", ("position_ids",), _rotary, "any"),
    Case("tensorscatter-no-write-indices", "TensorScatter", ("write_indices",), _tensor_scatter, "any"),
    # Opaque (never fused), listed because models carry it: the planner steps around it.
    Case("dropout-empty-ratio-no-mask", "Dropout", ("ratio", "mask"),
         lambda: _between([_node("Dropout", ["a", "", "t"], ["d", ""]), helper.make_node("Exp", ["d"], ["r"])],
                          inits=[_const("t", np.array(False))]), "any"),
]


def _optional_parameters(op: str) -> set[str]:
    schema = defs.get_schema(op)
    optional = defs.OpSchema.FormalParameterOption.Optional
    return {p.name for p in (*schema.inputs, *schema.outputs) if p.option == optional}


def test_every_optional_input_of_a_fusible_op_has_a_case():
    """The class, not examples: every op the planner may fuse (the op table's non-opaque ops) with
    optional inputs or outputs in its ONNX schema has a case leaving out each of them."""
    covered: dict[str, set[str]] = {}
    for case in CASES:
        covered.setdefault(case.op, set()).update(case.absent)
    missing = {}
    for op, kind in OP_CLASS.items():
        if kind == OpClass.OPAQUE:
            continue
        wanted = _optional_parameters(op) - covered.get(op, set())
        if wanted:
            missing[op] = sorted(wanted)
    assert not missing, f"optional inputs/outputs without a case: {missing}"
    assert len({c.name for c in CASES}) == len(CASES)
    for case in CASES:
        assert set(case.absent) <= _optional_parameters(case.op), case.name


def _groups_of(result, op: str) -> list[dict]:
    return [g for g in result.report["groups"] if op in g["member_op_types"]]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_absent_optional_input(case):
    model = case.build()
    absent_somewhere = any(
        "" in (*n.input, *n.output) or len(n.input) < len(defs.get_schema(n.op_type).inputs)
        or len(n.output) < len(defs.get_schema(n.op_type).outputs)
        for n in model.graph.node if n.op_type == case.op)
    assert absent_somewhere, f"{case.name}: the {case.op} node leaves nothing out"
    if not case.runs:
        result = fuse(model, opt_level=3, kernels=True)  # planned, priced and lowered (or declined)
        assert all(g["kernel"] for g in result.report["groups"])
        return
    result = fuse(model, opt_level=3, verify=True, verify_kernels=True)
    assert result.verification.ok, result.verification.summary()
    coverage = result.kernel_coverage
    for group in result.report["groups"]:
        kernel = group["kernel"]
        if kernel["generated"]:
            check = result.kernel_checks[group["id"]]
            assert kernel["compiled"] and kernel["verified"], f"{case.name} {group['id']}: {kernel.get('error')}"
            assert check.bytes_within_tolerance, (f"{case.name} {group['id']}: measured {check.gm_bytes_measured} B, "
                                                  f"predicted {check.gm_bytes_predicted} B")
        elif not (kernel.get("call_through") or kernel.get("host")):
            assert case.expect == "any", f"{case.name} {group['id']}: not generated: {kernel.get('reason')}"
            assert kernel["reason"] and coverage.missing[group["id"]] == kernel["reason"]
    if case.expect == "kernel":
        groups = _groups_of(result, case.op)
        assert groups, f"{case.name}: {case.op} was not fused ({result.report['rejected']})"
        assert all(g["kernel"]["verified"] for g in groups)
        assert not coverage.unverified


def test_a_reduction_over_no_axes_is_elementwise():
    """Axes absent with noop_with_empty_axes: nothing is reduced, so the planner and the cost model
    treat the node as elementwise; axes absent without it, or given, it stays a reduction."""
    def node(inputs, **attrs):
        return Node(0, "n", "ReduceSum", "", tuple(inputs), ("y",), attrs=attrs)

    assert op_class(node(["x"], noop_with_empty_axes=1)) == OpClass.ELEMENTWISE
    assert op_class(node(["x", ""], noop_with_empty_axes=1)) == OpClass.ELEMENTWISE
    assert op_class(node(["x"])) == OpClass.REDUCTION
    assert op_class(node(["x", "axes"], noop_with_empty_axes=1)) == OpClass.REDUCTION
    assert op_class(Node(0, "n", "ReduceMean", "", ("x",), ("y",), attrs={"axes": (1,), "noop_with_empty_axes": 1})) \
        == OpClass.REDUCTION
