"""The planner: candidates (rules, automatic grouping) -> a Plan of fused groups.

The only module that combines the candidate sources. A Plan is plain data: which nodes each fused
group takes, what crosses its boundary, and every refusal met on the way. Building one never
changes the graph; only the rewrite stage produces a new model.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE, Candidate, Refusal, find_auto_candidates
from autofuse.candidates.decision import WOULD_CREATE_CYCLE
from autofuse.errors import PlanInvariantError
from autofuse.ir.graph import Graph

FUSED_DOMAIN = "ai.autofuse"
_KIND_NAMES = {
    "elementwise": "Elementwise", "reduction": "Reduction", "matmul_epilogue": "MatMulEpilogue", "shape": "ShapeCompute",
}


@dataclass(frozen=True)
class FusionGroup:
    """One fused kernel: the original nodes it replaces and the values crossing its boundary."""

    id: str  # "g0", "g1", ... in topological order of the groups
    op_type: str  # name of the fused node and of its ONNX function
    kind: str
    rule: str | None
    members: tuple[int, ...]  # node ids, ascending (= topological order)
    inputs: tuple[str, ...]  # values read from outside, in order of first use
    outputs: tuple[str, ...]  # values used outside or graph outputs, in member order


@dataclass(frozen=True)
class Plan:
    opt_level: int
    groups: tuple[FusionGroup, ...]
    refusals: tuple[Refusal, ...]
    # The order the rewritten graph runs in: node ids and fused groups (as their index in
    # `groups`), topologically sorted with every group contracted to one step.
    schedule: tuple[tuple[str, int], ...] = ()

    def group_of(self) -> dict[int, FusionGroup]:
        return {m: g for g in self.groups for m in g.members}


def plan_fusion(graph: Graph, opt_level: int, *, max_group_size: int = DEFAULT_MAX_GROUP_SIZE) -> Plan:
    """Choose the fused groups for `graph` at `opt_level` (0: none, 1: rules only, 2-3: automatic)."""
    if not 0 <= opt_level <= 3:
        raise ValueError(f"opt_level must be 0-3, got {opt_level}")
    auto = find_auto_candidates(graph, opt_level, max_group_size=max_group_size)
    candidates, refusals = auto.candidates, list(auto.refusals)
    groups = tuple(_number(graph, candidates))
    check_partition(groups, graph)
    try:
        order = schedule(groups, graph)
    except PlanInvariantError:
        candidates = _without_cycles(graph, candidates, refusals)
        groups = tuple(_number(graph, candidates))
        order = schedule(groups, graph)
    return Plan(opt_level, groups, tuple(refusals), order)


def _without_cycles(graph: Graph, candidates: list[Candidate], refusals: list[Refusal]) -> list[Candidate]:
    """Drop groups until contracting every group leaves the graph acyclic.

    Each group is convex on its own, but two groups can still feed each other (A -> B through
    one pair of members, B -> A through another). In every strongly connected set of the
    contracted graph the smallest group is dropped, and the refusal says why.
    """
    import networkx as nx

    kept = list(candidates)
    while True:
        owner = {m: i for i, c in enumerate(kept) for m in c.members}
        contracted = nx.DiGraph()
        for node in graph.nodes:
            dst = owner.get(node.id, -1 - node.id)
            for p in graph.producer_ids(node):
                src = owner.get(p, -1 - p)
                if src != dst:
                    contracted.add_edge(src, dst)
        cyclic = [c for c in nx.strongly_connected_components(contracted) if len(c) > 1]
        if not cyclic:
            return kept
        dropped = {min((i for i in component if i >= 0), key=lambda i: len(kept[i].members)) for component in cyclic}
        for i in sorted(dropped):
            names = tuple(graph.nodes[m].name for m in sorted(kept[i].members))
            refusals.append(Refusal(names, WOULD_CREATE_CYCLE,
                                    "this group and another one would feed each other once both are fused"))
        kept = [c for i, c in enumerate(kept) if i not in dropped]


def _number(graph: Graph, candidates: list[Candidate]) -> list[FusionGroup]:
    ordered = sorted(candidates, key=lambda c: min(c.members))
    groups = []
    for index, candidate in enumerate(ordered):
        members = tuple(sorted(candidate.members))
        inputs, outputs = boundary(graph, members)
        op_type = f"Fused{_KIND_NAMES.get(candidate.kind, 'Group')}_{index}"
        groups.append(FusionGroup(f"g{index}", op_type, candidate.kind, candidate.rule, members, inputs, outputs))
    return groups


def boundary(graph: Graph, members: tuple[int, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Values a set of nodes reads from outside, and values it produces that are used outside."""
    inside = set(members)
    produced: set[str] = set()
    for m in members:
        produced.update(v for v in graph.nodes[m].outputs if v)
    inputs: dict[str, None] = {}
    outputs: dict[str, None] = {}
    for m in members:
        node = graph.nodes[m]
        for value in node.all_inputs:
            if value not in produced:
                inputs[value] = None
        for value in node.outputs:
            if not value:
                continue
            used_outside = any(c not in inside for c in graph.consumers.get(value, ()))
            if used_outside or value in graph.output_set:
                outputs[value] = None
    return tuple(inputs), tuple(outputs)


# -- invariants ---------------------------------------------------------------------------------


def schedule(groups: tuple[FusionGroup, ...], graph: Graph) -> tuple[tuple[str, int], ...]:
    """A topological order of the graph with every group contracted to one step.

    Steps are ("node", id) or ("group", index into `groups`). Kahn's algorithm over the
    contracted graph, O(nodes + edges), ties broken by original position. Raises
    PlanInvariantError when the contracted graph has a cycle (some group is not convex).
    """
    n = len(graph.nodes)
    step_of = list(range(n))  # node id -> step id; groups get step ids n, n+1, ...
    for index, group in enumerate(groups):
        for m in group.members:
            step_of[m] = n + index
    first = list(range(n)) + [group.members[0] for group in groups]
    waiting = [0] * (n + len(groups))
    successors: list[set[int]] = [set() for _ in waiting]
    for node in graph.nodes:
        dst = step_of[node.id]
        for p in graph.producer_ids(node):
            src = step_of[p]
            if src != dst and dst not in successors[src]:
                successors[src].add(dst)
                waiting[dst] += 1
    live = set(step_of)
    ready = [(first[s], s) for s in live if waiting[s] == 0]
    heapq.heapify(ready)
    order: list[tuple[str, int]] = []
    while ready:
        _, step = heapq.heappop(ready)
        order.append(("node", step) if step < n else ("group", step - n))
        for nxt in successors[step]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (first[nxt], nxt))
    if len(order) != len(live):
        stuck = sorted(groups[s - n].id for s in live if s >= n and waiting[s] > 0)
        raise PlanInvariantError(f"fusion plan is not convex: contracting groups {stuck} creates a cycle")
    return tuple(order)


def check_partition(groups: tuple[FusionGroup, ...], graph: Graph) -> None:
    """Raise PlanInvariantError unless the groups are disjoint and each produces something."""
    seen: set[int] = set()
    for group in groups:
        overlap = seen.intersection(group.members)
        if overlap:
            raise PlanInvariantError(f"node {graph.nodes[min(overlap)].name!r} is in two fused groups")
        seen.update(group.members)
        if not group.outputs:
            raise PlanInvariantError(f"fused group {group.id} produces nothing used outside it")


def check_plan(plan: Plan, graph: Graph) -> None:
    """Assert the plan is a convex partition of a subset of the graph's nodes."""
    check_partition(plan.groups, graph)
    schedule(plan.groups, graph)
