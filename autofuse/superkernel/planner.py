"""The SuperKernel scope planner: an FX graph of one decode step -> a plan of scopes.

Strategies:
- `attention`, `moe`, `layer`, `all-layers`: the templates engineers write by hand today (one scope
  per attention block, per MoE block, per decoder layer, or one over all decoder layers), placed
  as written; the plan says what GE makes of them, including fusion patterns their boundaries
  split.
- `auto`: scopes exactly around the runs of kernels GE can fuse. Every run of two or more joining
  kernels (fusion patterns counted as their fused kernel) between two ops that cut it becomes one
  scope, which saves the most launches the graph allows; a boundary never falls inside a fusion
  pattern; scopes are labelled by the module they sit in (layer_3_attn, layer_3, layers_2_3).
Every scope is gated to decode steps (`enable and not is_prefill`).
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autofuse.cost.hardware import load_profile
from autofuse.errors import InputError
from autofuse.superkernel.ge_model import predict
from autofuse.superkernel.graph import (
    GraphView,
    build_view,
    looks_like_prefill,
    templates,
)
from autofuse.superkernel.optable import OpTable, load_optable
from autofuse.superkernel.options import parse_options
from autofuse.superkernel.plan import Cut, Plan, Scope
from autofuse.superkernel.units import Pattern, Unit, build_units

STRATEGIES = ("auto", "attention", "moe", "layer", "all-layers")
DEFAULT_TARGET = "ascend910_93"  # SuperKernel is documented for Atlas A3 (superkernel.md 1.4)
_TEMPLATE_ROLE = {"attention": "attn", "moe": "moe"}


@dataclass(frozen=True)
class _Draft:
    """A scope before prediction: an inclusive range of op indices and where it sits."""

    start: int
    end: int
    module: str
    layers: tuple[int, ...]
    label: str = ""
    bounds: tuple[Cut, ...] = ()  # auto: the ops just before and after it


@dataclass(frozen=True)
class Analysis:
    """What every strategy plans from: the classified graph, its fusion patterns and units."""

    view: GraphView
    patterns: tuple[Pattern, ...]
    units: tuple[Unit, ...]
    optable: OpTable
    notes: tuple[str, ...] = ()  # what could not be analysed (ends up in the plan's warnings)


def analyze(program: Any, *, example_inputs: Sequence | None = None, optable: str | os.PathLike | None = None,
            rules: list | None = None, constants: set[str] | None = None) -> Analysis:
    """Classify `program` (ExportedProgram or GraphModule of one decode step) and find its fusion
    patterns. optable: a file overriding entries of optable.yaml. rules: the fusion rules (default:
    the shipped library; [] plans without fusion patterns). constants: placeholder names of frozen
    weights (default: from the program's signature)."""
    table = load_optable(optable)
    view = build_view(program, example_inputs=example_inputs, optable=table, constants=constants)
    notes: tuple[str, ...] = ()
    try:
        patterns = _patterns(program, view, rules)
    except InputError as exc:  # the front end cannot read this graph: plan without patterns
        patterns, notes = [], (f"fusion patterns not searched ({exc}): scope boundaries may split them",)
    return Analysis(view, tuple(patterns), tuple(build_units(view, patterns, table)), table, notes)


def plan_superkernel(program: Any = None, *, strategy: str = "auto", options: str | None = "",
                     example_inputs: Sequence | None = None, target: str | os.PathLike = DEFAULT_TARGET,
                     hccl_aiv: bool = False, optable: str | os.PathLike | None = None,
                     rules: list | None = None, constants: set[str] | None = None,
                     analysis: Analysis | None = None) -> Plan:
    """Plan SuperKernel scopes for `program` (ExportedProgram or GraphModule of one decode step), or
    for an `analysis` of it (plan several strategies from one analysis).

    options: a SuperKernel options string, validated (InputError on a key or value CANN rejects).
    target: a hardware profile (its launch cost prices the launches saved). hccl_aiv: collectives
    run HCCL's AIV algorithm (HCCL_OP_EXPANSION_MODE=AIV), so AllReduce & co. may join. optable,
    rules, constants: see analyze().
    """
    if strategy not in STRATEGIES:
        close = difflib.get_close_matches(strategy, STRATEGIES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(f"--strategy: unknown strategy '{strategy}'{hint}; one of {', '.join(STRATEGIES)}")
    hardware = load_profile(target)
    table = analysis.optable if analysis is not None else load_optable(optable)
    parsed = parse_options(options, hardware=hardware, op_types=table.ge_ops)
    if analysis is None:
        analysis = analyze(program, example_inputs=example_inputs, optable=optable, rules=rules, constants=constants)
    view, patterns, units = analysis.view, list(analysis.patterns), list(analysis.units)
    warnings = list(parsed.warnings) + list(analysis.notes) + _graph_warnings(view, hardware.name)
    if strategy == "auto":
        drafts = [] if view.dynamic else _auto(view, units, hccl_aiv, parsed.stream_fusion)
    else:
        drafts = _template(view, strategy)
        if not drafts:
            warnings.append(f"strategy {strategy}: the graph has no {_what(strategy)}: no scopes")
    ranges = [(d.start, d.end) for d in drafts]
    prediction = predict(view, units, ranges, stream_fusion=parsed.stream_fusion, hccl_aiv=hccl_aiv)
    scopes = []
    for k, draft in enumerate(drafts):
        pieces = () if view.dynamic else prediction.pieces[k]
        scopes.append(Scope(draft.label, parsed.text, view.ops[draft.start].name, view.ops[draft.end].name,
                            tuple(op.name for op in view.ops[draft.start:draft.end + 1]), draft.module,
                            draft.layers, pieces, draft.bounds + prediction.cuts[k]))
    after = prediction.kernels_before if view.dynamic else prediction.launches_after
    few, upper = hardware.launch_us_few_cores, hardware.launch_us_all_cores
    return Plan(
        strategy, parsed.text, tuple(scopes), templates()["gate"], hardware.name, few, upper,
        hardware.sources.get("launch_us_few_cores", ""), prediction.kernels_before, after,
        layer_container=view.layer_container,
        disabled=(f"dynamic shapes: {view.dynamic}; GE's SuperKernel pass does nothing on graphs with "
                  "unknown shapes (compile the decode step with dynamic=False)") if view.dynamic else None,
        warnings=tuple(warnings),
        assumptions=_assumptions(hardware, hccl_aiv),
        patterns=tuple({"rule": p.rule, "op": p.ge_op, "members": [view.ops[i].name for i in p.members]}
                       for p in patterns),
    )


def _patterns(program: Any, view: GraphView, rules: list | None) -> list[Pattern]:
    from autofuse.api import load_rule_set
    from autofuse.superkernel.patterns import find_patterns

    rules = load_rule_set() if rules is None else list(rules)
    return find_patterns(program, view, rules) if rules else []


def _what(strategy: str) -> str:
    return {"attention": "attention blocks", "moe": "MoE blocks"}.get(strategy, "decoder layers")


# -- templates -----------------------------------------------------------------------------------


def _template(view: GraphView, strategy: str) -> list[_Draft]:
    if view.layer_container is None:
        return []
    role = _TEMPLATE_ROLE.get(strategy)
    groups: dict[Any, list[int]] = {}
    for op in view.ops:
        if op.layer is None or (role is not None and op.role != role):
            continue
        key = "all" if strategy == "all-layers" else op.layer
        groups.setdefault(key, []).append(op.index)
    drafts = []
    for key, indices in groups.items():
        layers = tuple(sorted({view.ops[i].layer for i in indices}))
        if strategy == "all-layers":
            module = view.layer_container
        elif role is None:
            module = f"{view.layer_container}.{key}"
        else:
            module = _common_module([view.ops[i].module for i in indices], depth=view.layer_container.count(".") + 3)
        drafts.append(_Draft(indices[0], indices[-1], module, layers, _label(view, module, layers)))
    return drafts


def _common_module(paths: list[str], depth: int | None = None) -> str:
    """The longest common module path of `paths` (cut to `depth` components)."""
    split = [p.split(".") if p else [] for p in paths]
    common = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common[:depth] if depth else common)


def _label(view: GraphView, module: str, layers: tuple[int, ...], ops: Sequence = ()) -> str:
    """layer_3_attn, layer_3, layers_0_3; a scope reaching past the decoder layers names its parts
    in order (layer_1_norm_lm_head)."""
    container = view.layer_container
    if container is not None and layers and module == container:
        return f"layers_{layers[0]}_{layers[-1]}"
    if container is None or not layers or not (module == "" or container.startswith(module + ".")):
        return view.module_label(module)
    parts: list[str] = []
    for op in ops:
        part = (f"layer_{layers[0]}" if len(layers) == 1 else f"layers_{layers[0]}_{layers[-1]}") \
            if op.layer is not None else view.module_label(op.module)
        if part not in parts:
            parts.append(part)
    return "_".join(parts)


# -- auto ----------------------------------------------------------------------------------------


def _auto(view: GraphView, units: list[Unit], hccl_aiv: bool, stream_fusion: bool) -> list[_Draft]:
    """One scope per run of >= 2 joining kernels between two ops that cut it."""
    spans = [(u.first, u.position) for u in units]
    drafts: list[_Draft] = []
    for run, before, after in _runs(units, hccl_aiv, stream_fusion):
        if len(run) < 2:
            continue
        start, end = _widen(min(u.first for u in run), run[-1].position, spans)
        bounds = [_bound(view, before, "before"), _bound(view, after, "after")]
        if drafts and drafts[-1].end >= start:  # widened into the previous scope: one scope
            last = drafts.pop()
            start, end = last.start, max(end, last.end)
            bounds[0] = next((c for c in last.bounds if c.where == "before"), None)
        drafts.append(_Draft(start, end, "", (), "", tuple(c for c in bounds if c)))
    located = []
    for draft in drafts:
        ops = [op for op in view.ops[draft.start:draft.end + 1] if op.is_kernel]
        layers = tuple(sorted({op.layer for op in ops if op.layer is not None}))
        module = _common_module([op.module for op in ops])
        located.append(_Draft(draft.start, draft.end, module, layers, _label(view, module, layers, ops), draft.bounds))
    return _unique_labels(located)


_Bound = tuple[Unit, str] | None  # the kernel next to a run, and why it ends the run ("": its kind)


def _runs(units: list[Unit], hccl_aiv: bool, stream_fusion: bool) -> list[tuple[list[Unit], _Bound, _Bound]]:
    """Maximal runs of joining kernels in execution order, each with the kernels that bound it."""
    runs: list[tuple[list[Unit], _Bound, _Bound]] = []
    current: list[Unit] = []
    before: _Bound = None
    for unit in [u for u in units if u.is_kernel] + [None]:
        joins = unit is not None and unit.joins(hccl_aiv)
        if joins and (not current or stream_fusion or unit.stream == current[-1].stream):
            current.append(unit)
            continue
        if joins:  # a joining kernel on another stream ends the run and starts the next one
            switch = "without stream-fusion=1 a SuperKernel stays on one stream"
            runs.append((current, before, (unit, f"runs on stream '{unit.stream or 'main'}': {switch}")))
            before, current = (current[-1], f"runs on stream '{current[-1].stream or 'main'}': {switch}"), [unit]
            continue
        if current:
            runs.append((current, before, (unit, "") if unit is not None else None))
        before, current = ((unit, "") if unit is not None else None), []
    return runs


def _widen(start: int, end: int, spans) -> tuple[int, int]:
    """Move the boundaries outwards until none falls inside a unit (a fusion pattern)."""
    changed = True
    while changed:
        changed = False
        for first, last in spans:
            if first < start <= last:
                start, changed = first, True
            if first <= end < last:
                end, changed = last, True
    return start, end


def _bound(view: GraphView, bound: _Bound, where: str) -> Cut | None:
    if bound is None:
        return None
    unit, why = bound
    names = tuple(view.ops[i].name for i in unit.members)
    return Cut(names, unit.ge_op, unit.kind, where, False, why or unit.reason)


def _unique_labels(drafts: list[_Draft]) -> list[_Draft]:
    """Scopes that share a label are told apart by _part1, _part2, ... in order."""
    labels = [d.label for d in drafts]
    out, seen = [], {}
    for draft, label in zip(drafts, labels):
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label}_part{seen[label]}"
        out.append(_Draft(draft.start, draft.end, draft.module, draft.layers, label, draft.bounds))
    return out


# -- notes ---------------------------------------------------------------------------------------


def _graph_warnings(view: GraphView, target: str) -> list[str]:
    out = []
    if target != DEFAULT_TARGET:
        out.append(f"target {target}: SuperKernel is documented for Atlas A3 ({DEFAULT_TARGET}) only")
    if view.layer_container is None:
        out.append("no decoder layers found in nn_module_stack metadata: scopes are labelled by module only")
    if looks_like_prefill(view.gm):
        out.append("the graph looks like a prefill step (a token input holds more than one token); "
                   "SuperKernel scopes are for decode steps")
    return out


def _assumptions(hardware, hccl_aiv: bool) -> tuple[str, ...]:
    return (
        "Execution order is the FX order (the recipes compile with topology_sorting_strategy=StableRDFS).",
        ("Each fusion pattern the rule library finds runs as one kernel of its CANN op (autofuse's rewrite "
         "to the torch_npu op, or GE's own fusion); the op table says which ops are Ascend C."),
        "Weights are frozen (torchair frozen_parameter=True): ops that read only weights or constants are folded.",
        (f"A launch saved saves one kernel head: {hardware.launch_us_few_cores:g} us (profile launch.few_cores) "
         f"to {hardware.launch_us_all_cores:g} us (launch.all_cores) on {hardware.name}, "
         f"source: {hardware.sources.get('launch_us_few_cores', '?')}. The one published measurement is "
         "graph-autofusion's toy MoE graph, 407.5 -> 384.7 us of operator time (5.6%)."),
        ("Collectives run HCCL's AIV algorithm (HCCL_OP_EXPANSION_MODE=AIV): AllReduce, ReduceScatter, "
         "AllGather and AlltoAll may join.") if hccl_aiv else
        "Collectives do not join (planned without HCCL_OP_EXPANSION_MODE=AIV; pass hccl_aiv / --hccl-aiv).",
    )
