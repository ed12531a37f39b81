"""The PyTorch (FX) front end: ATen graphs -> the IR the rules, planner and cost model read."""
from __future__ import annotations

import operator
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autofuse import fuse
from autofuse.errors import InputError
from autofuse.frontends.fx import FX_OPSET, aten_key, aten_table, capture, load_fx
from autofuse.ops.table import OP_CLASS
from autofuse.testing import torch_models


@pytest.fixture(scope="module")
def llama():
    return load_fx(torch_models.export_decode_step("llama"))


def _ir_node(loaded, name):
    return next(n for n in loaded.graph.nodes if n.name == name)


def _fx_node(loaded, name):
    return next(n for n in loaded.module.graph.nodes if n.name == name)


def test_table_names_real_aten_overloads_and_ir_ops():
    table = aten_table()
    for key, mapping in table.ops.items():
        name, overload = key.split(".")
        assert getattr(getattr(torch.ops.aten, name), overload)._schema is not None, key
        assert mapping.op in OP_CLASS, f"{key} -> {mapping.op} is not an IR op"
        arguments = {a.name for a in getattr(getattr(torch.ops.aten, name), overload)._schema.arguments}
        for spec in mapping.inputs:
            assert spec.name in arguments or mapping.convert, f"{key}: no argument '{spec.name}'"
    for key in (*table.assertions, *table.expansions):
        name, overload = key.split(".")
        assert getattr(getattr(torch.ops.aten, name), overload) is not None


def test_every_aten_node_is_an_ir_node_named_like_it(llama):
    """Mapped or opaque, never dropped: every ATen call (bar the asserts) is one IR node."""
    assertions = aten_table().assertions
    aten_calls = {n.name for n in llama.module.graph.nodes
                  if n.op == "call_function" and aten_key(n.target) and aten_key(n.target) not in assertions}
    ir_names = {n.name for n in llama.graph.nodes}
    assert aten_calls <= ir_names
    opaque = {n.op_type for n in llama.graph.nodes if n.domain == "aten"}
    assert opaque == {"unbind.int", "stack.default"}  # the KV cache split and re-stack: no ONNX op
    assert llama.graph.opset == FX_OPSET


def test_types_come_from_the_fake_tensors(llama):
    graph = llama.graph
    for node in llama.module.graph.nodes:
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor) and node.name in graph.values:
            assert graph.type_of(node.name).shape == tuple(val.shape), node.name
            assert graph.type_of(node.name).dtype == str(val.dtype).removeprefix("torch.")
    assert graph.inputs == ("input_ids", "position_ids", "past_keys", "past_values")
    assert graph.type_of("past_keys").shape == (2, 1, 2, torch_models.PAST_LEN, 16)


def test_parameters_are_initializers_with_their_values(llama):
    graph = llama.graph
    model, _ = torch_models.build("llama")
    weight = "lm_model_layers_0_input_layernorm_weight"
    assert weight in graph.initializers
    want = model.lm.model.layers[0].input_layernorm.weight.detach().numpy()
    np.testing.assert_array_equal(graph.constant(weight), want)
    assert "lm_model_embed_tokens_weight" in graph.initializers


def test_python_numbers_become_constants_the_rules_read(llama):
    graph = llama.graph
    eps = torch_models.build("llama")[0].lm.config.rms_norm_eps
    adds = [n for n in graph.nodes if n.op_type == "Add" and graph.constant(n.inputs[1]) is not None
            and graph.type_of(n.inputs[0]).shape == (1, 1, 1)]
    assert adds and all(float(graph.constant(n.inputs[1])) == eps for n in adds)  # exactly, not float32-rounded
    pow_node = next(n for n in graph.nodes if n.op_type == "Pow")
    assert float(graph.constant(pow_node.inputs[1])) == 2.0
    mean = next(n for n in graph.nodes if n.op_type == "ReduceMean")
    assert graph.constant(mean.inputs[1]).tolist() == [-1] and mean.attrs["keepdims"] == 1


def test_argument_conversions(llama):
    graph = llama.graph
    linear = _ir_node(llama, "linear")
    assert linear.op_type == "Gemm" and linear.attrs == {"transB": 1}
    transpose = _ir_node(llama, "transpose")  # transpose(view, 1, 2) on a rank-4 tensor
    assert transpose.attrs["perm"] == (0, 2, 1, 3)
    slice_node = next(n for n in graph.nodes if n.op_type == "Slice" and graph.constant(n.inputs[1]).tolist() == [8])
    assert graph.constant(slice_node.inputs[2]).tolist() == [2**63 - 1]  # x[..., 8:]
    assert graph.constant(slice_node.inputs[3]).tolist() == [3]
    embedding = _ir_node(llama, "embedding")
    assert embedding.op_type == "Gather" and embedding.inputs == ("lm_model_embed_tokens_weight", "input_ids")
    attention = _ir_node(llama, "scaled_dot_product_attention")
    assert attention.op_type == "Attention" and attention.attrs == {"scale": 0.25, "is_causal": 0}
    assert len(attention.inputs) == 4  # q, k, v and the boolean decode mask
    silu = next(n for n in graph.nodes if n.op_type == "Swish")
    assert silu.attrs == {"alpha": 1.0}


def test_multi_output_ops_are_named_by_their_getitems(llama):
    unbind = _ir_node(llama, "unbind")
    getitems = [u.name for u in _fx_node(llama, "unbind").users if u.target is operator.getitem]
    assert set(unbind.outputs) == set(getitems) and len(unbind.outputs) == 2


def test_rsqrt_is_written_out_and_the_module_still_matches():
    program = torch_models.export_decode_step("llama")
    assert any(aten_key(n.target) == "rsqrt.default" for n in program.graph.nodes)
    loaded = load_fx(program)
    assert not any(aten_key(n.target) == "rsqrt.default" for n in loaded.module.graph.nodes)
    model, inputs = torch_models.build("llama")
    with torch.no_grad():
        for want, got in zip(model(*inputs), loaded.module(*inputs)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


class _Block(torch.nn.Module):
    """RMSNorm + SwiGLU + causal attention: the three single-op and written-out forms in one."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(16) + 0.5)
        self.gate = torch.nn.Linear(16, 32, bias=False)
        self.up = torch.nn.Linear(16, 32, bias=False)

    def forward(self, x):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight
        m = torch.nn.functional.silu(self.gate(h)) * self.up(h)
        q = m.view(m.shape[0], m.shape[1], 2, 16).transpose(1, 2)
        a = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
        return a.transpose(1, 2).reshape(m.shape)


def test_symbolic_sizes_become_named_dims_and_rules_still_match():
    block = _Block().eval()
    x = torch.randn(2, 5, 16)
    seq = torch.export.Dim("seq", min=2, max=64)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(block, (x,), dynamic_shapes={"x": {1: seq}}, strict=False)
    loaded = load_fx(program)
    shape = loaded.graph.type_of("x").shape
    assert shape[0] == 2 and isinstance(shape[1], str) and shape[2] == 16
    result = fuse(program, opt_level=1, backend="cpu")
    rules = sorted(g["rule"] for g in result.report["groups"])
    assert rules == ["attention_op_no_mask", "rms_norm", "swiglu"]
    longer = torch.randn(2, 9, 16)  # another sequence length than the one exported
    with torch.no_grad():
        torch.testing.assert_close(result.graph_module(longer), block(longer), rtol=1e-5, atol=1e-6)


def test_graph_module_input():
    program = torch_models.export_decode_step("qwen2")
    result = fuse(program.module(), opt_level=1, backend="cpu")
    assert result.loaded.source == "<GraphModule>"
    assert {g["rule"] for g in result.report["groups"]} >= {"rms_norm", "add_rms_norm", "swiglu", "attention_op"}


def test_bad_inputs_are_one_line_input_errors():
    with pytest.raises(InputError, match="expected a torch.export.ExportedProgram or torch.fx.GraphModule"):
        load_fx(object())
    traced = torch.fx.symbolic_trace(_Block())  # torch-level, no FakeTensor metadata
    with pytest.raises(InputError, match="input 'x' has no meta\\['val'\\]"):
        fuse(traced)

    class InPlace(torch.nn.Module):
        def forward(self, x):
            return x.add_(1)

    module = torch.fx.experimental.proxy_tensor.make_fx(InPlace(), tracing_mode="fake", pre_dispatch=True)(
        torch.randn(3))
    assert "aten.add_.Tensor" in module.code
    with pytest.raises(InputError, match="in-place ATen ops"):
        load_fx(module)
    with pytest.raises(InputError, match="torch.export could not capture it"):
        capture(_Block(), (torch.randn(2, 5, 7),), source="block")
