"""Lowering a group once per structure: the layers of a model repeat the same groups.

Two groups with the same signature lower to the same kernel program up to the ONNX names it
carries. The signature lists what lowering (lower.py, part.py, vector.py) reads of a group and
its graph: the members' ops, attributes and wiring; per value the dtype, the static declared
shape, the cost model's bound shape, whether it is a constant and the size of a small constant;
the group's kind, rule, lowering, tile, and the order of its inputs and outputs (the op type
only names the kernel).
Anything lowering starts to read must be added here. Constant data is not in the signature (the
weights of a small model differ in every layer): `LowerContext.constant` records which constants
lowering read, and a repeat must hold the same data in those (`Lowered.matches`).

A repeat is then the first group's program with its names replaced: the GM arguments, node
comments, group id and op name. Statement strings keep the first group's names in their
comments, which is harmless because a repeat shares the first group's rendered files.
"""
from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, replace

import numpy as np

from autofuse.codegen.lower import LowerContext, op_name_for
from autofuse.codegen.names import comment_text, snake_case
from autofuse.codegen.program import GmArg, KernelProgram, Unsupported
from autofuse.ir.structure import digest, freeze, structure
from autofuse.planner.plan import FusionGroup


@dataclass(frozen=True)
class Shape:
    """A group's structural signature and its names in canonical order."""

    key: Hashable
    values: tuple[str, ...]  # every value the members touch, in canonical order
    nodes: tuple[str, ...]  # member node names, in member order
    ops: tuple[str, ...]  # member op types, in member order


def signature(ctx: LowerContext, group: FusionGroup) -> Shape | None:
    """The group's signature (None when the group is not worth caching: no tile)."""
    if group.cost is None or not group.cost.tile:
        return None
    graph = ctx.graph
    constants = graph.constants

    known = ctx.value_keys

    def value_key(v: str) -> Hashable:
        found = known.get(v)
        if found is None:
            found = known[v] = (*_declared(graph.type_of(v)), ctx.model.shape(v), v in constants,
                                _size(graph.constant(v)))
        return found

    key, values = structure(graph, group.members, group.inputs, group.outputs, value_key)
    nodes = [graph.nodes[m] for m in group.members]
    key = (group.kind, group.rule, group.lowering, freeze(group.cost.tile.as_dict()), key)
    return Shape(key, values, tuple(n.name for n in nodes), tuple(n.op_type for n in nodes))


@dataclass(frozen=True)
class Lowered:
    """One lowering kept for reuse: the group's shape, its result, the kernel owning its files,
    and the data of the constants lowering read (by canonical value index)."""

    shape: Shape
    result: object
    kernel: object
    constants: tuple[tuple[int, Hashable], ...]

    def matches(self, ctx: LowerContext, shape: Shape) -> bool:
        return all(digest(ctx.graph.constant(shape.values[i])) == data for i, data in self.constants)


def lowered(ctx: LowerContext, shape: Shape, result, kernel) -> Lowered | None:
    """`result` (lowered with `ctx.constants_read` cleared before) kept for reuse; None when
    lowering read a constant the signature does not number (then the group is not reused)."""
    index = {v: i for i, v in enumerate(shape.values)}
    if any(value not in index for value in ctx.constants_read):
        return None
    read = sorted((index[value], digest(ctx.graph.constant(value))) for value in ctx.constants_read)
    return Lowered(shape, result, kernel, tuple(read))


def _size(array) -> int | None:
    return None if array is None else int(np.asarray(array).size)


def _declared(kind) -> tuple:
    """What lowering reads of a value's declared type: its dtype, and its shape only when fully
    static (symbolic dims, which exporters name per layer, are read through the bound shape)."""
    shape = kind.shape
    static = shape if shape is not None and all(isinstance(d, int) for d in shape) else None
    return kind.dtype, static


def repeat(first, first_shape: Shape, group: FusionGroup, shape: Shape):
    """The first group's lowering result renamed for `group` (same signature). None when a
    reason cannot be renamed safely (the caller then lowers the group itself)."""
    values = dict(zip(first_shape.values, shape.values))
    if isinstance(first, Unsupported):
        return _renamed_reason(first, first_shape, group, shape)
    if not isinstance(first, KernelProgram):
        return None  # call-through and host-only records are made without lowering anything
    nodes = {comment_text(f"{op} {a}"): comment_text(f"{op} {b}")
             for op, a, b in zip(first_shape.ops, first_shape.nodes, shape.nodes)}
    args: dict[int, GmArg] = {}

    def arg(a: GmArg) -> GmArg:
        out = args.get(id(a))
        if out is None:
            new = values.get(a.onnx, a.onnx)
            comment = a.comment
            if a.comment == comment_text(a.onnx):
                comment = comment_text(new)
            elif a.role == "workspace":
                comment = comment_text(f"MatMul result {new}")
            out = args[id(a)] = replace(a, onnx=new, comment=comment)
        return out

    parts = tuple(replace(p, nodes=tuple(nodes.get(n, n) for n in p.nodes),
                          loads=tuple(replace(x, arg=arg(x.arg)) for x in p.loads),
                          stores=tuple(replace(x, arg=arg(x.arg)) for x in p.stores),
                          residents=tuple(replace(x, arg=arg(x.arg)) for x in p.residents))
                  for p in first.parts)
    matmuls = tuple(replace(mm, a=arg(mm.a), b=arg(mm.b), node=nodes.get(mm.node, mm.node)) for mm in first.matmuls)
    op_name = op_name_for(group)
    return replace(first, group_id=group.id, op_name=op_name, kernel_name=snake_case(op_name),
                   nodes=tuple(nodes.get(n, n) for n in first.nodes), inputs=tuple(arg(a) for a in first.inputs),
                   outputs=tuple(arg(a) for a in first.outputs), parts=parts, matmuls=matmuls,
                   workspace=tuple((arg(a), off) for a, off in first.workspace))


def _renamed_reason(first: Unsupported, first_shape: Shape, group: FusionGroup, shape: Shape) -> Unsupported | None:
    """A refusal's reason with the first group's quoted names replaced by this group's; None
    when one of the first group's names still shows (unquoted), so nothing stale is reported."""
    reason = first.reason
    pairs = [*zip(first_shape.nodes, shape.nodes), *zip(first_shape.values, shape.values)]
    for old, new in pairs:
        if old != new:
            reason = reason.replace(f"'{old}'", f"'\0{new}'")
    rest = re.sub(r"'\0[^']*'", "", reason)
    if any(old != new and old in rest for old, new in pairs):
        return None
    return Unsupported(group.id, reason.replace("'\0", "'"))
