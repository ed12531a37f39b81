"""ONNX front end: a model file or ModelProto -> (validated ModelProto, ir.Graph).

This and `rewrite/onnx.py` are the only modules that read ONNX protobuf structures. Loading changes
nothing but node names (every main-graph node gets a unique, non-empty name, and duplicate names in
subgraphs and function bodies are made unique, because onnxruntime refuses duplicates; see
`_validate_names`): the rewrite stage starts from that ModelProto and only replaces the nodes that
it fuses, so initializers, external data, metadata, opset imports, local functions and subgraphs
survive untouched.
"""
from __future__ import annotations

import functools
import heapq
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from autofuse.errors import InputError
from autofuse.frontends.shape_eval import evaluate
from autofuse.frontends.shapes import complete_shapes
from autofuse.ir.graph import Dim, Graph, Node, TensorType

MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
# Constants up to this many elements are kept as numpy arrays in the IR (rules read epsilons,
# exponents and axes from them); bigger ones are weights and stay in the protobuf only.
SMALL_CONSTANT_ELEMENTS = 4096


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """The validated input model, the IR built from it, and where its external data lives."""

    model: onnx.ModelProto  # the input, with the node names of `renamed` changed (a copy if any)
    graph: Graph
    source: str  # file path or "<ModelProto>", used in messages
    base_dir: Path | None  # directory external-data locations are relative to
    renamed: tuple[Renamed, ...] = ()  # nodes whose name differs from the input's, in graph order


@dataclass(frozen=True)
class Renamed:
    """A node written under another name than the input's (report.json `renamed_nodes`)."""

    graph: str  # "main graph", "function 'F' (domain 'd')", "subgraph 'body' of node 'loop' (Loop) in ..."
    index: int  # the node's position in that graph's (or function's) node list
    op_type: str
    old: str  # "" for a node without a name
    new: str
    path: tuple = field(default=(), repr=False, compare=False)  # where the NodeProto is (_node_in)

    def entry(self) -> dict:
        return {"graph": self.graph, "index": self.index, "op_type": self.op_type, "old": self.old, "new": self.new}


def load_onnx(model: onnx.ModelProto | str | os.PathLike) -> LoadedModel:
    """Read and validate an ONNX model and build its IR. Raises InputError on bad input.

    A ModelProto passed in is never changed: when node names must change, they change in a copy."""
    if isinstance(model, onnx.ModelProto):
        return _build(model, "<ModelProto>", None, owned=False)
    path = Path(model)
    return _build(_read_model(path), str(path), path.resolve().parent, owned=True)


def _read_model(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an .onnx file")
    data = path.read_bytes()
    if not data:
        raise InputError(f"{path}: file is empty (0 bytes), not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: not a valid ONNX model (protobuf parse failed: {exc})") from None
    return model


def _build(model: onnx.ModelProto, source: str, base_dir: Path | None, *, owned: bool) -> LoadedModel:
    _check_header(model, source)
    opset = _default_opset(model, source)
    protos = list(model.graph.node)  # one wrapper per node, read by every step below
    renamed = _validate_names(model, protos, source)
    implicit = [_implicit_inputs(node) for node in protos]
    order = _topological_order(model.graph, protos, implicit, source)
    if renamed:
        model = _apply_names(model, renamed, owned)
        protos = list(model.graph.node)
    values = _value_types(model, source)
    graph = Graph(
        nodes=tuple(_to_node(i, protos[src], src, implicit[src]) for i, src in enumerate(order)),
        values=values,
        inputs=tuple(v.name for v in model.graph.input),
        outputs=tuple(v.name for v in model.graph.output),
        initializers=frozenset(t.name for t in model.graph.initializer)
        | frozenset(t.values.name for t in model.graph.sparse_initializer),
        constant_values=_small_constants(model.graph),
        opset=opset,
        name=model.graph.name,
    )
    return LoadedModel(model=model, graph=complete_shapes(graph), source=source, base_dir=base_dir,
                       renamed=tuple(renamed))


def _check_header(model: onnx.ModelProto, source: str) -> None:
    if not model.HasField("graph") or not model.opset_import:
        raise InputError(f"{source}: not an ONNX model (no graph or no opset_import)")
    if model.ir_version < 3:
        raise InputError(f"{source}: unsupported ONNX IR version {model.ir_version} (need >= 3)")
    if not model.graph.output:
        raise InputError(f"{source}: graph '{model.graph.name}' declares no outputs")


def _default_opset(model: onnx.ModelProto, source: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
            raise InputError(f"{source}: uses default-domain ops but imports no default-domain opset")
        return 0  # no default-domain ops (an ai.onnx.ml-only model, say): nothing to fuse
    opset = versions[0]
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(
            f"{source}: unsupported opset {opset} for the default domain "
            f"(supported: {MIN_OPSET}-{MAX_OPSET})"
        )
    return opset


# -- single assignment and node names -----------------------------------------------------------
#
# One pass over every scope (the main graph, each model-local function, each If/Loop/Scan body at
# any depth) with a dict per scope: what onnx.checker's single-assignment rules reject, plus what
# it lets through (a subgraph redefining a name its enclosing graph defines after the node that
# holds the subgraph, which breaks once nodes are reordered), each error naming the value, both
# definitions and the scope. Node names are not checked but made unique (see `_unique_names`).

_GRAPH_INPUT, _INITIALIZER, _SPARSE_INITIALIZER, _FUNCTION_INPUT = -1, -2, -3, -4
_AS = {_GRAPH_INPUT: "as a graph input", _INITIALIZER: "as an initializer",
       _SPARSE_INITIALIZER: "as a sparse initializer", _FUNCTION_INPUT: "as a function input"}


class _Scope:
    """The values one graph or function body defines: name -> a position in `nodes` (the node
    that writes it) or one of the negative kinds above."""

    __slots__ = ("where", "nodes", "parent", "defined")

    def __init__(self, where: str, nodes, parent: _Scope | None) -> None:
        self.where, self.nodes, self.parent, self.defined = where, nodes, parent, {}

    def definer(self, who: int) -> str:
        return _AS[who] if who < 0 else f"by {_node_at(self.nodes[who], who)}"

    def enclosing(self, name: str) -> _Scope | None:
        scope = self.parent
        while scope is not None and name not in scope.defined:
            scope = scope.parent
        return scope


def _node_at(node: onnx.NodeProto, index: int) -> str:
    return f"node '{node.name}' ({node.op_type}, #{index})" if node.name else f"node #{index} ({node.op_type})"


def _validate_names(model: onnx.ModelProto, protos: list[onnx.NodeProto], source: str) -> list[Renamed]:
    """Reject a value defined twice in a scope, or redefined by a subgraph; return the node names
    that must change (nothing is changed here)."""
    renamed: list[Renamed] = []
    main = _Scope("main graph", protos, None)
    _define_graph(model.graph, main, source)
    renamed.extend(_unique_names(protos, main.where, ("graph",), fill_empty=True))
    _check_subgraphs(main, ("graph",), source, renamed)
    for number, function in enumerate(model.functions):
        nodes = list(function.node)
        scope = _Scope(f"function '{function.name}' (domain '{function.domain}')", nodes, None)
        for name in function.input:
            _define(scope, name, _FUNCTION_INPUT, source)
        _define_nodes(scope, source)
        renamed.extend(_unique_names(nodes, scope.where, ("function", number), fill_empty=False))
        _check_subgraphs(scope, ("function", number), source, renamed)
    return renamed


def _define_graph(graph: onnx.GraphProto, scope: _Scope, source: str) -> None:
    for info in graph.input:
        _define(scope, info.name, _GRAPH_INPUT, source)
    for tensor in graph.initializer:
        _define(scope, tensor.name, _INITIALIZER, source)
    for sparse in graph.sparse_initializer:
        _define(scope, sparse.values.name, _SPARSE_INITIALIZER, source)
    _define_nodes(scope, source)


def _define(scope: _Scope, name: str, who: int, source: str) -> None:
    if not name:
        return
    defined = scope.defined
    before = defined.get(name)
    if before is None:
        defined[name] = who
    elif before == _GRAPH_INPUT and who in (_INITIALIZER, _SPARSE_INITIALIZER):
        defined[name] = who  # an initializer gives a graph input its default value: allowed
    else:
        _defined_twice(scope, name, before, who, source)


def _define_nodes(scope: _Scope, source: str) -> None:
    defined = scope.defined
    enclosing = scope.parent is not None
    for index, node in enumerate(scope.nodes):
        for name in node.output:
            if not name:
                continue  # an omitted optional output
            if name in defined:
                _defined_twice(scope, name, defined[name], index, source)
            if enclosing:
                outer = scope.enclosing(name)
                if outer is not None:
                    raise InputError(
                        f"{source}: value '{name}' is defined by {_node_at(node, index)} in {scope.where}, "
                        f"and its enclosing {outer.where} defines it too, {outer.definer(outer.defined[name])} "
                        "(a subgraph may read outer values, not redefine them)"
                    )
            defined[name] = index


def _defined_twice(scope: _Scope, name: str, first: int, second: int, source: str) -> None:
    if first == second and first >= 0:
        what = f"written twice by {_node_at(scope.nodes[first], first)}"
    elif first == second:
        what = f"declared twice {_AS[first]}"
    else:
        what = f"defined twice, {scope.definer(first)} and {scope.definer(second)}"
    raise InputError(f"{source}: value '{name}' is {what}, in {scope.where} (every value must have exactly "
                     "one definition)")


def _check_subgraphs(scope: _Scope, path: tuple, source: str, renamed: list[Renamed]) -> None:
    """Check every subgraph of the scope's nodes, once the scope itself is fully defined (a
    subgraph may not redefine an enclosing name, wherever in the enclosing graph it is defined)."""
    for index, node in enumerate(scope.nodes):
        if not node.attribute:
            continue
        for slot, attr in enumerate(node.attribute):
            if attr.type == onnx.AttributeProto.GRAPH:
                graphs = [(-1, attr.g)]
            elif attr.type == onnx.AttributeProto.GRAPHS:
                graphs = list(enumerate(attr.graphs))
            else:
                continue
            for number, graph in graphs:
                label = attr.name if number < 0 else f"{attr.name}[{number}]"
                nodes = list(graph.node)
                sub = _Scope(f"subgraph '{label}' of {_node_at(node, index)} in {scope.where}", nodes, scope)
                _define_graph(graph, sub, source)
                where = (*path, index, slot, number)
                renamed.extend(_unique_names(nodes, sub.where, where, fill_empty=False))
                _check_subgraphs(sub, where, source, renamed)


def _unique_names(nodes: list[onnx.NodeProto], where: str, path: tuple, *, fill_empty: bool) -> list[Renamed]:
    """The renames that make the node names of one graph unique (onnxruntime refuses a graph or
    function body with two nodes of one name). A name's first node keeps it; later ones become
    `name_1`, `name_2`, ... With `fill_empty` (the main graph, whose nodes the report names), a node
    without a name gets `<op_type>_<position>`. A new name never takes a name the graph uses."""
    names = [node.name for node in nodes]
    taken = set(names)
    if len(taken) == len(names) and (not fill_empty or "" not in taken):
        return []
    seen: set[str] = set()
    renames: list[Renamed] = []
    for index, (node, name) in enumerate(zip(nodes, names)):
        if name and name not in seen:
            seen.add(name)
            continue
        if not name and not fill_empty:
            continue
        base = name or f"{node.op_type}_{index}"
        new, suffix = base, 0
        while new in taken:
            suffix += 1
            new = f"{base}_{suffix}"
        taken.add(new)
        seen.add(new)
        renames.append(Renamed(where, index, node.op_type, name, new, path))
    return renames


def _apply_names(model: onnx.ModelProto, renamed: list[Renamed], owned: bool) -> onnx.ModelProto:
    """The model with the new node names: changed in place when the model is ours (read from a
    file), in a copy otherwise."""
    if not owned:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    for item in renamed:
        _node_in(model, item.path, item.index).name = item.new
    return model


def _node_in(model: onnx.ModelProto, path: tuple, index: int) -> onnx.NodeProto:
    """The node at `index` of the graph `path` leads to: ("graph", ...) or ("function", number, ...),
    then (node, attribute, graph number or -1) per subgraph level."""
    nodes = model.graph.node if path[0] == "graph" else model.functions[path[1]].node
    steps = path[1:] if path[0] == "graph" else path[2:]
    for at in range(0, len(steps), 3):
        node, slot, number = steps[at:at + 3]
        attr = nodes[node].attribute[slot]
        nodes = (attr.g if number < 0 else attr.graphs[number]).node
    return nodes[index]


# -- topology ---------------------------------------------------------------------------------


def outer_scope_names(graph: onnx.GraphProto) -> list[str]:
    """Names a subgraph reads from enclosing scopes (used but not defined inside it)."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    used: dict[str, None] = {}
    for node in graph.node:
        for name in node.input:
            if name and name not in defined:
                used[name] = None
        for sub in _subgraphs(node):
            for name in outer_scope_names(sub):
                if name not in defined:
                    used[name] = None
        defined.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in defined:
            used[out.name] = None
    return list(used)


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    subs: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            subs.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            subs.extend(attr.graphs)
    return subs


def _implicit_inputs(node: onnx.NodeProto) -> tuple[str, ...]:
    """What the node's subgraphs (If/Loop/Scan bodies) read from the enclosing graph."""
    if not node.attribute:
        return ()
    implicit: list[str] = []
    for sub in _subgraphs(node):
        implicit.extend(outer_scope_names(sub))
    return tuple(implicit)


def _describe(node: onnx.NodeProto, index: int) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"node #{index} ({node.op_type})"


def _topological_order(graph: onnx.GraphProto, protos: list[onnx.NodeProto], implicit: list[tuple[str, ...]],
                       source: str) -> list[int]:
    """Indices of graph.node (`protos`) in a topological order (Kahn). Rejects dangling inputs
    and cycles. `implicit`: per node, the values its subgraphs read from this graph."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    available |= {t.values.name for t in graph.sparse_initializer}
    outputs = [node.output for node in protos]
    producer: dict[str, int] = {}
    for i, names in enumerate(outputs):
        for out in names:
            if out:
                producer[out] = i
    needs = [[v for v in node.input if v] + list(extra) for node, extra in zip(protos, implicit)]
    if _already_sorted(outputs, needs, available):
        _check_outputs(graph, available, producer, source)
        return list(range(len(protos)))
    waiting = [0] * len(protos)
    readers: dict[str, list[int]] = {}
    for i, values in enumerate(needs):
        for value in dict.fromkeys(values):
            if value in available:
                continue
            if value not in producer:
                raise InputError(
                    f"{source}: {_describe(protos[i], i)} reads '{value}', which no node, "
                    "graph input or initializer defines (dangling input)"
                )
            waiting[i] += 1
            readers.setdefault(value, []).append(i)
    # A heap on the original position: a graph that is already sorted keeps its order exactly.
    ready = [i for i, count in enumerate(waiting) if count == 0]
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for out in outputs[i]:
            for reader in readers.get(out, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, reader)
    if len(order) != len(protos):
        stuck = next(i for i, count in enumerate(waiting) if count > 0)
        raise InputError(
            f"{source}: the graph has a cycle through {_describe(protos[stuck], stuck)}"
        )
    _check_outputs(graph, available, producer, source)
    return order


def _already_sorted(outputs: list, needs: list[list[str]], available: set[str]) -> bool:
    """Whether every node reads only values defined before it (exporters write sorted graphs;
    this one pass then stands for the sort, which also finds dangling inputs and cycles)."""
    defined = set(available)
    for names, values in zip(outputs, needs):
        if not defined.issuperset(values):
            return False
        defined.update(names)
    return True


def _check_outputs(graph: onnx.GraphProto, available: set[str], producer: dict[str, int], source: str) -> None:
    for out in graph.output:
        if out.name not in available and out.name not in producer:
            raise InputError(f"{source}: graph output '{out.name}' is not produced by any node")


# -- nodes and values -------------------------------------------------------------------------


def _attr_value(attr: onnx.AttributeProto):
    kind = attr.type
    if kind == onnx.AttributeProto.FLOAT:
        return attr.f
    if kind == onnx.AttributeProto.INT:
        return attr.i
    if kind == onnx.AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == onnx.AttributeProto.FLOATS:
        return tuple(attr.floats)
    if kind == onnx.AttributeProto.INTS:
        return tuple(attr.ints)
    if kind == onnx.AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", errors="replace") for s in attr.strings)
    if kind == onnx.AttributeProto.TENSOR:
        return _small_array(attr.t)
    # Graphs, sparse tensors, type protos: kept opaque; later stages never look inside.
    return attr


def _to_node(node_id: int, proto: onnx.NodeProto, source_index: int, implicit: tuple[str, ...]) -> Node:
    inputs = tuple(proto.input)
    op_type = proto.op_type
    return Node(
        id=node_id,
        # In the main graph always proto.name: _validate_names made every name there unique and non-empty.
        name=proto.name or f"{op_type}_{source_index}",
        op_type=op_type,
        domain=proto.domain,
        inputs=inputs,
        outputs=tuple(proto.output),
        attrs={a.name: _attr_value(a) for a in proto.attribute} if proto.attribute else {},
        implicit_inputs=tuple(dict.fromkeys(v for v in implicit if v not in inputs)) if implicit else (),
        source_index=source_index,
    )


@functools.lru_cache(maxsize=None)
def dtype_name(elem_type: int) -> str | None:
    """ONNX TensorProto element type -> numpy-style dtype name."""
    if elem_type == 0:
        return None
    name = onnx.TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _tensor_type(type_proto: onnx.TypeProto) -> TensorType | None:
    if type_proto.WhichOneof("value") != "tensor_type":
        return None
    tensor = type_proto.tensor_type
    shape: tuple[Dim, ...] | None = None
    if tensor.HasField("shape"):
        shape = tuple(_dim(d) for d in tensor.shape.dim)
    return TensorType(dtype_name(tensor.elem_type), shape)


def _dim(dim: onnx.TensorShapeProto.Dimension) -> Dim:
    kind = dim.WhichOneof("value")
    if kind == "dim_value":
        return dim.dim_value
    if kind == "dim_param":
        return dim.dim_param or None
    return None


def _static_shape(type_proto: onnx.TypeProto) -> tuple[int, ...] | None:
    """The shape when every dim is a number (None otherwise), without building a TensorType."""
    if type_proto.WhichOneof("value") != "tensor_type" or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = type_proto.tensor_type.shape.dim
    if any(d.WhichOneof("value") != "dim_value" for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def _value_types(model: onnx.ModelProto, source: str) -> dict[str, TensorType]:
    inferred = _infer_shapes(model)
    types: dict[str, TensorType] = {}
    seen: dict[bytes, TensorType | None] = {}  # a model has few distinct types: build each once
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        key = info.type.SerializeToString()
        found = seen[key] if key in seen else seen.setdefault(key, _tensor_type(info.type))
        if found is not None:
            types[info.name] = found
    for init in model.graph.initializer:
        types[init.name] = TensorType(dtype_name(init.data_type), tuple(init.dims))
    return types


def concrete_shapes(loaded: LoadedModel, dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Static shapes of every value once the graph inputs' symbolic dims take the sizes in `dims`.

    First the shapes already inferred get the sizes put in for the inputs' dims, and shape
    arithmetic ONNX inference left open (Shape -> Gather -> Concat -> Reshape, Where guards before
    Expand) is evaluated exactly on the graph itself. If some value is still unsized, ONNX shape
    inference is re-run with the inputs made static (what it then resolves is kept, and the
    evaluation fills in the rest). Values nothing can size are left out: the cost model then
    falls back to the symbolic binding.
    """
    return concrete_evaluation(loaded, dims).shapes


def concrete_evaluation(loaded: LoadedModel, dims: dict[str, int]):
    """concrete_shapes' evaluation: `.shapes`, and `.values`, the small tensors the shape
    arithmetic computes at these sizes (Reshape targets, position ranges)."""
    graph = loaded.graph
    sized = _substituted(graph, dims)
    if sized is not None:
        state = evaluate(graph, sized, graph.constant_values)
        shapes = state.shapes
        if all(v in shapes for v in graph.inputs) and all(
                v in shapes for n in graph.nodes for v in n.outputs if v):
            return state
    return evaluate(graph, _reinferred(loaded.model, dims), graph.constant_values)


def _substituted(graph: Graph, dims: dict[str, int]) -> dict[str, tuple[int, ...]] | None:
    """The IR's inferred shapes with the graph inputs' named dims replaced by their sizes; values
    with any other symbolic dim are left out. None when an input dim has no size."""
    named = {d for v in graph.inputs for d in (graph.type_of(v).shape or ()) if isinstance(d, str)}
    if any(d not in dims for d in named):
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    for name, kind in graph.values.items():
        if kind.shape is None:
            continue
        static = tuple(d if isinstance(d, int) else dims[d] if d in named else None for d in kind.shape)
        if None not in static:
            shapes[name] = static
    return shapes


def _reinferred(model: onnx.ModelProto, dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """ONNX shape inference again with the inputs' symbolic dims made static."""
    skeleton = _without_weights(model)
    for info in skeleton.graph.input:
        if info.type.WhichOneof("value") != "tensor_type":
            continue
        for dim in info.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value") and dim.dim_param in dims:
                dim.dim_value = dims[dim.dim_param]
    del skeleton.graph.value_info[:]
    inferred = _inferred(skeleton)  # already a weightless copy
    shapes: dict[str, tuple[int, ...]] = {}
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        shape = _static_shape(info.type)
        if shape is not None:
            shapes[info.name] = shape
    return shapes


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX shape inference on a copy whose big weights are replaced by typed graph inputs.

    Weights are not needed to infer shapes (small constants such as Reshape targets are kept),
    and dropping them keeps inference fast and memory-flat on multi-GB models.
    """
    return _inferred(_without_weights(model))


def _inferred(skeleton: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX shape inference on a weightless copy the caller made (best effort)."""
    try:
        return onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is best effort; unknown stays unknown
        return skeleton


def _without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    light = onnx.ModelProto()
    if _has_big_initializer(model.graph):
        _copy_light(model, light)
    else:
        light.CopyFrom(model)
    return light


def _has_big_initializer(graph: onnx.GraphProto) -> bool:
    return any(_numel(t) > SMALL_CONSTANT_ELEMENTS or t.data_location == onnx.TensorProto.EXTERNAL
               for t in graph.initializer)


def _copy_light(model: onnx.ModelProto, light: onnx.ModelProto) -> None:
    for field_name in ("ir_version", "producer_name", "domain", "model_version"):
        setattr(light, field_name, getattr(model, field_name))
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    src = model.graph
    dst = light.graph
    dst.name = src.name
    dst.node.extend(src.node)
    dst.input.extend(src.input)
    dst.output.extend(src.output)
    dst.value_info.extend(src.value_info)
    declared = {v.name for v in src.input}
    for tensor in src.initializer:
        if _numel(tensor) <= SMALL_CONSTANT_ELEMENTS and tensor.data_location != onnx.TensorProto.EXTERNAL:
            dst.initializer.append(tensor)
        elif tensor.name not in declared:
            dst.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))


def _numel(tensor: onnx.TensorProto) -> int:
    return int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1


_WIDENED = frozenset({"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"})


def _small_array(tensor: onnx.TensorProto) -> np.ndarray | None:
    if tensor.data_location == onnx.TensorProto.EXTERNAL or _numel(tensor) > SMALL_CONSTANT_ELEMENTS:
        return None
    try:
        array = numpy_helper.to_array(tensor)
    except Exception:  # noqa: BLE001 - exotic dtypes are simply not readable as constants
        return None
    if array.dtype.kind == "V" or array.dtype.name in _WIDENED:
        # bfloat16 (and the float8 types) come back as ml_dtypes arrays, which numpy's own
        # checks do not see as floats; every such number is exactly a float32.
        array = array.astype(np.float32)
    return array


def _small_constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        array = _small_array(tensor)
        if array is not None:
            found[tensor.name] = array
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or not node.output:
            continue
        array = _constant_node_value(node)
        if array is not None:
            found[node.output[0]] = array
    return found


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return _small_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None


def subgraph_ir(attr: object, opset: int) -> Graph | None:
    """The IR of a graph attribute (an If branch, a Loop or Scan body) for the shape evaluator, or
    None when `attr` is not one. Nodes keep the body's order (ONNX requires it topological); the
    values are typed from the body's initializers only."""
    if not isinstance(attr, onnx.AttributeProto) or attr.type != onnx.AttributeProto.GRAPH:
        return None
    body = attr.g
    return Graph(
        nodes=tuple(_to_node(i, proto, i, _implicit_inputs(proto)) for i, proto in enumerate(body.node)),
        values={t.name: TensorType(dtype_name(t.data_type), tuple(t.dims)) for t in body.initializer},
        inputs=tuple(v.name for v in body.input),
        outputs=tuple(v.name for v in body.output),
        initializers=frozenset(t.name for t in body.initializer),
        constant_values=_small_constants(body),
        opset=opset,
        name=body.name,
    )
