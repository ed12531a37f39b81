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
    # Pretend A was made by merging two parts; B is plain. Splitting A removes the cycle; its
    # parts are single nodes, which are no fusion of their own, so B alone remains.
    part1 = Candidate(frozenset({min(a.members)}), "elementwise")
    part2 = Candidate(frozenset({max(a.members)}), "elementwise")
    refusals = []
    kept = _without_cycles(graph, [Merged(a, (part1, part2)), b], refusals)
    assert refusals == []
    assert [c.members for c in kept] == [b.members]


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


def test_a_head_split_transpose_becomes_the_projections_strided_copy_out():
    """MatMul -> Reshape to heads -> Transpose[0,2,1,3] read only by a later kernel: the permute
    is the MatMul kernel's copy-out (one kernel), not a kernel of its own."""
    from graphs import fused

    result = fused(model("""
    g (float[2, 3, 8] x) => (float[2, 2, 3, 4] y)
      <float[8, 8] m = {W64}, int64[4] heads = {2, 3, 2, 4}> {
      h = MatMul (x, m)
      r = Reshape (h, heads)
      t = Transpose <perm = [0, 2, 1, 3]> (r)
      y = Softmax <axis = -1> (t)
    }""".replace("W64", ", ".join(["0.25"] * 64))), level=3)
    owner = {m: g["id"] for g in result.report["groups"] for m in g["members"]}
    assert owner["Transpose_2"] == owner["MatMul_0"] and owner["Reshape_1"] == owner["MatMul_0"]
    level2 = fused(model("""
    g (float[2, 3, 8] x) => (float[2, 2, 3, 4] y) <float[8, 8] m = {W64}, int64[4] heads = {2, 3, 2, 4}> {
      h = MatMul (x, m)
      r = Reshape (h, heads)
      t = Transpose <perm = [0, 2, 1, 3]> (r)
      y = Softmax <axis = -1> (t)
    }""".replace("W64", ", ".join(["0.25"] * 64))), level=2)
    assert "Transpose_2" not in {m for g in level2.report["groups"] for m in g["members"]}


# Two Reshape targets computed from one Shape read (TorchScript writes every view's shape this
# way): Gather feeds both Concats, so neither chain has a single consuming kernel.
SHAPE_CHAINS = """
g (float[B, S, 8] x) => (float[B, S, 2, 4] y, float[B, S, 4, 2] z)
  <int64 zero = {0}, int64 one = {1}, int64[1] ax = {0}, int64[2] h1 = {2, 4}, int64[2] h2 = {4, 2}> {
  s = Shape (x)
  b = Gather <axis = 0> (s, zero)
  n = Gather <axis = 0> (s, one)
  bu = Unsqueeze (b, ax)
  nu = Unsqueeze (n, ax)
  d1 = Concat <axis = 0> (bu, nu, h1)
  d2 = Concat <axis = 0> (bu, nu, h2)
  e = Exp (x)
  r1 = Reshape (e, d1)
  y = Relu (r1)
  f = Neg (x)
  r2 = Reshape (f, d2)
  z = Sigmoid (r2)
}
"""


def test_shape_arithmetic_shared_by_several_views_is_one_host_computation(monkeypatch):
    from graphs import declined, fused, planner_alone

    planner_alone(monkeypatch)  # the generator's answer is checked at the end
    result = fused(model(SHAPE_CHAINS), level=3)
    shape_groups = [g for g in result.report["groups"] if g["kind"] == "shape"]
    assert len(shape_groups) == 1 and {"Gather_1", "Gather_2"} <= set(shape_groups[0]["members"])
    # Each Concat and its Reshape join the kernel that reads the reshaped tensor.
    owner = {m: g["id"] for g in result.report["groups"] for m in g["members"]}
    assert owner["Concat_5"] == owner["Reshape_8"] == owner["Relu_9"]
    assert owner["Concat_6"] == owner["Reshape_11"] == owner["Sigmoid_12"]
    monkeypatch.undo()  # the product asks the generator, which reads no reshaped broadcast in a flat tile yet
    assert any("flat (elementwise) tile reads a broadcast" in d for d in declined(model(SHAPE_CHAINS), 3))


def test_shape_chains_that_read_data_computed_from_each_other_stay_apart():
    """The second Reshape's shape is read from data computed after the first Reshape: one host
    group for both would feed itself through the data path (not convex)."""
    from graphs import fused

    result = fused(model("""
    g (float[B, S, 8] x) => (float[B, S, 8] y)
      <int64 zero = {0}, int64 one = {1}, int64[1] ax = {0}, int64[2] h1 = {2, 4}, int64[1] h2 = {8}> {
      s = Shape (x)
      b = Gather <axis = 0> (s, zero)
      bu = Unsqueeze (b, ax)
      n = Gather <axis = 0> (s, one)
      nu = Unsqueeze (n, ax)
      d1 = Concat <axis = 0> (bu, nu, h1)
      r1 = Reshape (x, d1)
      e = Exp (r1)
      s2 = Shape (e)
      b2 = Gather <axis = 0> (s2, zero)
      b2u = Unsqueeze (b2, ax)
      n2 = Gather <axis = 0> (s2, one)
      n2u = Unsqueeze (n2, ax)
      d2 = Concat <axis = 0> (b2u, n2u, h2)
      r2 = Reshape (e, d2)
      y = Relu (r2)
    }"""), level=3)
    owner = {m: g["id"] for g in result.report["groups"] for m in g["members"]}
    assert owner.get("Concat_5") != owner.get("Concat_13") or "Concat_5" not in owner


# -- rules and automatic fusion compete ------------------------------------------------------------

CHAIN = """
g (float[64, 4096] x) => (float[64, 4096] y) {
  a = Neg (x)
  b = Exp (a)
  c = Relu (b)
  y = Sigmoid (c)
}
"""


def _rule_file(tmp_path, pattern: str) -> str:
    path = tmp_path / "probe.yaml"
    path.write_text(
        "rules:\n  - name: probe\n    kind: elementwise\n    pattern: |\n      " + pattern + "\n"
        "    inputs: [x]\n    fused_op: {name: Probe}\n    lowering: {ascendc: elementwise}\n"
        "    examples:\n      match: ['g (float[2] x) => (float[2] y) { b = Exp (x)\n y = Relu (b) }']\n"
        "      near_miss: ['g (float[2] x) => (float[2] y) { y = Exp (x) }']\n")
    return str(path)


def test_automatic_fusion_that_saves_more_takes_a_rule_match_and_keeps_its_name(tmp_path):
    """The rule covers Exp -> Relu in the middle of a 4-op chain: with it fixed, Neg and Sigmoid
    are left alone (3 kernels); automatic fusion alone makes the chain one kernel. The one
    kernel wins, and since it holds the whole match it still says which rule's block it is."""
    from graphs import fused

    rules = [_rule_file(tmp_path, "y = Relu(Exp(x))")]
    alone = fused(model(CHAIN), level=2, use_library=False, rules=rules, target="ascend910b")
    (group,) = alone.report["groups"]
    assert sorted(group["members"]) == ["Exp_1", "Neg_0", "Relu_2", "Sigmoid_3"] and group["rule"] == "probe"
    assert alone.report["kernels_after"] == 1
    # At level 1 there is no automatic fusion to compete: the rule's match is what fuses.
    only_rules = fused(model(CHAIN), level=1, use_library=False, rules=rules, target="ascend910b")
    assert [sorted(g["members"]) for g in only_rules.report["groups"]] == [["Exp_1", "Relu_2"]]


def test_a_rule_that_saves_as_much_as_automatic_fusion_stays(tmp_path):
    from graphs import fused

    rules = [_rule_file(tmp_path, "y = Sigmoid(Relu(Exp(Neg(x))))")]
    result = fused(model(CHAIN), level=3, use_library=False, rules=rules, target="ascend910b")
    (group,) = result.report["groups"]
    assert group["rule"] == "probe" and group["op_type"].startswith("Probe")
    assert "automatic_grouping_saves_more" not in {r["reason"] for r in result.report["rejected"]}


@pytest.mark.parametrize("level", [2, 3])
def test_matches_kept_as_matched_hold_their_nodes_through_the_merges(level):
    """The PyTorch path keeps every match of a rule with a torch_npu op exactly as matched. The
    level-3 merges must see those nodes as taken: the exporter's shape arithmetic inside a
    rotary or attention match is not host work for a neighbouring group (it once was, and the
    same node ended up in two groups)."""
    from pathlib import Path

    from autofuse.api import load_rule_set
    from autofuse.candidates.rules.matcher import RuleIndex, find_matches
    from autofuse.cost.hardware import load_profile
    from autofuse.cost.model import bind_dims
    from autofuse.frontends.onnx import concrete_shapes
    from autofuse.planner.plan import plan_fusion, select_matches

    loaded = load_onnx(str(Path(__file__).resolve().parents[1] / "examples" / "tiny_llama.onnx"))
    graph, rules = loaded.graph, load_rule_set()
    keep = frozenset(r.name for r in rules if r.lowering.get("torch_npu"))
    dims = bind_dims(graph)
    plan = plan_fusion(graph, level, rules=rules, hardware=load_profile("ascend910b"), dims=dims,
                       static_shapes=concrete_shapes(loaded, dims), keep_rules=keep)
    check_partition(plan.groups, graph)
    matched = {c.members: c.rule for c in select_matches(graph, find_matches(graph, RuleIndex(rules))[0],
                                                         frozenset(), 64, [])}
    kept = [g for g in plan.groups if g.rule in keep]
    assert len(kept) >= 8  # norms, rotary, attention and MLP of both layers
    assert all(matched.get(frozenset(g.members)) == g.rule for g in kept)
