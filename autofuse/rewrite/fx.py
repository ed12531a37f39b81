"""PyTorch rewrite: (LoadedFx, Plan) -> a GraphModule in which each fused group is one call.

A group becomes one call to `torch.ops.autofuse.fused(name, inputs)`, our custom op that runs the
group's original ATen nodes (autofuse/rewrite/torch_ops.py), so the rewritten module gives the
original outputs on CPU and still traces and exports. With the `npu` backend, a group made by a
rule whose `lowering.torch_npu` names a torch_npu fused op becomes a call to that op instead
(`torch_npu.npu_rms_norm(x, weight, epsilon=...)[0]` ...). A group the planner merged with a
MatMul around such a rule (opt-level 3 epilogues) then runs as its other nodes followed by the
torch_npu op: torch_npu has no single op for both. The npu backend runs only where torch_npu
and an NPU are present, which is never the case on this machine.

Everything outside the groups is copied node by node (names and metadata kept, export's guard
and assert nodes included); the new graph is in a topological order with every group
contracted to one step, ties kept in the original order.
"""
from __future__ import annotations

import heapq
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autofuse.candidates.rules.loader import Rule
from autofuse.candidates.rules.matcher import Match, RuleIndex, find_matches
from autofuse.errors import InputError
from autofuse.frontends.fx import LoadedFx, aten_key, aten_table
from autofuse.planner.merge import is_convex
from autofuse.planner.plan import FusionGroup, Plan
from autofuse.rewrite.torch_ops import (
    NPU_LOWERINGS,
    Lowering,
    fused_op,
    npu_backend_available,
    register_subgraph,
    subgraph,
    torch_npu_module,
)
from autofuse.verify.onnx_runtime import Verification, _compare

BACKENDS = ("auto", "cpu", "npu")
FUSED_CALL = "torch.ops.autofuse.fused"


@dataclass(frozen=True)
class GroupCall:
    """What one fused group became in the rewritten graph."""

    group: str  # "g3"
    label: str  # "g3_rms_norm": the name of its call node
    call: str  # "torch_npu.npu_rms_norm" or "torch.ops.autofuse.fused"
    torch_npu: str | None  # the torch_npu op the group maps to on an NPU (None: autofuse::fused there too)
    subgraph: str | None = None  # the autofuse::fused name, when that op is called
    note: str = ""


@dataclass(frozen=True, eq=False)
class FxRewrite:
    """The rewritten GraphModule, the backend it was built for, and one entry per group."""

    module: Any  # torch.fx.GraphModule
    backend: str  # "cpu" or "npu"
    calls: tuple[GroupCall, ...] = field(default=())

    def source(self) -> str:
        """Readable Python of the rewritten forward, after a comment naming each fused call."""
        head = [f"# autofuse: rewritten forward (backend {self.backend}); fused groups:"]
        for c in self.calls:
            target = f"{c.call}('{c.subgraph}')" if c.subgraph else c.call
            npu = f"; on an NPU: {c.torch_npu}" if c.torch_npu and c.torch_npu != c.call else ""
            head.append(f"#   {c.label}: {target}{npu}{f' ({c.note})' if c.note else ''}")
        return "\n".join(head) + "\n" + self.module.code.strip("\n") + "\n"

    def model_py(self) -> str:
        """The text written as model.py: the rewritten forward, then every subgraph it calls."""
        note = ("# Written by autofuse for reading and diffing, not for importing: the calls to\n"
                "# torch.ops.autofuse.fused run subgraphs registered in the process that built the module\n"
                "# (they are the functions below).\n")
        subgraphs = self.subgraph_sources()
        tail = f"\n\n# ---- the ATen subgraphs torch.ops.autofuse.fused runs ----\n\n{subgraphs}" if subgraphs else ""
        return note + self.source() + tail

    def subgraph_sources(self) -> str:
        """The ATen subgraph each `autofuse::fused` call runs, as Python functions named by group."""
        parts = []
        for c in self.calls:
            if c.subgraph:
                code = subgraph(c.subgraph).code.strip("\n").replace("def forward(self, ", f"def {c.label}(", 1)
                parts.append(f"# {c.subgraph}\n{code}\n")
        return "\n\n".join(parts)


def resolve_backend(backend: str) -> str:
    """"auto" -> "npu" where torch_npu and an NPU are present, else "cpu"."""
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    if backend == "auto":
        return "npu" if npu_backend_available() else "cpu"
    return backend


def torch_npu_op(group: FusionGroup, rules: dict[str, Rule]) -> str | None:
    """The torch_npu op a group maps to on an NPU, if its rule names one we can call."""
    rule = rules.get(group.rule) if group.rule else None
    name = rule.lowering.get("torch_npu") if rule else None
    return name if name in NPU_LOWERINGS else None


def rewrite_fx(loaded: LoadedFx, plan: Plan, rules: Sequence[Rule] = (), *, backend: str = "auto",
               torch_npu=None) -> FxRewrite:
    """The rewritten GraphModule (the input module is not changed).

    `torch_npu`: the module whose ops the npu backend calls (default: `import torch_npu`); tests
    pass a stand-in that computes the ops' documented semantics on CPU.
    """
    import torch

    resolved = resolve_backend(backend)
    npu = (torch_npu or torch_npu_module()) if resolved == "npu" else None
    by_rule = {r.name: r for r in rules}
    old = loaded.module.graph
    by_name = {n.name: n for n in old.nodes}
    units: list[_Unit] = []
    calls: list[GroupCall] = []
    matches = _group_matches(loaded, plan, by_rule) if npu is not None else {}
    for group in plan.groups:
        nodes = _group_nodes(loaded, group, by_name)
        label = f"{group.id}_{group.rule or group.kind}"
        npu_name = torch_npu_op(group, by_rule)
        if matches.get(group.id):
            lowered: set = set()
            for i, match in enumerate(matches[group.id]):
                inside = _with_dependents(loaded, [by_name[loaded.graph.nodes[m].name] for m in sorted(match.nodes)])
                lowering = by_rule[match.rule.name].lowering["torch_npu"]
                units.append(_Unit(inside, label if i == 0 else f"{label}_{i}", match=match, lowering=lowering))
                lowered.update(inside)
            units.extend(_Unit([n]) for n in nodes if n not in lowered)
            ops = ", ".join(dict.fromkeys(by_rule[m.rule.name].lowering["torch_npu"] for m in matches[group.id]))
            calls.append(GroupCall(group.id, label, ops, npu_name,
                                   note="" if len(lowered) == len(nodes) else "other members run as they were"))
            continue
        unit = _Unit(nodes, label)
        problem = unit.boundary_problem()
        if problem:
            units.extend(_Unit([n]) for n in nodes)
            calls.append(GroupCall(group.id, label, "unfused", npu_name, note=problem))
            continue
        units.append(unit)
        calls.append(GroupCall(group.id, label, FUSED_CALL, npu_name))
    taken = {n for u in units for n in u.nodes}
    units.extend(_Unit([n]) for n in old.nodes if n not in taken)
    new = torch.fx.Graph()
    new._codegen = old._codegen  # the pytree in/out handling of an unlifted export, unchanged
    env: dict = {}
    names: dict[str, str] = {}
    for unit in _ordered(units, old):
        names.update(unit.emit(new, env, loaded, npu))
    calls = [GroupCall(c.group, c.label, c.call, c.torch_npu, names.get(c.label), c.note) for c in calls]
    module = torch.fx.GraphModule(loaded.module, new)
    for attr in ("_in_spec", "_out_spec"):  # read by the pytree code of an unlifted export
        if hasattr(loaded.module, attr):
            setattr(module, attr, getattr(loaded.module, attr))
    module.graph.lint()
    module.recompile()
    return FxRewrite(module, resolved, tuple(calls))


# -- which FX nodes a group covers ---------------------------------------------------------------


def _group_nodes(loaded: LoadedFx, group: FusionGroup, by_name: dict) -> list:
    return _with_dependents(loaded, [by_name[loaded.graph.nodes[m].name] for m in group.members])


def _with_dependents(loaded: LoadedFx, members: list) -> list:
    """The members, their `getitem` projections, and the asserts that check only their values,
    in graph order."""
    assertions = aten_table().assertions
    inside = set(members)
    for node in members:
        inside.update(u for u in node.users if u.op == "call_function" and u.target is operator.getitem)
    for node in list(inside):
        for user in node.users:
            checks = aten_key(user.target) in assertions or (not user.users and user.op == "call_function"
                                                              and user.meta.get("val") is None)
            if checks and all(a in inside for a in user.all_input_nodes):
                inside.add(user)
    order = {n: i for i, n in enumerate(loaded.module.graph.nodes)}
    return sorted(inside, key=order.__getitem__)


def _group_matches(loaded: LoadedFx, plan: Plan, rules: dict[str, Rule]) -> dict[str, list[Match]]:
    """For each rule group, the matches inside it of rules with a torch_npu lowering: the group's
    own match, and the others a planner merge put in the same group (largest first, disjoint,
    each convex)."""
    lowered = [r for r in rules.values() if r.lowering.get("torch_npu") in NPU_LOWERINGS]
    if not lowered or not any(g.rule for g in plan.groups):
        return {}
    found, _ = find_matches(loaded.graph, RuleIndex(lowered))
    found.sort(key=lambda m: (-len(m.nodes), m.root))
    result: dict[str, list[Match]] = {}
    for group in plan.groups:
        if group.rule is None:
            continue
        members, taken = set(group.members), set()
        for match in found:
            if match.nodes <= members and not match.nodes & taken and is_convex(loaded.graph, match.nodes):
                result.setdefault(group.id, []).append(match)
                taken |= match.nodes
    return result


# -- units: one node, one fused call, or one torch_npu lowering -------------------------------------


@dataclass(eq=False)
class _Unit:
    nodes: list
    label: str | None = None
    match: Match | None = None
    lowering: str | None = None

    def __post_init__(self) -> None:
        inside = set(self.nodes)
        self.inputs = list(dict.fromkeys(a for n in self.nodes for a in n.all_input_nodes if a not in inside))
        self.outputs = [n for n in self.nodes if any(u not in inside for u in n.users)]

    def boundary_problem(self) -> str:
        """Why the nodes cannot become one autofuse::fused call ("" when they can)."""
        import torch

        for node in (*self.inputs, *self.outputs):
            if not isinstance(node.meta.get("val"), torch.Tensor):
                return f"'{node.name}' crosses the group boundary and is not a tensor"
        return ""

    def emit(self, graph, env: dict, loaded: LoadedFx, npu) -> dict[str, str]:
        """Add this unit to `graph`; returns {label: autofuse::fused name} for a fused call."""
        if self.label is None:
            (node,) = self.nodes
            env[node] = graph.node_copy(node, env.__getitem__)
            return {}
        if self.match is not None:
            self._emit_lowering(graph, env, loaded, npu)
            return {}
        name = register_subgraph(self.label, self._subgraph())
        call = graph.create_node("call_function", fused_op(), (name, [env[n] for n in self.inputs]), {},
                                 name=self.label)
        call.meta["val"] = [n.meta.get("val") for n in self.outputs]
        self._bind_outputs(graph, env, {n: (call, i) for i, n in enumerate(self.outputs)})
        return {self.label: name}

    def _subgraph(self):
        import torch

        graph = torch.fx.Graph()
        local: dict = {}
        for node in self.inputs:
            local[node] = graph.placeholder(node.name)
            local[node].meta = dict(node.meta)
        for node in self.nodes:
            local[node] = graph.node_copy(node, local.__getitem__)
        graph.output(tuple(local[n] for n in self.outputs))
        return torch.fx.GraphModule(torch.nn.Module(), graph)

    def _emit_lowering(self, graph, env: dict, loaded: LoadedFx, npu) -> None:
        by_name = {n.name: n for n in loaded.module.graph.nodes}
        low = Lowering(graph, loaded.graph, self.match, lambda value: env[by_name[value]], npu)
        bound = NPU_LOWERINGS[self.lowering](low)
        binding_of = {value: name for name, value in self.match.values.items() if name in bound}
        sources = {}
        for node in self.outputs:
            if node.name not in binding_of:
                raise InputError(f"rule '{self.match.rule.name}': '{node.name}' is used outside the match "
                                 "but is not one of the rule's outputs")
            sources[node] = bound[binding_of[node.name]]
        self._bind_outputs(graph, env, sources)

    def _bind_outputs(self, graph, env: dict, sources: dict) -> None:
        """Each output of the unit takes its original name (and metadata) in the new graph."""
        for node, source in sources.items():
            if isinstance(source, tuple):
                call, index = source
                source = graph.create_node("call_function", operator.getitem, (call, index), {}, name=node.name)
            source.meta = dict(node.meta)
            env[node] = source


def _ordered(units: list[_Unit], graph) -> list[_Unit]:
    """Units in a topological order, ties by first original position; the output node last."""
    position = {n: i for i, n in enumerate(graph.nodes)}
    owner = {n: i for i, u in enumerate(units) for n in u.nodes}
    first = [min(position[n] for n in u.nodes) for u in units]
    waiting = [0] * len(units)
    successors: list[set[int]] = [set() for _ in units]
    for i, unit in enumerate(units):
        for source in {owner[a] for a in unit.inputs}:
            if source != i and i not in successors[source]:
                successors[source].add(i)
                waiting[i] += 1
    output = next(i for i, u in enumerate(units) if u.nodes[0].op == "output")
    ready = [(first[i], i) for i in range(len(units)) if waiting[i] == 0 and i != output]
    heapq.heapify(ready)
    order: list[_Unit] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(units[i])
        for nxt in successors[i]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0 and nxt != output:
                heapq.heappush(ready, (first[nxt], nxt))
    if len(order) != len(units) - 1:
        raise InputError("the fused groups feed each other: the plan is not convex on this graph")
    return [*order, units[output]]


# -- checking the rewrite ---------------------------------------------------------------------------


def compare_outputs(loaded: LoadedFx, rewrite: FxRewrite, inputs: tuple | None = None) -> Verification:
    """Run the model as given and the rewritten module on the example inputs (CPU, no grad) and
    compare every output with the dtype tolerances of the ONNX verification."""
    import torch
    import torch.utils._pytree as pytree

    inputs = inputs if inputs is not None else loaded.example_inputs
    if inputs is None:
        return Verification(False, error="no example inputs to run the models on (pass example_inputs to fuse())")
    with torch.no_grad():
        try:
            expected = pytree.tree_leaves(loaded.original(*inputs))
        except Exception as exc:  # noqa: BLE001 - a failure to run is reported, not raised
            return Verification(False, error=f"the original model does not run: {type(exc).__name__}: {exc}")
        try:
            actual = pytree.tree_leaves(rewrite.module(*inputs))
        except Exception as exc:  # noqa: BLE001
            return Verification(False, error=f"the rewritten module does not run: {type(exc).__name__}: {exc}")
    if len(expected) != len(actual):
        return Verification(False, error=f"{len(actual)} outputs, expected {len(expected)}")
    checks = tuple(_compare(f"output {i}", _numpy(e), _numpy(a)) for i, (e, a) in enumerate(zip(expected, actual)))
    return Verification(all(c.ok for c in checks), checks)


def _numpy(value):
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    return (value.float() if value.dtype == torch.bfloat16 else value).numpy()


def annotate_report(report: dict, rewrite: FxRewrite) -> dict:
    """report.json for a PyTorch input: the backend, and for each group the call it became
    ("call") and the torch_npu op it maps to on an NPU ("torch_npu", null for autofuse::fused)."""
    by_group = {c.group: c for c in rewrite.calls}
    report["torch_backend"] = rewrite.backend
    for entry in report["groups"]:
        call = by_group[entry["id"]]
        entry["call"] = call.call
        entry["torch_npu"] = call.torch_npu
    return report
