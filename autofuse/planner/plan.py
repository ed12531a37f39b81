"""The planner: candidates (rules, automatic grouping) -> a Plan of fused groups.

The only module that combines the candidate sources. A Plan is plain data: which nodes each fused
group takes, what crosses its boundary, and every refusal met on the way. Building one never
changes the graph; only the rewrite stage produces a new model.
"""
from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE, AutoGrouping, Candidate, Refusal, find_auto_candidates
from autofuse.candidates.decision import (AUTOMATIC_SAVES_MORE, DISABLED_BY_USER, GROUP_TOO_LARGE, OVERLAPPING_MATCH,
                                          WOULD_CREATE_CYCLE)
from autofuse.candidates.rules.loader import Rule
from autofuse.candidates.rules.matcher import Match, RuleIndex, find_matches
from autofuse.candidates.shape_values import shape_value_nodes
from autofuse.errors import InputError, PlanInvariantError
from autofuse.ir.graph import Graph
from autofuse.ops.table import is_kernel
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel, Estimate, UnknownShape, bind_dims, group_scheme
from autofuse.cost.tiling import Tile, TileOverflow
from autofuse.planner.merge import VIEWS, Merged, candidate_of, has_matmul, is_convex, merge_around_matmuls
from autofuse.planner.pricing import Emittable, Priced, group_inputs, price_candidates, saving_us

FUSED_DOMAIN = "ai.autofuse"
FUSED_OPSET_VERSION = 1  # the version the rewritten model imports the domain at
KIND_NAMES = {
    "elementwise": "Elementwise", "reduction": "Reduction", "matmul_epilogue": "MatMulEpilogue", "shape": "ShapeCompute",
}

# The values crossing a set of nodes' boundary (see `boundary`), for node ids in ascending order.
Boundary = Callable[[tuple[int, ...]], tuple[tuple[str, ...], tuple[str, ...]]]


@dataclass(frozen=True)
class FusionGroup:
    """One fused kernel: the original nodes it replaces and the values crossing its boundary."""

    id: str  # "g0", "g1", ... in topological order of the groups
    op_type: str  # name of the fused node and of its ONNX function
    kind: str
    rule: str | None
    members: tuple[int, ...]  # node ids, ascending (= topological order)
    inputs: tuple[str, ...]  # values read from outside: a rule's inputs first, then in order of first use
    outputs: tuple[str, ...]  # values used outside or graph outputs, in member order
    attributes: tuple[tuple[str, float], ...] = ()  # set on the fused node (e.g. a norm's epsilon)
    cost: GroupCost | None = None  # the cost model's numbers (None when planned without a target)
    lowering: str | None = None  # a rule's Ascend C template family, if a rule made it


@dataclass(frozen=True)
class GroupCost:
    """What the cost model said about one fused group (times in microseconds)."""

    time_before_us: float | None  # its members as separate kernels (None: a shape is unknown)
    time_after_us: float  # the group as one kernel
    hbm_bytes_before: int | None  # bytes its members move as separate kernels
    hbm_bytes_after: int
    launches_saved: int
    tile: Tile | None  # the tile the cost model priced, which the generator emits
    ub_bytes: int | None
    ub_capacity: int | None


def group_cost(after: Estimate, before: float | None = None, bytes_before: int | None = None,
               launches_saved: int = 0) -> GroupCost:
    """What the report and the generator read of the cost model's estimate of a group."""
    tile = after.tile
    return GroupCost(before, after.time_us, bytes_before, after.hbm_bytes, launches_saved,
                     tile, tile.ub_bytes if tile and tile.buffers else None,
                     tile.ub_capacity if tile and tile.ub_capacity else None)


@dataclass(frozen=True)
class Plan:
    opt_level: int
    groups: tuple[FusionGroup, ...]
    refusals: tuple[Refusal, ...]
    # The order the rewritten graph runs in: node ids and fused groups (as their index in
    # `groups`), topologically sorted with every group contracted to one step.
    schedule: tuple[tuple[str, int], ...] = ()
    # Whole-model numbers from the cost model (empty when planned without a target).
    totals: dict = field(default_factory=dict)

    def group_of(self) -> dict[int, FusionGroup]:
        return {m: g for g in self.groups for m in g.members}


def plan_fusion(
    graph: Graph,
    opt_level: int,
    *,
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE,
    rules: Sequence[Rule] = (),
    disabled_rules: frozenset[str] = frozenset(),
    disabled_groups: frozenset[str] = frozenset(),
    hardware: Hardware | None = None,
    dims: Mapping[str, int] | None = None,
    static_shapes: Mapping[str, tuple[int, ...]] | None = None,
    keep_rules: frozenset[str] = frozenset(),
    emittable: Emittable | None = None,
) -> Plan:
    """Choose the fused groups for `graph` at `opt_level`.

    0: nothing. 1: rule matches only. 2-3: rule matches, then automatic grouping over the nodes
    no rule took; with a target, a rule match competes with the automatic grouping of the same
    nodes first (see _compete). Groups whose id is in `disabled_groups` are planned as usual and then left
    unfused, so every other group keeps its id (what `autofuse bisect` relies on). Matches of
    the rules in `keep_rules` stay exactly as matched: they do not compete, merge or get refused
    for want of benefit (the PyTorch path lowers them to one torch_npu op each, which only pays
    as the whole block). With `emittable` (the code generator's answer, see pricing.py), a group
    the generator would decline is refused as it is priced, never formed.
    """
    if not 0 <= opt_level <= 3:
        raise ValueError(f"opt_level must be 0-3, got {opt_level}")
    refusals: list[Refusal] = []
    from_rules: list[Candidate] = []
    if opt_level >= 1 and rules:
        matches, _ = find_matches(graph, RuleIndex(list(rules)))
        from_rules = select_matches(graph, matches, disabled_rules, max_group_size, refusals)
    model = CostModel(graph, hardware, bind_dims(graph, dims), static_shapes) if hardware is not None else None
    baseline = [model.node(n) for n in graph.nodes] if model is not None else []  # each node as its own kernel
    node_time = [e.time_us for e in baseline]
    # Each member set's boundary is worked out once per plan: pricing asks for every candidate
    # (twice for those rules and automatic fusion compete over), numbering for every group kept.
    boundary_of: Boundary = functools.cache(functools.partial(boundary, graph))
    merged = None
    if model is not None and opt_level >= 2 and from_rules:
        from_rules, auto, merged = _compete(graph, model, node_time, boundary_of, opt_level, max_group_size,
                                            from_rules, refusals, keep_rules)
    else:
        auto = find_auto_candidates(graph, opt_level, max_group_size=max_group_size,
                                    fixed=tuple(c.members for c in from_rules))
    refusals.extend(auto.refusals)
    items: list[Candidate | Merged] = list(from_rules + auto.candidates)
    if opt_level >= 3:
        if merged is None:
            kept = [i for i in items if candidate_of(i).rule in keep_rules]
            merged = merge_around_matmuls(graph, [i for i in items if candidate_of(i).rule not in keep_rules],
                                          max_group_size, fixed=kept)
        items = merged
    priced: dict[frozenset[int], Priced] = {}
    if model is not None:
        priced = {p.candidate.members: p for p in price_candidates(graph, model, items, node_time, boundary_of,
                                                                   refusals, keep_rules, emittable)}
        items = [p.item for p in priced.values()]
    groups = tuple(_number(graph, [candidate_of(i) for i in items], boundary_of))
    check_partition(groups, graph)
    try:
        order = schedule(groups, graph)
    except PlanInvariantError:
        candidates = _without_cycles(graph, items, refusals)
        groups = tuple(_number(graph, candidates, boundary_of))
        order = schedule(groups, graph)
    if disabled_groups:
        groups = _switch_off(graph, groups, disabled_groups, refusals)
        order = schedule(groups, graph)
    if model is None:
        return Plan(opt_level, groups, tuple(refusals), order)
    groups = tuple(_with_cost(graph, model, baseline, g, priced.get(frozenset(g.members))) for g in groups)
    return Plan(opt_level, groups, tuple(refusals), order, _totals(graph, model, baseline, groups))


def _switch_off(graph: Graph, groups: tuple[FusionGroup, ...], disabled: frozenset[str],
                refusals: list[Refusal]) -> tuple[FusionGroup, ...]:
    """The plan without the groups the user switched off (`--disable-fusion`); ids unchanged."""
    unknown = sorted(disabled - {g.id for g in groups})
    if unknown:
        have = f"this plan has g0-g{len(groups) - 1}" if groups else "this plan has no fused groups"
        raise InputError(f"--disable-fusion: no fused group {', '.join(unknown)} ({have})")
    for group in groups:
        if group.id in disabled:
            names = tuple(graph.nodes[m].name for m in group.members)
            refusals.append(Refusal(names, DISABLED_BY_USER, f"fused group {group.id} switched off"))
    return tuple(g for g in groups if g.id not in disabled)


def _with_cost(graph: Graph, model: CostModel, baseline: list[Estimate], group: FusionGroup,
               priced: Priced | None) -> FusionGroup:
    """The group with the cost model's numbers (priced again only if the cycle repair split it).
    `baseline[i]`: node i as its own kernel."""
    members = frozenset(group.members)
    after = priced.after if priced is not None else None
    if after is None:
        try:
            after = model.group(members, group.inputs, group.outputs,
                                group_scheme(group.kind, group.lowering, has_matmul(graph, members)))
        except (UnknownShape, TileOverflow):
            return group  # a rule's group whose shapes cannot be sized: kept, unpriced
    estimates = [baseline[m] for m in group.members]
    before = sum(e.time_us for e in estimates)
    bytes_before = None if any(e.hbm_bytes is None for e in estimates) else sum(e.hbm_bytes for e in estimates)
    kernels = sum(model.kernel[m] for m in group.members)
    cost = group_cost(after, None if math.isnan(before) else before, bytes_before, max(kernels - 1, 0))
    return replace(group, cost=cost)


def _totals(graph: Graph, model: CostModel, baseline: list[Estimate], groups: tuple[FusionGroup, ...]) -> dict:
    fused = {m for g in groups for m in g.members}
    unfused = [e for e, n in zip(baseline, graph.nodes) if n.id not in fused]

    def total(values):  # None when a value is unknown (None, or NaN for a time)
        values = list(values)
        return None if None in values or any(map(math.isnan, values)) else sum(values)

    edge = [*graph.inputs, *graph.initializers, *graph.outputs]
    return {
        "hbm_bytes_before": total(e.hbm_bytes for e in baseline),
        "hbm_bytes_after": total([e.hbm_bytes for e in unfused] + [g.cost.hbm_bytes_after if g.cost else None for g in groups]),
        "hbm_lower_bound": total(model.nbytes(v) for v in dict.fromkeys(edge)),
        "est_time_us_before": total(e.time_us for e in baseline),
        "est_time_us_after": total([e.time_us for e in unfused] + [g.cost.time_after_us if g.cost else None for g in groups]),
        "target": model.hw.name,
        "dims": model.dims,
    }


def _without_cycles(graph: Graph, items: list[Candidate | Merged], refusals: list[Refusal]) -> list[Candidate]:
    """Undo merges, then drop groups, until contracting every group leaves the graph acyclic.

    Each group is convex on its own, but two groups can still feed each other (A -> B through
    one pair of members, B -> A through another). In every strongly connected set of the
    contracted graph, a merged group is split back into its parts if there is one; otherwise the
    smallest group is dropped and the refusal says why.
    """
    import networkx as nx

    kept = list(items)
    while True:
        owner = {m: i for i, item in enumerate(kept) for m in candidate_of(item).members}
        contracted = nx.DiGraph()
        for node in graph.nodes:
            dst = owner.get(node.id, -1 - node.id)
            for p in graph.producer_ids(node):
                src = owner.get(p, -1 - p)
                if src != dst:
                    contracted.add_edge(src, dst)
        cyclic = [c for c in nx.strongly_connected_components(contracted) if len(c) > 1]
        if not cyclic:
            return [candidate_of(item) for item in kept]
        split: dict[int, tuple[Candidate, ...]] = {}
        dropped: set[int] = set()
        for component in cyclic:
            groups = [i for i in component if i >= 0]
            merged = [i for i in groups if isinstance(kept[i], Merged)]
            if merged:
                biggest = max(merged, key=lambda i: len(kept[i].parts))
                split[biggest] = kept[biggest].parts
                continue
            smallest = min(groups, key=lambda i: len(kept[i].members))
            dropped.add(smallest)
            refusals.append(Refusal(_names(graph, kept[smallest].members), WOULD_CREATE_CYCLE,
                                    "this group and another one would feed each other once both are fused"))
        rebuilt: list[Candidate | Merged] = []
        for i, item in enumerate(kept):
            if i in split:  # the views of a merge and lone nodes are no groups of their own
                rebuilt.extend(p for p in split[i] if p.kind != VIEWS and (len(p.members) > 1 or p.rule))
            elif i not in dropped:
                rebuilt.append(item)
        kept = rebuilt


def _compete(graph: Graph, model: CostModel, node_time: list[float], boundary_of: Boundary, opt_level: int, cap: int,
             from_rules: list[Candidate], refusals: list[Refusal],
             keep: frozenset[str]) -> tuple[list[Candidate], AutoGrouping, list | None]:
    """Rule matches against what automatic fusion would do with the same nodes.

    Two plans are laid side by side: the rule matches with automatic fusion around them, and
    automatic fusion alone (each with the level-3 merges). Groups of the two that share nodes
    form regions; in a region holding rule matches, the rules stay unless automatic fusion alone
    saves more estimated time there. Then the region's matches are refused with both numbers,
    and automatic fusion takes their nodes. Returns the rules kept, the automatic grouping
    around them, and the level-3 merges of the two when they are already known.
    """
    around = find_auto_candidates(graph, opt_level, max_group_size=cap, fixed=tuple(c.members for c in from_rules))
    # Automatic fusion alone differs only next to the rules: groups that do not touch a match are
    # kept as they are (fixed), and the walk regroups the matches' nodes and their neighbours.
    ruled = {m for c in from_rules for m in c.members}
    untouched = [a for a in around.candidates if not any(
        p in ruled for m in a.members for p in (*graph.producer_ids(graph.nodes[m]), *graph.consumer_ids(graph.nodes[m])))]
    free = find_auto_candidates(graph, opt_level, max_group_size=cap, fixed=tuple(a.members for a in untouched),
                                refusals=False)
    kept_as_matched = [c for c in from_rules if c.rule in keep]
    ours: list = [c for c in from_rules if c.rule not in keep] + list(around.candidates)
    theirs: list = list(untouched) + list(free.candidates)
    if opt_level >= 3:
        ours = merge_around_matmuls(graph, ours, cap, fixed=kept_as_matched)
        theirs = merge_around_matmuls(graph, theirs, cap)
    else:
        ours = kept_as_matched + ours
    items = ours + theirs
    parent = list(range(len(items)))  # union-find: groups of either plan sharing a node

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[int, int] = {}
    for index, item in enumerate(items):
        for m in candidate_of(item).members:
            other = first.setdefault(m, index)
            if other != index:
                parent[find(index)] = find(other)
    rule_of = {m: i for i, c in enumerate(from_rules) for m in c.members}
    regions: dict[int, tuple[list, list]] = {}
    rules_in: dict[int, set[int]] = {}
    for index, item in enumerate(items):
        root = find(index)
        regions.setdefault(root, ([], []))[0 if index < len(ours) else 1].append(item)
        if index < len(ours):
            rules_in.setdefault(root, set()).update(rule_of[m] for m in candidate_of(item).members if m in rule_of)
    losers: dict[int, tuple[float, float]] = {}
    for root, rules_here in rules_in.items():
        with_rules, without = regions[root]
        if not rules_here or {candidate_of(i).members for i in with_rules} == {candidate_of(i).members for i in without}:
            continue  # automatic fusion alone would form the very same groups here
        saved = [sum(_item_saving(graph, model, item, node_time, boundary_of) for item in side)
                 for side in (with_rules, without)]
        if not any(from_rules[i].rule in keep for i in rules_here) and saved[1] > saved[0] * (1 + _RULE_MARGIN):
            losers.update((i, (saved[0], saved[1])) for i in rules_here)
    if not losers:
        return from_rules, around, (ours if opt_level >= 3 else None)
    kept = [c for i, c in enumerate(from_rules) if i not in losers]
    around = find_auto_candidates(graph, opt_level, max_group_size=cap, fixed=tuple(c.members for c in kept))
    for i, (with_rules, without) in sorted(losers.items()):
        c = from_rules[i]
        host = next((k for k, a in enumerate(around.candidates) if c.members <= a.members), None)
        if host is not None:  # a bigger automatic group holds the whole match: it still names the block
            a = around.candidates[host]
            if a.rule is None:
                around.candidates[host] = replace(a, rule=c.rule, op_name=c.op_name, inputs=c.inputs,
                                                  attributes=c.attributes)
            continue
        refusals.append(Refusal(_names(graph, c.members), AUTOMATIC_SAVES_MORE,
                                f"rule '{c.rule}' with fusion around it saves {with_rules:.2f} us; automatic "
                                f"fusion alone saves {without:.2f} us on the same nodes"))
    return kept, around, None


# How much more automatic fusion must save to replace rule matches. A rule states that its block
# is one known kernel (often a tuned CANN op, e.g. attention that never writes its scores out),
# which the cost model prices only by the bytes crossing it; a win inside the model's error is
# not a reason to give that up. (Our choice; the model's error is not measured on hardware.)
_RULE_MARGIN = 0.10


def _item_saving(graph: Graph, model: CostModel, item, node_time, boundary_of: Boundary) -> float:
    """What a candidate saves; a merge that does not pay is worth its parts (as pricing splits it)."""
    found = saving_us(graph, model, candidate_of(item), node_time, boundary_of)
    if found > 0 or not isinstance(item, Merged):
        return found
    return sum(_item_saving(graph, model, part, node_time, boundary_of) for part in item.parts)


def select_matches(
    graph: Graph, matches: list[Match], disabled: frozenset[str], cap: int, refusals: list[Refusal],
) -> list[Candidate]:
    """Choose non-overlapping rule matches: higher priority first, then bigger, then earlier.

    The size cap bounds the work of one kernel, so a match is measured by its members that do
    work: constants, views and the shape arithmetic an exporter writes around a block (the
    TorchScript exporter's grouped-query attention is 100 nodes, most of them shape reads)
    do not count.
    """
    chosen: list[Candidate] = []
    shape_nodes: set[int] | None = None
    taken: dict[int, str] = {}
    for match in sorted(matches, key=lambda m: (-m.rule.priority, -len(m.nodes), m.root)):
        rule = match.rule.name
        if rule in disabled:
            refusals.append(Refusal(_names(graph, match.nodes), DISABLED_BY_USER, f"rule '{rule}' is disabled"))
            continue
        overlap = sorted(i for i in match.nodes if i in taken)
        if overlap:
            refusals.append(Refusal(_names(graph, match.nodes), OVERLAPPING_MATCH,
                                    f"rule '{rule}': '{graph.nodes[overlap[0]].name}' is already in a "
                                    f"'{taken[overlap[0]]}' match"))
            continue
        if len(match.nodes) > cap:
            if shape_nodes is None:
                shape_nodes = shape_value_nodes(graph)
            work = sum(1 for i in match.nodes if i not in shape_nodes and is_kernel(graph.nodes[i], graph))
            if work > cap:
                refusals.append(Refusal(_names(graph, match.nodes), GROUP_TOO_LARGE,
                                        f"rule '{rule}' matched {work} nodes that do work (cap {cap})"))
                continue
        if not is_convex(graph, match.nodes):
            refusals.append(Refusal(_names(graph, match.nodes), WOULD_CREATE_CYCLE,
                                    f"rule '{rule}': a path leaves the match and comes back"))
            continue
        taken.update((i, rule) for i in match.nodes)
        inputs = tuple(match.values[name] for name in match.rule.inputs)
        attributes = tuple((attr, match.constants[capture]) for attr, capture in match.rule.attributes.items())
        chosen.append(Candidate(match.nodes, match.rule.kind, rule, match.rule.fused_op, inputs, attributes,
                                match.rule.lowering.get("ascendc")))
    return chosen


def _names(graph: Graph, members: frozenset[int]) -> tuple[str, ...]:
    """The names of the nodes a refusal is about, in graph order."""
    return tuple(graph.nodes[m].name for m in sorted(members))


def _number(graph: Graph, candidates: list[Candidate], boundary_of: Boundary | None = None) -> list[FusionGroup]:
    boundary_of = boundary_of or functools.partial(boundary, graph)
    ordered = sorted(candidates, key=lambda c: min(c.members))
    groups = []
    for index, candidate in enumerate(ordered):
        members = tuple(sorted(candidate.members))
        inputs, outputs = boundary_of(members)
        inputs = group_inputs(candidate, inputs)
        name = candidate.op_name or f"Fused{KIND_NAMES.get(candidate.kind, 'Group')}"
        groups.append(FusionGroup(f"g{index}", f"{name}_{index}", candidate.kind, candidate.rule, members,
                                  inputs, outputs, candidate.attributes, lowering=candidate.lowering))
    return groups


def boundary(graph: Graph, members: tuple[int, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Values a set of nodes reads from outside, and values it produces that are used outside.

    Both in order of first appearance, going through `members` in the order given."""
    nodes, consumers, graph_outputs = graph.nodes, graph.consumers, graph.output_set
    inside = set(members)
    produced = {v for m in members for v in nodes[m].outputs if v}
    inputs = dict.fromkeys(v for m in members for v in nodes[m].all_inputs if v not in produced)
    # A value leaves the set when the graph returns it or a node outside the set reads it.
    outputs = dict.fromkeys(v for m in members for v in nodes[m].outputs
                            if v and (v in graph_outputs or not inside.issuperset(consumers.get(v, ()))))
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
