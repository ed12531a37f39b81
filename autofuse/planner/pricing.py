"""Keep only the fusions that pay on the target: each candidate priced by the cost model.

A candidate is kept when its estimated time as one kernel is below the summed time of its
members as separate kernels and its tile fits the Unified Buffer. A merged candidate that does
not pay (or does not fit) is split back into the candidates it was made of, which are priced in
turn; an automatic group whose kernel would need more UB buffers or GM arguments than the
target allows is split into the longest runs of its members that stay within the limits; any
other candidate that does not pay is refused with the numbers behind the refusal.

With an `emittable` check (the code generator's answer, passed in by whoever runs the pipeline:
api.py), a candidate that pays is also asked whether a kernel can be written for it; one the
generator declines is refused here (`no_kernel_for_group`, with the generator's reason), a merge
falling back to its parts, instead of being formed and left without a kernel.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from autofuse.candidates.auto import Candidate, Refusal
from autofuse.candidates.decision import (
    NO_BENEFIT,
    NOT_EMITTABLE,
    TOO_MANY_ARGUMENTS,
    TOO_MANY_BUFFERS,
    UNKNOWN_SHAPE,
)
from autofuse.cost.model import CostModel, Estimate, UnknownShape, group_scheme
from autofuse.cost.tiling import LimitExceeded, TileOverflow
from autofuse.ir.graph import Graph
from autofuse.ops.table import OpClass, op_class
from autofuse.planner.merge import VIEWS, Merged, candidate_of, has_matmul


# (candidate, its inputs as the group will order them, its outputs, its estimate) -> None when a
# kernel can be generated for it, else the generator's reason.
Emittable = Callable[[Candidate, tuple, tuple, Estimate], "str | None"]


def group_inputs(candidate: Candidate, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The order of a group's inputs: a rule's declared inputs first, then the rest in order of use."""
    return tuple(dict.fromkeys((*(v for v in candidate.inputs if v in inputs), *inputs)))


@dataclass(frozen=True)
class Priced:
    candidate: Candidate
    before: float  # microseconds, the members as separate kernels
    after: Estimate | None  # the group as one kernel (None: a rule's group that cannot be priced)
    item: Candidate | Merged | None = None  # what was priced, merges kept (the cycle repair splits them)


def price_candidates(graph: Graph, model: CostModel, items: list, node_time: list[float], boundary,
                     refusals: list[Refusal], keep_rules: frozenset[str] = frozenset(),
                     emittable: Emittable | None = None) -> list[Priced]:
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
        if isinstance(verdict, Priced) and emittable is not None:
            verdict = _emission(graph, candidate, verdict, boundary, emittable)
        if isinstance(verdict, Priced):
            kept.append(replace(verdict, item=item))
        elif isinstance(item, Merged):
            pending.extend(item.parts)  # the bigger group did not pay: try its parts
        elif verdict.reason in (TOO_MANY_BUFFERS, TOO_MANY_ARGUMENTS) and candidate.rule is None:
            runs = _runs(graph, model, candidate, boundary)
            refusals.append(replace(verdict, detail=f"{verdict.detail}; split into {len(runs)} groups"))
            pending.extend(runs)
        else:
            refusals.append(verdict)
    return sorted(kept, key=lambda p: min(p.candidate.members))


def _emission(graph: Graph, candidate: Candidate, priced: Priced, boundary, emittable: Emittable) -> Priced | Refusal:
    """The priced candidate, or its refusal when the generator declines to write its kernel.
    Host work and CANN call-throughs get no generated kernel: nothing to ask."""
    if priced.after is None or group_scheme(candidate.kind, candidate.lowering,
                                            has_matmul(graph, candidate.members)) not in ("vector", "matmul"):
        return priced
    members = tuple(sorted(candidate.members))
    inputs, outputs = boundary(members)
    reason = emittable(candidate, group_inputs(candidate, inputs), outputs, priced.after)
    if reason is None:
        return priced
    return Refusal(_names(graph, members), NOT_EMITTABLE, f"the code generator declines it: {reason}")


def _runs(graph: Graph, model: CostModel, candidate: Candidate, boundary) -> list[Candidate]:
    """The candidate's members cut into the longest runs (in topological order) whose kernels
    stay within the target's limits (UB buffers, GM arguments). A run of a convex group is convex: a path leaving it
    and coming back would pass a member between two of its members, which the run holds."""
    members = sorted(candidate.members)

    def fits(start: int, stop: int) -> bool:
        run = frozenset(members[start:stop])
        inputs, outputs = boundary(tuple(members[start:stop]))
        try:
            model.group(run, inputs, outputs, group_scheme(_kind(graph, run), None, has_matmul(graph, run)))
        except LimitExceeded:
            return False
        except (UnknownShape, TileOverflow):
            return True  # refused (or kept unpriced) for that reason when the run is priced
        return True

    runs, start = [], 0
    while start < len(members):
        low, high = start + 1, len(members)
        while low < high:  # the longest run from `start` that fits (one node always does)
            mid = (low + high + 1) // 2
            if fits(start, mid):
                low = mid
            else:
                high = mid - 1
        run = frozenset(members[start:low])
        runs.append(Candidate(run, _kind(graph, run)))
        start = low
    return runs


def _kind(graph: Graph, members: frozenset[int]) -> str:
    if has_matmul(graph, members):
        return "matmul_epilogue"
    if any(op_class(graph.nodes[m]) in (OpClass.REDUCTION, OpClass.NORMALIZATION) for m in members):
        return "reduction"
    return "elementwise"


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
    except LimitExceeded as exc:
        return Refusal(_names(graph, members), exc.reason, str(exc))
    except TileOverflow as exc:
        buffers = ", ".join(f"{b.name} {b.total} B" for b in exc.buffers[:6])
        return Refusal(_names(graph, members), exc.reason, f"{exc}; usable UB is {exc.capacity} B ({buffers})")
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
