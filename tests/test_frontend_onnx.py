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


# -- single assignment: a value defined twice is bad input, wherever it is -------------------------

_F32 = onnx.TensorProto.FLOAT
_OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]


def _graph_model(nodes, inputs=("x",), initializers=(), functions=()):
    import numpy as np

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(name, _F32, [2, 3]) for name in inputs],
        [helper.make_tensor_value_info("y", _F32, [2, 3])],
        [onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), name) for name in initializers],
    )
    m = helper.make_model(graph, opset_imports=_OPSETS, functions=list(functions))
    m.ir_version = 8
    return m


def _cond():
    return helper.make_node("Constant", [], ["c"], name="cond",
                            value=helper.make_tensor("v", onnx.TensorProto.BOOL, [], [True]))


def _if(then_nodes, else_nodes, name="branch", output="y", results=("t_out", "e_out")):
    then = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info(results[0], _F32, [2, 3])])
    other = helper.make_graph(else_nodes, "else", [], [helper.make_tensor_value_info(results[1], _F32, [2, 3])])
    return helper.make_node("If", ["c"], [output], name=name, then_branch=then, else_branch=other)


def _function(name, inputs, nodes):
    return helper.make_function("local", name, inputs, ["o"], nodes, [helper.make_opsetid("", 17)])


def _call(name):
    return helper.make_node(name, ["x"], ["y"], name="call", domain="local")


_N = helper.make_node
_TWICE = {
    "two nodes, main graph": (
        lambda: _graph_model([_N("Relu", ["x"], ["a"], name="first"), _N("Exp", ["x"], ["a"], name="second"),
                              _N("Neg", ["a"], ["y"], name="last")]),
        r"value 'a' is defined twice, by node 'first' \(Relu, #0\) and by node 'second' \(Exp, #1\), in main graph"),
    "node output shadows a graph input": (
        lambda: _graph_model([_N("Relu", ["x"], ["x"], name="over"), _N("Neg", ["x"], ["y"], name="last")]),
        r"value 'x' is defined twice, as a graph input and by node 'over' \(Relu, #0\), in main graph"),
    "node output shadows an initializer": (
        lambda: _graph_model([_N("Relu", ["x"], ["w"], name="over"), _N("Add", ["x", "w"], ["y"], name="last")],
                             initializers=["w"]),
        r"value 'w' is defined twice, as an initializer and by node 'over' \(Relu, #0\), in main graph"),
    "unnamed nodes": (
        lambda: _graph_model([_N("Relu", ["x"], ["a"]), _N("Exp", ["x"], ["a"]), _N("Neg", ["a"], ["y"])]),
        r"value 'a' is defined twice, by node #0 \(Relu\) and by node #1 \(Exp\), in main graph"),
    "one node writes a value twice": (
        lambda: _graph_model([_N("Split", ["x"], ["y", "y"], name="split")]),
        r"value 'y' is written twice by node 'split' \(Split, #0\), in main graph"),
    "graph input declared twice": (
        lambda: _graph_model([_N("Neg", ["x"], ["y"], name="neg")], inputs=("x", "x")),
        r"value 'x' is declared twice as a graph input, in main graph"),
    "initializer declared twice": (
        lambda: _graph_model([_N("Add", ["x", "w"], ["y"], name="add")], initializers=["w", "w"]),
        r"value 'w' is declared twice as an initializer, in main graph"),
    "two nodes, model-local function": (
        lambda: _graph_model([_call("Twice")], functions=[_function("Twice", ["i"], [
            _N("Relu", ["i"], ["t"], name="f1"), _N("Exp", ["i"], ["t"], name="f2"), _N("Neg", ["t"], ["o"])])]),
        r"value 't' is defined twice, by node 'f1' \(Relu, #0\) and by node 'f2' \(Exp, #1\), "
        r"in function 'Twice' \(domain 'local'\)"),
    "node output shadows a function input": (
        lambda: _graph_model([_call("Over")], functions=[_function("Over", ["i"], [
            _N("Relu", ["i"], ["i"], name="f1"), _N("Neg", ["i"], ["o"])])]),
        r"value 'i' is defined twice, as a function input and by node 'f1' \(Relu, #0\), "
        r"in function 'Over' \(domain 'local'\)"),
    "two nodes, If branch": (
        lambda: _graph_model([_cond(), _if([_N("Exp", ["x"], ["q"], name="s1"), _N("Neg", ["x"], ["q"], name="s2"),
                                            _N("Neg", ["q"], ["t_out"])], [_N("Neg", ["x"], ["e_out"])])]),
        r"value 'q' is defined twice, by node 's1' \(Exp, #0\) and by node 's2' \(Neg, #1\), "
        r"in subgraph 'then_branch' of node 'branch' \(If, #1\) in main graph"),
    "If branch redefines an outer value defined before it": (
        lambda: _graph_model([_cond(), _N("Relu", ["x"], ["a"], name="outer"),
                              _if([_N("Exp", ["x"], ["a"], name="inner"), _N("Neg", ["a"], ["t_out"])],
                                  [_N("Neg", ["a"], ["e_out"])])]),
        r"value 'a' is defined by node 'inner' \(Exp, #0\) in subgraph 'then_branch' of node 'branch' \(If, #2\) "
        r"in main graph, and its enclosing main graph defines it too, by node 'outer' \(Relu, #1\)"),
    # onnx.checker only compares with what the enclosing graph defined before the If node.
    "If branch redefines an outer value defined after it": (
        lambda: _graph_model([_cond(), _if([_N("Exp", ["x"], ["z"], name="inner"), _N("Neg", ["z"], ["t_out"])],
                                           [_N("Neg", ["x"], ["e_out"])], output="a"),
                              _N("Neg", ["a"], ["z"], name="later"), _N("Add", ["z", "x"], ["y"], name="last")]),
        r"value 'z' is defined by node 'inner' \(Exp, #0\) in subgraph 'then_branch' of node 'branch' \(If, #1\) "
        r"in main graph, and its enclosing main graph defines it too, by node 'later' \(Neg, #2\)"),
    "nested If redefines a main-graph value": (
        lambda: _graph_model([_cond(), _N("Relu", ["x"], ["a"], name="outer"), _if(
            [_if([_N("Exp", ["x"], ["a"], name="deep"), _N("Neg", ["a"], ["t_out"])], [_N("Neg", ["x"], ["e_out"])],
                 name="inner_if", output="t_out")],
            [_N("Neg", ["a"], ["e_out"])])]),
        r"value 'a' is defined by node 'deep' \(Exp, #0\) in subgraph 'then_branch' of node 'inner_if' \(If, #0\) "
        r"in subgraph 'then_branch' of node 'branch' \(If, #2\) in main graph, and its enclosing main graph "
        r"defines it too, by node 'outer'"),
    "If inside a function redefines the function input": (
        lambda: _graph_model([_call("Branchy")], functions=[_function("Branchy", ["i"], [
            _cond(), helper.make_node("If", ["c"], ["o"], name="fif",
                                      then_branch=helper.make_graph([_N("Neg", ["i"], ["i"], name="fin")], "t", [],
                                                                    [helper.make_tensor_value_info("i", _F32, [2, 3])]),
                                      else_branch=helper.make_graph([_N("Neg", ["i"], ["e"])], "e", [],
                                                                    [helper.make_tensor_value_info("e", _F32, [2, 3])]))])]),
        r"value 'i' is defined by node 'fin' \(Neg, #0\) in subgraph 'then_branch' of node 'fif' \(If, #1\) in "
        r"function 'Branchy' \(domain 'local'\), and its enclosing function 'Branchy' \(domain 'local'\) defines it "
        r"too, as a function input"),
}


@pytest.mark.parametrize("case", list(_TWICE))
def test_a_value_defined_twice_is_rejected_naming_both_definitions_and_the_scope(case):
    build, message = _TWICE[case]
    with pytest.raises(InputError, match=message):
        load_onnx(build())


def test_a_loop_body_redefining_an_outer_value_is_rejected():
    body = helper.make_graph(
        [_N("Identity", ["cond_in"], ["cond_out"]), _N("Relu", ["carried"], ["a"], name="body_relu"),
         _N("Neg", ["a"], ["next"])], "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried", _F32, [2, 3])],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("next", _F32, [2, 3])])
    trips = _N("Constant", [], ["n"], name="trips", value=helper.make_tensor("t", onnx.TensorProto.INT64, [], [2]))
    m = _graph_model([_cond(), trips, _N("Relu", ["x"], ["a"], name="outer"),
                      _N("Loop", ["n", "c", "a"], ["y"], name="loop", body=body)])
    with pytest.raises(InputError, match=r"value 'a' is defined by node 'body_relu' \(Relu, #1\) in subgraph 'body' "
                                         r"of node 'loop' \(Loop, #3\) in main graph"):
        load_onnx(m)


def test_legitimate_scoping_is_accepted_and_runs():
    """A graph input with an initializer as its default; subgraph inputs and sibling subgraphs
    reusing names; subgraphs reading outer values; omitted optional outputs."""
    body = helper.make_graph(
        [_N("Identity", ["cond_in"], ["cond_out"]), _N("Add", ["x", "w"], ["next"], name="body_add")], "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", _F32, [2, 3])],  # shadows the graph input: allowed
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("next", _F32, [2, 3])])
    trips = _N("Constant", [], ["n"], name="trips", value=helper.make_tensor("t", onnx.TensorProto.INT64, [], [2]))
    m = _graph_model([
        _cond(), trips,
        _N("Dropout", ["x"], ["d", ""], name="drop1"), _N("Dropout", ["d"], ["d2", ""], name="drop2"),
        _if([_N("Exp", ["d2"], ["q"]), _N("Neg", ["q"], ["t_out"])],
            [_N("Neg", ["d2"], ["q"]), _N("Abs", ["q"], ["e_out"])], output="b"),
        _N("Loop", ["n", "c", "b"], ["l"], name="loop", body=body),
        _N("Relu", ["l"], ["r"], name="relu"), _N("Exp", ["r"], ["y"], name="exp"),
    ], inputs=("x", "w"), initializers=["w"])
    result = fused(m, level=3)  # loads, and verifies in onnxruntime
    assert result.report["renamed_nodes"] == []  # names in subgraphs may be empty: kept


# -- node names: every node of the output has a unique name ----------------------------------------

GELU_CHAIN = """
g (float[2, 16] x) => (float[2, 16] y) <float rt2 = {1.4142135381698608}, float one = {1.0}, float half = {0.5}> {
  d = Div (x, rt2)
  e = Erf (d)
  p = Add (e, one)
  h = Mul (half, p)
  gl = Mul (x, h)
  r = Relu (gl)
  s = Sigmoid (r)
  y = Exp (s)
}"""


def _named_chain(names):
    m = model(GELU_CHAIN)
    for node, name in zip(m.graph.node, names):
        node.name = name
    return m


_NAMINGS = {
    "all duplicates": ["node"] * 8,
    "all empty": [""] * 8,
    # a duplicate, an empty name whose generated name is taken, and a name autofuse gives fused nodes
    "mixed": ["n", "n", "Erf_1", "", "n_1", "autofuse/g0", "autofuse/g1", "n"],
}


def _output_names_are_unique(out: onnx.ModelProto) -> None:
    main = [n.name for n in out.graph.node]
    assert all(main) and len(set(main)) == len(main), main
    for function in out.functions:
        names = [n.name for n in function.node if n.name]
        assert len(set(names)) == len(names), (function.name, names)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("naming", list(_NAMINGS))
def test_duplicate_and_empty_node_names_load_in_onnxruntime_and_verify(naming, level):
    import onnxruntime as ort

    m = _named_chain(_NAMINGS[naming])
    result = fuse(m, opt_level=level, verify=True)
    assert result.verification.ok, result.verification.summary()
    _output_names_are_unique(result.model)
    ort.InferenceSession(result.model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(result.model)
    if level >= 1:  # the GELU rule fuses five of the nodes from level 1, all of them from level 2
        assert result.report["groups"]
    # Members are the written names: the nodes of the fused functions, in order.
    bodies = {f.name: [n.name for n in f.node] for f in result.model.functions}
    for group in result.report["groups"]:
        assert group["members"] == bodies[group["op_type"]]
    new_names = {r["index"]: r["new"] for r in result.report["renamed_nodes"]}
    written = [new_names.get(i, old) for i, old in enumerate(_NAMINGS[naming])]
    assert len(set(written)) == len(written) and all(written)
    assert [n.name for n in result.loaded.graph.nodes] == written


def test_renamed_nodes_map_old_to_new_names():
    loaded = load_onnx(_named_chain(_NAMINGS["mixed"]))
    # The first node of a name keeps it; later ones get the first free `_1`, `_2` suffix (n_1 is
    # taken by node #4); an unnamed node gets <op_type>_<position>, here taken too (Erf_1 is #2's).
    assert [r.entry() for r in loaded.renamed] == [
        {"graph": "main graph", "index": 1, "op_type": "Erf", "old": "n", "new": "n_2"},
        {"graph": "main graph", "index": 3, "op_type": "Mul", "old": "", "new": "Mul_3"},
        {"graph": "main graph", "index": 7, "op_type": "Exp", "old": "n", "new": "n_3"},
    ]
    assert [n.name for n in loaded.model.graph.node] == [
        "n", "n_2", "Erf_1", "Mul_3", "n_1", "autofuse/g0", "autofuse/g1", "n_3"]


def test_an_unnamed_node_never_takes_a_later_nodes_name():
    m = _named_chain(["", "Div_0", "", "", "", "", "", ""])
    names = [n.name for n in load_onnx(m).graph.nodes]
    assert names[0] == "Div_0_1" and names[1] == "Div_0" and len(set(names)) == len(names)


def test_a_modelproto_passed_in_keeps_its_names():
    m = _named_chain(_NAMINGS["all duplicates"])
    before = m.SerializeToString()
    loaded = load_onnx(m)
    assert m.SerializeToString() == before
    assert loaded.model is not m and len({n.name for n in loaded.model.graph.node}) == 8


def _fused_and_verified(m: onnx.ModelProto, level: int = 3):
    """Like graphs.fused, but verified against the input with unique names (onnxruntime refuses
    the input itself)."""
    result = fuse(m, opt_level=level, verify=True)
    onnx.checker.check_model(result.model)
    assert result.verification.ok, result.verification.summary()
    return result


def test_fused_node_names_never_take_an_input_nodes_name():
    m = _named_chain(_NAMINGS["mixed"])
    out = _fused_and_verified(m).model
    fused_names = [n.name for n in out.graph.node if n.domain == "ai.autofuse"]
    assert fused_names and all(name.startswith("autofuse/g") for name in fused_names)
    kept = {name for f in out.functions for name in (n.name for n in f.node)}
    assert not set(fused_names) & kept


def test_duplicate_node_names_in_subgraphs_and_functions_are_made_unique():
    import onnxruntime as ort

    inner = _if([_N("Exp", ["b"], ["k"], name="deep"), _N("Neg", ["k"], ["it"], name="deep")],
                [_N("Neg", ["b"], ["ie"], name="deep")], name="inner", output="e_out", results=("it", "ie"))
    in_function = _if([_N("Exp", ["u"], ["k"], name="fdeep"), _N("Neg", ["k"], ["t_out"], name="fdeep")],
                      [_N("Neg", ["u"], ["e_out"])], name="fif", output="o")
    body = [_cond(), _N("Relu", ["i"], ["t"], name="dup"), _N("Exp", ["t"], ["u"], name="dup"), in_function]
    m = _graph_model([
        _cond(), _N("Relu", ["x"], ["a"], name="dup"), _N("Exp", ["a"], ["b"], name="dup"),
        _if([_N("Exp", ["b"], ["q"], name="same"), _N("Neg", ["q"], ["t_out"], name="same")], [inner], output="f"),
        _N("Local", ["f"], ["y"], name="dup", domain="local"),
    ], functions=[_function("Local", ["i"], body)])
    result = _fused_and_verified(m)
    out = result.model
    ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"])
    renamed = {(r["graph"], r["index"]): (r["old"], r["new"]) for r in result.report["renamed_nodes"]}
    assert renamed == {
        ("main graph", 2): ("dup", "dup_1"),
        ("main graph", 4): ("dup", "dup_2"),
        ("subgraph 'then_branch' of node 'branch' (If, #3) in main graph", 1): ("same", "same_1"),
        ("subgraph 'then_branch' of node 'inner' (If, #0) in subgraph 'else_branch' of node 'branch' (If, #3) "
         "in main graph", 1): ("deep", "deep_1"),
        ("function 'Local' (domain 'local')", 2): ("dup", "dup_1"),
        ("subgraph 'then_branch' of node 'fif' (If, #3) in function 'Local' (domain 'local')", 1):
            ("fdeep", "fdeep_1"),
    }
    def branch(node, name):
        return [n for n in helper.get_node_attr_value(node, name).node]

    assert [n.name for n in out.functions[0].node] == ["cond", "dup", "dup_1", "fif"]
    assert [n.name for n in branch(out.functions[0].node[3], "then_branch")] == ["fdeep", "fdeep_1"]
    assert [n.name for n in branch(out.functions[0].node[3], "else_branch")] == [""]  # unnamed stays unnamed
    outer_if = next(n for n in out.graph.node if n.op_type == "If")
    assert [n.name for n in branch(branch(outer_if, "else_branch")[0], "then_branch")] == ["deep", "deep_1"]
    assert [n.name for n in branch(outer_if, "then_branch")] == ["same", "same_1"]


def test_a_model_autofuse_wrote_can_be_fused_again():
    """Its fused node (autofuse/g0) and function (FusedElementwise_0) are names the second pass
    generates too: the new ones get a suffix, so the model still loads (fused() runs it)."""
    m = model("""
    g (float[2, 16] x) => (float[2, 16] y) {
      a = Relu (x)
      b = Exp (a)
      z = custom.Opaque (b)
      y = Neg (z)
    }""", header='<ir_version: 8, opset_import: ["" : 17, "custom" : 1]>\n')
    m.functions.append(helper.make_function("custom", "Opaque", ["i"], ["o"], [_N("Neg", ["i"], ["o"])],
                                            [helper.make_opsetid("", 17)]))
    first = fused(m, level=2).model
    assert [(n.name, n.op_type) for n in first.graph.node][0] == ("autofuse/g0", "FusedElementwise_0")
    first.graph.node.extend([_N("Relu", ["y"], ["y2"]), _N("Exp", ["y2"], ["y3"])])
    first.graph.output[0].name = "y3"
    second = fused(first, level=2)
    assert [(n.name, n.op_type) for n in second.model.graph.node if n.domain == "ai.autofuse"] == [
        ("autofuse/g0", "FusedElementwise_0"), ("autofuse/g0_1", "FusedElementwise_0_1")]
    assert [g["op_type"] for g in second.report["groups"]] == ["FusedElementwise_0_1"]
    names = [(f.domain, f.name) for f in second.model.functions]
    assert len(set(names)) == len(names), names
