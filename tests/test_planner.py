"""Planner invariants: a partition of convex groups whose contraction stays acyclic."""
from __future__ import annotations

import pytest

from autofuse.candidates.auto import Candidate
from autofuse.errors import PlanInvariantError
from autofuse.frontends.onnx import load_onnx
from autofuse.planner.plan import _number, _without_cycles, check_partition, schedule
from graphs import model

# Two groups that are each convex but feed each other: A = {Relu, Add}, B = {Neg, Exp}.
CROSSING = """
g (float[4] x) => (float[4] b1, float[4] a2) {
  a1 = Relu (x)
  b1 = Neg (a1)
  b2 = Exp (x)
  a2 = Add (b2, a1)
}
"""


def _crossing():
    graph = load_onnx(model(CROSSING)).graph
    ids = {n.name: n.id for n in graph.nodes}
    a = Candidate(frozenset({ids["Relu_0"], ids["Add_3"]}), "elementwise")
    b = Candidate(frozenset({ids["Neg_1"], ids["Exp_2"]}), "elementwise")
    return graph, a, b


def test_groups_that_feed_each_other_cannot_be_scheduled():
    graph, a, b = _crossing()
    groups = tuple(_number(graph, [a, b]))
    check_partition(groups, graph)  # disjoint and each one has outputs...
    with pytest.raises(PlanInvariantError, match="not convex"):
        schedule(groups, graph)  # ...but contracting both makes a cycle


def test_the_planner_drops_one_group_of_a_cycle_and_says_why():
    graph, a, b = _crossing()
    refusals = []
    kept = _without_cycles(graph, [a, b], refusals)
    assert len(kept) == 1
    assert [r.reason for r in refusals] == ["would_create_cycle"]
    schedule(tuple(_number(graph, kept)), graph)


def test_overlapping_groups_are_rejected():
    graph, a, b = _crossing()
    overlapping = Candidate(a.members | {min(b.members)}, "elementwise")
    with pytest.raises(PlanInvariantError, match="in two fused groups"):
        check_partition(tuple(_number(graph, [overlapping, b])), graph)


SIBLINGS = """
g (float[B, 8] x) => (float[B, 16] y) <float[8, 8] wq = {W64}, float[8, 8] wk = {W64}, float[8, 8] wv = {W64},
                                      float[8] bq = {B8}> {
  q = MatMul (x, wq)
  qb = Add (q, bq)
  k = MatMul (x, wk)
  v = MatMul (x, wv)
  s = Add (qb, k)
  t = Mul (s, v)
  y = Concat <axis = -1> (t, v)
}
""".replace("W64", ", ".join(["0.5"] * 64)).replace("B8", ", ".join(["0.1"] * 8))


def test_sibling_matmuls_on_one_activation_become_one_group():
    from graphs import fused, groups

    result = fused(model(SIBLINGS), level=3)
    merged = [g for g in result.report["groups"] if g["op_type"].startswith("MergedMatMul")]
    assert len(merged) == 1
    assert {"MatMul_0", "MatMul_2", "MatMul_3"} <= set(merged[0]["members"])
    assert merged[0]["kind"] == "matmul_epilogue"
    level2 = fused(model(SIBLINGS), level=2)
    assert all(sum(op == "MatMul" for op in g["member_op_types"]) <= 1 for g in level2.report["groups"])
    assert groups(level2)  # level 2 still fuses the elementwise work


def test_a_matmul_takes_its_sole_consumer_group_as_epilogue():
    from graphs import fused

    result = fused(model("""
    g (float[B, 8] x, float[8] w) => (float[B, 8] y)
      <float[8, 8] m = {W64}, float two = {2.0}, float eps = {1e-6}, int64[1] last = {-1}> {
      h = MatMul (x, m)
      sq = Pow (h, two)
      mean = ReduceMean (sq, last)
      v = Add (mean, eps)
      std = Sqrt (v)
      r = Reciprocal (std)
      n = Mul (h, r)
      y = Mul (n, w)
    }""".replace("W64", ", ".join(["0.5"] * 64)), header='<ir_version: 8, opset_import: ["" : 18]>\n'), level=3)
    (group,) = result.report["groups"]
    assert group["rule"] == "rms_norm" and group["kind"] == "matmul_epilogue"
    assert group["op_type"].startswith("MatMulRmsNorm") and len(group["members"]) == 8


def test_a_merge_caught_in_a_cycle_is_split_back_not_dropped():
    from autofuse.planner.merge import Merged
    from autofuse.planner.plan import _without_cycles

    graph, a, b = _crossing()
    # Pretend A was made by merging two parts; B is plain. Splitting A removes the cycle.
    part1 = Candidate(frozenset({min(a.members)}), "elementwise")
    part2 = Candidate(frozenset({max(a.members)}), "elementwise")
    refusals = []
    kept = _without_cycles(graph, [Merged(a, (part1, part2)), b], refusals)
    assert refusals == []
    assert sorted(len(c.members) for c in kept) == [1, 1, 2]


def test_disable_fusion_keeps_other_ids_and_reports_the_switch():
    from autofuse import fuse
    from autofuse.errors import InputError

    m = model("""
    g (float[4] x) => (float[4] y, float[4] z, float[4] w) {
      a = Relu (x)
      y = Exp (a)
      b = Sigmoid (x)
      z = Neg (b)
      c = Tanh (x)
      w = Abs (c)
    }""")
    full = fuse(m, opt_level=2, use_library=False).report["groups"]
    assert [g["id"] for g in full] == ["g0", "g1", "g2"]
    partial = fuse(m, opt_level=2, use_library=False, disable_fusions=["g1"]).report
    assert [(g["id"], g["members"]) for g in partial["groups"]] == [(full[0]["id"], full[0]["members"]),
                                                                  (full[2]["id"], full[2]["members"])]
    assert partial["rejected_by_reason"] == {"disabled_by_user": 1}
    with pytest.raises(InputError, match="no fused group g7"):
        fuse(m, opt_level=2, use_library=False, disable_fusions=["g7"])
