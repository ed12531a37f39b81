"""superkernel_report.md: the scopes of a plan, the ops in each, where and why GE is predicted to
cut them, the launches and time saved per decode step, how to apply the plan, and how to measure
it on an Atlas A3 machine (which this machine is not)."""
from __future__ import annotations

from collections import Counter

from autofuse.superkernel.plan import Plan, Scope


def render_report(plan: Plan, *, source: str = "", placement_notes: list[str] = ()) -> str:
    d = plan.to_dict()
    totals = d["totals"]
    lines = [f"# SuperKernel plan{f': {source}' if source else ''}", ""]
    lines += [
        "| | |", "|---|---|",
        f"| strategy | `{plan.strategy}` |",
        f"| target | {plan.target} (SuperKernel is documented for Atlas A3) |",
        f"| gate | `{plan.gate}`: decode steps only |",
        f"| options | `{plan.options or '(none)'}` |",
        f"| scopes / SuperKernels | {totals['scopes']} / {totals['superkernels']} |",
        (f"| kernels per decode step | {totals['kernels_before']} -> {totals['launches_after']} launches "
         f"({totals['launches_saved']} saved) |"),
        (f"| predicted time saved per decode step | {totals['time_saved_us']:.1f} us to "
         f"{totals['time_saved_us_upper']:.1f} us (cost model: {plan.launch_us:g} to {plan.launch_us_upper:g} us "
         "of head per launch saved) |"),
        "",
        ("Predictions only: nothing here ran on an NPU (this machine has neither an NPU nor CANN). "
         "Kernels count fusion patterns once (see Assumptions)."),
        "",
    ]
    if plan.disabled:
        lines += [f"**No SuperKernel will be built:** {plan.disabled}.", ""]
    if plan.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in plan.warnings] + [""]
    lines += ["## Scopes", ""]
    if not plan.scopes:
        lines += ["No scopes.", ""]
    for scope in plan.scopes:
        lines += _scope(scope, plan.launch_us)
    if plan.patterns:
        lines += ["## Fusion patterns kept whole", "",
                  "Each runs as one kernel of its CANN op; no `auto` scope boundary falls inside one.", "",
                  "| rule | op | FX nodes |", "|---|---|---|"]
        lines += [f"| {p['rule']} | {p['op']} | {_names(p['members'])} |" for p in plan.patterns]
        lines.append("")
    lines += _applying(plan, placement_notes)
    lines += ["## Assumptions", ""] + [f"- {a}" for a in plan.assumptions] + [""]
    lines += _measuring(plan)
    return "\n".join(lines)


def _scope(scope: Scope, launch_us: float) -> list[str]:
    layers = f", layers {', '.join(map(str, scope.layers))}" if scope.layers else ""
    out = [f"### `{scope.label}`", "",
           (f"Module `{scope.module or '(root)'}`{layers}. From `{scope.start}` to `{scope.end}` "
            f"({len(scope.members)} FX nodes). Launches saved: {scope.launches_saved} "
            f"({scope.launches_saved * launch_us:.1f} us)."), ""]
    if scope.pieces:
        out += ["| SuperKernel | kernels | ops | FX nodes |", "|---|---|---|---|"]
        for k, piece in enumerate(scope.pieces, 1):
            name = scope.label if len(scope.pieces) == 1 else f"{scope.label} piece {k} (GE: {scope.label}_split_*)"
            out.append(f"| {name} | {piece.kernels} | {op_summary(piece.ops)} | {_names(piece.members)} |")
        out.append("")
    else:
        out += ["No SuperKernel: no two kernels that can join run next to each other in this scope.", ""]
    if scope.cuts:
        out += ["| cut | node | op | kind | splits the scope | why |", "|---|---|---|---|---|---|"]
        out += [f"| {c.where} | {_names(c.nodes)} | {c.op or '-'} | {c.kind} | {'yes' if c.splits else 'no'} | "
                f"{c.reason} |" for c in scope.cuts]
        out.append("")
    return out


def _names(names) -> str:
    names = list(names)
    shown = ", ".join(f"`{n}`" for n in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _applying(plan: Plan, notes: list[str]) -> list[str]:
    out = ["## Applying the plan", "",
           "1. **FX pass** (exact placement). In torchair's GE mode:", "",
           "   ```python",
           "   from autofuse.superkernel import SuperKernelPass",
           "   config = torchair.CompilerConfig()",
           "   config.mode = \"max-autotune\"",
           f"   config.post_grad_custom_post_pass = SuperKernelPass({plan.strategy!r}, {plan.options!r})",
           "   ```", "",
           ("   It plans the graph torchair hands it and inserts `air.scope_enter` / `air.scope_exit` "
            "(keys `_super_kernel_scope`, `_super_kernel_options`) in decode steps only."),
           ("2. **`apply(model, plan)`** wraps module forwards in `torchair.scope.super_kernel(label, options)` "
            "(on the Ascend machine, where torchair imports)."),
           ("3. **`superkernel.patch`**: `with torchair.scope.super_kernel(...)` blocks in the modeling source, "
            "gated by `enable and not is_prefill` (`patch -p1` in the directory holding the model's package)."), ""]
    if notes:
        out += ["`apply` and the patch place scopes at module granularity; for this plan:", ""]
        out += [f"- {n}" for n in notes] + [""]
    return out


def _measuring(plan: Plan) -> list[str]:
    options = plan.options or ""
    return [
        "## Measuring it on an Atlas A3 machine", "",
        "This cannot run here (no NPU, no CANN). On an A3 machine with CANN, torch_npu and torchair:", "",
        ("1. Compile the decode step in GE mode, static shapes, as the recipes do: "
         "`config.mode = \"max-autotune\"`, `config.experimental_config.frozen_parameter = True`, "
         "`config.experimental_config.tiling_schedule_optimize = True`, "
         "`config.experimental_config.topology_sorting_strategy = \"StableRDFS\"`, then "
         "`torch.compile(model, backend=torchair.get_npu_backend(compiler_config=config), dynamic=False, fullgraph=True)`."),
        ("2. **Baseline**: warm up (20 decode steps), then time 200 decode steps with `torch.npu.synchronize()` "
         "around them (mean and p50 per step), and record one step with `torch_npu.profiler` "
         "(`kernel_details.csv`: count the kernels of one step)."),
        (f"3. **Optimized**: the same, with `config.post_grad_custom_post_pass = SuperKernelPass({plan.strategy!r}, "
         f"{options!r})` (or the patch applied). Check that SuperKernels formed: `te_superkernel_*` kernels and "
         "`sk_<label>_start_*_end_*` op names in the profile and plog, and the `AfterSkGraph` GE dump "
         "(`config.debug.graph_dump.type = \"pbtxt\"`). To see why a scope broke, rerun with "
         "`strict-scope-check=bypass` in the options and search the plog for `super_kernel_scope`."),
        (f"4. **Compare**: kernels per step against the prediction ({plan.kernels_before} -> {plan.launches_after} "
         f"launches), decode-step time against the predicted saving ({plan.launches_saved * plan.launch_us:.1f} to "
         f"{plan.launches_saved * plan.launch_us_upper:.1f} us), and outputs: the same greedy tokens over 32 steps "
         "and logits within bf16 tolerance of the baseline. A hang or wrong result points at `feed-sync-all=1` "
         "or the `dcci-*` options."), "",
    ]


def op_summary(op_types) -> str:
    """`MatMulV2 x3, AddRmsNorm` from a list of GE op types."""
    counts = Counter(op_types)
    return ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.items())
