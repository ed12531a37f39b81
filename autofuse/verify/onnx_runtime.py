"""Verification in onnxruntime: run the original and the rewritten model on the same seeded
random inputs and compare every output with dtype-aware tolerances."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from autofuse.frontends.onnx import dtype_name

# (rtol, atol) per output dtype. Fused groups run the very same ops as the original, so the only
# differences come from onnxruntime choosing other kernels for the inlined functions.
TOLERANCES = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-3, 1e-3),
    "bfloat16": (1e-2, 1e-2),
}
# Every symbolic or unknown input dimension gets this size, so dims that must agree do.
DEFAULT_DIM = 4
_FOLLOW_THROUGH = frozenset("Cast Reshape Unsqueeze Squeeze Flatten Identity".split())


@dataclass(frozen=True)
class OutputCheck:
    name: str
    dtype: str
    ok: bool
    max_abs_error: float
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    """The comparison of two models' outputs on one set of inputs."""

    ok: bool
    outputs: tuple[OutputCheck, ...] = ()
    error: str | None = None  # set when a model could not be run at all
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> str:
        if self.error:
            return f"verification failed: {self.error}"
        bad = [o for o in self.outputs if not o.ok]
        if not bad:
            worst = max((o.max_abs_error for o in self.outputs), default=0.0)
            return f"verified {len(self.outputs)} outputs (max abs error {worst:.3g})"
        return "; ".join(f"output '{o.name}' ({o.dtype}) differs: {o.detail}" for o in bad)


def verify_models(
    original: onnx.ModelProto,
    rewritten: onnx.ModelProto,
    *,
    seed: int = 0,
    inputs: dict[str, np.ndarray] | None = None,
    base_dir: Path | None = None,
) -> Verification:
    """Run both models in onnxruntime and compare their outputs."""
    feeds = inputs if inputs is not None else make_inputs(original, seed=seed)
    try:
        expected = run_model(original, feeds, base_dir)
    except Exception as exc:  # noqa: BLE001 - any runtime failure is reported, not raised
        return Verification(False, error=f"the original model does not run in onnxruntime: {_one_line(exc)}", inputs=feeds)
    try:
        actual = run_model(rewritten, feeds, base_dir)
    except Exception as exc:  # noqa: BLE001
        return Verification(False, error=f"the rewritten model does not run in onnxruntime: {_one_line(exc)}", inputs=feeds)
    names = [o.name for o in original.graph.output]
    checks = tuple(_compare(name, expected[name], actual.get(name)) for name in names)
    return Verification(all(c.ok for c in checks), checks, inputs=feeds)


# onnxruntime graph rewrites left out when verifying. SkipLayerNormFusion (Add + LayerNormalization
# -> SkipLayerNormalization) crashes the process (a segmentation fault, onnxruntime 1.32) on a
# LayerNormalization whose optional bias is given as "" (absent); the rewrite only makes the model
# faster, so the check runs the ops as written.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path | None = None) -> dict:
    """Outputs of `model` on `feeds`, by output name (CPU execution provider)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(_serialized(model, base_dir), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=DISABLED_OPTIMIZERS)
    wanted = {i.name for i in session.get_inputs()}
    results = session.run(None, {k: v for k, v in feeds.items() if k in wanted})
    return {o.name: r for o, r in zip(session.get_outputs(), results)}


def _serialized(model: onnx.ModelProto, base_dir: Path | None) -> bytes:
    uses_external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if not uses_external:
        return model.SerializeToString()
    if base_dir is None:
        raise ValueError("the model keeps weights in external data files but their directory is unknown")
    loaded = onnx.ModelProto()
    loaded.CopyFrom(model)
    onnx.external_data_helper.load_external_data_for_model(loaded, str(base_dir))
    return loaded.SerializeToString()


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:400]


# -- inputs -------------------------------------------------------------------------------------


def make_inputs(model: onnx.ModelProto, *, seed: int = 0, dim: int = DEFAULT_DIM) -> dict[str, np.ndarray]:
    """Seeded random inputs in valid ranges: token ids below the embedding size, masks of ones."""
    rng = np.random.default_rng(seed)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for info in graph.input:
        if info.name in initializers or info.type.WhichOneof("value") != "tensor_type":
            continue
        tensor = info.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else dim for d in tensor.shape.dim)
        dtype = dtype_name(tensor.elem_type)
        feeds[info.name] = _random_tensor(info.name, dtype, shape, rng, _index_bound(graph, info.name, initializers))
    return feeds


def _random_tensor(name: str, dtype: str | None, shape: tuple[int, ...], rng, bound: int | None) -> np.ndarray:
    lowered = name.lower()
    if dtype in ("float32", "float16", "float64"):
        return np.asarray(rng.standard_normal(shape), dtype=dtype)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype is None or not dtype.startswith(("int", "uint")):
        raise ValueError(f"cannot make a random input for '{name}' of type {dtype}")
    if "mask" in lowered:
        return np.ones(shape, dtype=dtype)
    if "position" in lowered and shape:
        return np.broadcast_to(np.arange(shape[-1]), shape).astype(dtype)
    high = bound if bound is not None else 2
    return np.asarray(rng.integers(0, max(high, 1), size=shape), dtype=dtype)


def _index_bound(graph: onnx.GraphProto, name: str, initializers: dict) -> int | None:
    """The size of the table an integer input indexes into (Gather indices), if there is one."""
    frontier, seen = [name], {name}
    while frontier:
        value = frontier.pop()
        for node in graph.node:
            if value not in node.input:
                continue
            if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == value:
                table = initializers.get(node.input[0])
                if table is not None and table.dims:
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    return int(table.dims[axis])
            if node.op_type in _FOLLOW_THROUGH:
                for out in node.output:
                    if out not in seen:
                        seen.add(out)
                        frontier.append(out)
    return None


# -- comparison ---------------------------------------------------------------------------------


def _compare(name: str, expected, actual) -> OutputCheck:
    if actual is None:
        return OutputCheck(name, "?", False, float("inf"), "missing in the rewritten model")
    if isinstance(expected, list):
        parts = [_compare(f"{name}[{i}]", e, a) for i, (e, a) in enumerate(zip(expected, actual))]
        ok = len(expected) == len(actual) and all(p.ok for p in parts)
        worst = max((p.max_abs_error for p in parts), default=0.0)
        return OutputCheck(name, "sequence", ok, worst, "" if ok else "sequence elements differ")
    expected, actual = np.asarray(expected), np.asarray(actual)
    dtype = str(expected.dtype)
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return OutputCheck(name, dtype, False, float("inf"),
                           f"shape/dtype {actual.shape} {actual.dtype}, expected {expected.shape} {expected.dtype}")
    if expected.size == 0:
        return OutputCheck(name, dtype, True, 0.0)
    if dtype not in TOLERANCES:
        equal = np.array_equal(expected, actual)
        return OutputCheck(name, dtype, bool(equal), 0.0 if equal else float("inf"), "" if equal else "values differ")
    rtol, atol = TOLERANCES[dtype]
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    finite = np.isfinite(e) & np.isfinite(a)
    error = float(np.max(np.abs(a - e)[finite])) if finite.any() else 0.0
    if close.all():
        return OutputCheck(name, dtype, True, error)
    bad = int((~close).sum())
    return OutputCheck(name, dtype, False, error,
                       f"{bad} of {close.size} elements outside rtol={rtol} atol={atol}, max abs error {error:.3g}")
