"""Every automatic fusion decision and refusal, each on a graph small enough to read."""
from __future__ import annotations

import pytest

from autofuse import fuse
from graphs import fused as fused_with_library
from graphs import declined, groups, model, planner_alone, reasons


def fused(m, level=3, **kwargs):
    """These tests are about automatic fusion: the rule library stays out of the way."""
    return fused_with_library(m, level, use_library=False, **kwargs)

CHAIN = """
g (float[N, 8] x, float[8] b) => (float[N, 8] y) {
  a = Add (x, b)
  r = Relu (a)
  y = Exp (r)
}
"""


def test_elementwise_chain_with_broadcast_becomes_one_group():
    result = fused(model(CHAIN), level=2)
    assert groups(result) == [["Add_0", "Relu_1", "Exp_2"]]
    assert result.report["kernels_before"] == 3 and result.report["kernels_after"] == 1


@pytest.mark.parametrize("level", [0, 1])
def test_levels_0_and_1_change_nothing(level):
    m = model(CHAIN)
    result = fused(m, level=level)
    assert groups(result) == []
    # Only names change: unnamed nodes get the names the report uses (README, `renamed_nodes`).
    assert [n.name for n in result.model.graph.node] == ["Add_0", "Relu_1", "Exp_2"]
    for node in result.model.graph.node:
        node.ClearField("name")
    assert result.model.graph.node == m.graph.node
    assert result.report["rejected"] == []


def test_diamond_dag_fuses_whole():
    result = fused(model("""
    g (float[4, 8] x) => (float[4, 8] y) {
      a = Sigmoid (x)
      b = Tanh (x)
      c = Mul (a, b)
      y = Add (c, a)
    }"""), level=2)
    assert groups(result) == [["Sigmoid_0", "Tanh_1", "Mul_2", "Add_3"]]


MULTI_CONSUMER = """
g (float[4, 8] x, float[8, 8] w) => (float[4, 8] y, float[4, 8] z) {
  a = Exp (x)
  b = Relu (a)
  y = Neg (b)
  z = MatMul (a, w)
}
"""


def test_value_used_outside_is_refused_at_level_2():
    result = fused(model(MULTI_CONSUMER), level=2)
    assert groups(result) == [["Relu_1", "Neg_2"]]
    assert "multi_output_needs_opt_level_3" in reasons(result)


def test_value_used_outside_becomes_extra_output_at_level_3():
    result = fused(model(MULTI_CONSUMER), level=3)
    first = result.report["groups"][0]
    assert first["members"] == ["Exp_0", "Relu_1", "Neg_2"]
    assert first["outputs"] == ["a", "y"]


def test_graph_output_in_the_middle_of_a_chain():
    text = """
    g (float[4, 8] x) => (float[4, 8] mid, float[4, 8] y) {
      mid = Exp (x)
      r = Relu (mid)
      y = Neg (r)
    }"""
    assert groups(fused(model(text), level=2)) == [["Relu_1", "Neg_2"]]
    level3 = fused(model(text), level=3)
    assert groups(level3) == [["Exp_0", "Relu_1", "Neg_2"]]
    assert set(level3.report["groups"][0]["outputs"]) == {"mid", "y"}


def test_softmax_written_out_is_one_reduction_group():
    result = fused(model("""
    g (float[B, 4, 16] x) => (float[B, 4, 16] y) {
      m = ReduceMax <axes = [-1]> (x)
      d = Sub (x, m)
      e = Exp (d)
      s = ReduceSum <keepdims = 1> (e, axes)
      y = Div (e, s)
    }""".replace("(e, axes)", "(e, ax)").replace("float[B, 4, 16] x)", "float[B, 4, 16] x, int64[1] ax)")), level=2)
    # axes given as a graph input are not constant: that reduction cannot be placed.
    assert "unknown_shape" in reasons(result)


def test_softmax_with_constant_axes_fuses():
    result = fused(model("""
    g (float[B, 4, 16] x) => (float[B, 4, 16] y) <int64[1] ax = {-1}> {
      m = ReduceMax <axes = [-1]> (x)
      d = Sub (x, m)
      e = Exp (d)
      s = ReduceSum (e, ax)
      y = Div (e, s)
    }"""), level=2)
    assert groups(result) == [["ReduceMax_0", "Sub_1", "Exp_2", "ReduceSum_3", "Div_4"]]
    assert result.report["groups"][0]["kind"] == "reduction"


def test_two_reductions_over_different_axes_are_not_one_group():
    result = fused(model("""
    g (float[4, 8] x) => (float[4, 1] y) {
      a = ReduceSum <keepdims = 1> (x, one)
      b = Mul (x, a)
      y = ReduceMax <axes = [1]> (b)
    }""".replace("(x, one)", "(x, zero)").replace("{\n", "<int64[1] zero = {0}> {\n", 1)), level=2)
    assert "reduction_axes_mismatch" in reasons(result)
    for members in groups(result):
        assert not {"ReduceSum_0", "ReduceMax_2"} <= set(members)


def test_reduced_rows_broadcast_back_into_the_rows():
    # RMSNorm written out: the reduced [B, S, 1] value is re-read against the [B, S, 8] rows.
    result = fused(model("""
    g (float[B, S, 8] x, float[8] w) => (float[B, S, 8] y) <float eps = {1e-6}, float two = {2.0}> {
      p = Pow (x, two)
      m = ReduceMean <axes = [-1]> (p)
      a = Add (m, eps)
      r = Sqrt (a)
      n = Div (x, r)
      y = Mul (n, w)
    }"""), level=2)
    assert len(groups(result)) == 1 and len(groups(result)[0]) == 6


def test_shape_mismatch_is_refused():
    # keepdims=0 leaves [4]: elementwise work on it is not over the [4, 8] rows being reduced.
    result = fused(model("""
    g (float[4, 8] x, float[4] c) => (float[4] y) {
      m = ReduceMean <axes = [1], keepdims = 0> (x)
      e = Exp (m)
      y = Add (e, c)
    }"""), level=2)
    assert "shape_mismatch" in reasons(result)


def test_int_and_bool_ops_fuse():
    result = fused(model("""
    g (int64[4, 8] i, float[4, 8] x) => (float[4, 8] y) <int64 two = {2}> {
      j = Mul (i, two)
      k = Add (j, i)
      b = Greater (k, two)
      nb = Not (b)
      y = Where (nb, x, x)
    }"""), level=2)
    assert groups(result) == [["Mul_0", "Add_1", "Greater_2", "Not_3", "Where_4"]]


def test_fp16_chain_fuses_and_verifies():
    result = fused(model("""
    g (float16[2, 8] x) => (float[2, 8] y) {
      a = Sigmoid (x)
      b = Mul (a, x)
      y = Cast <to = 1> (b)
    }"""), level=2)
    assert len(groups(result)) == 1


def test_empty_tensor_chain(monkeypatch):
    planner_alone(monkeypatch)  # the generator's answer is checked at the end
    result = fused(model("""
    g (float[0, 8] x) => (float[0, 8] y) {
      a = Relu (x)
      y = Exp (a)
    }"""), level=2)
    assert groups(result) == [["Relu_0", "Exp_1"]]
    monkeypatch.undo()  # the product asks the generator, which has no kernel for this form yet (issue 14)
    assert any("has no elements" in d for d in declined(result.loaded.model, 2, use_library=False))

def test_path_through_an_opaque_op_is_not_swallowed():
    # a -> TopK (opaque) -> c and a -> c: fusing a with c would make the group feed and
    # depend on TopK.
    result = fused(model("""
    g (float[4, 8] x) => (float[4, 8] y, int64[4, 8] idx) <int64[1] k = {8}> {
      a = Exp (x)
      t, idx = TopK (a, k)
      y = Add (a, t)
    }"""), level=3)
    assert "would_create_cycle" in reasons(result)
    assert groups(result) == []


def test_reduction_without_kept_dims_ends_its_group(monkeypatch):
    planner_alone(monkeypatch)  # the generator's answer is checked at the end
    # [8] sums re-read against [8, 8] by broadcasting run along the other axis: not row-wise.
    result = fused(model("""
    g (float[8, 8] x) => (float[8, 8] y) {
      e = Exp (x)
      m = ReduceMax <axes = [1], keepdims = 0> (e)
      y = Add (m, x)
    }"""), level=2)
    assert groups(result) == [["Exp_0", "ReduceMax_1"]]
    assert "shape_mismatch" in reasons(result)
    monkeypatch.undo()  # the product asks the generator, which has no kernel for this form yet (issue 14)
    assert any("does not cover the rows" in d for d in declined(result.loaded.model, 2, use_library=False))

def test_group_size_cap():
    body = "\n".join(f"  v{i + 1} = Relu (v{i})" for i in range(12))
    text = f"g (float[4] v0) => (float[4] v12) {{\n{body}\n}}"
    result = fused(model(text), level=2, max_group_size=4)
    assert all(len(members) <= 4 for members in groups(result))
    assert len(groups(result)) == 3
    assert "group_too_large" in reasons(result)


def test_matmul_epilogue_only_at_level_3():
    text = """
    g (float[N, 8] x, float[8, 16] w, float[16] b) => (float[N, 16] y) {
      m = MatMul (x, w)
      a = Add (m, b)
      y = Relu (a)
    }"""
    level2 = fused(model(text), level=2)
    assert groups(level2) == [["Add_1", "Relu_2"]]
    assert "matmul_epilogue_needs_opt_level_3" in reasons(level2)
    level3 = fused(model(text), level=3)
    assert groups(level3) == [["MatMul_0", "Add_1", "Relu_2"]]
    assert level3.report["groups"][0]["kind"] == "matmul_epilogue"


def test_matmul_prologue_is_not_fused():
    result = fused(model("""
    g (float[N, 8] x, float[8, 8] w) => (float[N, 8] y) {
      a = Relu (x)
      m = MatMul (a, w)
      y = Exp (m)
    }"""), level=3)
    assert groups(result) == [["MatMul_1", "Exp_2"]]
    assert "matmul_prologue_not_fused" in reasons(result)


def test_custom_domain_op_is_opaque_and_untouched():
    m = model("""
    g (float[4] x) => (float[4] y) {
      a = Relu (x)
      b = custom.Thing (a)
      y = Exp (b)
    }""", header='<ir_version: 8, opset_import: ["" : 17, "custom" : 1]>\n')
    result = fuse(m, opt_level=3, use_library=False)
    assert groups(result) == []
    assert [n.op_type for n in result.model.graph.node] == ["Relu", "Thing", "Exp"]
    assert "opaque_op" in reasons(result)


def test_constant_is_absorbed_into_the_group_that_reads_it():
    result = fused(model("""
    g (float[4] x) => (float[4] y) {
      c = Constant <value = float {2.0}> ()
      a = Mul (x, c)
      y = Relu (a)
    }"""), level=2)
    assert groups(result) == [["Constant_0", "Mul_1", "Relu_2"]]
    assert result.report["groups"][0]["inputs"] == ["x"]


def test_if_is_opaque_and_its_outer_reads_are_respected():
    result = fused(model("""
    g (float[4] x, bool c) => (float[4] y) {
      a = Exp (x)
      b = Relu (a)
      s = If (c) <
        then_branch = t () => (float[4] o) { o = Neg (a) },
        else_branch = e () => (float[4] o) { o = Abs (a) }
      >
      y = Add (b, s)
    }"""), level=2)
    # `a` is read inside the If branches, so at level 2 it cannot disappear into a group.
    for members in groups(result):
        assert "If_2" not in members and "Exp_0" not in members
    assert "multi_output_needs_opt_level_3" in reasons(result)


def test_loop_is_opaque_and_unknown_shapes_are_not_guessed():
    result = fused(model("""
    g (float[4] x, int64 n) => (float[4] y) <bool t = {1}> {
      a = Exp (x)
      b = Neg (a)
      s = Loop (n, t, b) <
        body = lb (int64 i, bool cond, float[4] acc) => (bool co, float[4] out) {
          co = Identity (cond)
          out = Relu (acc)
        }
      >
      c = Neg (s)
      y = Abs (c)
    }"""), level=3)
    assert groups(result) == [["Exp_0", "Neg_1"]]
    # The Loop's output shape is not inferred, so nothing after it is fused on a guess.
    assert "unknown_shape" in reasons(result)


def test_symbolic_dims_are_kept_and_fuse():
    result = fused(model("""
    g (float[batch, seq, 8] x, float[batch, 1, 8] z) => (float[batch, seq, 8] y) {
      a = Add (x, z)
      y = Tanh (a)
    }"""), level=2)
    assert len(groups(result)) == 1


def test_views_between_elementwise_ops_join_the_group(monkeypatch):
    planner_alone(monkeypatch)  # the generator's answer is checked at the end
    result = fused(model("""
    g (float[4, 8] x) => (float[32] y) <int64[1] flat = {32}> {
      a = Relu (x)
      r = Reshape (a, flat)
      y = Exp (r)
    }"""), level=2)
    assert groups(result) == [["Relu_0", "Reshape_1", "Exp_2"]]
    monkeypatch.undo()  # the product asks the generator, which has no kernel for this form yet (issue 14)
    assert any("flat (elementwise) tile reads a broadcast or permuted value" in d for d in declined(result.loaded.model, 2, use_library=False))

def test_a_lone_kernel_with_views_is_not_a_group():
    result = fused(model("""
    g (float[4, 8] x, float[8, 4] w) => (float[16] y) <int64[1] flat = {16}> {
      a = MatMul (x, w)
      r = Relu (a)
      y = Reshape (r, flat)
    }"""), level=2)
    assert groups(result) == []


ROTATE_HALF = """
g (float[B, S, 8] x, float[S, 8] cos, float[S, 8] sin) => (float[B, S, 8] y)
  <int64[1] zero = {0}, int64[1] half = {4}, int64[1] end = {8}, int64[1] last = {-1}> {
  x1 = Slice (x, zero, half, last)
  x2 = Slice (x, half, end, last)
  n2 = Neg (x2)
  rot = Concat <axis = -1> (n2, x1)
  a = Mul (x, cos)
  b = Mul (rot, sin)
  y = Add (a, b)
}
"""


def test_slices_and_concats_along_rows_join_at_level_3():
    level3 = fused(model(ROTATE_HALF), level=3)  # halves at column 4: off a 32-byte boundary, emitted all the same
    assert len(groups(level3)) == 1 and len(groups(level3)[0]) == 7
    assert "no_kernel_for_group" not in reasons(level3)
    level2 = fused(model(ROTATE_HALF), level=2)
    assert "data_movement_op" in reasons(level2)
    assert all("Concat_3" not in members for members in groups(level2))


def test_slice_across_rows_is_not_fused():
    text = ROTATE_HALF.replace("int64[1] last = {-1}", "int64[1] last = {1}").replace(
        "float[B, S, 8] x,", "float[B, 8, 8] x,").replace("float[S, 8] cos, float[S, 8] sin", "float[8, 8] cos, float[8, 8] sin").replace(
        "=> (float[B, S, 8] y)", "=> (float[B, 8, 8] y)").replace("Concat <axis = -1>", "Concat <axis = 1>")
    result = fused(model(text), level=3)
    assert all("Slice_0" not in members for members in groups(result))
    assert "data_movement_op" in reasons(result)


def test_matmul_takes_scalar_scale_and_last_two_axes_transpose_as_prologue():
    result = fused(model("""
    g (float[B, 4, 8, 16] q, float[B, 4, 8, 16] k) => (float[B, 4, 8, 8] y) <float s = {0.25}> {
      kt = Transpose <perm = [0, 1, 3, 2]> (k)
      ks = Mul (kt, s)
      qs = Div (q, s)
      m = MatMul (qs, ks)
      y = Softmax <axis = -1> (m)
    }"""), level=3)
    assert groups(result) == [["Transpose_0", "Mul_1", "Div_2", "MatMul_3"]]
    assert "contraction_conflict" in reasons(result)  # the Softmax is a reduction: not an epilogue
    assert "no_kernel_for_group" not in reasons(result)  # a batched MatMul over a transposed operand


def test_other_transposes_and_shared_operands_are_not_prologue():
    result = fused(model("""
    g (float[B, 8, 4, 16] q, float[B, 4, 16, 8] k) => (float[B, 4, 8, 8] y, float[B, 4, 8, 16] t) <float s = {0.25}> {
      t = Transpose <perm = [0, 2, 1, 3]> (q)
      ks = Mul (k, s)
      m = MatMul (t, ks)
      y = Relu (m)
    }"""), level=3)
    assert groups(result) == [["Mul_1", "MatMul_2", "Relu_3"]]
    assert "data_movement_op" in reasons(result)
    assert "no_kernel_for_group" not in reasons(result)

def test_shape_arithmetic_chains_become_one_host_group():
    result = fused(model("""
    g (float[B, S, 8] x) => (float[B, S, 2, 4] y)
      <int64 zero = {0}, int64 one = {1}, int64[2] tail = {2, 4}, int64[1] ax = {0}> {
      s = Shape (x)
      b = Gather (s, zero)
      l = Gather (s, one)
      b1 = Unsqueeze (b, ax)
      l1 = Unsqueeze (l, ax)
      target = Concat <axis = 0> (b1, l1, tail)
      y = Reshape (x, target)
    }"""), level=3)
    (group,) = result.report["groups"]
    assert group["kind"] == "shape"
    assert group["members"] == ["Gather_1", "Gather_2", "Unsqueeze_3", "Unsqueeze_4", "Concat_5"]
    assert groups(fused(model("""
    g (float[B, S, 8] x) => (float[B, S, 2, 4] y) <int64 zero = {0}, int64[2] tail = {2, 4}, int64[1] ax = {0}, int64[1] s1 = {-1}> {
      s = Shape (x)
      b = Gather (s, zero)
      b1 = Unsqueeze (b, ax)
      target = Concat <axis = 0> (b1, s1, tail)
      y = Reshape (x, target)
    }"""), level=2)) == []


def test_a_static_exports_expand_sizing_from_constants_is_host_work_too():
    """A static-shape TorchScript export sizes an Expand from constants alone (ConstantOfShape ->
    Mul -> Equal -> Where): the same shape arithmetic, computed on the host, not a vector kernel."""
    result = fused(model("""
    g (float[2, 1, 16] x) => (float[2, 4, 16] y)
      <int64[1] n = {3}, int64 minus = {-1}, int64[3] want = {2, 4, 16}> {
      ones = ConstantOfShape <value = int64[1] {1}> (n)
      neg = Mul (ones, minus)
      same = Equal (want, neg)
      target = Where (same, ones, want)
      y = Expand (x, target)
    }"""), level=3)
    assert [(g["kind"], g["members"]) for g in result.report["groups"]] == [
        ("shape", ["ConstantOfShape_0", "Mul_1", "Equal_2", "Where_3"])]
    assert "no_kernel_for_group" not in reasons(result)


def test_a_reshape_proves_element_counts_equal_when_shapes_lose_the_dims():
    # The flattening target is computed at run time, so shape inference only knows [?, 8]; the
    # Reshape itself proves [B, S, 8] and the flat tensor hold the same number of elements.
    m = model("""
    g (float[B, S, 8] x) => (float[B, S, 8] y)
      <int64[1] lo = {2}, int64[1] hi = {3}, int64[1] minus1 = {-1}, int64[1] ax = {0}> {
      s = Shape (x)
      last = Slice (s, lo, hi, ax)
      target = Concat <axis = 0> (minus1, last)
      flat = Reshape (x, target)
      a = Relu (flat)
      back = Reshape (a, s)
      y = Exp (back)
    }""")
    result = fused(m, level=2)
    flat_shape = fuse(m, opt_level=0).loaded.graph.type_of("flat").shape
    assert flat_shape[-1] == 8 and flat_shape[0] not in (8, "B", "S")
    assert ["Reshape_3", "Relu_4", "Reshape_5", "Exp_6"] in groups(result)


def test_dead_nodes_are_left_alone():
    result = fused(model("""
    g (float[4] x) => (float[4] y) <float two = {2.0}> {
      unused = Div (x, two)
      a = Relu (x)
      y = Exp (a)
    }"""), level=3)
    assert groups(result) == [["Relu_1", "Exp_2"]]
