"""Synthetic Llama-style decoder stacks, built directly with ``onnx.helper``.

The graphs imitate what the PyTorch exporters emit for a ``LlamaForCausalLM``
whose ops are written out (no fused RMSNorm / rotary / attention kernels):

prelude (once)
    ``input_ids`` -> Gather(embed_tokens); rotary ``cos``/``sin`` from
    ``position_ids`` (Cast/Unsqueeze/MatMul inv_freq/Concat/Cos/Sin); an
    additive causal + padding mask from the 2-D ``attention_mask``
    (Shape/Gather/ConstantOfShape/Trilu/Sub/Mul/Add).
each layer
    RMSNorm written out (Pow, ReduceMean, Add eps, Sqrt, then Reciprocal+Mul,
    Div(1, .)+Mul or Div(x, .), Mul weight; every other layer wraps it in
    ``Cast(to=float)`` ... ``Cast(to=float)`` like ``hidden.to(float32)`` /
    ``.to(input_dtype)``), Q/K/V MatMuls, Reshape+Transpose to heads, rotary
    embedding in rotate-half form (Slice, Slice, Neg, Concat, Mul cos, Mul sin,
    Add) on q and k, attention (Transpose k, MatMul, Div sqrt(d), Add mask,
    Softmax, MatMul v), Transpose+Reshape back, o_proj MatMul, residual Add,
    RMSNorm again, SwiGLU MLP (MatMul gate, MatMul up, Sigmoid, Mul, Mul,
    MatMul down), residual Add.
epilogue (once)
    final RMSNorm, ``lm_head`` MatMul -> ``logits``.

Every layer reuses the *same* initializers (weights and constants), and the
hidden size is tiny, so even a ~50k-node model is a few MB on disk and runs in
onnxruntime in well under a second.  Batch and sequence are symbolic
(``dim_param``).  Models are written at IR version 10, opset 17.

Nodes per layer: the RMSNorm variant cycles with period 3 and the Cast wrap
with period 2, so the per-layer count cycles with period 6; on average a layer
has :data:`NODES_PER_LAYER_AVG` nodes (see :func:`nodes_per_layer`).
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
OPSET = 17
INT64_MAX = 9223372036854775807

__all__ = [
    "make_stack",
    "layers_for_nodes",
    "count_nodes",
    "nodes_per_layer",
    "random_inputs",
    "IR_VERSION",
    "OPSET",
]


class _Builder:
    """Collects nodes and shared initializers; names nodes exporter-style."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self._names: set[str] = set()

    def const(self, name: str, value, dtype=np.float32) -> str:
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        return name

    def weight(self, name: str, arr: np.ndarray) -> str:
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(arr.astype(np.float32), name)
        return name

    def op(self, op_type: str, inputs: list[str], scope: str, n_out: int = 1, **attrs) -> str | list[str]:
        name = f"{scope}/{op_type}"
        # exporter-style de-duplication: /x/Mul, /x/Mul_1, ...
        base, k = name, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        outs = [f"{name}_output_{j}" for j in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs


def _rms_norm(b: _Builder, x: str, weight: str, scope: str, variant: int, cast: bool) -> str:
    eps = b.const("const_eps", 1e-6)
    two = b.const("const_two", 2.0)
    if cast:
        x = b.op("Cast", [x], scope, to=TensorProto.FLOAT)
    sq = b.op("Pow", [x, two], scope)
    var = b.op("ReduceMean", [sq], scope, axes=[-1], keepdims=1)
    var = b.op("Add", [var, eps], scope)
    std = b.op("Sqrt", [var], scope)
    if variant == 0:  # torch.rsqrt -> Sqrt, Reciprocal, Mul
        inv = b.op("Reciprocal", [std], scope)
        y = b.op("Mul", [x, inv], scope)
    elif variant == 1:  # 1 / sqrt(...) -> Sqrt, Div(1, .), Mul
        inv = b.op("Div", [b.const("const_one", 1.0), std], scope)
        y = b.op("Mul", [x, inv], scope)
    else:  # x / sqrt(...)
        y = b.op("Div", [x, std], scope)
    if cast:
        y = b.op("Cast", [y], scope, to=TensorProto.FLOAT)
    return b.op("Mul", [weight, y], scope)


def _rotary(b: _Builder, x: str, cos: str, sin: str, scope: str, half: int) -> str:
    axes = b.const("const_axes_last", [-1], np.int64)
    x1 = b.op("Slice", [x, b.const("const_zero_i64", [0], np.int64), b.const("const_half", [half], np.int64), axes], scope)
    x2 = b.op("Slice", [x, b.const("const_half", [half], np.int64), b.const("const_int64_max", [INT64_MAX], np.int64), axes], scope)
    nx2 = b.op("Neg", [x2], scope)
    rot = b.op("Concat", [nx2, x1], scope, axis=-1)
    a = b.op("Mul", [x, cos], scope)
    c = b.op("Mul", [rot, sin], scope)
    return b.op("Add", [a, c], scope)


def _layer(b: _Builder, i: int, h: str, cos: str, sin: str, mask: str, *, hidden: int, heads: int) -> str:
    hd = hidden // heads
    s = f"/model/layers.{i}"
    variant, cast = i % 3, (i % 2 == 1)
    to_heads = b.const("const_shape_heads", [0, 0, heads, hd], np.int64)
    to_hidden = b.const("const_shape_hidden", [0, 0, hidden], np.int64)

    x = _rms_norm(b, h, "model.layers.input_layernorm.weight", f"{s}/input_layernorm", variant, cast)
    a = f"{s}/self_attn"
    q = b.op("MatMul", [x, "model.layers.self_attn.q_proj.weight"], f"{a}/q_proj")
    k = b.op("MatMul", [x, "model.layers.self_attn.k_proj.weight"], f"{a}/k_proj")
    v = b.op("MatMul", [x, "model.layers.self_attn.v_proj.weight"], f"{a}/v_proj")
    q = b.op("Transpose", [b.op("Reshape", [q, to_heads], a)], a, perm=[0, 2, 1, 3])
    k = b.op("Transpose", [b.op("Reshape", [k, to_heads], a)], a, perm=[0, 2, 1, 3])
    v = b.op("Transpose", [b.op("Reshape", [v, to_heads], a)], a, perm=[0, 2, 1, 3])
    q = _rotary(b, q, cos, sin, f"{a}/rotary_q", hd // 2)
    k = _rotary(b, k, cos, sin, f"{a}/rotary_k", hd // 2)
    kt = b.op("Transpose", [k], a, perm=[0, 1, 3, 2])
    scores = b.op("MatMul", [q, kt], a)
    scores = b.op("Div", [scores, b.const("const_sqrt_head_dim", math.sqrt(hd))], a)
    scores = b.op("Add", [scores, mask], a)
    probs = b.op("Softmax", [scores], a, axis=-1)
    ctx = b.op("MatMul", [probs, v], a)
    ctx = b.op("Transpose", [ctx], a, perm=[0, 2, 1, 3])
    ctx = b.op("Reshape", [ctx, to_hidden], a)
    o = b.op("MatMul", [ctx, "model.layers.self_attn.o_proj.weight"], f"{a}/o_proj")
    h = b.op("Add", [h, o], s)

    x = _rms_norm(b, h, "model.layers.post_attention_layernorm.weight", f"{s}/post_attention_layernorm", variant, cast)
    m = f"{s}/mlp"
    gate = b.op("MatMul", [x, "model.layers.mlp.gate_proj.weight"], f"{m}/gate_proj")
    up = b.op("MatMul", [x, "model.layers.mlp.up_proj.weight"], f"{m}/up_proj")
    act = b.op("Mul", [gate, b.op("Sigmoid", [gate], f"{m}/act_fn")], f"{m}/act_fn")
    down = b.op("MatMul", [b.op("Mul", [act, up], m), "model.layers.mlp.down_proj.weight"], f"{m}/down_proj")
    return b.op("Add", [h, down], s)


def _prelude(b: _Builder, hidden: int, heads: int) -> tuple[str, str, str, str]:
    hd = hidden // heads
    p = "/model"
    h = b.op("Gather", ["model.embed_tokens.weight", "input_ids"], f"{p}/embed_tokens", axis=0)
    # rotary cos/sin: [batch, 1, seq, head_dim]
    r = f"{p}/rotary_emb"
    pos = b.op("Cast", ["position_ids"], r, to=TensorProto.FLOAT)
    pos = b.op("Unsqueeze", [pos, b.const("const_axes_last", [-1], np.int64)], r)
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    freqs = b.op("MatMul", [pos, b.weight("model.rotary_emb.inv_freq", inv_freq.reshape(1, -1))], r)
    emb = b.op("Concat", [freqs, freqs], r, axis=-1)
    one_ax = b.const("const_axes_1", [1], np.int64)
    cos = b.op("Unsqueeze", [b.op("Cos", [emb], r), one_ax], r)
    sin = b.op("Unsqueeze", [b.op("Sin", [emb], r), one_ax], r)
    # additive mask: causal [S, S] + padding [B, 1, 1, S] -> [B, 1, S, S]
    mk = f"{p}/mask"
    shp = b.op("Shape", ["input_ids"], mk)
    seq = b.op("Gather", [shp, b.const("const_one_i64", 1, np.int64)], mk, axis=0)
    seq = b.op("Unsqueeze", [seq, b.const("const_axes_0", [0], np.int64)], mk)
    ss = b.op("Concat", [seq, seq], mk, axis=0)
    ones = b.op(
        "ConstantOfShape", [ss], mk, value=numpy_helper.from_array(np.array([1.0], dtype=np.float32))
    )
    tri = b.op("Trilu", [ones], mk, upper=0)
    neg = b.const("const_mask_min", -10000.0)
    one = b.const("const_one", 1.0)
    causal = b.op("Mul", [b.op("Sub", [one, tri], mk), neg], mk)
    pad = b.op("Cast", ["attention_mask"], mk, to=TensorProto.FLOAT)
    pad = b.op("Unsqueeze", [pad, b.const("const_axes_1_2", [1, 2], np.int64)], mk)
    pad = b.op("Mul", [b.op("Sub", [one, pad], mk), neg], mk)
    mask = b.op("Add", [causal, pad], mk)
    return h, cos, sin, mask


def _epilogue(b: _Builder, h: str) -> str:
    x = _rms_norm(b, h, "model.norm.weight", "/model/norm", 0, False)
    return b.op("MatMul", [x, "lm_head.weight"], "/lm_head")


def _weights(b: _Builder, hidden: int, intermediate: int, vocab: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def w(*shape):
        return rng.normal(0.0, 0.05, size=shape).astype(np.float32)

    b.weight("model.embed_tokens.weight", w(vocab, hidden) * 10)
    for n in ("input_layernorm", "post_attention_layernorm"):
        b.weight(f"model.layers.{n}.weight", 1.0 + w(hidden))
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        b.weight(f"model.layers.self_attn.{n}.weight", w(hidden, hidden))
    b.weight("model.layers.mlp.gate_proj.weight", w(hidden, intermediate))
    b.weight("model.layers.mlp.up_proj.weight", w(hidden, intermediate))
    b.weight("model.layers.mlp.down_proj.weight", w(intermediate, hidden))
    b.weight("model.norm.weight", 1.0 + w(hidden))
    b.weight("lm_head.weight", w(hidden, vocab))


def make_stack(
    num_layers: int,
    *,
    hidden: int = 16,
    heads: int = 2,
    seed: int = 0,
    intermediate: int | None = None,
    vocab: int = 64,
) -> onnx.ModelProto:
    """Build a ``num_layers``-layer Llama-style decoder (weights shared by all layers)."""
    if num_layers < 1:
        raise ValueError("num_layers must be >= 1")
    if hidden % heads or (hidden // heads) % 2:
        raise ValueError("hidden must be divisible by heads and head_dim must be even")
    intermediate = intermediate or 2 * hidden
    b = _Builder()
    _weights(b, hidden, intermediate, vocab, seed)
    h, cos, sin, mask = _prelude(b, hidden, heads)
    for i in range(num_layers):
        h = _layer(b, i, h, cos, sin, mask, hidden=hidden, heads=heads)
    logits = _epilogue(b, h)
    # the graph output gets a stable name
    b.nodes[-1].output[0] = "logits"

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", vocab])]
    del logits
    graph = helper.make_graph(
        b.nodes, f"synthetic_llama_{num_layers}L", inputs, outputs, initializer=list(b.inits.values())
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="autofuse-bench-synthetic",
        producer_version="0.1",
        ir_version=IR_VERSION,
    )
    model.doc_string = f"synthetic Llama-style decoder: layers={num_layers} hidden={hidden} heads={heads} seed={seed}"
    return model


# -- node counting ----------------------------------------------------------------------------

_PERIOD = 6  # lcm of the RMSNorm-variant period (3) and the Cast-wrap period (2)


def _count_parts(hidden: int = 16, heads: int = 2) -> tuple[int, list[int]]:
    """(fixed nodes outside the layers, nodes of layers 0..5)."""
    b = _Builder()
    h, cos, sin, mask = _prelude(b, hidden, heads)
    fixed = len(b.nodes)
    per = []
    for i in range(_PERIOD):
        n0 = len(b.nodes)
        h = _layer(b, i, h, cos, sin, mask, hidden=hidden, heads=heads)
        per.append(len(b.nodes) - n0)
    n0 = len(b.nodes)
    _epilogue(b, h)
    fixed += len(b.nodes) - n0
    return fixed, per


_FIXED, _PER = _count_parts()
NODES_PER_LAYER_AVG = sum(_PER) / _PERIOD


def nodes_per_layer() -> dict[str, object]:
    """Per-layer node counts (they cycle with period 6) and the fixed prelude/epilogue count."""
    return {"per_layer_cycle": list(_PER), "average": NODES_PER_LAYER_AVG, "fixed": _FIXED}


def count_nodes(num_layers: int) -> int:
    """Exact node count of ``make_stack(num_layers)`` without building it."""
    full, rest = divmod(num_layers, _PERIOD)
    return _FIXED + full * sum(_PER) + sum(_PER[:rest])


def layers_for_nodes(target_nodes: int) -> int:
    """Number of layers whose stack has the node count closest to ``target_nodes`` (>= 1)."""
    guess = max(1, round((target_nodes - _FIXED) / NODES_PER_LAYER_AVG))
    best = min(range(max(1, guess - 3), guess + 4), key=lambda n: (abs(count_nodes(n) - target_nodes), n))
    return best


def random_inputs(batch: int = 2, seq: int = 8, vocab: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Feeds for onnxruntime: token ids, a padding mask (last token of row 0 masked), positions."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), dtype=np.int64)
    if seq > 1:
        mask[0, -1] = 0
    return {
        "input_ids": rng.integers(0, vocab, size=(batch, seq), dtype=np.int64),
        "attention_mask": mask,
        "position_ids": np.tile(np.arange(seq, dtype=np.int64), (batch, 1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a synthetic Llama-style decoder stack.")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--layers", type=int)
    g.add_argument("--nodes", type=int, help="pick the layer count giving about this many nodes")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    layers = args.layers if args.layers is not None else layers_for_nodes(args.nodes)
    m = make_stack(layers, hidden=args.hidden, heads=args.heads, seed=args.seed)
    onnx.save(m, args.output)
    print(f"{args.output}: {layers} layers, {len(m.graph.node)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
