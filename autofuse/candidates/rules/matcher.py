"""Matching rules against a graph: (ir.Graph, rules) -> matches, and the near misses.

Rules are indexed by the op type of their root, so each node is only tried against the rules
that can end there; a pattern is then matched upward from the root through producers, with
backtracking over alternatives, optional ops and the two operand orders of commutative ops.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import onnx

from autofuse.candidates.rules.language import Alt, Call, Expr, Number, Ref, describe
from autofuse.candidates.rules.loader import Rule
from autofuse.candidates.rules.replay import Replays
from autofuse.frontends.onnx import _attr_value
from autofuse.ir.graph import Graph, Node
from autofuse.ops.axes import reduction_signature
from autofuse.ops.table import reads_only_metadata

COMMUTATIVE = frozenset("Add Mul Max Min Sum Mean And Or Xor Equal BitwiseAnd BitwiseOr BitwiseXor".split())
# Pseudo-attributes read from the node's semantics rather than its attribute list.
_AXES_OPS_PREFIX = ("Reduce",)


@dataclass(frozen=True)
class Match:
    """One place where a rule matched: the nodes it covers and what its captures bound."""

    rule: Rule
    root: int
    nodes: frozenset[int]
    values: dict[str, str]  # binding or capture name -> graph value
    constants: dict[str, float]  # constant capture -> its value


@dataclass(frozen=True)
class NearMiss:
    """The furthest a rule got at one anchor node before failing."""

    rule: str
    anchor: str  # node name
    step: str  # the pattern line being matched
    reason: str
    matched_nodes: int


@dataclass(frozen=True)
class _State:
    values: dict[str, str]
    nodes: frozenset[int]
    constants: dict[str, float]

    def bind(self, name: str, value: str) -> "_State":
        return _State({**self.values, name: value}, self.nodes, self.constants)

    def take(self, node_id: int) -> "_State":
        return _State(self.values, self.nodes | {node_id}, self.constants)

    def constant(self, name: str, value: str, number: float) -> "_State":
        return _State({**self.values, name: value}, self.nodes, {**self.constants, name: number})


@dataclass
class _Attempt:
    """Matching of one rule at one anchor; remembers the deepest failure."""

    graph: Graph
    rule: Rule
    best: tuple[int, str, str] = (-1, "", "")  # (nodes matched, step, reason)
    touched: set[int] = field(default_factory=set)  # every node whose op the search read

    def fail(self, state: _State, line: str, reason: str) -> None:
        if len(state.nodes) > self.best[0]:
            self.best = (len(state.nodes), line, reason)


@dataclass
class RuleIndex:
    """Rules grouped by the op types their root can have.

    Rules whose patterns and constraints are identical (a library rule and a user's copy with
    other lowerings, say) share one entry and are matched once.
    """

    rules: list[Rule]
    by_anchor: dict[str, list[tuple[Rule, ...]]] = field(default_factory=dict)
    # Per rule name: the op types allowed to produce each root input (None: anything).
    root_needs: dict[str, list[frozenset[str] | None] | None] = field(default_factory=dict)
    # Per rule name: the op types of the pattern's first levels, compiled (see _Outline).
    outlines: dict[str, "_Outline | None"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shared: dict[tuple, list[Rule]] = {}
        for rule in self.rules:
            shared.setdefault(_pattern_key(rule), []).append(rule)
        for same in shared.values():
            for op in sorted(same[0].anchors):
                self.by_anchor.setdefault(op, []).append(tuple(same))
            root = same[0].root.expr
            needs = [_required_ops(arg, same[0]) for arg in root.args] if isinstance(root, Call) else None
            self.root_needs[same[0].name] = needs
            self.outlines[same[0].name] = _compile_outline(same[0], same[0].root.expr, _OUTLINE_DEPTH)


def _pattern_key(rule: Rule) -> tuple:
    """Everything that decides where a rule matches (not its name, kind or lowerings)."""
    return (rule.bindings, rule.inputs, rule.outputs, tuple(sorted(rule.constants.items())),
            tuple(sorted(rule.where.items())), rule.tolerance)


def find_matches(graph: Graph, index: RuleIndex, *, trace: bool = False,
                 reuse: bool = True) -> tuple[list[Match], list[NearMiss]]:
    """Every match of every rule, and (with `trace`) the near misses. Unless `trace` is set or
    `reuse` is False, a match found at one root is reused at roots with the same surroundings
    (see replay.py): the same matches, found once per distinct layer."""
    matches: list[Match] = []
    misses: list[NearMiss] = []
    producer_ops = _producer_ops(graph)
    cones = _Cones(graph)
    replays = Replays(graph) if reuse and not trace else None
    fits: dict[tuple[str, int], bool] = {}  # (rule, the anchor's cone) -> does the outline fit
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        for same in index.by_anchor.get(node.op_type, ()):
            rule = same[0]
            key = None
            if not trace:
                if not _may_match_here(index.root_needs[rule.name], node, producer_ops):
                    continue
                key = (rule.name, cones.of(node.outputs[0], _OUTLINE_DEPTH))
                found = fits.get(key)
                if found is None:
                    found = fits[key] = _fits(graph, index.outlines[rule.name], node.outputs[0])
                if not found:
                    continue
            found = _replayed(replays, key, rule, node) if replays is not None else None
            if found is None:
                attempt = _Attempt(graph, rule)
                found = _match_at(attempt, node)
                if found is not None and replays is not None:
                    replays.remember(key, node.id, attempt.touched, found.nodes, found.values, found.constants)
            if found is not None:
                matches.extend(Match(r, found.root, found.nodes, found.values, found.constants) for r in same)
            elif trace and attempt.best[0] >= 2:  # got past the root: a near miss worth showing
                misses.extend(NearMiss(r.name, node.name, attempt.best[1], attempt.best[2], attempt.best[0])
                              for r in same)
    return matches, misses


def _replayed(replays: Replays, key, rule: Rule, node: Node) -> Match | None:
    reused = replays.reuse(key, node.id)
    if reused is None:
        return None
    nodes, values, constants = reused
    return Match(rule, node.id, nodes, values, dict(constants))


# -- a cheap look before matching ----------------------------------------------------------------


_OUTLINE_DEPTH = 3


@dataclass(frozen=True)
class _Outline:
    """The op types a pattern allows along its first levels, without captures or attributes:
    `ops` must produce the value (or, when `optional`, `skip` must fit the value itself), and
    each of `args` must fit the matching input. Alternatives are a tuple of outlines, deduplicated
    when compiled, so `Cast<to=1>(n) | Cast<to=10>(n) | n` costs two checks, not three."""

    ops: frozenset[str]
    args: tuple["_Outline | tuple[_Outline, ...] | None", ...]  # None: anything fits
    commutative: bool
    skip: "_Outline | tuple[_Outline, ...] | None" = None
    optional: bool = False


def _compile_outline(rule: Rule, expr: Expr, depth: int, seen: int = 0):
    """The outline of `expr` to `depth` levels: an _Outline, a tuple of alternatives, or None
    when anything fits (a capture, a constant, or a level beyond `depth`)."""
    if isinstance(expr, Ref):
        binding = rule.binding_by_name.get(expr.name)
        return None if binding is None or seen > 64 else _compile_outline(rule, binding.expr, depth, seen + 1)
    if isinstance(expr, Alt):
        options = []
        for option in expr.options:
            compiled = _compile_outline(rule, option, depth, seen + 1)
            if compiled is None:
                return None  # one alternative accepts anything
            for item in compiled if isinstance(compiled, tuple) else (compiled,):
                if item not in options:
                    options.append(item)
        return options[0] if len(options) == 1 else tuple(options)
    if not isinstance(expr, Call):
        return None
    skip = _compile_outline(rule, expr.args[0], depth, seen + 1) if expr.optional else None
    if expr.optional and skip is None:
        return None
    args = tuple(_compile_outline(rule, a, depth - 1, seen + 1) if depth > 1 else None for a in expr.args)
    commutative = len(expr.args) == 2 and bool(set(expr.ops) & COMMUTATIVE)
    return _Outline(frozenset(expr.ops), args, commutative, skip, expr.optional)


class _Cones:
    """What `_fits` can see of a value, as one number: the op types and operand counts of its
    producers `depth` levels up. Values with the same number fit the same outlines (every layer
    of a stack has the same cones), so each rule's outline is checked once per distinct cone."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ids: dict[tuple, int] = {}
        self.memo: dict[tuple[str, int], int] = {}

    def of(self, value: str, depth: int) -> int:
        key = (value, depth)
        found = self.memo.get(key)
        if found is not None:
            return found
        producer = self.graph.producer.get(value)
        if producer is None:
            shape: tuple = ("",)
        else:
            node = self.graph.nodes[producer]
            inputs = [v for v in node.inputs if v]
            below = tuple(self.of(v, depth - 1) for v in inputs) if depth > 1 else len(inputs)
            shape = (node.op_type, below)
        found = self.memo[key] = self.ids.setdefault(shape, len(self.ids))
        return found


def _fits(graph: Graph, outline, value: str) -> bool:
    """Whether the producers around `value` can fit `outline`.

    Stateless and without captures, so it only ever rejects what the full match would reject.
    """
    if outline is None:
        return True
    if isinstance(outline, tuple):
        return any(_fits(graph, o, value) for o in outline)
    if outline.optional and _fits(graph, outline.skip, value):
        return True
    producer = graph.producer.get(value)
    if producer is None:
        return False
    node = graph.nodes[producer]
    if node.op_type not in outline.ops:
        return False
    args = outline.args
    if not any(a is not None for a in args):
        return len([v for v in node.inputs if v]) >= len(args) or not args
    inputs = [v for v in node.inputs if v]
    if len(inputs) < len(args):
        return False
    if all(_fits(graph, a, v) for a, v in zip(args, inputs)):
        return True
    return (outline.commutative and node.op_type in COMMUTATIVE
            and _fits(graph, args[0], inputs[1]) and _fits(graph, args[1], inputs[0]))


def _producer_ops(graph: Graph) -> dict[str, str]:
    """Value -> op type of the node producing it (default domain only)."""
    return {out: node.op_type for node in graph.nodes if node.domain in ("", "ai.onnx") for out in node.outputs}


def _required_ops(expr: Expr, rule: Rule, depth: int = 0) -> frozenset[str] | None:
    """Op types one of which must produce the value `expr` matches; None if anything may."""
    if isinstance(expr, Call):
        if not expr.optional:
            return frozenset(expr.ops)
        skipped = _required_ops(expr.args[0], rule, depth + 1)  # the optional op may be absent
        return None if skipped is None else frozenset(expr.ops) | skipped
    if isinstance(expr, Ref) and expr.name in rule.binding_by_name and depth < 8:
        return _required_ops(rule.binding_by_name[expr.name].expr, rule, depth + 1)
    if isinstance(expr, Alt):
        options = [_required_ops(o, rule, depth + 1) for o in expr.options]
        return None if any(o is None for o in options) else frozenset().union(*options)
    return None


def _may_match_here(needs: list[frozenset[str] | None] | None, node: Node, producer_ops: dict[str, str]) -> bool:
    """False when the producers of the node's inputs already rule the pattern out."""
    if needs is None:
        return True
    inputs = [v for v in node.inputs if v]
    if len(inputs) < len(needs):
        return False
    ops = [producer_ops.get(v) for v in inputs[:len(needs)]]

    def fits(order) -> bool:
        return all(need is None or op in need for need, op in zip(needs, order))

    if fits(ops):
        return True
    return node.op_type in COMMUTATIVE and len(ops) == 2 and fits(ops[::-1])


def _match_at(attempt: _Attempt, node: Node) -> Match | None:
    rule, graph = attempt.rule, attempt.graph
    root = rule.root
    start = _State({}, frozenset(), {})
    for value in node.outputs[:1]:
        for state in _match_ref(attempt, Ref(root.name), value, start, root.text):
            state = _shared_shapes_outside(attempt, state, node.id)
            verdict = _escapes(attempt, state)
            if verdict:
                attempt.fail(state, root.text, verdict)
                continue
            nodes = _with_private_constants(graph, state.nodes)
            return Match(rule, node.id, nodes, state.values, state.constants)
    return None


# -- expressions --------------------------------------------------------------------------------


def _match(attempt: _Attempt, expr: Expr, value: str, state: _State, line: str) -> Iterator[_State]:
    if isinstance(expr, Ref):
        yield from _match_ref(attempt, expr, value, state, line)
    elif isinstance(expr, Number):
        yield from _match_number(attempt, expr, value, state, line)
    elif isinstance(expr, Alt):
        for option in expr.options:
            yield from _match(attempt, option, value, state, line)
    else:
        yield from _match_call(attempt, expr, value, state, line)


def _match_ref(attempt: _Attempt, ref: Ref, value: str, state: _State, line: str) -> Iterator[_State]:
    name, rule = ref.name, attempt.rule
    if name == "_":
        yield state
        return
    if name in state.values:
        if state.values[name] == value or name in rule.constants and _same_number(attempt, state, name, value):
            yield state
        else:
            attempt.fail(state, line, f"'{name}' is '{state.values[name]}' elsewhere but '{value}' here")
        return
    binding = rule.binding_by_name.get(name)
    if binding is not None:
        yield from _match(attempt, binding.expr, value, state.bind(name, value), binding.text)
        return
    if name in rule.constants:
        yield from _match_constant(attempt, name, value, state, line)
        return
    reason = _capture_mismatch(attempt, name, value)
    if reason:
        attempt.fail(state, line, reason)
        return
    yield state.bind(name, value)


def _capture_mismatch(attempt: _Attempt, name: str, value: str) -> str:
    spec = attempt.rule.where.get(name)
    if spec is None:
        return ""
    kind = attempt.graph.type_of(value)
    if spec.dtypes and kind.dtype not in spec.dtypes:
        return f"'{name}' has dtype {kind.dtype}, the rule allows {', '.join(spec.dtypes)}"
    rank = kind.rank
    if (spec.min_rank is not None or spec.max_rank is not None) and rank is None:
        return f"rank of '{name}' is unknown"
    if spec.min_rank is not None and rank < spec.min_rank or spec.max_rank is not None and rank > spec.max_rank:
        return f"'{name}' has rank {rank}, outside the rule's range"
    return ""


def _scalar(graph: Graph, value: str) -> float | None:
    array = graph.constant(value)
    if array is None or array.size == 0 or array.dtype.kind not in "fiub":
        return None
    flat = array.reshape(-1).astype(np.float64)
    return float(flat[0]) if np.all(flat == flat[0]) else None


def _same_number(attempt: _Attempt, state: _State, name: str, value: str) -> bool:
    """A constant capture seen again: equal numbers count as the same value (exporters that write
    one Constant node per use never share the tensor itself)."""
    number, bound = _scalar(attempt.graph, value), state.constants.get(name)
    return number is not None and bound is not None and \
        abs(number - bound) <= attempt.rule.tolerance * max(1.0, abs(bound))


def _match_constant(attempt: _Attempt, name: str, value: str, state: _State, line: str) -> Iterator[_State]:
    number = _scalar(attempt.graph, value)
    if number is None:
        attempt.fail(state, line, f"'{name}' must be a constant scalar; '{value}' is not")
        return
    spec = attempt.rule.constants[name]
    if spec.minimum is not None and number < spec.minimum or spec.maximum is not None and number > spec.maximum:
        attempt.fail(state, line, f"constant '{name}' = {number:g} is outside [{spec.minimum}, {spec.maximum}]")
        return
    yield state.constant(name, value, number)


# Relative rounding error of one number stored in each float type (half a unit in the last place).
_ROUNDING = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


def _match_number(attempt: _Attempt, expr: Number, value: str, state: _State, line: str) -> Iterator[_State]:
    number = _scalar(attempt.graph, value)
    # A constant stored in half precision is the rule's number rounded to that precision.
    tolerance = max(attempt.rule.tolerance, _ROUNDING.get(attempt.graph.type_of(value).dtype, 0.0))
    if number is None:
        attempt.fail(state, line, f"expected the constant {expr.value:g}, '{value}' is not a constant scalar")
    elif abs(number - expr.value) <= tolerance * max(1.0, abs(expr.value)):
        yield state
    else:
        attempt.fail(state, line, f"expected the constant {expr.value:g}, found {number:g}")


def _match_call(attempt: _Attempt, call: Call, value: str, state: _State, line: str) -> Iterator[_State]:
    graph = attempt.graph
    producer = graph.producer.get(value)
    node = graph.nodes[producer] if producer is not None else None
    if node is not None:
        attempt.touched.add(producer)
    if node is not None and node.op_type in call.ops and node.domain in ("", "ai.onnx"):
        reason = _attr_mismatch(graph, node, call)
        if reason:
            attempt.fail(state.take(node.id), line, reason)  # the op was right: count it as reached
        else:
            yield from _match_inputs(attempt, call, node, state.take(node.id), line)
    elif not call.optional:
        found = "a graph input or constant" if node is None else f"{node.op_type} ('{node.name}')"
        attempt.fail(state, line, f"expected {describe(call)} producing '{value}', found {found}")
    if call.optional:
        yield from _match(attempt, call.args[0], value, state, line)


def _match_inputs(attempt: _Attempt, call: Call, node: Node, state: _State, line: str) -> Iterator[_State]:
    inputs = [v for v in node.inputs if v]
    wanted = len(call.args)
    if len(inputs) < wanted:
        attempt.fail(state, line, f"{node.op_type} '{node.name}' has {len(inputs)} inputs, the pattern needs {wanted}")
        return
    extra = inputs[wanted:]
    if any(v not in attempt.graph.constants for v in extra):
        attempt.fail(state, line, f"{node.op_type} '{node.name}' has more data inputs than the pattern names")
        return
    orders = [inputs[:wanted]]
    if node.op_type in COMMUTATIVE and wanted == 2 and inputs[0] != inputs[1]:
        orders.append([inputs[1], inputs[0]])
    for order in orders:
        yield from _match_args(attempt, call.args, order, state, line)


def _match_args(attempt: _Attempt, args, values, state: _State, line: str) -> Iterator[_State]:
    if not args:
        yield state
        return
    for after_first in _match(attempt, args[0], values[0], state, line):
        yield from _match_args(attempt, args[1:], values[1:], after_first, line)


def _attr_mismatch(graph: Graph, node: Node, call: Call) -> str:
    for key, wanted in call.attrs:
        if key in ("axes", "axis") and (node.op_type.startswith(_AXES_OPS_PREFIX) or node.op_type in (
                "Softmax", "LogSoftmax", "LayerNormalization", "RMSNormalization")):
            actual = _reduced_axes(graph, node)
        elif node.op_type == "Slice" and key in _SLICE_INPUTS and node.domain in ("", "ai.onnx"):
            actual = _slice_parameter(graph, node, key, wanted)
        elif key == "axis" and "axis" in node.attrs and wanted == "last":
            rank = graph.type_of(node.outputs[0]).rank
            actual = "last" if rank and node.attrs["axis"] % rank == rank - 1 else node.attrs["axis"]
        else:
            actual = node.attrs[key] if key in node.attrs else _schema_default(graph, node, key)
        if isinstance(wanted, tuple) and isinstance(actual, tuple):
            equal = tuple(wanted) == tuple(actual)
        else:
            equal = actual == wanted
        if not equal:
            return f"{node.op_type} '{node.name}' has {key}={actual}, the pattern wants {key}={wanted}"
    return ""


def _schema_default(graph: Graph, node: Node, key: str):
    """The value an attribute left out of a node has: its default in the op's schema, or None."""
    return _default_of(node.op_type, node.domain, graph.opset or onnx.defs.onnx_opset_version(), key)


@functools.lru_cache(maxsize=1024)
def _default_of(op_type: str, domain: str, opset: int, key: str):
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:  # noqa: BLE001 - unknown op or domain: no default
        return None
    attr = schema.attributes.get(key)
    if attr is None or attr.default_value.type == onnx.AttributeProto.UNDEFINED:
        return None
    return _attr_value(attr.default_value)


# Slice's parameters are inputs (opset >= 10); `Slice<starts=.., ends=.., axes=.., steps=..>` reads
# them when they are constant single values. `axes=last` is the last axis; `starts`/`ends` may also
# be `half` (the sliced axis's static size / 2) or `end` (at or past the end of the axis).
_SLICE_INPUTS = {"starts": 1, "ends": 2, "axes": 3, "steps": 4}
_PAST_ANY_END = 2**31 - 1


def _slice_parameter(graph: Graph, node: Node, key: str, wanted):
    def param(name: str):  # a constant single value, its default when omitted, or "unknown"
        index = _SLICE_INPUTS[name]
        value = node.inputs[index] if len(node.inputs) > index else ""
        if not value:
            return {"axes": 0, "steps": 1}.get(name, "unknown")
        array = graph.constant(value)
        return int(array.reshape(-1)[0]) if array is not None and array.size == 1 else "unknown"

    actual, axis = param(key), param("axes")
    shape = graph.type_of(node.inputs[0]).shape
    if actual == "unknown" or axis == "unknown" or shape is None or not -len(shape) <= axis < len(shape):
        return actual
    axis %= len(shape)
    if key == "axes":
        return "last" if axis == len(shape) - 1 else axis
    dim = shape[axis]
    if wanted == "half" and isinstance(dim, int) and dim % 2 == 0 and actual in (dim // 2, -(dim // 2)):
        return "half"
    if wanted == "end" and (actual >= _PAST_ANY_END or isinstance(dim, int) and actual >= dim):
        return "end"
    return actual


def _reduced_axes(graph: Graph, node: Node):
    signature = reduction_signature(node, graph)
    if signature is None:
        return "unknown"
    rank = len(signature.shape)
    if rank and signature.axes == (rank - 1,):
        return "last"
    return signature.axes


# -- whole-match checks ---------------------------------------------------------------------------


def _escapes(attempt: _Attempt, state: _State) -> str:
    """A reason if an intermediate of the match is used outside it (and is not a declared output)."""
    graph, rule = attempt.graph, attempt.rule
    allowed = {state.values[name] for name in rule.outputs if name in state.values}
    for node_id in state.nodes:
        for out in graph.nodes[node_id].outputs:
            if not out or out in allowed:
                continue
            if out in graph.output_set:
                return f"intermediate '{out}' is a graph output"
            outside = [c for c in graph.consumers.get(out, ())
                       if c not in state.nodes and not reads_only_metadata(graph.nodes[c])]
            if outside:
                return (f"intermediate '{out}' is also used by '{graph.nodes[outside[0]].name}' outside the "
                        "match (declare it in 'outputs' to allow that)")
    for name in rule.outputs[1:]:
        if name not in state.values:
            return f"output '{name}' was not bound"
    return ""


def _shared_shapes_outside(attempt: _Attempt, state: _State, root: int) -> _State:
    """Leave out of the match the nodes that only compute a shape (an integer tensor of rank 0 or
    1) from values outside the match and are used outside it too: the pattern has checked what
    they compute, they stay where they are and the fused op reads their result as an input.
    (Dynamo computes the shapes of repeat_kv's Expand and Reshape once, for every layer.)"""
    graph = attempt.graph
    produced = {v for n in state.nodes for v in graph.nodes[n].outputs}
    shared = set()
    for node_id in state.nodes:
        node = graph.nodes[node_id]
        if node_id == root or any(v in produced for v in node.all_inputs):
            continue
        types = [graph.type_of(v) for v in node.outputs if v]
        if not types or any(t.dtype not in ("int64", "int32") or t.rank is None or t.rank > 1 for t in types):
            continue
        if any(c not in state.nodes and not reads_only_metadata(graph.nodes[c])
               for v in node.outputs if v for c in graph.consumers.get(v, ())):
            shared.add(node_id)
    return _State(state.values, state.nodes - shared, state.constants) if shared else state


def _with_private_constants(graph: Graph, nodes: frozenset[int]) -> frozenset[int]:
    """Add the Constant nodes that only feed the match (they move into the fused op)."""
    extra = set()
    for node_id in nodes:
        for p in graph.producer_ids(graph.nodes[node_id]):
            producer = graph.nodes[p]
            if producer.op_type == "Constant" and all(c in nodes for c in graph.consumer_ids(producer)):
                extra.add(p)
    return nodes | extra
