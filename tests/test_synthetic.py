"""The benchmark's synthetic Llama-style stacks are valid ONNX models that onnxruntime runs."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import (  # noqa: E402
    IR_VERSION,
    OPSET,
    count_nodes,
    layers_for_nodes,
    make_stack,
    nodes_per_layer,
    random_inputs,
)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray], num_layers: int, heads: int) -> np.ndarray:
    """NumPy Llama forward pass with the model's (shared) weights."""
    w = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    hidden = w["model.norm.weight"].shape[0]
    hd = hidden // heads

    def rms(x, g):
        return g * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6))

    def rot(x, cos, sin):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return x * cos + np.concatenate([-x2, x1], axis=-1) * sin

    ids, am, pos = feeds["input_ids"], feeds["attention_mask"], feeds["position_ids"]
    b, s = ids.shape
    h = w["model.embed_tokens.weight"][ids]
    freqs = pos[..., None].astype(np.float32) * w["model.rotary_emb.inv_freq"][0]
    emb = np.concatenate([freqs, freqs], axis=-1)[:, None]
    cos, sin = np.cos(emb), np.sin(emb)
    mask = (1 - np.tril(np.ones((s, s), np.float32))) * -1e4 + ((1 - am[:, None, None, :]) * -1e4)
    p = "model.layers."
    for _ in range(num_layers):
        x = rms(h, w[p + "input_layernorm.weight"])

        def heads_of(t):
            return t.reshape(b, s, heads, hd).transpose(0, 2, 1, 3)

        q = rot(heads_of(x @ w[p + "self_attn.q_proj.weight"]), cos, sin)
        k = rot(heads_of(x @ w[p + "self_attn.k_proj.weight"]), cos, sin)
        v = heads_of(x @ w[p + "self_attn.v_proj.weight"])
        sc = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + mask
        pr = np.exp(sc - sc.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(b, s, hidden)
        h = h + ctx @ w[p + "self_attn.o_proj.weight"]
        x = rms(h, w[p + "post_attention_layernorm.weight"])
        g = x @ w[p + "mlp.gate_proj.weight"]
        act = g / (1 + np.exp(-g))
        h = h + (act * (x @ w[p + "mlp.up_proj.weight"])) @ w[p + "mlp.down_proj.weight"]
    return rms(h, w["model.norm.weight"]) @ w["lm_head.weight"]


@pytest.mark.parametrize("layers", [2, 7])
def test_checker_valid_and_runs_in_onnxruntime(layers: int) -> None:
    model = make_stack(layers)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    # symbolic batch / sequence dims
    for vi in model.graph.input:
        assert [d.dim_param for d in vi.type.tensor_type.shape.dim] == ["batch", "sequence"]
    # shared weights: the initializer set does not grow with the number of layers
    assert len(model.graph.initializer) == len(make_stack(1).graph.initializer)

    for batch, seq in [(2, 8), (1, 5)]:
        feeds = random_inputs(batch=batch, seq=seq)
        out = _run(model, feeds)
        assert out.shape == (batch, seq, 64)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, _reference(model, feeds, layers, heads=2), rtol=1e-4, atol=1e-4)


def test_llama_layer_ops_are_written_out() -> None:
    ops = Counter(n.op_type for n in make_stack(6).graph.node)
    for op in ("Pow", "ReduceMean", "Sqrt", "Reciprocal", "Div", "Cast", "Slice", "Neg", "Concat",
               "Softmax", "Sigmoid", "Transpose", "Reshape", "MatMul"):
        assert ops[op] > 0, op
    assert ops["Softmax"] == 6 and ops["Sigmoid"] == 6
    # per layer q k v o, scores, context, gate up down; once: inv_freq, lm_head
    assert ops["MatMul"] == 6 * 9 + 2


def test_node_count_grows_linearly_with_layers() -> None:
    info = nodes_per_layer()
    period = len(info["per_layer_cycle"])
    counts = {n: len(make_stack(n).graph.node) for n in (1, 2, 3, period, 2 * period, 3 * period)}
    for n, c in counts.items():
        assert c == count_nodes(n)
    # exactly linear over whole periods
    assert counts[3 * period] - counts[2 * period] == counts[2 * period] - counts[period] == sum(info["per_layer_cycle"])
    assert 40 <= info["average"] <= 80


def test_layers_for_nodes_hits_the_target() -> None:
    for target in (1_000, 2_000, 5_000, 10_000, 20_000, 50_000):
        layers = layers_for_nodes(target)
        assert abs(count_nodes(layers) - target) <= 60, (target, layers, count_nodes(layers))
    assert layers_for_nodes(1) == 1
