"""The calls a rewritten PyTorch graph makes for its fused groups.

Two kinds:

- `torch.ops.autofuse.fused(name, inputs) -> outputs`: our custom op (torch.library, namespace
  `autofuse`). `name` selects a group's subgraph -- the original ATen nodes, registered by the
  rewrite -- and the op runs it. It has no device-specific kernel: it runs the ATen ops on
  whatever device the inputs are on, so it gives the original numbers on CPU (and on an NPU runs
  the ops one by one). Its fake (meta) implementation runs the same subgraph on FakeTensors, so a
  rewritten graph still traces under torch.export, dynamo and make_fx. The subgraphs live in
  this process's registry: a graph that calls `autofuse::fused` runs in the process that built it.
- torch_npu lowerings: for a rule whose `lowering.torch_npu` names a torch_npu fused op, a
  function that emits the FX nodes calling it with the rule's captures, including the argument
  conventions torch_npu has (`npu_rms_norm` returns (y, rstd): take [0]; `npu_swiglu` activates
  the FIRST half of one tensor: concatenate [gate, up]; `npu_fusion_attention` takes a boolean
  mask with True = masked out and has no causal flag in its default sparse mode: pass the causal
  mask explicitly; `npu_rotary_mul` rotates interleaved pairs in its 'interleave' mode: repeat
  cos/sin pairwise and de-interleave its output). These calls only run where torch_npu and an
  Ascend NPU are present -- never here: tests check them against a stand-in torch_npu module that
  computes the documented semantics on CPU (tests/test_fx_rewrite.py).

torch is imported lazily.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autofuse.candidates.rules.matcher import Match
from autofuse.errors import InputError
from autofuse.ir.graph import Graph, Node

NAMESPACE = "autofuse"
FUSED_SCHEMA = "(str name, Tensor[] inputs) -> Tensor[]"
# A float attention mask counts as "masked out" at or below this value (0 / -inf / dtype min
# masks); the ONNX attention rules bound their `masked` constant the same way.
MASKED_BELOW = -1.0e4

_SUBGRAPHS: dict[str, Callable] = {}
_LIBRARIES: list = []


# -- the autofuse::fused custom op ------------------------------------------------------------


def register_subgraph(label: str, module) -> str:
    """Register a group's subgraph (a GraphModule of its ATen nodes); returns its op name.

    The name is the label plus a digest of the subgraph's code, so equal subgraphs share one
    entry and different ones never collide, across models in one process.
    """
    digest = hashlib.sha1(module.code.encode()).hexdigest()[:10]
    name = f"{label}_{digest}"
    _SUBGRAPHS.setdefault(name, module)
    return name


def subgraph(name: str):
    """The registered subgraph `name`."""
    found = _SUBGRAPHS.get(name)
    if found is None:
        raise InputError(f"autofuse::fused: no subgraph '{name}' in this process (the rewritten graph must run "
                         "in the process that built it)")
    return found


def _run(name: str, inputs: list) -> list:
    outputs = list(subgraph(name)(*inputs))
    seen: list = []
    for i, out in enumerate(outputs):
        # A custom op must return fresh tensors: a view or a repeat of an input or of another
        # output is copied (the same rule in real and fake mode, so strides agree).
        if out._base is not None or any(out is t for t in (*inputs, *seen)):
            outputs[i] = out.clone()
        seen.append(outputs[i])
    return outputs


@functools.cache
def fused_op():
    """`torch.ops.autofuse.fused.default`, defined on first use."""
    import torch

    library = torch.library.Library(NAMESPACE, "FRAGMENT")
    library.define(f"fused{FUSED_SCHEMA}")
    library.impl("fused", _run, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::fused", _run, lib=library)
    _LIBRARIES.append(library)  # the registration lives as long as the Library object
    return torch.ops.autofuse.fused.default


# -- torch_npu ----------------------------------------------------------------------------------


def npu_backend_available() -> bool:
    """True when torch_npu imports and an Ascend NPU is visible (never on this machine)."""
    try:
        import torch
        importlib.import_module("torch_npu")
        return bool(torch.npu.is_available())
    except Exception:  # noqa: BLE001 - no torch_npu, no NPU, or a broken install: use the CPU path
        return False


def torch_npu_module():
    """The torch_npu module (InputError when it does not import)."""
    try:
        return importlib.import_module("torch_npu")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"backend 'npu' needs torch_npu, which does not import here ({exc})") from None


@dataclass
class Lowering:
    """What a torch_npu lowering reads (the rule's match) and how it emits nodes (into `graph`)."""

    graph: Any  # torch.fx.Graph being built
    ir: Graph
    match: Match
    value: Callable[[str], Any]  # IR value name -> the node holding it in `graph`
    npu: Any  # the torch_npu module

    def capture(self, name: str):
        return self.value(self.match.values[name])

    def constant(self, name: str) -> float:
        return float(self.match.constants[name])

    def node_of(self, op_type: str) -> Node:
        """The matched IR node of this op type (for the attributes a lowering needs)."""
        return next(self.ir.nodes[i] for i in sorted(self.match.nodes) if self.ir.nodes[i].op_type == op_type)

    def shape(self, capture: str) -> tuple:
        return self.ir.type_of(self.match.values[capture]).shape

    def call(self, target, *args, **kwargs):
        return self.graph.call_function(target, args, kwargs)

    def item(self, node, index: int):
        return self.call(operator.getitem, node, index)

    def aten(self, name: str, *args, **kwargs):
        import torch

        op_name, _, overload = name.partition(".")
        return self.call(getattr(getattr(torch.ops.aten, op_name), overload or "default"), *args, **kwargs)


def _rms_norm(low: Lowering) -> dict:
    out = low.call(low.npu.npu_rms_norm, low.capture("x"), low.capture("weight"), epsilon=low.constant("eps"))
    return {"y": low.item(out, 0)}  # (y, rstd)


def _add_rms_norm(low: Lowering) -> dict:
    out = low.call(low.npu.npu_add_rms_norm, low.capture("a"), low.capture("b"), low.capture("weight"),
                   epsilon=low.constant("eps"))
    total = low.item(out, 2)  # (y, rstd, x = a + b)
    bound = {"y": low.item(out, 0), "sum": total}
    if "xf" in low.match.values:
        same = low.match.values["xf"] == low.match.values["sum"]
        dtype = low.ir.type_of(low.match.values["xf"]).dtype
        bound["xf"] = total if same else low.aten("_to_copy", total, dtype=_torch_dtype(dtype))
    return bound


def _swiglu(low: Lowering) -> dict:
    joined = low.aten("cat", [low.capture("gate"), low.capture("up")], -1)  # the gate is the FIRST half
    return {"y": low.call(low.npu.npu_swiglu, joined, dim=-1)}


def _silu(low: Lowering) -> dict:
    return {"y": low.call(low.npu.npu_silu, low.capture("x"))}


def _gelu(low: Lowering) -> dict:
    approximate = "tanh" if low.match.rule.fused_op == "GeluTanh" else "none"
    return {"y": low.call(low.npu.npu_gelu, low.capture("x"), approximate=approximate)}


def _rotary_mul(low: Lowering) -> dict:
    if low.match.rule.fused_op == "RotaryMulInterleave":
        return _rotary_mul_interleave(low)
    return {"y": low.call(low.npu.npu_rotary_mul, low.capture("x"), low.capture("cos"), low.capture("sin"))}


def _rotary_mul_interleave(low: Lowering) -> dict:
    """rules/rotary.yaml `rotary_embedding_interleaved`: pairs (x[2i], x[2i+1]) rotated by one angle,
    cos/sin one value per pair (width D/2), the result written de-interleaved (real parts, then
    imaginary parts).

    torch_npu documents `npu_rotary_mul(input, r1, r2, rotary_mode='half')` with rotary_mode "half"
    or "interleave"; in "interleave" mode it computes input * r1 + rotate(input) * r2 where
    rotate(input)[2i] = -input[2i+1] and rotate(input)[2i+1] = input[2i] (torch_npu API reference,
    torch_npu.npu_rotary_mul: hiascend.com/document/detail/zh/Pytorch/700/apiref/apilist/
    ptaoplist_000141.html, and Ascend/op-plugin docs/context/torch_npu-npu_rotary_mul.md). So r1/r2
    are cos/sin repeated pairwise ([c0, c0, c1, c1, ...]), and its output, interleaved like its
    input, is split back into its even then odd elements. Older torch_npu releases document
    npu_rotary_mul without rotary_mode (half mode only); they refuse this call (unknown argument).
    """
    r1 = low.aten("repeat_interleave.self_int", low.capture("cos"), 2, -1)
    r2 = low.aten("repeat_interleave.self_int", low.capture("sin"), 2, -1)
    out = low.call(low.npu.npu_rotary_mul, low.capture("x"), r1, r2, rotary_mode="interleave")
    real = low.aten("slice.Tensor", out, -1, 0, None, 2)
    imaginary = low.aten("slice.Tensor", out, -1, 1, None, 2)
    return {"y": low.aten("cat", [real, imaginary], -1)}


def _fusion_attention(low: Lowering) -> dict:
    import torch

    attention = low.node_of("Attention")
    q_shape, k_shape = low.shape("q"), low.shape("k")
    if "mask" in low.match.values:
        mask = low.capture("mask")
        if low.ir.type_of(low.match.values["mask"]).dtype == "bool":
            masked = low.aten("logical_not", mask)  # torch: True = attend; torch_npu: True = masked out
        else:
            masked = low.aten("le.Scalar", mask, MASKED_BELOW)
    elif attention.attrs.get("is_causal"):
        # torch's causal mask is the top-left aligned lower triangle; torch_npu wants it explicit.
        ones = low.aten("ones", [q_shape[2], k_shape[2]], dtype=torch.bool)
        masked = low.aten("triu", ones, 1)
    else:
        masked = None
    out = low.call(low.npu.npu_fusion_attention, low.capture("q"), low.capture("k"), low.capture("v"),
                   q_shape[1], "BNSD", atten_mask=masked, scale=float(attention.attrs["scale"]))
    return {"y": low.item(out, 0)}  # (attention_out, softmax_max, softmax_sum, ...)


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name)


#: torch_npu function named by a rule's `lowering.torch_npu` -> the function emitting its call.
NPU_LOWERINGS: dict[str, Callable[[Lowering], dict]] = {
    "torch_npu.npu_rms_norm": _rms_norm,
    "torch_npu.npu_add_rms_norm": _add_rms_norm,
    "torch_npu.npu_swiglu": _swiglu,
    "torch_npu.npu_silu": _silu,
    "torch_npu.npu_gelu": _gelu,
    "torch_npu.npu_rotary_mul": _rotary_mul,
    "torch_npu.npu_fusion_attention": _fusion_attention,
}
