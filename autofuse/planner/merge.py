"""Level-3 merges of whole groups around matrix multiplications.

1. Sibling MatMuls that read the same activation with constant weights of the same depth
   (Q/K/V projections, gate/up projections) become one MatMul over concatenated weights: one
   cube kernel instead of several, and the activation is read once.
2. A MatMul group whose results are read by exactly one other group takes that group as its
   vector epilogue (bias, activation, SwiGLU, rotary embedding, a row norm): the MatMul result
   is not written out and read back by a separate kernel.
3. A Transpose that keeps the last axis in place moves whole rows; feeding one row-wise group
   (a norm, a rotary embedding, elementwise work) it becomes that kernel's strided copy-in, and
   otherwise, reading the sole result of a group (a projection split into heads), that
   kernel's strided copy-out.
4. The rotary embeddings of q and k computed from the same projection become one kernel (as
   torch_npu.npu_apply_rotary_pos_emb does both at once).
5. Shape arithmetic (see candidates/shape_values.py) whose results feed exactly one group joins
   it as a host-side prologue: it only ever reads shapes, which the kernel's host tiling code
   computes anyway. The shape arithmetic left over (it feeds several groups, or reaches them
   through a Reshape) becomes one host-side computation per connected chain: the TorchScript
   exporter re-derives every head view's shape from Shape(x) and would otherwise leave a dozen
   small pieces per layer.
A group that takes in other work than its rule matched is no longer a call-through to the
rule's CANN op: its lowering becomes our own template.
Merged groups remember their parts: if the plan's final acyclicity check finds a merge in a
cycle, the planner splits it back instead of dropping fusions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autofuse.candidates.auto import Candidate
from autofuse.candidates.shape_values import shape_value_nodes
from autofuse.ir.graph import Graph, Node
from autofuse.ops.table import OpClass, op_class, reads_only_metadata

_MATMULS = frozenset({"MatMul", "Gemm"})
# Consumer groups a MatMul may take as its epilogue: work on the rows the MatMul produces.
_EPILOGUE_KINDS = frozenset({"elementwise", "matmul_epilogue", "norm", "rotary", "reduction"})


@dataclass(frozen=True)
class Merged:
    """A merged candidate and the candidates it was made of."""

    candidate: Candidate
    parts: tuple[Candidate, ...]


def merge_around_matmuls(graph: Graph, candidates: list[Candidate], cap: int,
                         fixed: Sequence[Candidate] = ()) -> list[Candidate | Merged]:
    """Candidates after sibling-MatMul and MatMul-epilogue merges (see the module docstring).

    `fixed` groups (rule matches that must stay exactly as matched) only hold their nodes:
    nothing merges into them, they merge into nothing, and no merge takes one of their nodes.
    They come first in the result, unchanged."""
    held = frozenset(c.members for c in fixed)
    groups: list[Candidate | Merged] = list(_with_lone_matmuls(graph, [*fixed, *candidates]))
    groups = _merge_siblings(graph, groups, cap, held)
    groups = _merge_epilogues(graph, groups, cap, held)
    groups = _absorb_row_permutes(graph, groups, cap, held)
    groups = _merge_rotary_pairs(graph, groups, cap, held)
    groups = _absorb_shape_work(graph, groups, cap, held)
    groups = _join_shape_chains(graph, groups, held)
    # A lone node is no fusion, unless a rule named it (one op that is a known block, such as an
    # ONNX Attention node: it keeps its rule's lowering).
    merged = [g for g in groups if candidate_of(g).members not in held
              and (len(candidate_of(g).members) > 1 or candidate_of(g).rule)]
    return [*fixed, *merged]


def candidate_of(item: Candidate | Merged) -> Candidate:
    """The candidate itself, or the merged candidate of a Merged."""
    return item.candidate if isinstance(item, Merged) else item


def _parts(item: Candidate | Merged) -> tuple[Candidate, ...]:
    return item.parts if isinstance(item, Merged) else (item,)


def _with_lone_matmuls(graph: Graph, candidates: list[Candidate]) -> list[Candidate]:
    taken = {m for c in candidates for m in c.members}
    lone = [Candidate(frozenset({m}), "matmul_epilogue") for m in sorted(graph.derived(_matmul_ids))
            if graph.nodes[m].domain in ("", "ai.onnx") and m not in taken]
    return candidates + lone


def _matmul_ids(graph: Graph) -> frozenset[int]:
    """The MatMul and Gemm nodes (a graph.derived fact: every merge step asks for every group)."""
    return frozenset(n.id for n in graph.nodes if n.op_type in _MATMULS)


def has_matmul(graph: Graph, members: frozenset[int]) -> bool:
    """Whether some member is a MatMul or Gemm."""
    return not graph.derived(_matmul_ids).isdisjoint(members)


def _matmuls(graph: Graph, group: Candidate) -> list[Node]:
    return [graph.nodes[m] for m in sorted(group.members & graph.derived(_matmul_ids))]


def _weight_key(graph: Graph, node: Node) -> tuple | None:
    """(activation, K, dtype) when the node multiplies an activation by a constant 2-D weight."""
    if len(node.inputs) < 2 or node.inputs[1] not in graph.initializers:
        return None
    if node.op_type == "Gemm" and node.attrs.get("transA", 0):
        return None
    weight = graph.type_of(node.inputs[1])
    if weight.rank != 2:
        return None
    depth = weight.shape[1] if node.op_type == "Gemm" and node.attrs.get("transB", 0) else weight.shape[0]
    return node.inputs[0], depth, weight.dtype


def _merge_siblings(graph: Graph, groups: list, cap: int, held: frozenset) -> list:
    by_key: dict[tuple, list[int]] = {}
    for index, item in enumerate(groups):
        group = candidate_of(item)
        if group.members in held:
            continue
        matmuls = _matmuls(graph, group)
        if len(matmuls) != 1 or group.kind == "attention":
            continue
        key = _weight_key(graph, matmuls[0])
        if key is not None:
            by_key.setdefault(key, []).append(index)
    merged: set[int] = set()
    result = []
    for indices in by_key.values():
        members = sum(len(candidate_of(groups[i]).members) for i in indices)
        if len(indices) < 2 or members > cap:
            continue
        merged.update(indices)
        result.append(_union([groups[i] for i in indices], "MergedMatMul"))
    return [g for i, g in enumerate(groups) if i not in merged] + result


def _merge_epilogues(graph: Graph, groups: list, cap: int, held: frozenset) -> list:
    owner = {m: i for i, item in enumerate(groups) for m in candidate_of(item).members}
    absorbed: dict[int, int] = {}  # epilogue group index -> MatMul group index
    between: dict[int, frozenset[int]] = {}  # MatMul group index -> views between it and its epilogue
    for index, item in enumerate(groups):
        group = candidate_of(item)
        if group.members in held or not has_matmul(graph, group.members):
            continue
        found = _sole_consumer_group(graph, group, owner)
        if found is None or found[0] in absorbed:
            continue
        target, views = found
        consumer = candidate_of(groups[target])
        if consumer.members in held or has_matmul(graph, consumer.members) or consumer.kind not in _EPILOGUE_KINDS:
            continue
        if len(group.members) + len(views) + len(consumer.members) <= cap:
            absorbed[target] = index
            between[index] = views
    heads = {head: epilogue for epilogue, head in absorbed.items()}
    result = []
    for index, item in enumerate(groups):
        if index in absorbed:
            continue
        if index in heads:
            epilogue = candidate_of(groups[heads[index]])
            name = f"{candidate_of(item).op_name or 'MatMul'}{epilogue.op_name or 'Epilogue'}"
            views = Candidate(between[index], VIEWS)
            result.append(_union([item, groups[heads[index]], views], name, rule=epilogue.rule))
        else:
            result.append(item)
    return result


_ROW_WISE_KINDS = frozenset({"elementwise", "norm", "rotary", "reduction", "softmax"})


def _keeps_last_axis(node: Node) -> bool:
    perm = tuple(node.attrs.get("perm", ()))
    return node.op_type == "Transpose" and len(perm) >= 2 and perm[-1] == len(perm) - 1


def _row_permutes(graph: Graph) -> tuple[Node, ...]:
    """The Transposes that keep the last axis in place, in graph order (a graph.derived fact)."""
    return tuple(n for n in graph.nodes if _keeps_last_axis(n))


def _absorb_row_permutes(graph: Graph, groups: list, cap: int, held: frozenset) -> list:
    result = list(groups)
    owner = {m: i for i, item in enumerate(result) for m in candidate_of(item).members}
    for node in graph.derived(_row_permutes):
        if node.id in owner:
            continue
        found = _sole_consumer_group(graph, Candidate(frozenset({node.id}), "elementwise"), owner)
        if found is not None and candidate_of(result[found[0]]).kind not in _ROW_WISE_KINDS:
            found = None
        found = found or _sole_producer_group(graph, node, owner)
        if found is None:
            continue
        target, views = found
        host = candidate_of(result[target])
        if host.members in held or host.kind not in _ROW_WRITING_KINDS or len(host.members) + 1 + len(views) > cap:
            continue
        extra = Candidate(frozenset({node.id}) | views, "elementwise")
        result[target] = _union([result[target], extra], host.op_name or "", rule=host.rule, kind=host.kind)
        owner.update(dict.fromkeys(extra.members, target))
    return result


# Groups that may write their result through a row permute (a strided copy-out of whole rows).
_ROW_WRITING_KINDS = _ROW_WISE_KINDS | {"matmul_epilogue"}


def _sole_producer_group(graph: Graph, node: Node, owner: dict[int, int]) -> tuple[int, frozenset[int]] | None:
    """The group whose result this Transpose alone reads, through ungrouped views that nothing
    else reads: the permute then becomes that group's strided copy-out."""
    views: set[int] = set()
    value = node.inputs[0] if node.inputs else ""
    for _ in range(8):
        if value in graph.output_set or len(graph.consumers.get(value, ())) != 1:
            return None
        producer = graph.producer.get(value)
        if producer is None:
            return None
        if producer in owner:
            return owner[producer], frozenset(views)
        upstream = graph.nodes[producer]
        if op_class(upstream) != OpClass.VIEW or not upstream.inputs:
            return None
        views.add(producer)
        value = upstream.inputs[0]
    return None


def _merge_rotary_pairs(graph: Graph, groups: list, cap: int, held: frozenset) -> list:
    """Rotary groups whose inputs come from the same producing group become one kernel."""
    owner = {m: i for i, item in enumerate(groups) for m in candidate_of(item).members}
    by_source: dict[tuple, list[int]] = {}
    for index, item in enumerate(groups):
        group = candidate_of(item)
        if group.kind != "rotary" or group.members in held:
            continue
        sources = set()
        for m in group.members:
            for p in graph.producer_ids(graph.nodes[m]):
                if p not in group.members:
                    sources.add(owner.get(p, _view_source(graph, p, owner)))
        sources.discard(None)
        if sources:
            by_source.setdefault(tuple(sorted(sources)), []).append(index)
    merged: set[int] = set()
    extra = []
    for indices in by_source.values():
        if len(indices) < 2 or sum(len(candidate_of(groups[i]).members) for i in indices) > cap:
            continue
        merged.update(indices)
        name = candidate_of(groups[indices[0]]).op_name or "Rotary"
        extra.append(_union([groups[i] for i in indices], f"{name}Pair", rule=candidate_of(groups[indices[0]]).rule,
                            kind="rotary"))
    return [g for i, g in enumerate(groups) if i not in merged] + extra


def _view_source(graph: Graph, node_id: int, owner: dict[int, int]) -> int | None:
    """The group a value comes from, looking through ungrouped views (Reshape, Unsqueeze...)."""
    for _ in range(8):
        node = graph.nodes[node_id]
        if node_id in owner:
            return owner[node_id]
        if op_class(node) != OpClass.VIEW or not node.inputs or node.inputs[0] not in graph.producer:
            return None
        node_id = graph.producer[node.inputs[0]]
    return None


def _absorb_shape_work(graph: Graph, groups: list, cap: int, held: frozenset) -> list:
    shape_nodes = shape_value_nodes(graph)
    result = list(groups)
    taken = {m for item in result for m in candidate_of(item).members}
    units = [i for i, item in enumerate(result) if candidate_of(item).kind == "shape" and
             candidate_of(item).members not in held]
    lone = [Candidate(frozenset({n}), "shape") for n in sorted(shape_nodes) if n not in taken]
    result.extend(lone)
    units.extend(range(len(result) - len(lone), len(result)))
    # Latest first, so a chain of shape computations collapses into the group it finally feeds.
    units.sort(key=lambda i: -max(candidate_of(result[i]).members))
    merged_into: dict[int, int] = {}
    # Node -> the group holding it, among the groups not merged into another (kept up to date below).
    owner = {m: i for i, item in enumerate(result) for m in candidate_of(item).members}
    for unit in units:
        found = _sole_consumer_group(graph, candidate_of(result[unit]), owner)
        if found is None:
            continue
        target, views = found
        host = candidate_of(result[target])
        if host.members in held or host.kind == "shape" or len(candidate_of(result[unit]).members) + len(host.members) > cap:
            continue
        # A Reshape between the two joins too (the kernel reads its operand through the new shape),
        # unless that would route a path out of the group and back in.
        parts = [result[target], result[unit]]
        if views:
            union = host.members | candidate_of(result[unit]).members | views
            if len(union) > cap or not is_convex(graph, union):
                continue
            parts.append(Candidate(views, VIEWS))
        result[target] = _union(parts, host.op_name or "", rule=host.rule, kind=host.kind)
        merged_into[unit] = target
        owner.update(dict.fromkeys(candidate_of(result[target]).members, target))
    return [item for i, item in enumerate(result) if i not in merged_into]


def _join_shape_chains(graph: Graph, groups: list, held: frozenset) -> list:
    """Shape groups linked by a value one computes and another reads (or by reading the same
    Shape result) become one host group, in topological order, as long as the union stays
    convex (a chain that reads the shape of data computed from its own results is cut there).
    Host work has no kernel size, so no cap."""
    units = sorted((i for i, item in enumerate(groups)
                    if candidate_of(item).kind == "shape" and candidate_of(item).members not in held),
                   key=lambda i: min(candidate_of(groups[i]).members))
    owner = {m: i for i in units for m in candidate_of(groups[i]).members}
    joined: dict[int, int] = {}  # unit -> the unit it was joined into

    def root(i: int) -> int:
        while i in joined:
            i = joined[i]
        return i

    members = {i: set(candidate_of(groups[i]).members) for i in units}
    shape_reader: dict[str, int] = {}  # a Shape/Size result -> the first unit reading it
    for unit in units:
        feeders = set()
        for m in candidate_of(groups[unit]).members:
            for v in graph.nodes[m].all_inputs:
                p = graph.producer.get(v)
                if p is None:
                    continue
                if p in owner:
                    feeders.add(root(owner[p]))
                elif graph.nodes[p].op_type in ("Shape", "Size"):
                    feeders.add(root(shape_reader.setdefault(v, unit)))
        feeders.discard(unit)
        for target in sorted(feeders, key=lambda i: min(members[i])):
            union = frozenset(members[target] | members[unit])
            if not is_convex(graph, union):
                continue
            members[target] = set(union)
            joined[unit] = target
            break
    if not joined:
        return groups
    parts: dict[int, list] = {}
    for unit in units:
        parts.setdefault(root(unit), []).append(groups[unit])
    result = []
    for i, item in enumerate(groups):
        if i in joined:
            continue
        if i in parts and len(parts[i]) > 1:
            item = _union(parts[i], "", kind="shape")
        result.append(item)
    return result


def is_convex(graph: Graph, members: frozenset[int]) -> bool:
    """No path leaves `members` and comes back (searched up to the last member's position)."""
    last = max(members)
    stack = [c for m in members for c in graph.consumer_ids(graph.nodes[m]) if c not in members and c < last]
    seen = set(stack)
    while stack:
        current = stack.pop()
        for nxt in graph.consumer_ids(graph.nodes[current]):
            if nxt in members:
                return False
            if nxt < last and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return True


def _sole_consumer_group(graph: Graph, group: Candidate, owner: dict[int, int]) -> tuple[int, frozenset[int]] | None:
    """The one group that reads every value this group sends out, if there is exactly one, and
    the ungrouped views (Reshape, Unsqueeze, ...) the values pass through on the way."""
    nodes, consumers, graph_outputs = graph.nodes, graph.consumers, graph.output_set
    targets: set[int] = set()
    views: set[int] = set()
    frontier = list(group.members)
    while frontier:
        node = nodes[frontier.pop()]
        for out in node.outputs:
            if out in graph_outputs:
                return None
            for c in consumers.get(out, ()):
                consumer = nodes[c]
                if c in group.members or c in views or reads_only_metadata(consumer):
                    continue
                if c in owner:
                    targets.add(owner[c])
                elif op_class(consumer) == OpClass.VIEW:
                    views.add(c)
                    frontier.append(c)
                else:
                    return None
    return (targets.pop(), frozenset(views)) if len(targets) == 1 else None


# Parts that only reshape views or compute shapes on the host (VIEWS: never a group of their own).
VIEWS = "views"
_NO_WORK = frozenset({"shape", VIEWS})


def _union(items: list, name: str, rule: str | None = None, kind: str = "matmul_epilogue") -> Merged:
    parts = tuple(p for item in items for p in _parts(item) if p.members)
    members = frozenset().union(*(p.members for p in parts))
    inputs = tuple(dict.fromkeys(v for p in parts for v in p.inputs))
    attributes = tuple(dict.fromkeys(a for p in parts for a in p.attributes))
    rule = rule or next((p.rule for p in parts if p.rule), None)
    # Only a lone call-through part keeps its CANN op; anything merged is generated by us. Host
    # shape arithmetic and views add no work to a kernel, so they do not count as parts here.
    working = [p for p in parts if p.kind not in _NO_WORK]
    lowering = working[0].lowering if len(working) == 1 and working[0].rule else None
    return Merged(Candidate(members, kind, rule, name or None, inputs, attributes, lowering), parts)
