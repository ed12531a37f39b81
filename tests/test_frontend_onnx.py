"""Loading ONNX: validation errors, topological order, shapes, and what must survive untouched."""
from __future__ import annotations

import onnx
import pytest
from onnx import helper

from autofuse import fuse
from autofuse.errors import InputError
from autofuse.frontends.onnx import load_onnx
from graphs import fused, model


def _relu_chain_nodes():
    return [
        helper.make_node("Relu", ["x"], ["a"], name="r"),
        helper.make_node("Exp", ["a"], ["b"], name="e"),
        helper.make_node("Neg", ["b"], ["y"], name="n"),
    ]


def _model(nodes, opset=17):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def test_nodes_out_of_topological_order_are_accepted():
    nodes = _relu_chain_nodes()
    shuffled = _model([nodes[2], nodes[0], nodes[1]])
    loaded = load_onnx(shuffled)
    assert [n.name for n in loaded.graph.nodes] == ["r", "e", "n"]
    result = fused(shuffled, level=2)
    assert result.report["groups"][0]["members"] == ["r", "e", "n"]


def test_a_real_cycle_is_rejected_with_the_node_named():
    nodes = [
        helper.make_node("Add", ["x", "c"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["c"], name="second"),
        helper.make_node("Neg", ["a"], ["y"], name="out"),
    ]
    with pytest.raises(InputError, match="cycle through node '(first|second)'"):
        load_onnx(_model(nodes))


def test_a_dangling_input_is_rejected():
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["y"], name="adder")]
    with pytest.raises(InputError, match="node 'adder' \\(Add\\) reads 'nowhere'.*dangling"):
        load_onnx(_model(nodes))


@pytest.mark.parametrize("opset", [6, 99])
def test_unsupported_opsets_are_rejected(opset):
    with pytest.raises(InputError, match=f"unsupported opset {opset}"):
        load_onnx(_model(_relu_chain_nodes(), opset=opset))


def test_shapes_come_from_onnx_inference_and_symbolic_dims_stay_names():
    loaded = load_onnx(model("""
    g (float[batch, 8] x) => (float[batch, 8] y) {
      a = Relu (x)
      y = Exp (a)
    }"""))
    assert loaded.graph.type_of("a").shape == ("batch", 8)
    assert loaded.graph.type_of("a").dtype == "float32"


def test_unknown_dims_are_never_guessed():
    loaded = load_onnx(model("""
    g (float[4] x, int64[1] shape) => (float y) {
      r = Reshape (x, shape)
      y = ReduceSum (r)
    }"""))
    # ONNX names the unknown dim (e.g. "unk__0"); it is a symbol, never a guessed number.
    (dim,) = loaded.graph.type_of("r").shape
    assert dim is None or isinstance(dim, str)
    assert loaded.graph.type_of("y").shape == ()


def test_fallback_fills_what_onnx_inference_leaves_unknown():
    # A custom op's output type is unknown to ONNX; a Cast after it still has a known dtype.
    loaded = load_onnx(model("""
    g (float[4] x) => (float16[4] y) {
      c = custom.Op (x)
      y = Cast <to = 10> (c)
    }""", header='<ir_version: 8, opset_import: ["" : 17, "custom" : 1]>\n'))
    assert loaded.graph.type_of("y").dtype == "float16"


def test_everything_untouched_survives_the_rewrite():
    m = model("""
    g (float[4, 8] x) => (float[4, 8] y) <float[8] bias = {1, 2, 3, 4, 5, 6, 7, 8}> {
      a = Add (x, bias)
      b = Relu (a)
      c = Exp (b)
      y = custom.Opaque (c)
    }""", header='<ir_version: 8, opset_import: ["" : 17, "custom" : 1], producer_name: "tests">\n')
    onnx.helper.set_model_props(m, {"owner": "autofuse-tests"})
    m.doc_string = "kept"
    local = onnx.helper.make_function("custom", "Opaque", ["i"], ["o"],
                                      [helper.make_node("Neg", ["i"], ["o"])], [helper.make_opsetid("", 17)])
    m.functions.append(local)
    result = fused(m, level=2)
    out = result.model
    assert [t.name for t in out.graph.initializer] == ["bias"]
    assert out.doc_string == "kept" and out.producer_name == "tests"
    assert {p.key: p.value for p in out.metadata_props} == {"owner": "autofuse-tests"}
    assert {(o.domain, o.version) for o in out.opset_import} >= {("", 17), ("custom", 1)}
    assert out.functions[0] == local
    assert [i.name for i in out.graph.input] == ["x"] and [o.name for o in out.graph.output] == ["y"]
    assert out.graph.node[-1].op_type == "Opaque"


def test_function_body_keeps_the_original_node_names():
    result = fused(model("""
    g (float[4] x) => (float[4] y) {
      a = Relu (x)
      y = Exp (a)
    }"""), level=2)
    (function,) = [f for f in result.model.functions if f.domain == "ai.autofuse"]
    assert [n.name for n in function.node] == result.report["groups"][0]["members"]
    assert [n.op_type for n in result.model.graph.node] == [function.name]


@pytest.mark.parametrize("ir_version", [4, 8, 10])
def test_written_ir_version_loads_in_the_installed_onnxruntime(ir_version):
    import onnxruntime as ort

    m = _model(_relu_chain_nodes())
    m.ir_version = ir_version
    out = fuse(m, opt_level=2).model
    # Functions need IR 8; we never lower a version and raise it only to that floor.
    assert out.ir_version == max(ir_version, 8)
    ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"])


def test_external_data_is_kept_as_external_data(tmp_path):
    import numpy as np

    weight = np.arange(6000, dtype=np.float32).reshape(2, 3000)[:, :3].copy()
    big = np.ones((4096 + 1,), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["a"], name="add"),
         helper.make_node("Relu", ["a"], ["b"], name="relu"),
         helper.make_node("ReduceSum", ["big"], ["s"], name="sum", keepdims=0),
         helper.make_node("Mul", ["b", "s"], ["y"], name="mul")],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
        [onnx.numpy_helper.from_array(weight, "w"), onnx.numpy_helper.from_array(big, "big")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    m.ir_version = 8
    src = tmp_path / "src"
    src.mkdir()
    onnx.save_model(m, src / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    result = fuse(src / "m.onnx", opt_level=2, verify=True)
    assert result.verification.ok, result.verification.summary()
    out = result.save(tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == (src / "weights.bin").read_bytes()
    reloaded = onnx.load(out / "model.onnx", load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in reloaded.graph.initializer)
