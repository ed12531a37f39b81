"""An FX graph of one decode step as the SuperKernel planner sees it: every call node with the GE
op it becomes, whether that kernel can join a SuperKernel (optable.yaml), the module it came from
(`nn_module_stack`), its decoder layer and role there (templates.yaml), and its stream.

Works on a `torch.export.ExportedProgram` or a `torch.fx.GraphModule` (what torch.export and
dynamo/AOT produce, including the post-grad graph torchair hands to a custom pass).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autofuse.errors import InputError
from autofuse.superkernel.air_ops import SCOPE_KEY
from autofuse.superkernel.optable import OpTable, load_optable, target_keys
from autofuse.yamlfile import read_yaml

TEMPLATES_PATH = Path(__file__).parent / "templates.yaml"
STREAM_KEY = "_user_stream_label"  # torchair.scope.npu_stream_switch
# Placeholder names of parameters and buffers when a plain GraphModule is given (torch.export
# lifts them as p_*/b_*/c_*, dynamo as L_self_..._parameters_/_buffers_).
_CONSTANT_NAME = re.compile(r"^(p|b|c)_|_parameters_|_buffers_")


@dataclass(frozen=True)
class OpInfo:
    """One FX call node, classified."""

    index: int  # position among the graph's call nodes
    name: str  # FX node name
    target: str  # e.g. "aten.mm.default"
    ge_op: str | None  # GE op type torchair emits (None: none)
    kind: str  # optable kind, or "unknown"
    reason: str  # why it has that kind
    module: str  # innermost module path ("" outside every module)
    layer: int | None  # decoder layer index
    role: str | None  # attn / moe / mlp, or the layer child's attribute name
    stream: str  # user stream label ("" = the main stream)
    aiv: bool = False  # a collective HCCL can run on its AIV path

    @property
    def is_kernel(self) -> bool:
        return self.kind != "none"


@dataclass(frozen=True)
class GraphView:
    gm: Any  # torch.fx.GraphModule
    ops: tuple[OpInfo, ...]
    layer_container: str | None  # module path of the decoder-layer list
    layers: tuple[int, ...]
    module_classes: dict[str, str]  # module path -> class name
    dynamic: str | None  # why the graph is not static, or None

    @functools.cached_property
    def by_name(self) -> dict[str, OpInfo]:
        return {op.name: op for op in self.ops}

    def module_label(self, path: str) -> str:
        """A scope label that reads like the model: layers_0_3, layer_3, layer_3_attn, lm_head."""
        if self.layer_container is not None:
            if path == self.layer_container:
                return f"layers_{self.layers[0]}_{self.layers[-1]}"
            layer, role = self.layer_and_role(path)
            if layer is not None:
                return f"layer_{layer}" if role is None else f"layer_{layer}_{role}"
        return path.rsplit(".", 1)[-1] or "model"

    def layer_and_role(self, path: str) -> tuple[int | None, str | None]:
        return _layer_and_role(path, self.layer_container, self.module_classes)


@functools.cache
def templates() -> dict:
    """templates.yaml: module roles, layer-index attributes, the decode gate."""
    return read_yaml(TEMPLATES_PATH, InputError, "scope templates")


def graph_module_of(program: Any):
    """The GraphModule of an ExportedProgram (or the GraphModule itself)."""
    import torch

    if isinstance(program, torch.export.ExportedProgram):
        return program.graph_module
    if isinstance(program, torch.fx.GraphModule):
        return program
    raise InputError(f"expected a torch.export.ExportedProgram or a torch.fx.GraphModule, got {type(program).__name__}")


def constant_inputs(program: Any, example_inputs: Any = None) -> set[str]:
    """Placeholder names that hold frozen parameters, buffers or constants (GE folds what only
    reads these). An ExportedProgram says so in its signature; for a GraphModule, parameters
    among `example_inputs` and the usual parameter names count."""
    import torch

    if isinstance(program, torch.export.ExportedProgram):
        sig = program.graph_signature
        return set(sig.inputs_to_parameters) | set(sig.inputs_to_buffers) | set(sig.inputs_to_lifted_tensor_constants)
    placeholders = [n for n in graph_module_of(program).graph.nodes if n.op == "placeholder"]
    found = {n.name for n in placeholders if _CONSTANT_NAME.search(n.name)}
    for node, value in zip(placeholders, example_inputs or ()):
        if isinstance(value, torch.nn.Parameter):
            found.add(node.name)
    # Inside torch.compile (torchair's custom passes run there), AOT autograd lists the inputs
    # that are parameters and buffers as static inputs.
    context = torch._guards.TracingContext.try_get()
    static = getattr(getattr(context, "fw_metadata", None), "static_input_indices", None) or ()
    found.update(placeholders[i].name for i in static if i < len(placeholders))
    return found


def build_view(program: Any, *, example_inputs: Any = None, optable: OpTable | None = None,
               constants: set[str] | None = None) -> GraphView:
    """Classify every call node of `program` (ExportedProgram or GraphModule)."""
    gm = graph_module_of(program)
    table = optable or load_optable()
    constants = constant_inputs(program, example_inputs) if constants is None else constants
    nodes = list(gm.graph.nodes)
    classes = _module_classes(nodes)
    container, layers = _layer_container(nodes)
    removed = _noop_nodes(gm)
    dynamic = _dynamic_reason(nodes)
    folded: set[str] = set()
    streams: list[str] = []
    ops: list[OpInfo] = []
    for node in nodes:
        if node.op in ("placeholder", "get_attr"):
            if node.op == "get_attr" or node.name in constants:
                folded.add(node.name)
            continue
        if node.op != "call_function":
            continue
        keys = target_keys(node.target)
        if keys[-1] in ("air.scope_enter", "air.scope_exit"):
            _track_streams(node, keys[-1], streams)
        ge_op, kind, reason = _classify(node, keys, table, removed, folded)
        if kind == "none" and _reads_only(node, folded):
            folded.add(node.name)
        path = _module_path(node)
        layer, role = _layer_and_role(path, container, classes)
        ops.append(OpInfo(len(ops), node.name, keys[0], ge_op.name if ge_op else None, kind, reason,
                          path, layer, role, streams[-1] if streams else "", bool(ge_op and ge_op.aiv)))
    return GraphView(gm, tuple(ops), container, layers, classes, dynamic)


def _classify(node, keys: tuple[str, ...], table: OpTable, removed: set[str], folded: set[str]):
    if keys[-1].startswith("air."):
        return None, "none", "scope marker"
    if node.name in removed:
        return None, "none", "a no-op that torchair's remove_noop_ops pass drops"
    if keys[-1] == "aten.to" and _same_dtype(node):
        return None, "none", "to() of a tensor already of that dtype returns the tensor itself"
    if _reads_only(node, folded):
        return None, "none", "reads only frozen parameters or constants: GE folds it"
    found, ge_op = table.ge_op_of(keys)
    if not found:
        return None, "unknown", f"{keys[-1]} is not in the op table: assumed not Ascend C"
    if ge_op is None:
        return None, "none", "FX bookkeeping: no GE op"
    return ge_op, ge_op.kind, f"{ge_op.name}: {ge_op.source}"


def _reads_only(node, folded: set[str]) -> bool:
    """Every tensor this node reads is constant (or it reads none: arange, full)."""
    return all(inp.name in folded for inp in node.all_input_nodes)


def _same_dtype(node) -> bool:
    """The output has the dtype and device of the input (both known)."""
    source = node.args[0] if node.args and hasattr(node.args[0], "meta") else None
    before, after = (source.meta.get("val") if source is not None else None), node.meta.get("val")
    if before is None or after is None:
        return False
    return (getattr(before, "dtype", None), getattr(before, "device", None)) == \
        (getattr(after, "dtype", 0), getattr(after, "device", 0))


def _track_streams(node, key: str, streams: list[str]) -> None:
    """Existing scopes in the graph: user streams are followed; SuperKernel scopes are refused
    (ours would nest inside or around them, and the inner one wins)."""
    if key == "air.scope_exit":
        if streams:
            streams.pop()
        return
    attrs = dict(zip(*node.args[:2])) if len(node.args) >= 2 else {}
    if SCOPE_KEY in attrs:
        raise InputError(f"node '{node.name}': the graph already has a super_kernel scope "
                         f"('{attrs[SCOPE_KEY]}'); remove it before planning scopes")
    streams.append(attrs.get(STREAM_KEY, streams[-1] if streams else ""))


def _noop_nodes(gm) -> set[str]:
    """Names of the nodes torch's remove_noop_ops drops (torchair runs that pass before ours):
    run it on a copy of the graph and see which nodes went."""
    import torch
    from torch._inductor.fx_passes.post_grad import remove_noop_ops

    copy = torch.fx.Graph()
    mapping: dict = {}
    copy.graph_copy(gm.graph, mapping)
    try:
        remove_noop_ops(copy)
    except Exception:  # noqa: BLE001 - a graph it cannot analyse simply has no no-ops removed
        return set()
    kept = {id(n) for n in copy.nodes}
    return {old.name for old, new in mapping.items() if id(new) not in kept and old.op == "call_function"}


def _dynamic_reason(nodes) -> str | None:
    import torch

    for node in nodes:
        value = node.meta.get("val")
        for item in value if isinstance(value, (list, tuple)) else [value]:
            shape = getattr(item, "shape", ()) if isinstance(item, torch.Tensor) else ()
            if isinstance(item, torch.SymInt) or any(isinstance(d, torch.SymInt) for d in shape):
                return f"node '{node.name}' has a symbolic shape ({item if isinstance(item, torch.SymInt) else tuple(shape)})"
    return None


def looks_like_prefill(gm) -> bool:
    """A token input (integer [batch, tokens], not a weight) holding more than one token: the graph
    is a prefill step, not a decode step."""
    import torch

    for node in gm.graph.nodes:
        value = node.meta.get("val") if node.op == "placeholder" else None
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.dtype in (torch.int32, torch.int64) \
                and not _CONSTANT_NAME.search(node.name) and value.shape[1] > 1:
            return True
    return False


# -- modules -------------------------------------------------------------------------------------


def normalize_path(path: str) -> str:
    """`L['self'].lm.model.layers[0]` (dynamo) and `lm.model.layers.0` (export) -> the latter."""
    path = re.sub(r"^L\[['\"]self['\"]\]\.?", "", path)
    path = re.sub(r"\._modules\[['\"]([^'\"]+)['\"]\]", r".\1", path)
    path = re.sub(r"\[['\"]?([^'\"\]]+)['\"]?\]", r".\1", path)
    return path.strip(".")


def _stack(node) -> list[tuple[str, str]]:
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for value in stack.values():
        path, kind = value if isinstance(value, tuple) else (value, "")
        name = kind if isinstance(kind, str) else getattr(kind, "__qualname__", str(kind))
        out.append((normalize_path(str(path)), name.rsplit(".", 1)[-1]))
    return out


def _module_path(node) -> str:
    stack = _stack(node)
    return stack[-1][0] if stack else ""


def _module_classes(nodes) -> dict[str, str]:
    classes: dict[str, str] = {}
    for node in nodes:
        for path, name in _stack(node):
            classes.setdefault(path, name)
    return classes


def _layer_container(nodes) -> tuple[str | None, tuple[int, ...]]:
    """The module list whose elements hold the most call nodes: the decoder layers."""
    counts: dict[str, int] = {}
    indices: dict[str, set[int]] = {}
    for node in nodes:
        if node.op != "call_function":
            continue
        seen = set()
        for path, _ in _stack(node):
            match = re.match(r"^(.*)\.(\d+)$", path)
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
                indices.setdefault(match.group(1), set()).add(int(match.group(2)))
    if not counts:
        return None, ()
    best = max(counts, key=lambda p: (counts[p], -p.count(".")))
    return best, tuple(sorted(indices[best]))


def _layer_and_role(path: str, container: str | None, classes: dict[str, str]) -> tuple[int | None, str | None]:
    if container is None:
        return None, None
    match = re.match(rf"^{re.escape(container)}\.(\d+)(?:\.([^.]+))?", path)
    if not match:
        return None, None
    layer, child = int(match.group(1)), match.group(2)
    if child is None:
        return layer, None
    return layer, child_role(f"{container}.{layer}.{child}", child, classes)


def child_role(path: str, child: str, classes: dict[str, str]) -> str:
    """The role of a decoder layer's child module (templates.yaml), else its attribute name. A child
    holding experts is MoE whatever its name (Qwen3-MoE calls its MoE block `mlp`)."""
    spec = templates()
    cls = classes.get(path, "")
    markers = [f"{path}.{m}" for m in spec["moe_markers"]]
    if any(p == m or p.startswith(m + ".") for p in classes for m in markers):
        return "moe"
    for role in ("attn", "moe", "mlp"):
        entry = spec["roles"][role]
        if child in entry["names"] or any(re.search(pattern, cls) for pattern in entry["classes"]):
            return role
    return child
