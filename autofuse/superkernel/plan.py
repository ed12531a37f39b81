"""A SuperKernel plan: the scopes to place, and what CANN's graph engine is predicted to make of them
(the SuperKernels each scope becomes, the ops that cut it, the launches saved). `to_dict` is the
contract of superkernel_plan.json."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cut:
    """An op that keeps a scope from being one SuperKernel, or that bounds an `auto` scope."""

    nodes: tuple[str, ...]  # FX node names (the members of a fusion pattern, or one node)
    op: str | None  # GE op type
    kind: str  # optable kind, "unknown", or "pattern" for a fusion pattern a boundary splits
    where: str  # inside | before | after (the last two: the op next to an auto scope)
    splits: bool  # inside: it falls between two of the scope's SuperKernels
    reason: str

    def to_dict(self) -> dict:
        return {"node": self.nodes[0], "nodes": list(self.nodes), "op": self.op, "kind": self.kind,
                "where": self.where, "splits": self.splits, "reason": self.reason}


@dataclass(frozen=True)
class Piece:
    """One SuperKernel GE is predicted to build from a scope."""

    members: tuple[str, ...]  # FX node names of the kernels it runs (all nodes of a fused pattern)
    kernels: int  # kernels (fused patterns count once)
    streams: tuple[str, ...]
    ops: tuple[str, ...] = ()  # GE op type of each kernel, in order

    def to_dict(self) -> dict:
        return {"members": list(self.members), "kernels": self.kernels, "ops": list(self.ops),
                "streams": list(self.streams)}


@dataclass(frozen=True)
class Scope:
    label: str
    options: str
    start: str  # first FX node inside the scope (scope_enter goes before it)
    end: str  # last FX node inside (scope_exit goes after it)
    members: tuple[str, ...]  # every FX call node between start and end
    module: str  # the smallest module holding the scope (what apply() and the patch wrap)
    layers: tuple[int, ...]
    pieces: tuple[Piece, ...] = ()
    cuts: tuple[Cut, ...] = ()

    @property
    def launches_saved(self) -> int:
        return sum(p.kernels - 1 for p in self.pieces if p.kernels > 1)

    def to_dict(self, launch_us: float) -> dict:
        return {
            "label": self.label, "options": self.options, "members": list(self.members),
            "cuts": [c.to_dict() for c in self.cuts], "start": self.start, "end": self.end,
            "module": self.module, "layers": list(self.layers),
            "superkernels": [p.to_dict() for p in self.pieces],
            "kernels": sum(p.kernels for p in self.pieces),
            "launches_saved": self.launches_saved,
            "time_saved_us": round(self.launches_saved * launch_us, 3),
        }


@dataclass(frozen=True)
class Plan:
    strategy: str
    options: str
    scopes: tuple[Scope, ...]
    gate: str  # the condition every scope is under (decode steps only)
    target: str
    launch_us: float  # head cost of one kernel launch, lower bound (profile launch.few_cores)
    launch_us_upper: float  # upper bound (profile launch.all_cores)
    launch_source: str
    kernels_before: int  # kernels per decode step without scopes (fusion patterns count once)
    launches_after: int  # launches per decode step with the scopes
    layer_container: str | None = None  # module path of the decoder-layer list
    disabled: str | None = None  # why GE would build no SuperKernel at all (dynamic shapes)
    warnings: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    patterns: tuple[dict, ...] = field(default_factory=tuple)  # fusion patterns kept whole: rule, members, op

    @property
    def launches_saved(self) -> int:
        return self.kernels_before - self.launches_after

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "options": self.options,
            "gate": {"expression": self.gate, "decode_only": True},
            "target": self.target,
            "layer_container": self.layer_container,
            "disabled": self.disabled,
            "scopes": [s.to_dict(self.launch_us) for s in self.scopes],
            "totals": {
                "scopes": len(self.scopes),
                "superkernels": sum(len(s.pieces) for s in self.scopes),
                "kernels_before": self.kernels_before,
                "launches_after": self.launches_after,
                "launches_saved": self.launches_saved,
                "time_saved_us": round(self.launches_saved * self.launch_us, 3),
                "time_saved_us_upper": round(self.launches_saved * self.launch_us_upper, 3),
                "launch_us": self.launch_us,
                "launch_us_upper": self.launch_us_upper,
                "launch_source": self.launch_source,
            },
            "patterns": list(self.patterns),
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
        }
