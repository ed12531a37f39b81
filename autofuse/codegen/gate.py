"""The planner's question to the code generator: can a kernel be written for this candidate?

The planner (planner/pricing.py) asks it of every candidate that pays, before forming a group;
a candidate the generator declines is refused there with the generator's reason
(`no_kernel_for_group` in the report's `rejected`), a merge falling back to its parts, instead of
being formed and then left without a kernel. The answer is the generator's own lowering
(lower.py) of the candidate as the group it would become — the same inputs order, kind, rule
and the tile the cost model chose — so the two cannot disagree. Candidates of one structure
(the same block in every layer) are lowered once (reuse.py's signature).

An exception while lowering is a bug, not an answer: the candidate is let through, and
generate_kernels, which lowers the numbered group again, reports the bug on it (exit 1) when
kernels are asked for.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from autofuse.codegen import reuse
from autofuse.codegen.lower import LowerContext, lower_group
from autofuse.codegen.program import Unsupported
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel
from autofuse.ir.graph import Graph
from autofuse.planner.plan import KIND_NAMES, FusionGroup, group_cost


class EmissionCheck:
    """Callable as the planner's `emittable`: (candidate, inputs, outputs, estimate) -> None when
    the generator writes a kernel for it, else its reason."""

    def __init__(self, graph: Graph, hardware: Hardware, dims: Mapping[str, int],
                 static: Mapping[str, tuple[int, ...]] | None, rules: Sequence = ()) -> None:
        self.ctx = LowerContext(graph, hardware, CostModel(graph, hardware, dims, static), {r.name: r for r in rules})
        self._seen: dict[object, list[tuple[reuse.Lowered, str | None]]] = {}

    def __call__(self, candidate, inputs: tuple[str, ...], outputs: tuple[str, ...], estimate) -> str | None:
        cost = group_cost(estimate)
        name = candidate.op_name or f"Fused{KIND_NAMES.get(candidate.kind, 'Group')}"
        group = FusionGroup("g0", f"{name}_0", candidate.kind, candidate.rule, tuple(sorted(candidate.members)),
                            inputs, outputs, candidate.attributes, cost=cost, lowering=candidate.lowering)
        shape = reuse.signature(self.ctx, group)
        if shape is not None:
            for earlier, answer in self._seen.get(shape.key, ()):
                if earlier.matches(self.ctx, shape):
                    return None if answer is None else f"as for nodes {', '.join(earlier.shape.nodes[:2])}: {answer}"
        self.ctx.constants_read.clear()
        try:
            result = lower_group(self.ctx, group)
        except Exception:  # noqa: BLE001 - a bug: generate_kernels reports it on the group (see above)
            return None
        answer = result.reason if isinstance(result, Unsupported) else None
        kept = reuse.lowered(self.ctx, shape, result, None) if shape is not None else None
        if kept is not None:
            self._seen.setdefault(shape.key, []).append((kept, answer))
        return answer
