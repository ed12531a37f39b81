"""The fusion patterns of an FX graph, found by autofuse's own rule library: the FX front end builds
the IR (nodes named like the FX nodes), the rule matcher finds every match and the same selection
the fusion planner uses keeps non-overlapping ones. Each becomes one unit whose kind is that of the
CANN op the rule lowers to (`lowering.cann`)."""
from __future__ import annotations

from typing import Any

from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE
from autofuse.candidates.rules.loader import Rule
from autofuse.candidates.rules.matcher import RuleIndex, find_matches
from autofuse.planner.plan import select_matches
from autofuse.superkernel.graph import GraphView
from autofuse.superkernel.units import Pattern


def find_patterns(program: Any, view: GraphView, rules: list[Rule]) -> list[Pattern]:
    """Rule matches of `program` as op indices of `view` (built from the same program)."""
    from autofuse.frontends.fx import load_fx

    loaded = load_fx(program)
    graph = loaded.graph
    chosen = select_matches(graph, find_matches(graph, RuleIndex(rules))[0], frozenset(), DEFAULT_MAX_GROUP_SIZE, [])
    by_rule = {rule.name: rule for rule in rules}
    index = _align(view, [n.name for n in loaded.module.graph.nodes if n.op == "call_function"])
    patterns = []
    for candidate in chosen:
        members = {i for node in candidate.members for i in index.get(graph.nodes[node].name, ())}
        rule = by_rule[candidate.rule]
        if members:
            patterns.append(Pattern(rule.name, tuple(sorted(members)), rule.lowering.get("cann") or rule.fused_op))
    return patterns


def _align(view: GraphView, names: list[str]) -> dict[str, tuple[int, ...]]:
    """FX node name in the front end's graph -> op indices of `view`. The front end writes a few
    ops out before mapping (rsqrt -> reciprocal(sqrt)); those new nodes stand for the view's ops
    that are missing from its graph between the same two shared nodes."""
    present = set(names)
    index: dict[str, tuple[int, ...]] = {}
    pending: list[str] = []
    last = -1
    for name in names + [None]:
        op = view.by_name.get(name) if name is not None else None
        if name is not None and op is None:
            pending.append(name)
            continue
        stop = op.index if op is not None else len(view.ops)
        replaced = tuple(o.index for o in view.ops[last + 1:stop] if o.name not in present)
        for new in pending:
            index[new] = replaced
        pending = []
        if op is not None:
            index[name] = (op.index,)
            last = op.index
    return index
