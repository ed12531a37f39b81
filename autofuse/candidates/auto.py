"""Automatic fusion by op class: ir.Graph -> candidate groups, plus a reason for every refusal.

The walk goes over the nodes in reverse topological order, so every consumer of a node has been
placed before the node itself is. A node then tries to join the group of its consumers; the join
is legal when the op classes combine (elementwise and broadcast ops everywhere, one reduction
signature per group, a MatMul/Gemm only as the head of an epilogue at level 3), the iteration
spaces agree, the group stays under the size cap, and no path leaves the group and comes back
(which would make the fused node both feed and depend on an outside node: a cycle).

Every node joins at most once and the cycle check only searches between the group's first and
last node ids, so the walk is near-linear in graph size for the local structure of real models.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from autofuse.candidates import decision as why
from autofuse.candidates.decision import YES, Decision, no
from autofuse.candidates.shape_values import shape_value_nodes
from autofuse.ir.graph import Dim, Graph, Node
from autofuse.ir.shapes import broadcast_shapes, format_shape, numel_key
from autofuse.ops.axes import ReductionSignature, reduction_signature
from autofuse.ops.table import (
    OpClass,
    is_kernel,
    op_class,
    reads_only_metadata,
    scalar_factor,
)

DEFAULT_MAX_GROUP_SIZE = 64
# Nodes the cycle check may visit for one join; past it the join is refused (conservative).
CYCLE_SEARCH_BUDGET = 20_000
_EPILOGUE_ANCHORS = frozenset({"MatMul", "Gemm"})
_POINTWISE = (OpClass.ELEMENTWISE, OpClass.BROADCAST, OpClass.VIEW)
# Data movement that a row-tiled kernel can do inside each row when it runs along the last axis.
_ROW_LOCAL = frozenset({"Slice", "Concat", "Split"})


@dataclass(frozen=True)
class Candidate:
    """A set of nodes that may become one fused kernel."""

    members: frozenset[int]
    kind: str  # automatic: "elementwise" | "reduction" | "matmul_epilogue" | "shape"; rules: the rule's kind
    rule: str | None = None
    op_name: str | None = None  # the fused op a rule names (automatic groups are named by kind)
    inputs: tuple[str, ...] = ()  # values the fused op takes first, in this order (a rule's inputs)
    attributes: tuple[tuple[str, float], ...] = ()  # fused-op attributes taken from captured constants
    lowering: str | None = None  # a rule's Ascend C template family ("call_through": a CANN op)


@dataclass(frozen=True)
class Refusal:
    """A fusion that was considered and refused: node names involved, reason code, detail."""

    members: tuple[str, ...]
    reason: str
    detail: str = ""


@dataclass
class _Group:
    members: set[int]
    space: tuple[Dim, ...]  # the iteration space: the largest tensor the kernel walks over
    signature: ReductionSignature | None = None
    anchor: int | None = None  # the MatMul/Gemm heading a matmul-epilogue group
    # Operand-side members of a matmul group: views, a last-two-axes Transpose and scalar scales
    # that the cube op absorbs as transpose flags and an output scale.
    prologue: set[int] = field(default_factory=set)
    shape: bool = False  # a host-side shape computation (see shape_values.py)
    fixed: bool = False  # chosen by a rule: nothing joins it, searches still contract it
    lo: int = 0  # smallest and largest member id (ids are topological positions)
    hi: int = 0

    @property
    def kind(self) -> str:
        if self.shape:
            return "shape"
        if self.anchor is not None:
            return "matmul_epilogue"
        return "reduction" if self.signature is not None else "elementwise"


@dataclass
class AutoGrouping:
    """Result of the walk: the candidate groups and the refusals met on the way."""

    candidates: list[Candidate] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


def find_auto_candidates(
    graph: Graph,
    opt_level: int,
    *,
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE,
    fixed: tuple[frozenset[int], ...] = (),
    refusals: bool = True,
) -> AutoGrouping:
    """Group the fusible nodes of `graph` outside the `fixed` groups (already taken by rules).
    `refusals=False` leaves the refusals out (a grouping made only to be compared with)."""
    if opt_level < 2:
        return AutoGrouping()
    return _Walk(graph, opt_level, max_group_size, fixed, refusals).run()


@functools.lru_cache(maxsize=4096)
def _broadcast_pair(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """broadcast_shapes of two spaces; a stack of layers asks about the same few pairs."""
    return broadcast_shapes([a, b])


class _Walk:
    def __init__(self, graph: Graph, opt_level: int, cap: int, fixed: tuple[frozenset[int], ...],
                 refusals: bool = True) -> None:
        self.graph = graph
        self.record = refusals
        self.opt_level = opt_level
        self.cap = cap
        self.group_of: list[_Group | None] = [None] * len(graph.nodes)
        for members in fixed:
            group = _Group(set(members), (), fixed=True, lo=min(members), hi=max(members))
            for m in members:
                self.group_of[m] = group
        self.result = AutoGrouping()
        self.kernel = graph.derived(_kernels)
        self.shape_nodes = shape_value_nodes(graph) if opt_level >= 3 else frozenset()
        self.numel_class = graph.derived(_numel_classes)
        self.classes = graph.derived(_op_classes)
        self._spaces: dict[int, tuple[Dim, ...] | None] = {}
        self._entries: list[Decision | None] = [None] * len(graph.nodes)

    def run(self) -> AutoGrouping:
        for node in reversed(self.graph.nodes):
            self._place(node)
        groups = {id(g): g for g in self.group_of if g is not None and not g.fixed}.values()
        for group in sorted(groups, key=lambda g: g.lo):
            if sum(self.kernel[m] for m in group.members) >= 2:
                self.result.candidates.append(Candidate(frozenset(group.members), group.kind))
        return self.result

    # -- placing one node ---------------------------------------------------------------------

    def _place(self, node: Node) -> None:
        if self.group_of[node.id] is not None:  # taken by a rule
            return
        entry = self._entry_decision(node)
        consumers = self.graph.consumer_ids(node)
        if not entry:
            self._refuse_edges(node, consumers, entry)
            return
        targets = self._consumer_groups(consumers)
        outside = [c for c in consumers if self.group_of[c] is None or self.group_of[c].fixed]
        # A read by Shape/Size needs only the shape: it does not make the value escape.
        escapes = any(not reads_only_metadata(self.graph.nodes[c]) for c in outside) or any(
            o in self.graph.output_set for o in node.outputs)
        for consumer in outside if self.record else ():
            reason = self._entry_decision(self.graph.nodes[consumer])
            if self.kernel[consumer] and not reason:
                self._refuse(node, [consumer], reason)
        # Views and constants join only a group that reads all of them, never as an extra output.
        single_output_only = self.opt_level < 3 or not self.kernel[node.id]
        if single_output_only and targets and (escapes or len(targets) > 1):
            for group in targets:
                self._refuse(node, self._consumers_in(consumers, group),
                             no(why.MULTI_OUTPUT, "an intermediate would also be needed outside the group"))
            targets = []
        for group in targets:
            verdict = self._can_join(node, group)
            if verdict:
                self._join(node, group)
                return
            self._refuse(node, self._consumers_in(consumers, group), verdict)
        if self._may_start_group(node):
            self._start(node)

    def _entry_decision(self, node: Node) -> Decision:
        """Whether the node may be in an automatic group at all (decided once per node)."""
        found = self._entries[node.id]
        if found is None:
            found = self._entries[node.id] = self._decide_entry(node)
        return found

    def _decide_entry(self, node: Node) -> Decision:
        kind = self.classes[node.id]
        if node.op_type == "Constant" or node.id in self.shape_nodes:
            return YES
        if not self.kernel[node.id] and kind != OpClass.VIEW:
            return no(why.NOT_FUSIBLE, "constant subexpression (no kernel at run time)")
        if kind in _POINTWISE:
            return YES
        if kind in (OpClass.REDUCTION, OpClass.NORMALIZATION):
            if reduction_signature(node, self.graph) is None:
                return no(why.UNKNOWN_SHAPE, f"{node.op_type}: reduced shape or axes unknown")
            return YES
        if _swaps_last_two_axes(node) and self.opt_level >= 3:
            return YES  # may only become a MatMul operand prologue (see _can_join)
        if kind == OpClass.INJECTIVE and node.op_type in _ROW_LOCAL:
            if self.opt_level < 3:
                return no(why.DATA_MOVEMENT_OP, f"{node.op_type} along rows fuses at level 3")
            if not self._is_row_local(node):
                return no(why.DATA_MOVEMENT_OP, f"{node.op_type} is not along the last axis with constant bounds")
            return YES
        if kind == OpClass.CONTRACTION and node.op_type in _EPILOGUE_ANCHORS:
            if self.opt_level < 3:
                return no(why.CONTRACTION_NEEDS_LEVEL_3, f"{node.op_type} epilogues fuse at level 3")
            return YES
        return self._class_reason(node)

    def _is_row_local(self, node: Node) -> bool:
        """Slice/Concat/Split that only move data within the last axis (a row-tiled kernel
        handles them as offsets inside each row)."""
        graph = self.graph
        rank = graph.type_of(node.outputs[0]).rank if node.op_type != "Split" else graph.type_of(node.inputs[0]).rank
        if not rank:
            return False
        if node.op_type in ("Concat", "Split"):
            return node.attrs.get("axis", 0) % rank == rank - 1
        if graph.opset < 10:
            axes = node.attrs.get("axes", tuple(range(rank)))
            bounds_known = True
        else:
            params = [graph.constant(v) if v else None for v in node.inputs[1:5]]
            bounds_known = all(p is not None for p in params[:2])
            axes = params[2].tolist() if len(params) > 2 and params[2] is not None else (
                None if len(node.inputs) > 3 and node.inputs[3] else list(range(rank)))
            steps = params[3] if len(params) > 3 else None
            if len(node.inputs) > 4 and node.inputs[4] and (steps is None or (steps != 1).any()):
                return False
        return bounds_known and axes is not None and [a % rank for a in axes] == [rank - 1]

    def _class_reason(self, node: Node) -> Decision:
        kind = self.classes[node.id]
        if kind == OpClass.OPAQUE:
            return no(why.OPAQUE_OP, f"{node.key} is opaque to fusion")
        if kind == OpClass.INJECTIVE:
            return no(why.DATA_MOVEMENT_OP, f"{node.op_type} moves data; not fused automatically")
        return no(why.NOT_FUSIBLE, f"{node.op_type} ({kind.name.lower()}) is not fused automatically")

    def _may_start_group(self, node: Node) -> bool:
        # Views and constants only ever join a group that a kernel started, and a node whose
        # outputs nobody reads (dead code) starts nothing.
        if not self.graph.consumer_ids(node) and not any(o in self.graph.output_set for o in node.outputs):
            return False
        if not self.kernel[node.id]:
            return False
        # Data movement only ever starts a group when it moves data within rows; a transpose
        # only joins a MatMul as its operand prologue.
        return self.classes[node.id] not in (OpClass.VIEW, OpClass.METADATA, OpClass.INJECTIVE) or node.op_type in _ROW_LOCAL

    def _consumer_groups(self, consumers: list[int]) -> list[_Group]:
        counts: dict[int, tuple[int, _Group]] = {}
        for c in consumers:
            group = self.group_of[c]
            if group is not None and not group.fixed:
                n, _ = counts.get(id(group), (0, group))
                counts[id(group)] = (n + 1, group)
        # Prefer the group that reads the node most, then the nearest one.
        ranked = sorted(counts.values(), key=lambda item: (-item[0], item[1].lo))
        return [group for _, group in ranked]

    def _consumers_in(self, consumers: list[int], group: _Group) -> list[int]:
        return [c for c in consumers if c in group.members]

    # -- legality -------------------------------------------------------------------------------

    def _can_join(self, node: Node, group: _Group) -> Decision:
        if len(group.members) + 1 > self.cap:
            return no(why.GROUP_TOO_LARGE, f"group would have {len(group.members) + 1} nodes (cap {self.cap})")
        if (node.id in self.shape_nodes) != group.shape:
            return no(why.SHAPE_AND_DATA, "shape arithmetic and tensor data are computed apart")
        if node.op_type == "Constant" or group.shape:
            return self._acyclic(node, group) if group.shape else YES
        if self._feeds_operand(node, group):
            verdict = self._prologue_decision(node, group)
            return self._acyclic(node, group) if verdict else verdict
        if node.op_type == "Transpose":
            return no(why.DATA_MOVEMENT_OP, "a Transpose fuses only into the MatMul operand it feeds")
        verdict = self._classes_combine(node, group)
        if not verdict:
            return verdict
        space = self._space(node)
        if space is None:
            return no(why.UNKNOWN_SHAPE, f"shape of '{node.outputs[0]}' unknown")
        if self._drops_reduced_axes(node) and any(
            self.classes[c] != OpClass.VIEW for c in self.graph.consumer_ids(node) if c in group.members
        ):
            return no(why.SHAPE_MISMATCH, "its keepdims=0 output would be re-read by broadcasting, not per row")
        if self._merged_space(space, group.space) is None:
            return no(why.SHAPE_MISMATCH, f"iteration space {format_shape(space)} vs group {format_shape(group.space)}")
        return self._acyclic(node, group)

    def _feeds_operand(self, node: Node, group: _Group) -> bool:
        side = group.prologue | ({group.anchor} if group.anchor is not None else set())
        return any(c in side for c in self.graph.consumer_ids(node))

    def _prologue_decision(self, node: Node, group: _Group) -> Decision:
        """Whether a node feeding a MatMul operand can be absorbed by the cube op."""
        graph = self.graph
        consumers = graph.consumer_ids(node)
        if len(consumers) != 1 or any(o in graph.output_set for o in node.outputs):
            return no(why.CONTRACTION_PROLOGUE, "the MatMul operand is also used elsewhere")
        (consumer,) = consumers
        if consumer == group.anchor and graph.nodes[consumer].inputs[0:2].count(node.outputs[0]) == 0:
            return no(why.CONTRACTION_PROLOGUE, "only the two matrix operands take a prologue")
        if scalar_factor(node, graph) is not None:  # a MatMul applies it to its output
            return YES
        if self.classes[node.id] == OpClass.VIEW and _keeps_matrix_dims(node, graph):
            return YES
        if _swaps_last_two_axes(node) and not self._transpose_below(consumer, group):
            return YES
        return no(why.CONTRACTION_PROLOGUE,
                  f"{node.op_type} on a MatMul operand is not a view, a last-two-axes transpose or a scalar scale")

    def _transpose_below(self, node_id: int, group: _Group) -> bool:
        """Whether the prologue path from `node_id` down to the anchor already transposes."""
        while node_id != group.anchor:
            if self.graph.nodes[node_id].op_type == "Transpose":
                return True
            node_id = self.graph.consumer_ids(self.graph.nodes[node_id])[0]
        return False

    def _classes_combine(self, node: Node, group: _Group) -> Decision:
        kind = self.classes[node.id]
        if kind == OpClass.CONTRACTION:
            if group.anchor is not None:
                return no(why.CONTRACTION_CONFLICT, "group already has a MatMul")
            if group.signature is not None:
                return no(why.CONTRACTION_CONFLICT, "a MatMul epilogue cannot contain a reduction")
            return YES
        if kind in (OpClass.REDUCTION, OpClass.NORMALIZATION):
            if group.anchor is not None:
                return no(why.CONTRACTION_CONFLICT, "a MatMul epilogue cannot contain a reduction")
            signature = reduction_signature(node, self.graph)
            if group.signature is not None and signature != group.signature:
                return no(why.REDUCTION_MISMATCH,
                          f"reduces {format_shape(signature.shape)} over axes {list(signature.axes)}; the group "
                          f"reduces {format_shape(group.signature.shape)} over axes {list(group.signature.axes)}")
        return YES

    def _merged_space(self, a: tuple[Dim, ...] | None, b: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
        """The space of a kernel walking both `a` and `b`, or None if one kernel cannot.

        Compatible when one space broadcasts to the other (the smaller is re-read per row), when
        both hold the same number of elements (a view between them), or when they have the same
        rows and differ only in static row length (a slice or concat within rows).
        """
        if a is None or b is None:
            return None
        if a == b:
            return a
        joint = _broadcast_pair(a, b)
        if joint == a or joint == b:
            return joint
        key_a, key_b = numel_key(a), numel_key(b)
        if key_a is not None and key_b is not None and self.numel_class.find(key_a) == self.numel_class.find(key_b):
            return b
        return _row_space(a, b)

    def _drops_reduced_axes(self, node: Node) -> bool:
        if self.classes[node.id] != OpClass.REDUCTION or node.attrs.get("keepdims", 1):
            return False
        signature = reduction_signature(node, self.graph)
        return signature is not None and bool(signature.axes)

    def _space(self, node: Node) -> tuple[Dim, ...] | None:
        """The iteration space of one node: its input rows for a reduction, else its output."""
        if node.id not in self._spaces:
            self._spaces[node.id] = self._node_space(node)
        return self._spaces[node.id]

    def _node_space(self, node: Node) -> tuple[Dim, ...] | None:
        if self.classes[node.id] in (OpClass.REDUCTION, OpClass.NORMALIZATION):
            signature = reduction_signature(node, self.graph)
            return None if signature is None else signature.shape
        value = node.inputs[0] if node.op_type == "Split" else node.outputs[0]
        shape = self.graph.type_of(value).shape
        if shape is None or any(d is None for d in shape):
            return None
        return shape

    def _acyclic(self, node: Node, group: _Group) -> Decision:
        """Refuse the join if a path would leave {node} ∪ group and come back in.

        Nodes are placed in reverse topological order and groups hold placed nodes only, so no
        path can run from the group back to `node` (its producers are all earlier, unplaced
        nodes). What remains is node -> outside -> group. The search treats every other group as
        one contracted node: reaching any member reaches all of its members' consumers.
        """
        starts = [c for c in self.graph.consumer_ids(node) if c not in group.members]
        found = self._reaches(starts, group)
        if found is None:
            return no(why.WOULD_CREATE_CYCLE, f"cycle check gave up after {CYCLE_SEARCH_BUDGET} nodes")
        if found:
            return no(why.WOULD_CREATE_CYCLE, "a path leaves the group and comes back through an outside node")
        return YES

    def _reaches(self, starts: list[int], target: _Group) -> bool | None:
        """Depth-first search over the contracted graph; None when the budget runs out.

        Only nodes up to the target's last id, or in a group starting before it, can lead into
        the target; the planner checks the whole contracted graph once more at the end.
        """
        graph, bound = self.graph, target.hi

        def allowed(i: int) -> bool:
            other = self.group_of[i]
            return i <= bound or (other is not None and other.lo <= bound)

        stack = [s for s in starts if allowed(s)]
        seen = set(stack)
        expanded: set[int] = set()
        while stack:
            current = stack.pop()
            nexts = list(graph.consumer_ids(graph.nodes[current]))
            other = self.group_of[current]
            if other is not None and id(other) not in expanded:
                expanded.add(id(other))
                nexts.extend(other.members)
            for nxt in nexts:
                if nxt in target.members:
                    return True
                if nxt in seen or not allowed(nxt):
                    continue
                if len(seen) >= CYCLE_SEARCH_BUDGET:
                    return None
                seen.add(nxt)
                stack.append(nxt)
        return False

    # -- bookkeeping ------------------------------------------------------------------------------

    def _start(self, node: Node) -> None:
        if node.id in self.shape_nodes:
            self.group_of[node.id] = _Group({node.id}, (), shape=True, lo=node.id, hi=node.id)
            return
        space = self._space(node)
        if space is None:
            self._refuse(node, [], no(why.UNKNOWN_SHAPE, f"shape of '{node.outputs[0]}' unknown"))
            return
        group = _Group({node.id}, space, lo=node.id, hi=node.id)
        self._absorb_traits(node, group)
        self.group_of[node.id] = group

    def _join(self, node: Node, group: _Group) -> None:
        group.members.add(node.id)
        group.lo, group.hi = min(group.lo, node.id), max(group.hi, node.id)
        self.group_of[node.id] = group
        if node.op_type == "Constant" or group.shape:
            return
        if self._feeds_operand(node, group):
            group.prologue.add(node.id)
            return
        group.space = self._merged_space(self._space(node), group.space)  # type: ignore[arg-type, assignment]
        self._absorb_traits(node, group)

    def _absorb_traits(self, node: Node, group: _Group) -> None:
        kind = self.classes[node.id]
        if kind in (OpClass.REDUCTION, OpClass.NORMALIZATION):
            group.signature = reduction_signature(node, self.graph)
        elif kind == OpClass.CONTRACTION:
            group.anchor = node.id

    def _refuse(self, node: Node, others: list[int], verdict: Decision) -> None:
        if not self.record or not self.kernel[node.id]:
            return
        names = (node.name, *(self.graph.nodes[i].name for i in others))
        self.result.refusals.append(Refusal(names, verdict.reason, verdict.detail))

    def _refuse_edges(self, node: Node, consumers: list[int], verdict: Decision) -> None:
        grouped = [c for c in consumers if self.group_of[c] is not None and self.kernel[c]]
        if grouped:
            self._refuse(node, grouped, verdict)


def _row_space(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """Spaces with the same rows whose static row lengths differ (a slice or concat of rows)."""
    if len(a) != len(b) or not a or not isinstance(a[-1], int) or not isinstance(b[-1], int):
        return None
    rows = broadcast_shapes([a[:-1], b[:-1]])
    if rows not in (a[:-1], b[:-1]):
        return None
    return (*rows, max(a[-1], b[-1]))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, key):
        parent = self.parent.setdefault(key, key)
        if parent != key:
            parent = self.parent[key] = self.find(parent)
        return parent

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


def _op_classes(graph: Graph) -> tuple[OpClass, ...]:
    """Per node id: its fusion class."""
    return tuple(op_class(n) for n in graph.nodes)


def _kernels(graph: Graph) -> tuple[bool, ...]:
    """Per node id: whether it launches a kernel of its own."""
    return tuple(is_kernel(n, graph) for n in graph.nodes)


def _numel_classes(graph: Graph) -> _UnionFind:
    """Element counts known to be equal because a view maps one tensor onto the other.

    Shape inference often loses the product of dims through a Reshape with a computed target
    (`[batch, seq, 64]` becomes `[unk__0, 64]`); the Reshape itself proves they are equal.
    """
    classes = _UnionFind()
    for node in graph.nodes:
        if op_class(node) != OpClass.VIEW or not node.inputs or not node.outputs:
            continue
        key_in = numel_key(graph.type_of(node.inputs[0]).shape or (None,))
        key_out = numel_key(graph.type_of(node.outputs[0]).shape or (None,))
        if key_in is not None and key_out is not None:
            classes.union(key_in, key_out)
    return classes


def _keeps_matrix_dims(node: Node, graph: Graph) -> bool:
    """A view that only regroups batch dims, leaving the last two (the matrix) as they are."""
    before = graph.type_of(node.inputs[0]).shape
    after = graph.type_of(node.outputs[0]).shape
    if before is None or after is None or len(before) < 2 or len(after) < 2:
        return False
    return before[-2:] == after[-2:] and None not in before[-2:]


def _swaps_last_two_axes(node: Node) -> bool:
    if node.op_type != "Transpose":
        return False
    perm = tuple(node.attrs.get("perm", ()))
    rank = len(perm)
    return rank >= 2 and perm == (*range(rank - 2), rank - 1, rank - 2)
