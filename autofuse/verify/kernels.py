"""Kernel verification: every generated kernel compiled against the Ascend C emulator, run on the
inputs its group sees, and compared with onnxruntime running the group's original nodes.

For one model: the original model runs once in onnxruntime on seeded random inputs at the sizes
the cost model priced (the bound dims), with every value a group reads added as an output, so
each kernel gets the same inputs its group gets in the model (and shape operands computed at run
time have their real values). Each kernel's project is compiled with g++ against the emulator
(autofuse/emulator, binaries cached by content) together with a harness that calls the project's
own tiling function; its outputs are compared with onnxruntime's output of a model made of the
group's member nodes, and the GM bytes the emulator counted with the cost model's prediction. A
shape-generic kernel's one binary runs again at the other sizes verify/sizes.py picks, each
compared the same way (KernelCheck.sizes).
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from autofuse.codegen.emit import harness_source
from autofuse.codegen.generate import GeneratedKernel
from autofuse.codegen.program import CallThrough, HostOnly, Unsupported
from autofuse.cost.hardware import Hardware
from autofuse.errors import GeneratorError
from autofuse.frontends.onnx import LoadedModel
from autofuse.planner.plan import FusionGroup, Plan
from autofuse.verify.sizes import SizePoints, SizeUnavailable
from autofuse.verify.onnx_runtime import (
    TOLERANCES,
    _index_bound,
    _random_tensor,
    run_model,
)

# The cost model's GM byte prediction must be met this closely by the emulator's count. The model
# counts every byte the kernel asks for, re-reads included (small broadcast inputs once per core,
# broadcast rows once per row, split rows once per pass, the MatMul workspace round trip): on the
# device L2 may serve some re-reads, which cannot be measured here, so none is left to it.
BYTES_TOLERANCE = 0.02
# Compiled kernels are cached here, by a hash of their sources (AUTOFUSE_KERNEL_CACHE overrides).
CACHE_ENV = "AUTOFUSE_KERNEL_CACHE"


def cache_directory() -> Path:
    """Where compiled kernels are cached: $AUTOFUSE_KERNEL_CACHE, else .cache/kernels under the working directory."""
    return Path(os.environ.get(CACHE_ENV) or Path.cwd() / ".cache" / "kernels")
_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "bool": np.bool_,
              "uint8": np.uint8, "int8": np.int8, "int16": np.int16}


@dataclass(frozen=True)
class KernelCheck:
    """The outcome for one group (the report's `kernel` object is built from it)."""

    group_id: str
    compiled: bool
    verified: bool
    max_abs_error: float | None = None
    gm_bytes_measured: int | None = None
    gm_bytes_predicted: int | None = None
    error: str | None = None
    # What the project's own tiling function computed for the run: launch blocks, cores used,
    # tiles of each part.
    block_dim: int | None = None
    used_cores: int | None = None
    tiles: tuple[int, ...] = ()
    # Against Huawei's real headers (api_check.py): True / False, None where that check did not
    # run (`api_error` then says why); a kernel that does not compile there is not verified.
    api_checked: bool | None = None
    api_error: str | None = None
    # Every size the kernel ran at (the bound sizes first; a shape-generic kernel also at the
    # other bindings of its symbolic dims). The fields above summarise them.
    sizes: tuple[SizeCheck, ...] = ()

    @property
    def checked_dims(self) -> list[dict[str, int]]:
        return [dict(s.dims) for s in self.sizes]

    @property
    def passed(self) -> bool:
        """Computed the right numbers on the emulator and compiles against the real headers."""
        return self.verified and self.api_checked is not False

    @property
    def bytes_within_tolerance(self) -> bool | None:
        """Measured within BYTES_TOLERANCE of the prediction, at every size it ran at."""
        runs = self.sizes or (self,)
        within = [_within(r.gm_bytes_measured, r.gm_bytes_predicted) for r in runs]
        return None if None in within else all(within)


@dataclass(frozen=True)
class SizeCheck:
    """One run of a kernel: the sizes of its symbolic dims (empty for a kernel generated for
    static shapes), the tiling its own tiling function computed there, and the outcome."""

    dims: tuple[tuple[str, int], ...]
    verified: bool
    max_abs_error: float | None = None
    gm_bytes_measured: int | None = None
    gm_bytes_predicted: int | None = None
    block_dim: int | None = None
    used_cores: int | None = None
    tiles: tuple[int, ...] = ()
    error: str | None = None

    def entry(self) -> dict:
        return {"dims": dict(self.dims), "verified": self.verified, "max_abs_error": self.max_abs_error,
                "gm_bytes_measured": self.gm_bytes_measured, "gm_bytes_predicted": self.gm_bytes_predicted,
                "used_cores": self.used_cores, "tiles": list(self.tiles),
                **({"error": self.error} if self.error else {})}


def _within(measured: int | None, predicted: int | None) -> bool | None:
    if measured is None or not predicted:
        return None
    return abs(measured - predicted) <= BYTES_TOLERANCE * predicted


def check_kernels(loaded: LoadedModel, plan: Plan, kernels: Mapping[str, GeneratedKernel], hardware: Hardware,
                  static: Mapping[str, tuple[int, ...]], *, seed: int = 0, rules: Sequence = (), workers: int = 2,
                  cache_dir: Path | None = None, dims: Mapping[str, int] | None = None) -> dict[str, KernelCheck]:
    """Compile, run and compare every generated kernel (`workers` compiles at once). A rule's
    `tolerance` loosens the relative tolerance of its groups where it is looser than the dtype's.
    A shape-generic kernel is compiled once and run at the bound sizes `dims` and at the other
    bindings of its symbolic dims (SizePoints); the others at the bound sizes."""
    by_name = {r.name: r for r in rules}
    tolerances = {g.id: by_name[g.rule].tolerance for g in plan.groups if g.rule in by_name}
    groups = {g.id: g for g in plan.groups if kernels.get(g.id) is not None and kernels[g.id].generated}
    if not groups:
        return {}
    cache_dir = cache_dir or cache_directory()
    values = _group_values(loaded, [groups[i] for i in groups], static, seed)
    programs = [kernels[gid].program for gid in groups]
    points = SizePoints(loaded, hardware, dict(dims or {}), [p for p in programs if p.symbols], values, seed)
    work = tempfile.mkdtemp(prefix="autofuse-kernels-")
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {gid: pool.submit(_check, loaded, groups[gid], kernels[gid], hardware, points, Path(work) / gid,
                                        tolerances.get(gid), cache_dir)
                       for gid in groups}
            checks = {}
            for gid, future in futures.items():
                try:
                    checks[gid] = future.result()
                except Exception as exc:  # a bug: compile and run failures are recorded, not raised
                    raise GeneratorError(gid, "the kernel check", exc) from exc
        return _with_api_check(checks, {gid: kernels[gid] for gid in groups}, hardware, Path(work) / "api",
                               cache_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _with_api_check(checks: dict[str, KernelCheck], kernels: Mapping[str, GeneratedKernel], hardware: Hardware,
                    work: Path, cache_dir: Path | None) -> dict[str, KernelCheck]:
    """Each check with `api_checked`: every distinct project (a repeated kernel shares its owner's)
    type-checked once against Huawei's headers for the profile's architecture."""
    from autofuse.emulator.build import target_for
    from autofuse.verify.api_check import ApiCheckUnavailable, check_projects

    owners = {gid: kernel.same_as or gid for gid, kernel in kernels.items()}
    projects = {kernels[owner].op_name: kernels[owner].files for owner in set(owners.values()) if owner in kernels}
    try:
        work.mkdir(parents=True, exist_ok=True)
        results = check_projects(projects, target_for(hardware).npu_arch, work=work, cache_dir=cache_dir)
    except ApiCheckUnavailable as exc:
        return {gid: replace(check, api_error=f"not run: {exc}") for gid, check in checks.items()}
    out = {}
    for gid, check in checks.items():
        result = results.get(kernels[gid].op_name)
        out[gid] = check if result is None else replace(check, api_checked=result.ok, api_error=result.error)
    return out


# -- inputs ---------------------------------------------------------------------------------------


def _group_values(loaded: LoadedModel, groups: list[FusionGroup], static: Mapping[str, tuple[int, ...]],
                  seed: int) -> dict[str, np.ndarray]:
    """Every value the groups read or write, from one onnxruntime run of the original model on
    seeded random inputs at the bound sizes (graph constants are taken from the model)."""
    graph = loaded.graph
    wanted = {v for g in groups for v in (*g.inputs, *g.outputs)}
    values = {v: _constant(loaded, v) for v in wanted if v in graph.constants}
    values = {k: v for k, v in values.items() if v is not None}
    needed = sorted(wanted - set(values) - set(graph.inputs))
    model = _float32_model(loaded.model)  # onnxruntime has almost no bf16 kernels on CPU
    present = {o.name for o in model.graph.output}
    for name in needed:
        if name not in present:
            kind = graph.type_of(name)
            dtype = "float32" if kind.dtype == "bfloat16" else kind.dtype
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(_NP_DTYPES.get(dtype, np.float32)))
            model.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    feeds = _model_inputs(loaded, static, seed)
    results = run_model(model, feeds, loaded.base_dir)
    values.update(feeds)
    values.update({k: np.asarray(v) for k, v in results.items() if k in wanted})
    return values


def _model_inputs(loaded: LoadedModel, static: Mapping[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    graph = loaded.model.graph
    initializers = {t.name: t for t in graph.initializer}
    weights = _weight_scales(loaded)
    feeds = {}
    for info in graph.input:
        if info.name in initializers or info.type.WhichOneof("value") != "tensor_type":
            continue
        shape = static.get(info.name) or tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
        dtype = loaded.graph.type_of(info.name).dtype
        value = _random_tensor(info.name, "float32" if dtype == "bfloat16" else dtype, tuple(shape), rng,
                               _index_bound(graph, info.name, initializers))
        scale = weights.get(info.name)
        if scale is not None:
            value = (value * scale).astype(value.dtype)
        if dtype == "bfloat16":  # fed as fp32 holding bf16 numbers (see _float32_model)
            value = (_bf16_bits(value).astype(np.uint32) << 16).view(np.float32)
        feeds[info.name] = value
    return feeds


def _weight_scales(loaded: LoadedModel) -> dict[str, float]:
    """Graph inputs that are MatMul weights get the 1/sqrt(K) spread an initialisation gives
    them: with N(0, 1) weights a K-long fp32 dot product is large, and the order the cube and
    onnxruntime accumulate in alone moves a result near zero by more than atol."""
    scales = {}
    for node in loaded.graph.nodes:
        if node.op_type in ("MatMul", "Gemm") and len(node.inputs) > 1 and node.inputs[1] in loaded.graph.inputs:
            shape = loaded.graph.type_of(node.inputs[1]).shape or ()
            k = shape[-2] if len(shape) >= 2 and isinstance(shape[-2], int) else None
            if k:
                scales[node.inputs[1]] = 1.0 / math.sqrt(k)
    return scales


def _float32_model(model: onnx.ModelProto, halves: tuple[int, ...] = (onnx.TensorProto.BFLOAT16,)) -> onnx.ModelProto:
    """`model` with every tensor of a `halves` dtype made float32 (the numbers it holds are the
    same). A Cast to fp16 inside stays a rounding step (Cast to fp16, then to fp32)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    fp32 = onnx.TensorProto.FLOAT
    graph = out.graph
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.tensor_type.elem_type in halves:
            info.type.tensor_type.elem_type = fp32
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type in halves:
            graph.initializer[index].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type in halves:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32), attr.t.name))
            if node.op_type != "Cast" or attr.name != "to" or attr.i not in halves:
                continue
            if attr.i == onnx.TensorProto.FLOAT16:
                rounded = node.output[0]
                node.output[0] = f"{rounded}@fp16"
                nodes.append(helper.make_node("Cast", [node.output[0]], [rounded], to=fp32))
            else:
                attr.i = fp32
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def _constant(loaded: LoadedModel, value: str) -> np.ndarray | None:
    array = _constant_array(loaded, value)
    if array is not None and array.dtype.name == "bfloat16":
        return array.astype(np.float32)  # bf16 numbers, held as fp32 (see _float32_model)
    return array


def _constant_array(loaded: LoadedModel, value: str) -> np.ndarray | None:
    small = loaded.graph.constant(value)
    if small is not None:
        return np.asarray(small)
    for tensor in loaded.model.graph.initializer:
        if tensor.name == value:
            if tensor.data_location == onnx.TensorProto.EXTERNAL and loaded.base_dir is not None:
                onnx.external_data_helper.load_external_data_for_tensor(tensor, str(loaded.base_dir))
            return numpy_helper.to_array(tensor)
    for node in loaded.model.graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] == value:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


# -- one kernel -------------------------------------------------------------------------------------


def _check(loaded: LoadedModel, group: FusionGroup, kernel: GeneratedKernel, hardware: Hardware,
           points: SizePoints, work: Path, looser: float | None, cache_dir: Path | None) -> KernelCheck:
    from autofuse.emulator import build
    from autofuse.emulator.build import EmulatorError

    program = kernel.program
    predicted = group.cost.hbm_bytes_after if group.cost else None
    root = work / program.op_name
    for relative, text in kernel.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    harness = root / "cpu_check" / "harness.cpp"
    harness.parent.mkdir(parents=True, exist_ok=True)
    harness.write_text(harness_source(program, hardware), encoding="utf-8")
    try:
        exe = build([root / "op_kernel" / f"{program.kernel_name}.cpp", harness], hardware,
                    include_dirs=[root / "op_kernel", root / "op_host"], cache_dir=cache_dir,
                    name=program.kernel_name)
    except EmulatorError as exc:
        return KernelCheck(group.id, False, False, gm_bytes_predicted=predicted, error=_one_line(str(exc)))
    runs = []
    for i, binding in enumerate(points.bindings(program)):
        if i == 0:
            values, expected_bytes = points.bound_values, predicted
        else:
            try:
                values, expected_bytes = points.values_at(binding, group), points.predicted_at(binding, group)
            except SizeUnavailable as exc:
                runs.append(SizeCheck(tuple(binding.items()), False, error=str(exc)))
                continue
        runs.append(_run_at(loaded, group, program, exe, binding, values, expected_bytes, work / f"data{i}", looser))
    first = runs[0]
    failed = [r for r in runs if not r.verified]
    error = "; ".join(r.error if len(runs) == 1 else f"at {_dims_text(dict(r.dims))}: {r.error}"
                      for r in failed if r.error) or None
    return KernelCheck(group.id, True, not failed, max((r.max_abs_error or 0.0 for r in runs), default=0.0),
                       first.gm_bytes_measured, first.gm_bytes_predicted, error, first.block_dim, first.used_cores,
                       first.tiles, sizes=tuple(runs))


def _run_at(loaded: LoadedModel, group: FusionGroup, program, exe: Path, binding: Mapping[str, int],
            values: Mapping[str, np.ndarray], predicted: int | None, data: Path, looser: float | None) -> SizeCheck:
    """The compiled kernel run once at `binding` on `values`, compared with onnxruntime."""
    from autofuse.emulator import run
    from autofuse.emulator.build import EmulatorError

    point = tuple(binding.items())
    data.mkdir(parents=True, exist_ok=True)
    shapes = _arg_shapes(program, binding)
    for i, arg in enumerate(program.inputs):
        _to_bytes(values[arg.onnx], arg.dtype, shapes[i]).tofile(data / f"in{i}.bin")
    elements = [math.prod(s) for s in shapes]
    dims = program.symbols.kernel_dims(binding) if program.symbols else []
    (data / "sizes.txt").write_text(" ".join(str(v) for v in (len(dims), *dims, *elements)) + "\n")
    try:
        result = run(exe, [data]).check()
    except EmulatorError as exc:
        return SizeCheck(point, False, gm_bytes_predicted=predicted, error=_one_line(str(exc)))
    launch = result.launches[-1] if result.launches else None
    measured = launch.gm_bytes_read + launch.gm_bytes_written if launch else None
    tiling = _TILING_LINE.search(result.stdout)
    expected = _reference(loaded, group, values)
    worst, problems = 0.0, []
    for i, arg in enumerate(program.outputs):
        actual = _from_bytes(data / f"out{i}.bin", arg.dtype, shapes[len(program.inputs) + i])
        error, problem = _compare(arg.onnx, expected[arg.onnx], actual, arg.dtype, looser)
        worst = max(worst, error)
        if problem:
            problems.append(problem)
    return SizeCheck(point, not problems, worst, measured, predicted,
                     int(tiling[1]) if tiling else None, int(tiling[2]) if tiling else None,
                     tuple(int(t) for t in tiling[3].split(",")) if tiling else (), "; ".join(problems) or None)


def _arg_shapes(program, binding: Mapping[str, int]) -> list[tuple[int, ...]]:
    """Every GM argument's shape (inputs, then outputs) at `binding`."""
    args = (*program.inputs, *program.outputs)
    if not program.symbols:
        return [a.shape for a in args]
    return [program.symbols.shape_at(i, binding) for i in range(len(args))]


def _dims_text(dims: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "the generated shapes"


_TILING_LINE = re.compile(r"tiling block_dim=(\d+) used_cores=(\d+) tiles=([\d,]+)")


def _reference(loaded: LoadedModel, group: FusionGroup, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's outputs of a model made of the group's original nodes."""
    graph = loaded.graph
    protos = loaded.model.graph.node
    nodes = []
    for m in group.members:
        node = protos[graph.nodes[m].source_index]
        nodes.append(node)
        # The cube writes a MatMul's result in its own dtype (codegen/lower.py): an fp16 result
        # is rounded to fp16 before the epilogue reads it, as in the unfused model.
        if node.op_type == "MatMul" and graph.type_of(node.output[0]).dtype == "float16":
            product = onnx.NodeProto()
            product.CopyFrom(node)
            product.output[0] = f"{node.output[0]}@product"
            nodes[-1] = product
            nodes.append(helper.make_node("Cast", [product.output[0]], [node.output[0]], to=onnx.TensorProto.FLOAT16))
    inputs, feeds = [], {}
    for value in group.inputs:
        array = np.asarray(values[value])
        inputs.append(_value_info(value, graph.type_of(value).dtype, array.shape))
        feeds[value] = array
    outputs = [_value_info(v, graph.type_of(v).dtype, None) for v in group.outputs]
    body = helper.make_graph(nodes, f"group_{group.id}", inputs, outputs)
    model = helper.make_model(body, opset_imports=list(loaded.model.opset_import))
    model.ir_version = loaded.model.ir_version
    model.functions.extend(loaded.model.functions)
    # The kernel computes half precision in fp32 (as Huawei's kernels do): its reference is the
    # group's nodes in fp32 on the same inputs, rounding only where the graph casts to fp16.
    halves = (onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT16)
    feeds = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in feeds.items()}
    return run_model(_float32_model(model, halves), feeds)


def _value_info(name: str, dtype: str | None, shape) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(_NP_DTYPES.get(dtype or "float32", np.float32)))
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


# -- data ---------------------------------------------------------------------------------------------


def _to_bytes(array: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array).reshape(shape)
    if dtype == "bfloat16":
        return _bf16_bits(array)
    if dtype == "bool":
        return array.astype(np.uint8)
    return array.astype(_NP_DTYPES[dtype])


def _from_bytes(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":
        bits = np.fromfile(path, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    raw = np.fromfile(path, dtype=np.uint8 if dtype == "bool" else _NP_DTYPES[dtype])
    return (raw != 0 if dtype == "bool" else raw).reshape(shape)


def _bf16_bits(array: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bits (what numpy cannot store)."""
    as_float = np.asarray(array, dtype=np.float32)
    bits = as_float.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(as_float), np.uint16(0x7FC0), rounded)


def _compare(name: str, expected, actual: np.ndarray, dtype: str, looser: float | None) -> tuple[float, str | None]:
    expected = np.asarray(expected)
    if expected.shape != actual.shape:
        return math.inf, f"output '{name}': shape {actual.shape}, expected {expected.shape}"
    if dtype not in TOLERANCES:
        same = expected.astype(actual.dtype) == actual
        if np.issubdtype(actual.dtype, np.signedinteger):
            same |= _saturated(expected.astype(actual.dtype), actual)
        if same.all():
            return 0.0, None
        return math.inf, f"output '{name}' ({dtype}): {int((~same).sum())} of {same.size} values differ"
    rtol, atol = TOLERANCES[dtype]
    if looser is not None:
        rtol = max(rtol, looser)
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if dtype in _HALF_ULP:  # a value rounded to half precision inside the group and again at the end
        with np.errstate(invalid="ignore", over="ignore"):
            close |= np.abs(a - e) <= 2 * _HALF_ULP[dtype](e)
    finite = np.isfinite(e) & np.isfinite(a)
    error = float(np.max(np.abs(a[finite] - e[finite]))) if finite.any() else 0.0
    if close.all():
        return error, None
    bad = int((~close).sum())
    return error, (f"output '{name}' ({dtype}): {bad} of {close.size} elements outside rtol={rtol} atol={atol}, "
                   f"max abs error {error:.3g}")


# One unit in the last place of a half-precision value of magnitude |x|.
_HALF_ULP = {
    "float16": lambda x: np.spacing(np.abs(x).astype(np.float16)).astype(np.float64),
    "bfloat16": lambda x: np.spacing(np.abs(x).astype(np.float32)).astype(np.float64) * 65536.0,
}


def _saturated(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Elements where both sides lie at the same end of the integer type, within 2^32 of its
    minimum or maximum (for 32-bit types, at it). ONNX leaves a float -> integer Cast of a value
    out of range (-inf from log(0) in T5's relative-position buckets) undefined: onnxruntime on x86
    gives the type's minimum and integer arithmetic after it wraps from there; the kernels, which
    compute in fp32, keep the infinity to the end. Such lanes agree on the end they reached, and
    the model masks them out; any other integer must match exactly."""
    info = np.iinfo(actual.dtype)
    near = 0 if info.bits <= 32 else 1 << 32
    e, a = expected.astype(np.int64), actual.astype(np.int64)
    low = (e <= int(info.min) + near) & (a <= int(info.min) + near)
    high = (e >= int(info.max) - near) & (a >= int(info.max) - near)
    return low | high


def _one_line(text: str) -> str:
    return " ".join(text.split())[:600]


# -- the report ----------------------------------------------------------------------------------------


def kernel_entry(group: FusionGroup, kernel: GeneratedKernel | None, check: KernelCheck | None) -> dict | None:
    """The report's per-group `kernel` object (its keys are a contract other tools read).

    A generated kernel: `source` (its path under OUTDIR), `compiled`, `verified`,
    `max_abs_error`, `gm_bytes_measured`, `gm_bytes_predicted` (null where --verify-kernels did
    not run), plus `op_type`, `family`, `project` and `error`; `shapes`: "symbolic" with
    `symbolic_dims` (a shape-generic kernel: it runs at any size of them) or "static" (generated
    for the bound shapes; `static_reason` says why where the group has symbolic dims); with
    --verify-kernels, `checked_dims` (every binding it was run at) and `checked_sizes` (each
    run's outcome, tiling and GM bytes). A group a CANN op implements:
    `call_through` (the CANN op) and `source` null. Shape arithmetic: `host` true. A group the
    generator cannot lower: `generated` false and `reason`.
    """
    if kernel is None:
        return None
    predicted = group.cost.hbm_bytes_after if group.cost else None
    entry = {"source": kernel.source, "compiled": None, "verified": None, "max_abs_error": None,
             "gm_bytes_measured": None, "gm_bytes_predicted": predicted}
    record = kernel.record
    if kernel.generated:
        entry.update(generated=True, op_type=kernel.op_name, family=kernel.family,
                     project=kernel.directory)
        if kernel.generic:  # (read from the kernel record: a repeat's program is made only when read)
            entry.update(shapes="symbolic", symbolic_dims=list(kernel.symbolic_dims))
        else:
            entry.update(shapes="static", **({"static_reason": kernel.static_reason} if kernel.static_reason else {}))
        if kernel.same_as:
            entry["same_kernel_as"] = kernel.same_as
    elif isinstance(record, CallThrough):
        entry.update(call_through=record.cann_op, generated=False)
    elif isinstance(record, HostOnly):
        entry.update(host=True, generated=False)
    elif isinstance(record, Unsupported):
        entry.update(generated=False, reason=record.reason)
    if check is not None:
        entry.update(compiled=check.compiled, verified=check.verified, max_abs_error=check.max_abs_error,
                     gm_bytes_measured=check.gm_bytes_measured, api_checked=check.api_checked,
                     checked_dims=check.checked_dims, checked_sizes=[s.entry() for s in check.sizes])
        if check.error:
            entry["error"] = check.error
        if check.api_error:
            entry["api_error"] = check.api_error
    return entry


@dataclass(frozen=True)
class KernelCoverage:
    """What became of every fused group when kernels were generated, and which went unchecked.

    A group gets a generated kernel, a CANN call-through, host-side work, or nothing: `missing`
    (the generator declined it; the rewritten model then calls a fused op no project implements).
    With --verify-kernels, `unverified` lists the groups that should have a kernel of ours (a
    generated one or a missing one) and have no kernel that passed the CPU check: the missing
    ones and those that failed to compile or to match. Call-through and host-side groups have
    no source to check and are not counted."""

    generated: tuple[str, ...]
    call_through: tuple[str, ...]
    host: tuple[str, ...]
    missing: dict[str, str]  # group id -> why the generator declined it
    failed: dict[str, str] | None = None  # group id -> the CPU check's error (None: not checked)

    @property
    def checked(self) -> bool:
        return self.failed is not None

    @property
    def kernel_groups(self) -> int:
        """Groups that should have a kernel of ours: generated ones and missing ones."""
        return len(self.generated) + len(self.missing)

    @property
    def unverified(self) -> tuple[str, ...] | None:
        """Missing and failed groups, in group order (None where the kernels were not checked)."""
        if self.failed is None:
            return None
        return tuple(sorted({*self.missing, *self.failed}, key=_group_order))

    def missing_by_reason(self) -> dict[str, int]:
        """How many groups each reason left without a kernel, most common first (node names,
        shapes and numbers in the reasons are blanked so that alike reasons count together)."""
        return dict(Counter(reason_kind(r) for r in self.missing.values()).most_common())

    def totals(self) -> dict:
        """The report's totals `kernels_missing` and `kernels_unverified` (README, "Reading the report")."""
        missing = {"count": len(self.missing), "groups": sorted(self.missing, key=_group_order),
                   "by_reason": self.missing_by_reason()}
        unverified = None if self.unverified is None else {
            "count": len(self.unverified), "of": self.kernel_groups, "not_generated": len(self.missing),
            "failed": len(self.failed or {}), "groups": list(self.unverified)}
        return {"kernels_missing": missing, "kernels_unverified": unverified}

    def missing_line(self, top: int = 3) -> str | None:
        """One line on the groups left without a kernel (None when there are none)."""
        if not self.missing:
            return None
        reasons = self.missing_by_reason()
        shown = "; ".join(f"{reason} ({count})" for reason, count in list(reasons.items())[:top])
        more = f"; {len(reasons) - top} more reason(s) in report.json" if len(reasons) > top else ""
        total = self.kernel_groups + len(self.call_through) + len(self.host)
        return (f"{len(self.missing)} of {total} fused groups have no kernel, CANN call-through or host-side "
                f"work ({', '.join(sorted(self.missing, key=_group_order)[:5])}"
                f"{', ...' if len(self.missing) > 5 else ''}): {shown}{more}")

    def unverified_line(self) -> str | None:
        """`N of M unverified` and why (None when the kernels were not checked)."""
        if self.unverified is None:
            return None
        return (f"{len(self.unverified)} of {self.kernel_groups} unverified ({len(self.missing)} not generated, "
                f"{len(self.failed or {})} failed the CPU check)")


def kernel_coverage(kernels: Mapping[str, GeneratedKernel] | None,
                    checks: Mapping[str, KernelCheck] | None = None) -> KernelCoverage | None:
    """The coverage of a run's kernels (None where no kernels were generated). `checks` are the
    CPU checks of --verify-kernels (None where they did not run)."""
    if kernels is None:
        return None
    ids = sorted(kernels, key=_group_order)
    failed = None
    if checks is not None:
        failed = {gid: check.error or "not verified" for gid, check in checks.items() if not check.verified}
        failed.update({gid: f"does not compile against CANN's headers: {check.api_error}"
                       for gid, check in checks.items() if check.verified and check.api_checked is False})
        # a generated kernel that no check covered is not verified either
        failed.update({gid: "not checked" for gid in ids if kernels[gid].generated and gid not in checks})
    return KernelCoverage(
        generated=tuple(g for g in ids if kernels[g].generated),
        call_through=tuple(g for g in ids if isinstance(kernels[g].record, CallThrough)),
        host=tuple(g for g in ids if isinstance(kernels[g].record, HostOnly)),
        missing={g: kernels[g].record.reason for g in ids
                 if not kernels[g].generated and isinstance(kernels[g].record, Unsupported)},
        failed=failed)


_QUOTED = re.compile(r"'[^']*'")
_SHAPE = re.compile(r"\((?:\d+, )*\d*,?\)")
_SIZE = re.compile(r"(?<![\w.])\d+(?= (?:B|bytes|elements)\b)")


def reason_kind(reason: str) -> str:
    """A reason with its particulars blanked (names in quotes, shapes, sizes): reasons of the
    same kind read the same."""
    return _SIZE.sub("N", _SHAPE.sub("(…)", _QUOTED.sub("'…'", reason)))


def _group_order(group_id: str) -> tuple[int, str]:
    digits = group_id.lstrip("g")
    return (int(digits), group_id) if digits.isdigit() else (1 << 30, group_id)


def kernel_summary(kernels: Mapping[str, GeneratedKernel], checks: Mapping[str, KernelCheck] | None) -> str:
    """One line: what was generated, and how the CPU checks went."""
    generated = sum(1 for k in kernels.values() if k.generated)
    unique = len({k.directory for k in kernels.values() if k.generated})
    calls = sum(1 for k in kernels.values() if isinstance(k.record, CallThrough))
    host = sum(1 for k in kernels.values() if isinstance(k.record, HostOnly))
    missing = sum(1 for k in kernels.values() if isinstance(k.record, Unsupported))
    generic = sum(1 for k in kernels.values() if k.generated and k.generic)
    text = (f"{generated} generated ({unique} distinct, {generic} shape-generic), {calls} CANN call-through, "
            f"{host} host-side")
    if missing:
        text += f", {missing} not generated"
    if checks is None:
        return text
    verified = [c for c in checks.values() if c.verified]
    worst = max((c.max_abs_error or 0.0 for c in verified), default=0.0)
    within = sum(1 for c in verified if c.bytes_within_tolerance)
    runs = sum(len(c.sizes) or 1 for c in checks.values())
    text += (f"; verified {len(verified)}/{len(checks)} on the CPU emulator ({runs} runs over the sizes checked, "
             f"max abs error {worst:.3g}), "
             f"GM bytes within {BYTES_TOLERANCE:.0%} of the cost model (re-reads counted, none left to L2): "
             f"{within}/{len(verified)}")
    text += f"; {api_summary(checks)}"
    failed = [c for c in checks.values() if not c.passed]
    if failed:
        text += "; FAILED: " + "; ".join(f"{c.group_id}: {c.error or c.api_error}" for c in failed[:3])
    return text


def api_summary(checks: Mapping[str, KernelCheck]) -> str:
    """`api_checked N/M against CANN's headers`, or why that check did not run."""
    ran = [c for c in checks.values() if c.api_checked is not None]
    if not ran:
        reason = next((c.api_error for c in checks.values() if c.api_error), "not run")
        return f"api_checked: {reason}"
    passed = sum(1 for c in ran if c.api_checked)
    return f"api_checked {passed}/{len(checks)} against CANN's real headers (g++ -fsyntax-only)"
