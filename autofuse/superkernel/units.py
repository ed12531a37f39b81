"""Units: what GE will run as one kernel. A fusion pattern (Add+RmsNorm, SwiGLU, rotary, attention)
is one unit and one kernel, of its fused op's kind; every other call node is its own unit.

A scope boundary never falls inside a unit the planner places; a boundary that does (a template
scope) dissolves it: GE refuses to fuse nodes whose scope attributes differ, so its members run
apart, each of its own kind (superkernel.md 1.2, `IsSupportFuse`).
"""
from __future__ import annotations

from dataclasses import dataclass

from autofuse.superkernel.graph import GraphView
from autofuse.superkernel.optable import OpTable


@dataclass(frozen=True)
class Unit:
    members: tuple[int, ...]  # op indices, ascending
    kind: str
    ge_op: str | None
    reason: str
    stream: str
    rule: str | None = None  # the fusion pattern, None for a single op
    aiv: bool = False  # a collective that may join on the AIV path

    @property
    def first(self) -> int:
        return self.members[0]

    @property
    def position(self) -> int:
        """Where the unit runs in execution order: at its last member (a fused kernel runs once
        all of its inputs are ready; nodes interleaved with its members run before it)."""
        return self.members[-1]

    @property
    def is_kernel(self) -> bool:
        return self.kind != "none"

    def joins(self, hccl_aiv: bool) -> bool:
        return self.kind == "ascendc" or (self.kind == "comm" and self.aiv and hccl_aiv)


@dataclass(frozen=True)
class Pattern:
    """A fusion pattern found in the graph: its rule, members (op indices) and fused GE op."""

    rule: str
    members: tuple[int, ...]
    ge_op: str


def build_units(view: GraphView, patterns: list[Pattern], table: OpTable) -> list[Unit]:
    """One unit per pattern and per remaining call node, ordered by execution position."""
    taken: set[int] = set()
    units: list[Unit] = []
    for pattern in patterns:
        members = tuple(sorted(pattern.members))
        if taken & set(members):
            continue
        taken |= set(members)
        ge = table.ge_ops.get(pattern.ge_op)
        kind = ge.kind if ge else "unknown"
        reason = f"{pattern.ge_op} (fusion pattern {pattern.rule}): " + (ge.source if ge else "not in the op table")
        streams = {view.ops[i].stream for i in members}
        units.append(Unit(members, kind, pattern.ge_op, reason, streams.pop() if len(streams) == 1 else "",
                          pattern.rule, bool(ge and ge.aiv)))
    for op in view.ops:
        if op.index not in taken:
            units.append(single(view, op.index))
    units.sort(key=lambda u: u.position)
    return units


def single(view: GraphView, index: int) -> Unit:
    op = view.ops[index]
    return Unit((index,), op.kind, op.ge_op, op.reason, op.stream, None, op.aiv)
