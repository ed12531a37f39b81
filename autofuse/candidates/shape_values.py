"""Which values are shape metadata: small integer tensors computed only from Shape/Size outputs
and constants (the per-layer Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains exporters
write; in a static-shape export the same chains start from constants: ConstantOfShape -> Mul ->
Equal -> Where sizing an Expand). Such chains run as one host-side computation; they never touch
tensor data."""
from __future__ import annotations

from autofuse.ir.graph import Graph, Node

# Ops that may appear in a shape computation. Generators whose output size is a runtime value
# (Range, Expand) are excluded: their output is data, however it was sized.
SHAPE_OPS = frozenset("""
    Abs Add And Cast Concat ConstantOfShape Div Equal Gather Greater Identity Less Max Min Mod Mul
    Neg Not Or Reshape Slice Squeeze Sub Unsqueeze Where""".split())
_SMALL_DTYPES = frozenset({"int64", "int32", "bool"})


def shape_value_nodes(graph: Graph) -> frozenset[int]:
    """Ids of the nodes that compute shape metadata (Shape and Size themselves excluded)."""
    return graph.derived(_shape_value_nodes)


def _shape_value_nodes(graph: Graph) -> frozenset[int]:
    metadata: set[str] = set()
    nodes: set[int] = set()
    for node in graph.nodes:
        if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
            metadata.update(node.outputs)
        elif _computes_shape(node, graph, metadata):
            metadata.update(node.outputs)
            nodes.add(node.id)
    return frozenset(nodes)


def _computes_shape(node: Node, graph: Graph, metadata: set[str]) -> bool:
    if node.op_type not in SHAPE_OPS or node.domain not in ("", "ai.onnx"):
        return False
    inputs = [v for v in node.all_inputs if v]
    if not inputs or not all(v in metadata or v in graph.constants for v in inputs):
        return False
    # A chain starts at Shape/Size, or (static exports) at a ConstantOfShape making a 1-D integer
    # tensor of a constant size (the ones an Expand's target is computed from); other nodes of
    # constants alone stay where they are (a Reshape target joins its kernel, a mask's "true" its
    # data).
    if not any(v in metadata for v in inputs) and not _starts_a_chain(node, graph):
        return False
    for out in node.outputs:
        kind = graph.type_of(out)
        if kind.dtype not in _SMALL_DTYPES or kind.rank is None or kind.rank > 1:
            return False
    return True


def _starts_a_chain(node: Node, graph: Graph) -> bool:
    kind = graph.type_of(node.outputs[0])
    return node.op_type == "ConstantOfShape" and kind.dtype in ("int64", "int32") and kind.rank == 1
