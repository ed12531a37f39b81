"""Keep only the fusions that pay on the target: each candidate priced by the cost model.

A candidate is kept when its estimated time as one kernel is below the summed time of its
members as separate kernels and its tile fits the Unified Buffer. A merged candidate that does
not pay (or does not fit) is split back into the candidates it was made of, which are priced in
turn; any other candidate that does not pay is refused with the numbers behind the refusal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from autofuse.candidates.auto import Candidate, Refusal
from autofuse.candidates.decision import NO_BENEFIT, UB_OVERFLOW, UNKNOWN_SHAPE
from autofuse.cost.model import CostModel, Estimate, UnknownShape, group_scheme
from autofuse.cost.tiling import TileOverflow
from autofuse.ir.graph import Graph
from autofuse.planner.merge import VIEWS, Merged, candidate_of, has_matmul


@dataclass(frozen=True)
class Priced:
    candidate: Candidate
    before: float  # microseconds, the members as separate kernels
    after: Estimate | None  # the group as one kernel (None: a rule's group that cannot be priced)
    item: Candidate | Merged | None = None  # what was priced, merges kept (the cycle repair splits them)


def price_candidates(graph: Graph, model: CostModel, items: list, node_time: list[float], boundary,
                     refusals: list[Refusal], keep_rules: frozenset[str] = frozenset()) -> list[Priced]:
    """The candidates that pay, priced; refusals are appended for those that do not. Groups of
    the rules in `keep_rules` are priced but kept either way.

    `node_time[i]`: node i as its own kernel; `boundary(members)`: the values crossing a set of
    nodes (plan.boundary), for members in ascending order."""
    kept: list[Priced] = []
    pending = list(items)
    while pending:
        item = pending.pop()
        candidate = candidate_of(item)
        if (len(candidate.members) < 2 and candidate.rule is None) or candidate.kind == VIEWS:
            continue  # a lone node or the views of a split merge: not a fusion
        verdict = _price(graph, model, candidate, node_time, boundary)
        if isinstance(verdict, Refusal) and verdict.reason == NO_BENEFIT and candidate.rule in keep_rules:
            verdict = _price(graph, model, candidate, node_time, boundary, accept=True)
        if isinstance(verdict, Priced):
            kept.append(replace(verdict, item=item))
        elif isinstance(item, Merged):
            pending.extend(item.parts)  # the bigger group did not pay: try its parts
        else:
            refusals.append(verdict)
    return sorted(kept, key=lambda p: min(p.candidate.members))


def saving_us(graph: Graph, model: CostModel, candidate: Candidate, node_time, boundary) -> float:
    """Estimated microseconds the candidate saves as one kernel: 0 when it would be refused,
    infinite for a rule's group that cannot be priced (an authored pattern is not second-guessed
    without numbers)."""
    verdict = _price(graph, model, candidate, node_time, boundary)
    if not isinstance(verdict, Priced):
        return 0.0
    if verdict.after is None or math.isnan(verdict.before):
        return math.inf
    return max(verdict.before - verdict.after.time_us, 0.0)


def _price(graph: Graph, model: CostModel, candidate: Candidate, node_time, boundary,
           accept: bool = False) -> Priced | Refusal:
    members = tuple(sorted(candidate.members))
    inputs, outputs = boundary(members)
    scheme = group_scheme(candidate.kind, candidate.lowering, has_matmul(graph, candidate.members))
    before = sum(node_time[m] for m in members)
    try:
        after = model.group(candidate.members, inputs, outputs, scheme)
    except UnknownShape as exc:
        if candidate.rule is not None:  # an authored pattern: kept, but it cannot be priced
            return Priced(candidate, math.nan, None)
        return Refusal(_names(graph, members), UNKNOWN_SHAPE, f"cannot price the fused kernel: {exc}")
    except TileOverflow as exc:
        buffers = ", ".join(f"{b.name} {b.total} B" for b in exc.buffers[:6])
        return Refusal(_names(graph, members), UB_OVERFLOW, f"{exc}; usable UB is {exc.capacity} B ({buffers})")
    if math.isnan(before) or len(members) == 1:
        # A member's own shape is unknown (kept, unpriced), or a rule named one op (kept for its
        # lowering: it is the same kernel either way).
        return Priced(candidate, before, after)
    if after.time_us >= before and not accept:
        return Refusal(_names(graph, members), NO_BENEFIT,
                       f"one kernel would take {after.time_us:.2f} us, the {len(members)} nodes apart {before:.2f} us")
    return Priced(candidate, before, after)


def _names(graph: Graph, members: tuple[int, ...]) -> tuple[str, ...]:
    """The names of the nodes a refusal is about (built only for a refusal)."""
    return tuple(graph.nodes[m].name for m in members)
