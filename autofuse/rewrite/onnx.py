"""ONNX rewrite: (input ModelProto, Plan) -> a new ModelProto with one node per fused group.

Each group becomes a node in domain `ai.autofuse` whose definition is a model-local ONNX function
made of the original nodes, names included, so onnxruntime still runs the model and gives the same
numbers. Everything the plan does not touch is copied as it was. Node names are unique (the front
end made the input's unique; a fused node's name never takes one of them), so onnxruntime, which
refuses two nodes of one name in a graph or function body, loads the result.
"""
from __future__ import annotations

import dataclasses

import onnx

from autofuse.frontends.onnx import LoadedModel
from autofuse.planner.plan import FUSED_DOMAIN, FUSED_OPSET_VERSION, FusionGroup, Plan

# Model-local functions need IR version 8. We never lower a model's IR version, and we raise it
# only to this floor, so the output loads in every onnxruntime that loads the input and has
# function support (onnxruntime >= 1.12). tests/test_rewrite.py checks the installed one.
FUNCTION_IR_VERSION = 8


def rewrite_onnx(loaded: LoadedModel, plan: Plan) -> onnx.ModelProto:
    """The rewritten model. With an empty plan it is a plain copy of the input."""
    source = loaded.model
    graph = loaded.graph
    out = onnx.ModelProto()
    out.CopyFrom(source)
    if not plan.groups:
        return out
    protos = source.graph.node
    opsets = list(source.opset_import)
    del out.graph.node[:]
    internal: set[str] = set()
    taken = {node.name for node in graph.nodes}
    for kind, index in plan.schedule:
        if kind == "group":
            item = plan.groups[index]
            members = [_named(protos[graph.nodes[m].source_index], graph.nodes[m].name) for m in item.members]
            out.graph.node.append(_fused_node(item, _fused_name(item, taken)))
            out.functions.append(_function(item, members, opsets))
            internal.update(_internal_values(item, members))
        else:
            out.graph.node.append(protos[graph.nodes[index].source_index])
    _drop_value_info(out.graph, internal)
    if not any(o.domain == FUSED_DOMAIN for o in out.opset_import):
        out.opset_import.append(onnx.helper.make_opsetid(FUSED_DOMAIN, FUSED_OPSET_VERSION))
    out.ir_version = max(out.ir_version, FUNCTION_IR_VERSION)
    return out


def free_function_names(plan: Plan, model: onnx.ModelProto) -> Plan:
    """The plan with every group's op_type (the name of its fused node's function) free in the
    model: a model autofuse wrote before already has functions named `FusedElementwise_0`, ..., and
    onnxruntime refuses two functions of one name. A clashing op_type gets a `_1`, `_2`, ... suffix
    (in the report and the kernels too, as they are built from the plan returned)."""
    existing = {f.name for f in model.functions if f.domain == FUSED_DOMAIN}
    if not any(g.op_type in existing for g in plan.groups):
        return plan
    taken = existing | {g.op_type for g in plan.groups}
    groups = []
    for group in plan.groups:
        if group.op_type in existing:
            name, suffix = group.op_type, 0
            while name in taken:
                suffix += 1
                name = f"{group.op_type}_{suffix}"
            taken.add(name)
            group = dataclasses.replace(group, op_type=name)
        groups.append(group)
    return dataclasses.replace(plan, groups=tuple(groups))


def _named(proto: onnx.NodeProto, name: str) -> onnx.NodeProto:
    if proto.name == name:
        return proto
    named = onnx.NodeProto()
    named.CopyFrom(proto)
    named.name = name
    return named


def _fused_name(group: FusionGroup, taken: set[str]) -> str:
    """`autofuse/<group id>`, or with a `_1`, `_2`, ... suffix when the input already has a node of
    that name (a model autofuse wrote before, say)."""
    name, suffix = f"autofuse/{group.id}", 0
    while name in taken:
        suffix += 1
        name = f"autofuse/{group.id}_{suffix}"
    taken.add(name)
    return name


def _fused_node(group: FusionGroup, name: str) -> onnx.NodeProto:
    return onnx.helper.make_node(
        group.op_type, list(group.inputs), list(group.outputs),
        name=name, domain=FUSED_DOMAIN, **dict(group.attributes),
    )


def _function(group: FusionGroup, members: list[onnx.NodeProto], opsets) -> onnx.FunctionProto:
    rule = group.rule or "automatic"
    # Attributes are declared so the fused node may carry them (the body keeps its own constants).
    return onnx.helper.make_function(
        FUSED_DOMAIN, group.op_type, list(group.inputs), list(group.outputs), members, opsets,
        attributes=[name for name, _ in group.attributes],
        doc_string=f"autofuse {group.id}: {group.kind} group ({rule}) of {len(members)} nodes",
    )


def _internal_values(group: FusionGroup, members: list[onnx.NodeProto]) -> set[str]:
    produced = {v for node in members for v in node.output if v}
    return produced - set(group.outputs)


def _drop_value_info(graph: onnx.GraphProto, internal: set[str]) -> None:
    if not internal:
        return
    kept = [v for v in graph.value_info if v.name not in internal]
    del graph.value_info[:]
    graph.value_info.extend(kept)
