"""Which axes a reduction or normalization combines, normalized to non-negative ints."""
from __future__ import annotations

from dataclasses import dataclass

from autofuse.ir.graph import Dim, Graph, Node

# Reduce* ops that take `axes` as an input (instead of an attribute) from this opset on.
_AXES_INPUT_SINCE = {"ReduceSum": 13}
_AXES_INPUT_DEFAULT = 18
_LAST_AXES_OPS = {"LayerNormalization", "RMSNormalization"}  # reduce axis..rank-1
_SOFTMAX_LIKE = {"Softmax", "LogSoftmax", "Hardmax"}


@dataclass(frozen=True)
class ReductionSignature:
    """The row space a reduction works in: the reduced tensor's shape and the reduced axes.

    Two reductions may share one fused kernel only when their signatures are equal.
    """

    shape: tuple[Dim, ...]
    axes: tuple[int, ...]


def reduction_signature(node: Node, graph: Graph) -> ReductionSignature | None:
    """The signature of a REDUCTION/NORMALIZATION node, or None when it cannot be determined."""
    source = graph.type_of(node.inputs[0]) if node.inputs and node.inputs[0] else None
    if source is None or source.shape is None:
        return None
    axes = _axes(node, graph, len(source.shape))
    if axes is None:
        return None
    return ReductionSignature(source.shape, axes)


def _normalize(axes, rank: int) -> tuple[int, ...] | None:
    result = []
    for axis in axes:
        axis = int(axis)
        if not -rank <= axis < max(rank, 1):
            return None
        result.append(axis % rank if rank else 0)
    return tuple(sorted(set(result)))


def _axes(node: Node, graph: Graph, rank: int) -> tuple[int, ...] | None:
    op = node.op_type
    if op.startswith("Reduce"):
        return _reduce_axes(node, graph, rank)
    if op in ("ArgMax", "ArgMin"):
        return _normalize([node.attrs.get("axis", 0)], rank)
    if op.startswith("Global"):
        return tuple(range(2, rank))
    if op in _SOFTMAX_LIKE:
        if graph.opset >= 13:
            return _normalize([node.attrs.get("axis", -1)], rank)
        first = _normalize([node.attrs.get("axis", 1)], rank)  # coerced to 2-D before opset 13
        return None if first is None else tuple(range(first[0], rank))
    if op in _LAST_AXES_OPS:
        first = _normalize([node.attrs.get("axis", -1)], rank)
        return None if first is None else tuple(range(first[0], rank))
    return None


def _reduce_axes(node: Node, graph: Graph, rank: int) -> tuple[int, ...] | None:
    since = _AXES_INPUT_SINCE.get(node.op_type, _AXES_INPUT_DEFAULT)
    if graph.opset >= since:
        axes_input = node.inputs[1] if len(node.inputs) > 1 else ""
        if not axes_input:
            axes = ()
        else:
            value = graph.constant(axes_input)
            if value is None:
                return None  # axes computed at run time
            axes = tuple(value.reshape(-1).tolist())
    else:
        axes = tuple(node.attrs.get("axes", ()))
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return ()
        return tuple(range(rank))
    return _normalize(axes, rank)
