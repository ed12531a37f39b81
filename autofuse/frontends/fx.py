"""PyTorch FX front end: a `torch.export.ExportedProgram` or an ATen-level `torch.fx.GraphModule`
-> (a normalised GraphModule, ir.Graph).

ATen ops map onto the IR's ONNX op types through the data table `aten_ops.yaml`, so the same
rules, op classes, planner and cost model apply to PyTorch graphs as to ONNX models. The mapping
is one FX node -> at most one IR node, named like the FX node, and every IR value is named like
the FX node that holds it (a tuple-returning op's outputs are its `getitem` nodes). That is what
lets the rewrite (autofuse/rewrite/fx.py) go back from a fused group to FX nodes by name.

- Parameters, buffers and constant tensors (`get_attr` nodes) are initializers; small ones keep
  their values, so rule constraints can read them. Python numbers and lists in ATen arguments
  (an epsilon, a Pow exponent, Slice bounds, Reshape targets) become small constant values.
- Shapes and dtypes come from `node.meta["val"]` (FakeTensors); a symbolic size (SymInt) becomes
  a named dim (its symbol, e.g. "s0").
- An ATen op without a mapping is an opaque node in domain "aten" (never fused, never dropped);
  other callables (dynamo's torch-level calls, call_module, call_method) are opaque in domain
  "python". Nodes that produce nothing and have no users (asserts, export's guard function) are
  not IR nodes; the rewrite keeps them.
- Before mapping, the few ATen ops the IR has no op for are written out (`expand_before_mapping`
  in the table: rsqrt -> reciprocal(sqrt)). This normalised GraphModule is the one the IR
  describes and the rewrite starts from.
- An ExportedProgram with in-place ops is functionalized first (`run_decompositions({})`, which
  decomposes nothing else), since the IR is a pure data-flow graph.

torch is imported inside the functions, so `autofuse` imports without it.
"""
from __future__ import annotations

import copy
import functools
import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autofuse.errors import InputError
from autofuse.frontends.onnx import SMALL_CONSTANT_ELEMENTS, dtype_name
from autofuse.ir.graph import Dim, Graph, Node, TensorType
from autofuse.yamlfile import read_yaml

# The ONNX opset whose op definitions the IR nodes follow: Swish (24) and Attention (23) exist,
# Reduce* ops take their axes as an input (18).
FX_OPSET = 24
TABLE_PATH = Path(__file__).with_name("aten_ops.yaml")
OPAQUE_ATEN_DOMAIN = "aten"
OPAQUE_PYTHON_DOMAIN = "python"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, eq=False)
class LoadedFx:
    """The normalised GraphModule, the IR built from it, the model as given, example inputs."""

    module: Any  # torch.fx.GraphModule (normalised); the rewrite builds a new one from it
    graph: Graph
    source: str  # "module:factory", "<ExportedProgram>" or "<GraphModule>", used in messages
    original: Any  # a callable of the model as given (what verification compares against)
    example_inputs: tuple | None = None


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    name: str
    kind: str  # "value" | "ints" | "index"
    optional: bool


@dataclass(frozen=True)
class OpMapping:
    op: str
    inputs: tuple[InputSpec, ...]
    attrs: dict[str, Any]
    require: dict[str, Any]
    convert: str | None


@dataclass(frozen=True)
class AtenTable:
    ops: dict[str, OpMapping]
    assertions: frozenset[str]
    expansions: dict[str, tuple[str, ...]]


def _input_spec(text: str) -> InputSpec:
    optional = text.endswith("?")
    name, _, kind = text.rstrip("?").partition(":")
    return InputSpec(name, kind or "value", optional)


@functools.cache
def aten_table(path: Path = TABLE_PATH) -> AtenTable:
    """The ATen -> IR table (autofuse/frontends/aten_ops.yaml), read once."""
    data = read_yaml(path, InputError, "ATen op table")
    ops = {}
    for key, entry in data["ops"].items():
        unknown_converter = entry.get("convert") and entry["convert"] not in CONVERTERS
        if unknown_converter:
            raise InputError(f"{path}:{data['ops'].key_lines[key]}: '{key}': unknown converter '{entry['convert']}'")
        ops[key] = OpMapping(
            op=entry["op"],
            inputs=tuple(_input_spec(s) for s in entry.get("inputs", ())),
            attrs=dict(entry.get("attrs", {})),
            require=dict(entry.get("require", {})),
            convert=entry.get("convert"),
        )
    expansions = {k: tuple(v) for k, v in data.get("expand_before_mapping", {}).items()}
    return AtenTable(ops, frozenset(data.get("assertions", ())), expansions)


def aten_key(target) -> str | None:
    """"name.overload" of an ATen OpOverload (the table's key), else None."""
    schema = getattr(target, "_schema", None)
    namespace = getattr(target, "namespace", None)
    if schema is None or namespace != "aten":
        return None
    return target.__name__


# -- loading ----------------------------------------------------------------------------------


def load_fx(model, *, source: str | None = None, example_inputs: tuple | None = None) -> LoadedFx:
    """Build the IR of an ExportedProgram or GraphModule. Raises InputError on unusable input."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        program = model
        if _has_mutations(program.graph):
            program = program.run_decompositions({})
        module, original = program.module(), program.module()
        if example_inputs is None and program.example_inputs is not None:
            args, kwargs = program.example_inputs
            example_inputs = tuple(args) if not kwargs else None
        source = source or "<ExportedProgram>"
    elif isinstance(model, torch.fx.GraphModule):
        source = source or "<GraphModule>"
        if _has_mutations(model.graph):
            raise InputError(f"{source}: the graph has in-place ATen ops; capture it with torch.export "
                             "(fuse() functionalizes an ExportedProgram) or functionalize it first")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation, on copy
            module, original = copy.deepcopy(model), model
    else:
        raise InputError(f"expected a torch.export.ExportedProgram or torch.fx.GraphModule, got {type(model).__name__}")
    _check_metadata(module, source)
    _expand_unmapped(module, aten_table())
    return LoadedFx(module, build_ir(module, source), source, original, example_inputs)


def capture(model, example_inputs: tuple, *, source: str = "the model"):
    """`torch.export.export` of `model` at `example_inputs` (static shapes, no grad), functionalized
    (`run_decompositions({})`: the in-place ops go, nothing else is decomposed). InputError when
    torch.export cannot capture it."""
    import torch

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.export.export(model, tuple(example_inputs), strict=False).run_decompositions({})
    except Exception as exc:  # noqa: BLE001 - any capture failure is the input's problem, in one line
        first = " ".join(str(exc).split())[:300]
        raise InputError(f"{source}: torch.export could not capture it: {type(exc).__name__}: {first}") from None


def load_factory(spec: str) -> tuple[Any, tuple]:
    """`module.path:factory` -> (model, example_inputs), the module imported from the current
    directory or sys.path. InputError (one line) for a missing module or function, a factory that
    raises, or one that does not return (an nn.Module, a tuple of tensors)."""
    import importlib
    import os
    import sys

    import torch

    module_name, _, function = spec.partition(":")
    if not module_name or not function.isidentifier():
        raise InputError(f"--input {spec}: expected module.path:factory")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise InputError(f"--input {spec}: no module named '{module_name}' (looked in the current "
                             "directory and sys.path)") from None
        raise InputError(f"--input {spec}: importing '{module_name}' failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: say so in one line
        raise InputError(f"--input {spec}: importing '{module_name}' failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise InputError(f"--input {spec}: module '{module_name}' has no function '{function}'")
    try:
        result = factory()
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"--input {spec}: {function}() raised {type(exc).__name__}: {exc}") from None
    ok = (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], torch.nn.Module)
          and isinstance(result[1], (tuple, list)) and all(isinstance(t, torch.Tensor) for t in result[1]))
    if not ok:
        got = type(result).__name__ if not isinstance(result, (tuple, list)) else \
            f"({', '.join(type(r).__name__ for r in result)})"
        raise InputError(f"--input {spec}: {function}() must return (model, example_inputs): a torch.nn.Module and "
                         f"a tuple of tensors; it returned {got}")
    return result[0], tuple(result[1])


def _has_mutations(graph) -> bool:
    return any(
        node.op == "call_function" and getattr(getattr(node.target, "_schema", None), "is_mutable", False)
        for node in graph.nodes
    )


def _check_metadata(module, source: str) -> None:
    for node in module.graph.nodes:
        if node.op == "placeholder" and "val" not in node.meta:
            raise InputError(
                f"{source}: input '{node.name}' has no meta['val'] (shape and dtype); capture the model with "
                "torch.export.export or a dynamo backend that keeps FakeTensor metadata")


def _expand_unmapped(module, table: AtenTable) -> None:
    """Write out the ATen ops the IR has no op for (rsqrt -> reciprocal(sqrt)), in place."""
    import torch

    graph = module.graph
    changed = False
    for node in list(graph.nodes):
        chain = table.expansions.get(aten_key(node.target)) if node.op == "call_function" else None
        if not chain:
            continue
        value = node.args[0]
        with graph.inserting_before(node):
            for step in chain:
                name, _, overload = step.partition(".")
                value = graph.call_function(getattr(getattr(torch.ops.aten, name), overload), (value,))
                value.meta = dict(node.meta)  # elementwise steps: same shape and dtype
        node.replace_all_uses_with(value)
        graph.erase_node(node)
        changed = True
    if changed:
        module.recompile()


# -- FX graph -> IR ---------------------------------------------------------------------------


def torch_dtype_name(dtype) -> str:
    """torch.float32 -> "float32" (the IR's dtype names; float8 types without the underscore)."""
    name = str(dtype).removeprefix("torch.")
    return name.replace("float8_", "float8") if name.startswith("float8_") else name


def _dim(size) -> Dim:
    """An int, or a SymInt: its value when the expression is a number, else the expression ("s0")."""
    if isinstance(size, int):
        return size
    expr = size.node.expr
    return int(expr) if expr.is_number else str(expr)


def tensor_type(value) -> TensorType | None:
    """The IR type of a meta value (FakeTensor or tensor), None for non-tensors."""
    import torch

    if not isinstance(value, torch.Tensor):
        return None
    return TensorType(torch_dtype_name(value.dtype), tuple(_dim(s) for s in value.shape))


def _small_array(tensor) -> np.ndarray | None:
    import torch

    if tensor.numel() > SMALL_CONSTANT_ELEMENTS or tensor.is_meta or tensor.dtype.is_complex:
        return None
    if isinstance(tensor, torch._subclasses.FakeTensor):
        return None
    data = tensor.detach().cpu()
    if data.dtype in (torch.bfloat16,) or data.dtype.is_floating_point and data.dtype.itemsize == 1:
        data = data.float()
    return data.numpy()


def _getitem_users(node) -> dict[int, Any]:
    users: dict[int, Any] = {}
    for user in node.users:
        if user.op == "call_function" and user.target is operator.getitem and isinstance(user.args[1], int):
            users.setdefault(user.args[1], user)
    return users


def _fetch_attr(module, target: str):
    value = module
    for part in target.split("."):
        value = getattr(value, part)
    return value


class _Unmappable(Exception):
    """This node's arguments fall outside what its table entry describes: map it as opaque."""


class _Builder:
    """Accumulates IR nodes, values and constants while walking the FX graph in order."""

    def __init__(self, module):
        self.module = module
        self.table = aten_table()
        self.nodes: list[Node] = []
        self.values: dict[str, TensorType] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.initializers: set[str] = set()
        self.constants: dict[str, np.ndarray] = {}

    # values

    def is_value(self, arg) -> bool:
        return getattr(arg, "name", None) in self.values

    def constant(self, name: str, array: np.ndarray, dtype: str) -> str:
        self.values[name] = TensorType(dtype, tuple(array.shape))
        self.initializers.add(name)
        self.constants[name] = array
        return name

    def add_placeholder(self, node) -> None:
        found = tensor_type(node.meta.get("val"))
        if found is not None:
            self.values[node.name] = found
            self.inputs.append(node.name)

    def add_attribute(self, node) -> None:
        import torch

        value = _fetch_attr(self.module, node.target)
        if not isinstance(value, torch.Tensor):
            return
        self.values[node.name] = TensorType(torch_dtype_name(value.dtype), tuple(value.shape))
        self.initializers.add(node.name)
        array = _small_array(value)
        if array is not None:
            self.constants[node.name] = array

    def add_outputs(self, node) -> None:
        import torch.utils._pytree as pytree

        for arg in pytree.tree_leaves(node.args):
            if self.is_value(arg) and arg.name not in self.outputs:
                self.outputs.append(arg.name)

    # nodes

    def add_call(self, node, index: int) -> None:
        key = aten_key(node.target) if node.op == "call_function" else None
        if key in self.table.assertions:
            return
        outputs = self._output_names(node)
        if not any(outputs) and not node.users:
            return  # produces nothing anybody reads: a check or a guard, kept by the rewrite
        mapping = self.table.ops.get(key) if key else None
        converted = None
        if mapping is not None:
            try:
                converted = _Conversion(self, node, mapping).run()
            except _Unmappable:
                converted = None
        if converted is None:
            converted = self._opaque(node, key)
        op_type, domain, inputs, attrs = converted
        self.nodes.append(Node(len(self.nodes), node.name, op_type, domain, tuple(inputs), outputs, attrs,
                               source_index=index))

    def _output_names(self, node) -> tuple[str, ...]:
        val = node.meta.get("val")
        getitems = _getitem_users(node)
        if isinstance(val, (tuple, list)) or (val is None and getitems):
            count = len(val) if isinstance(val, (tuple, list)) else max(getitems) + 1
            names = []
            for i in range(count):
                user = getitems.get(i)
                if user is None:
                    names.append("")
                    continue
                names.append(user.name)
                self.values[user.name] = tensor_type(user.meta.get("val")) or TensorType(None, None)
            return tuple(names)
        if val is None and not node.users:
            return ()
        self.values[node.name] = tensor_type(val) or TensorType(None, None)
        return (node.name,)

    def _opaque(self, node, key: str | None) -> tuple[str, str, list[str], dict]:
        import torch.utils._pytree as pytree

        inputs = list(dict.fromkeys(a.name for a in pytree.tree_leaves((node.args, node.kwargs)) if self.is_value(a)))
        if key is not None:
            return key, OPAQUE_ATEN_DOMAIN, inputs, {}
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", type(target).__name__)
        return f"{node.op}:{name}", OPAQUE_PYTHON_DOMAIN, inputs, {}


def _bind(target, args: tuple, kwargs: dict) -> dict[str, Any]:
    """ATen arguments by schema name, defaults filled in."""
    bound: dict[str, Any] = {}
    positional = list(args)
    for argument in target._schema.arguments:
        if positional and not argument.kwarg_only:
            bound[argument.name] = positional.pop(0)
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
        else:
            bound[argument.name] = None
    return bound


class _Conversion:
    """One ATen node through its table entry (and converter) into (op, domain, inputs, attrs)."""

    def __init__(self, builder: _Builder, node, mapping: OpMapping):
        self.builder = builder
        self.node = node
        self.mapping = mapping
        self.op = mapping.op
        self.args = _bind(node.target, node.args, node.kwargs)
        self.out = node.meta.get("val")
        self.attrs: dict[str, Any] = {}

    def run(self) -> tuple[str, str, list[str], dict]:
        for name, wanted in self.mapping.require.items():
            if not _same(self.args.get(name), wanted):
                raise _Unmappable
        overrides: dict[str, Any] = {}
        if self.mapping.convert:
            overrides = CONVERTERS[self.mapping.convert](self) or {}
        for attr, spec in self.mapping.attrs.items():
            if attr not in self.attrs:
                self.attrs[attr] = _attr(self.args[spec] if isinstance(spec, str) else spec)
        inputs: list[str] = []
        for spec in self.mapping.inputs:
            value = overrides[spec.name] if spec.name in overrides else self.args.get(spec.name)
            if value is None:
                if not spec.optional:
                    raise _Unmappable
                inputs.append("")
                continue
            inputs.extend(self.operand(spec, value))
        while inputs and inputs[-1] == "":
            inputs.pop()
        return self.op, "", inputs, self.attrs

    # operands

    def operand(self, spec: InputSpec, value) -> list[str]:
        if isinstance(value, (list, tuple)) and spec.kind == "value":
            return [name for item in value for name in self.operand(spec, item)]
        if hasattr(value, "op"):  # an FX node
            if not self.builder.is_value(value):
                raise _Unmappable
            return [value.name]
        name = f"{self.node.name}.{spec.name}"
        if spec.kind in ("ints", "index"):
            items = value if isinstance(value, (list, tuple)) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise _Unmappable  # symbolic sizes
            array = np.array(items, dtype=np.int64)
            return [self.builder.constant(name, array.reshape(()) if spec.kind == "index" else array, "int64")]
        if isinstance(value, bool):
            return [self.builder.constant(name, np.array(value), "bool")]
        if isinstance(value, (int, float)):
            dtype = self.scalar_dtype() or "float32"
            # The array keeps the Python number exactly (an epsilon of 1e-6 stays 1e-6); the
            # value's type says which dtype the op computes it in.
            floating = isinstance(value, float) or not dtype.startswith(("int", "uint"))
            array = np.array(value, dtype=np.float64 if floating else np.int64)
            return [self.builder.constant(name, array, dtype)]
        raise _Unmappable

    def scalar_dtype(self) -> str | None:
        """A Python number takes the dtype of the op's floating operand (else its first tensor's)."""
        import torch.utils._pytree as pytree

        types = [self.builder.values[a.name] for a in pytree.tree_leaves(self.node.args) if self.builder.is_value(a)]
        dtypes = [t.dtype for t in types if t.dtype]
        floating = [d for d in dtypes if d.startswith(("float", "bfloat"))]
        found = tensor_type(self.out)
        return (floating or dtypes or [found.dtype if found else None])[0]

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        found = tensor_type(self.out)
        return found.shape if found is not None and found.is_static else None

    @property
    def rank(self) -> int:
        first = tensor_type(self.node.args[0].meta.get("val")) if hasattr(self.node.args[0], "meta") else None
        if first is None or first.rank is None:
            raise _Unmappable
        return first.rank


def _same(actual, wanted) -> bool:
    if wanted is None or actual is None:
        return actual is wanted
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return bool(actual) == bool(wanted)
    try:
        return float(actual) == float(wanted)
    except (TypeError, ValueError):
        return actual == wanted


def _attr(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


# -- converters (the ops whose arguments need more than renaming) -----------------------------


def _cast(conv: _Conversion) -> None:
    found = tensor_type(conv.out)
    if found is None or found.dtype not in ONNX_TYPES:
        raise _Unmappable
    conv.attrs["to"] = ONNX_TYPES[found.dtype]


def _with_input(conv: _Conversion, spec: InputSpec, attrs: dict | None = None) -> None:
    """The node's mapping with one more input (a value the converter computes)."""
    mapping = conv.mapping
    conv.mapping = OpMapping(mapping.op, (*mapping.inputs, spec), mapping.attrs if attrs is None else attrs, {}, None)


def _reshape(conv: _Conversion) -> dict:
    """Reshape/Expand target: the output's static shape (exact, no -1), else no shape input."""
    _with_input(conv, InputSpec("shape", "ints", True))
    shape = conv.out_shape
    return {"shape": None if shape is None else list(shape)}


def _transpose(conv: _Conversion) -> None:
    rank = conv.rank
    perm = list(range(rank))
    if aten_key(conv.node.target) == "t.default":
        perm.reverse()
    else:
        a, b = conv.args["dim0"] % rank, conv.args["dim1"] % rank
        perm[a], perm[b] = perm[b], perm[a]
    conv.attrs["perm"] = tuple(perm)


def _permute(conv: _Conversion) -> None:
    rank = conv.rank
    conv.attrs["perm"] = tuple(int(d) % rank for d in conv.args["dims"])


def _slice(conv: _Conversion) -> dict:
    start, end = conv.args["start"], conv.args["end"]
    return {"start": 0 if start is None else start, "end": _INT64_MAX if end is None else end}


def _index(conv: _Conversion) -> dict:
    indices = conv.args["indices"]
    if len(indices) != 1 or indices[0] is None:
        raise _Unmappable
    _with_input(conv, InputSpec("index", "value", False), attrs={"axis": 0})
    return {"index": indices[0]}


def _split(conv: _Conversion) -> dict:
    dim = conv.args["dim"]
    if not isinstance(conv.out, (list, tuple)):
        raise _Unmappable
    sizes = [tensor_type(part).shape[dim] for part in conv.out]
    if not all(isinstance(s, int) for s in sizes):
        raise _Unmappable
    _with_input(conv, InputSpec("split", "ints", False))
    return {"split": sizes}


def _arange(conv: _Conversion) -> dict:
    return {"start": conv.args.get("start", 0) or 0, "step": conv.args.get("step", 1) or 1}


def _argmax(conv: _Conversion) -> None:
    if conv.args["dim"] is None:
        raise _Unmappable


def _last_axes(conv: _Conversion) -> None:
    conv.attrs["axis"] = -len(conv.args["normalized_shape"])
    if conv.args.get("eps") is None:
        raise _Unmappable


def _attention(conv: _Conversion) -> None:
    query = tensor_type(conv.node.args[0].meta.get("val"))
    if query is None or query.rank != 4 or not isinstance(query.shape[-1], int):
        raise _Unmappable
    scale = conv.args.get("scale")
    conv.attrs["scale"] = float(scale) if scale is not None else 1.0 / math.sqrt(query.shape[-1])
    conv.attrs["is_causal"] = int(bool(conv.args.get("is_causal")))


def _bitwise_not(conv: _Conversion) -> None:
    found = tensor_type(conv.out)
    if found is None or found.dtype != "bool":
        conv.op = "BitwiseNot"


CONVERTERS: dict[str, Callable[[_Conversion], dict | None]] = {
    "cast": _cast,
    "reshape": _reshape,
    "expand": _reshape,
    "transpose": _transpose,
    "permute": _permute,
    "slice": _slice,
    "index": _index,
    "split": _split,
    "arange": _arange,
    "argmax": _argmax,
    "last_axes": _last_axes,
    "attention": _attention,
    "bitwise_not": _bitwise_not,
}


def _onnx_types() -> dict[str, int]:
    import onnx

    return {dtype_name(v): v for v in onnx.TensorProto.DataType.values() if v}


ONNX_TYPES = _onnx_types()


def build_ir(module, source: str = "<GraphModule>") -> Graph:
    """The IR of a GraphModule (its nodes in graph order, which FX keeps topological)."""
    builder = _Builder(module)
    for index, node in enumerate(module.graph.nodes):
        if node.op == "placeholder":
            builder.add_placeholder(node)
        elif node.op == "get_attr":
            builder.add_attribute(node)
        elif node.op == "output":
            builder.add_outputs(node)
        elif node.op == "call_function" and node.target is operator.getitem and builder.is_value(node):
            continue  # an output of the multi-output node it reads (named after this getitem)
        else:
            builder.add_call(node, index)
    return Graph(
        nodes=tuple(builder.nodes),
        values=builder.values,
        inputs=tuple(builder.inputs),
        outputs=tuple(builder.outputs),
        initializers=frozenset(builder.initializers),
        constant_values=builder.constants,
        opset=FX_OPSET,
        name=source,
    )

