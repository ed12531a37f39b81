"""The op table: complete over the default domain, and per-node costs counted by hand."""
from __future__ import annotations

import onnx.defs

from autofuse.frontends.onnx import load_onnx
from autofuse.ops.table import OP_CLASS, OpClass, is_kernel, node_cost
from graphs import model


def test_every_default_domain_op_is_classified():
    names = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}
    missing = sorted(names - OP_CLASS.keys())
    assert missing == [], f"ops without a class: {missing}"


def test_representative_classes():
    assert OP_CLASS["Add"] == OpClass.ELEMENTWISE and OP_CLASS["Where"] == OpClass.ELEMENTWISE
    assert OP_CLASS["Reshape"] == OpClass.VIEW and OP_CLASS["Transpose"] == OpClass.INJECTIVE
    assert OP_CLASS["ReduceMean"] == OpClass.REDUCTION and OP_CLASS["Softmax"] == OpClass.NORMALIZATION
    assert OP_CLASS["MatMul"] == OpClass.CONTRACTION and OP_CLASS["If"] == OpClass.OPAQUE


GRAPH = """
g (float[2, 3, 8] x, int64[2, 3] ids) => (float[2, 3, 8] y, float[2, 3, 16] m, float[2, 3, 8] e)
  <float[8] w = {1, 1, 1, 1, 1, 1, 1, 1}, float[100, 8] table = {0}, int64[2] shp = {6, 8}, float[8, 16] k = {0}> {
  y = Add (x, w)
  r = Reshape (y, shp)
  m = MatMul (x, k)
  e = Gather (table, ids)
  s = Shape (x)
  c = Add (w, w)
}
"""


def _cost(name):
    loaded = load_onnx(model(GRAPH.replace("table = {0}", "table = {" + ",".join(["0"] * 800) + "}")
                             .replace("k = {0}", "k = {" + ",".join(["0"] * 128) + "}")))
    node = next(n for n in loaded.graph.nodes if n.name == name)
    return node_cost(node, loaded.graph), is_kernel(node, loaded.graph)


def test_elementwise_bytes_and_flops_by_hand():
    cost, kernel = _cost("Add_0")
    assert kernel
    assert cost.bytes_read == 2 * 3 * 8 * 4 + 8 * 4 and cost.bytes_written == 2 * 3 * 8 * 4
    assert cost.flops == 48


def test_matmul_flops_by_hand():
    cost, _ = _cost("MatMul_2")
    assert cost.flops == 2 * (2 * 3 * 16) * 8
    assert cost.bytes_read == (48 + 128) * 4 and cost.bytes_written == 96 * 4


def test_gather_reads_only_the_rows_it_gathers():
    cost, _ = _cost("Gather_3")
    assert cost.bytes_read == 2 * 3 * 8 * 4 + 6 * 8  # gathered rows + the int64 ids
    assert cost.bytes_written == 2 * 3 * 8 * 4


def test_views_metadata_and_constant_subexpressions_are_not_kernels():
    for name in ("Reshape_1", "Shape_4", "Add_5"):
        cost, kernel = _cost(name)
        assert not kernel and cost.bytes_total == 0
