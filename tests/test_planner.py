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
