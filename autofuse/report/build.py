"""Plan + graph -> the report dictionary written as report.json (its keys are a contract)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from autofuse.ir.graph import Graph
from autofuse.ops.table import is_kernel, node_cost
from autofuse.planner.plan import FusionGroup, Plan
from autofuse.verify.onnx_runtime import Verification


def build_report(
    graph: Graph,
    plan: Plan,
    *,
    source: str,
    target: str,
    pass_seconds: float,
    verification: Verification | None = None,
    generated: Mapping | None = None,
    kernel_checks: Mapping | None = None,
    renamed_nodes: Sequence[Mapping] = (),
) -> dict:
    """The report of one run. Counts follow the definitions in README.md ("Reading the report")."""
    from autofuse import __version__

    kernels = [is_kernel(n, graph) for n in graph.nodes]
    fused_nodes = sum(len(g.members) for g in plan.groups)
    fused_kernels = sum(kernels[m] for g in plan.groups for m in g.members)
    return {
        "autofuse_version": __version__,
        "input": source,
        "opt_level": plan.opt_level,
        "target": target,
        "nodes_before": len(graph.nodes),
        "nodes_after": len(graph.nodes) - fused_nodes + len(plan.groups),
        "kernels_before": sum(kernels),
        "kernels_after": sum(kernels) - fused_kernels + len(plan.groups),
        "pass_seconds": round(pass_seconds, 4),
        "totals": {**_totals(plan, sum(kernels), sum(kernels) - fused_kernels + len(plan.groups)),
                   **_kernel_totals(generated, kernel_checks)},
        "groups": [_with_kernel(_group_entry(graph, g), g, generated, kernel_checks) for g in plan.groups],
        "rejected": [{"members": list(r.members), "reason": r.reason, "detail": r.detail} for r in plan.refusals],
        "rejected_by_reason": dict(Counter(r.reason for r in plan.refusals).most_common()),
        # Nodes written under another name than the input's (unique names; see README).
        "renamed_nodes": [dict(r) for r in renamed_nodes],
        "verification": None if verification is None else _verification_entry(verification),
    }


def _totals(plan: Plan, kernels_before: int, kernels_after: int) -> dict:
    """Whole-model numbers (times in microseconds, bytes of HBM traffic)."""
    return {**plan.totals, "kernels_before": kernels_before, "kernels_after": kernels_after}


def _kernel_totals(generated: Mapping | None, checks: Mapping | None) -> dict:
    """`kernels_missing` (null where kernels were not generated) and `kernels_unverified` (null
    where --verify-kernels did not run): autofuse/verify/kernels.py KernelCoverage.totals."""
    from autofuse.verify.kernels import kernel_coverage

    coverage = kernel_coverage(generated, checks)
    return coverage.totals() if coverage is not None else {"kernels_missing": None, "kernels_unverified": None}


def _group_entry(graph: Graph, group: FusionGroup) -> dict:
    cost = group.cost
    priced = {} if cost is None else {
        "hbm_bytes_before": cost.hbm_bytes_before,
        "hbm_bytes_after": cost.hbm_bytes_after,
        "est_time_us_before": None if cost.time_before_us is None else round(cost.time_before_us, 3),
        "est_time_us_after": round(cost.time_after_us, 3),
        "launches_saved": cost.launches_saved,
        "tile": cost.tile.as_dict() if cost.tile else None,
        "ub_bytes": cost.ub_bytes,
        "ub_capacity": cost.ub_capacity,
    }
    return {
        "id": group.id,
        "op_type": group.op_type,
        "kind": group.kind,
        "rule": group.rule,
        "members": [graph.nodes[m].name for m in group.members],
        "member_op_types": [graph.nodes[m].op_type for m in group.members],
        "inputs": list(group.inputs),
        "outputs": list(group.outputs),
        # Without the cost model (or where a shape is unknown) byte counts need static shapes.
        "hbm_bytes_before": _static_bytes([node_cost(graph.nodes[m], graph).bytes_total for m in group.members])
        if cost is None else None,
        "hbm_bytes_after": _static_bytes([graph.type_of(v).nbytes() for v in (*group.inputs, *group.outputs)])
        if cost is None else None,
        **priced,
    }


def _with_kernel(entry: dict, group: FusionGroup, kernels: Mapping | None, checks: Mapping | None) -> dict:
    """The group's `kernel` object (autofuse/verify/kernels.py says what it holds), when kernels
    were generated."""
    if kernels is not None:
        from autofuse.verify.kernels import kernel_entry

        entry["kernel"] = kernel_entry(group, kernels.get(group.id), (checks or {}).get(group.id))
    return entry


def _static_bytes(sizes: list[int | None]) -> int | None:
    return None if None in sizes else sum(sizes)  # type: ignore[arg-type]


def _verification_entry(result: Verification) -> dict:
    return {
        "ok": result.ok,
        "summary": result.summary(),
        "outputs": [
            {"name": o.name, "dtype": o.dtype, "ok": o.ok, "max_abs_error": o.max_abs_error}
            for o in result.outputs
        ],
    }
