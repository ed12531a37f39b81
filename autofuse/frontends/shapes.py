"""Fallback shape inference for what the front end's own inference left unknown.

Only rules that cannot guess: broadcasting of elementwise ops, dtype-only changes (Cast) and
identity views. Anything else that is unknown stays unknown.
"""
from __future__ import annotations

import dataclasses

from autofuse.ir.graph import UNKNOWN, Graph, Node, TensorType
from autofuse.ir.shapes import broadcast_shapes
from autofuse.ops.table import OpClass, op_class

_COMPARISONS = frozenset("Equal Greater GreaterOrEqual Less LessOrEqual IsNaN IsInf And Or Xor Not".split())
_CAST_TYPES = {1: "float32", 10: "float16", 16: "bfloat16", 11: "float64", 6: "int32", 7: "int64",
               9: "bool", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 12: "uint32", 13: "uint64"}


def complete_shapes(graph: Graph) -> Graph:
    """A copy of `graph` with the unknown output types filled in where the rules above allow."""
    values = dict(graph.values)
    changed = False
    for node in graph.nodes:
        if len(node.outputs) != 1 or not node.outputs[0]:
            continue
        current = values.get(node.outputs[0], UNKNOWN)
        if current.dtype is not None and current.shape is not None:
            continue
        guess = _infer(node, values)
        if guess is None:
            continue
        values[node.outputs[0]] = TensorType(current.dtype or guess.dtype,
                                             current.shape if current.shape is not None else guess.shape)
        changed = True
    return dataclasses.replace(graph, values=values) if changed else graph


def _infer(node: Node, values: dict[str, TensorType]) -> TensorType | None:
    kind = op_class(node)
    inputs = [values.get(v, UNKNOWN) for v in node.inputs if v]
    if not inputs:
        return None
    if node.op_type == "Cast":
        return TensorType(_CAST_TYPES.get(node.attrs.get("to", 0)), inputs[0].shape)
    if node.op_type == "Identity":
        return inputs[0]
    if kind != OpClass.ELEMENTWISE or node.op_type in ("DequantizeLinear", "QuantizeLinear", "CastLike"):
        return None
    operands = inputs[1:] if node.op_type == "Where" else inputs
    dtype = "bool" if node.op_type in _COMPARISONS else operands[0].dtype
    shapes = [t.shape for t in inputs]
    if any(s is None for s in shapes):
        return TensorType(dtype, None)
    return TensorType(dtype, broadcast_shapes(shapes))  # type: ignore[arg-type]
