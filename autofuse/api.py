"""`fuse()`: the whole pass as one call. A thin layer over the pipeline stages."""
from __future__ import annotations

import contextlib
import difflib
import gc
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE
from autofuse.candidates.rules.loader import Rule, library_files, load_rules
from autofuse.codegen import EmissionCheck, GeneratedKernel, generate_kernels, write_projects
from autofuse.cost.hardware import DEFAULT_TARGET, load_profile
from autofuse.errors import InputError
from autofuse.cost.model import bind_dims
from autofuse.frontends.fx import LoadedFx, load_fx
from autofuse.frontends.onnx import LoadedModel, concrete_shapes, load_onnx
from autofuse.planner.plan import Plan, plan_fusion
from autofuse.report import build_report, render_html, render_markdown
from autofuse.staging import staged_outdir
from autofuse.rewrite.fx import FxRewrite, annotate_report, compare_outputs, rewrite_fx
from autofuse.rewrite.onnx import free_function_names, rewrite_onnx
from autofuse.verify.kernels import KernelCheck, KernelCoverage, check_kernels, kernel_coverage
from autofuse.verify.onnx_runtime import Verification, verify_models



@dataclass
class FuseResult:
    """The rewritten model, its report, and the plan and input they came from."""

    model: onnx.ModelProto
    report: dict
    plan: Plan
    loaded: LoadedModel
    verification: Verification | None = None
    # Ascend C kernels by group id (None: not generated) and their CPU checks (None: not run).
    kernels: dict[str, GeneratedKernel] | None = None
    kernel_checks: dict[str, KernelCheck] | None = None
    model_file = "model.onnx"

    @property
    def kernel_coverage(self) -> KernelCoverage | None:
        """Which fused groups got a kernel, a call-through, host-side work or nothing (`missing`:
        group id -> reason), and with `verify_kernels` which went unverified (`unverified`,
        `unverified_line()`: "N of M unverified"); None when no kernels were generated. The
        report's totals `kernels_missing` and `kernels_unverified` say the same."""
        return kernel_coverage(self.kernels, self.kernel_checks)

    def save(self, outdir: str | os.PathLike) -> Path:
        """Write model.onnx, report.json, report.md and report.html (and the kernel projects under
        kernels/) into `outdir`, all or nothing."""
        return write_outputs(self, Path(outdir))

    def write_model(self, directory: Path) -> None:
        _copy_external_data(self, directory)
        onnx.save_model(self.model, directory / self.model_file)
        if self.kernels:
            write_projects(self.kernels, directory)


@dataclass
class FxFuseResult:
    """For a PyTorch input: the rewritten GraphModule, its report, and the plan and input."""

    rewrite: FxRewrite
    report: dict
    plan: Plan
    loaded: LoadedFx
    verification: Verification | None = None
    model_file = "model.py"

    @property
    def graph_module(self):
        """The rewritten torch.fx.GraphModule: one call per fused group."""
        return self.rewrite.module

    def source(self) -> str:
        """Readable Python of the rewritten forward."""
        return self.rewrite.source()

    def save(self, outdir: str | os.PathLike) -> Path:
        """Write model.py (the rewritten forward and its subgraphs), report.json, report.md and
        report.html into `outdir`, all or nothing."""
        return write_outputs(self, Path(outdir))

    def write_model(self, directory: Path) -> None:
        (directory / self.model_file).write_text(self.rewrite.model_py(), encoding="utf-8")


def fuse(
    model: onnx.ModelProto | str | os.PathLike,
    opt_level: int = 3,
    target: str | None = None,
    *,
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE,
    verify: bool = False,
    seed: int = 0,
    rules: Sequence[str | os.PathLike] = (),
    disable_rules: Sequence[str] = (),
    use_library: bool = True,
    disable_fusions: Sequence[str] = (),
    target_file: str | os.PathLike | None = None,
    dims: dict[str, int] | None = None,
    backend: str = "auto",
    example_inputs: tuple | None = None,
    name: str | None = None,
    kernels: bool = False,
    verify_kernels: bool = False,
) -> FuseResult | FxFuseResult:
    """Run the fusion pass on an ONNX model (a ModelProto or a path), or on a PyTorch graph (a
    torch.export ExportedProgram or an ATen-level torch.fx GraphModule).

    Raises InputError for a bad or unsupported model. With `verify=True` the rewritten model is
    run against the original (onnxruntime; PyTorch on CPU for a PyTorch input, on
    `example_inputs` or the program's own); the outcome is in `result.verification` and the
    report (a mismatch does not raise: callers decide). PyTorch input only: `backend` "cpu"
    (every group calls torch.ops.autofuse.fused), "npu" (rule groups call their torch_npu op) or
    "auto" (npu where torch_npu and an NPU are present); `name` labels the input in the report.
    ONNX input only: `kernels` generates an Ascend C kernel project per fused group
    (`result.kernels`, written by `save()`; the command line does this by default at level 3);
    `verify_kernels` also compiles each on the CPU emulator and compares it with onnxruntime
    (`result.kernel_checks`, the report's per-group `kernel`; a mismatch does not raise).
    `result.kernel_coverage` lists the groups left without a kernel and, with `verify_kernels`,
    the groups left unverified (neither raises: callers decide, as the command line does with
    exit codes 3 and 4). A bug in the generator (an exception, not a group it declines) raises
    GeneratorError naming the group.
    """
    hardware = load_profile(str(target_file)) if target_file else load_profile(target or DEFAULT_TARGET)
    if not 0 <= opt_level <= 3:
        raise InputError(f"--opt-level must be 0-3, got {opt_level}")
    if max_group_size < 2:
        raise InputError(f"the group-size cap must be at least 2, got {max_group_size}")
    with _no_cyclic_gc():
        return _fuse(model, opt_level, hardware, max_group_size=max_group_size, verify=verify, seed=seed,
                     rules=rules, disable_rules=disable_rules, use_library=use_library,
                     disable_fusions=disable_fusions, dims=dims, backend=backend,
                     example_inputs=example_inputs, name=name, kernels=kernels, verify_kernels=verify_kernels)


@contextlib.contextmanager
def _no_cyclic_gc():
    """The pass allocates millions of small objects and frees them by reference counting; the
    cyclic collector would rescan the growing heap over and over (superlinear on big graphs)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fuse(model, opt_level, hardware, *, max_group_size, verify, seed, rules, disable_rules, use_library,
          disable_fusions, dims, backend, example_inputs, name, kernels, verify_kernels) -> FuseResult | FxFuseResult:
    start = time.perf_counter()
    rule_set = load_rule_set(rules, use_library=use_library)
    _check_rule_names(rule_set, disable_rules)
    torch_graph = _is_torch_graph(model)
    loaded = load_fx(model, source=name, example_inputs=example_inputs) if torch_graph else load_onnx(model)
    bound = bind_dims(loaded.graph, dims)
    # A PyTorch graph is lowered to torch_npu ops: a rule with one pays only as the whole block.
    keep = frozenset(r.name for r in rule_set if r.lowering.get("torch_npu")) if torch_graph else frozenset()
    static = None if torch_graph else concrete_shapes(loaded, bound)
    # An ONNX model's fused groups become generated kernels: the planner forms only groups the
    # generator can write (a PyTorch graph's rule groups become torch_npu ops instead).
    emittable = None if torch_graph else EmissionCheck(loaded.graph, hardware, bound, static, rule_set)
    plan = plan_fusion(loaded.graph, opt_level, max_group_size=max_group_size, rules=rule_set,
                       disabled_rules=frozenset(disable_rules), disabled_groups=frozenset(disable_fusions),
                       hardware=hardware, dims=bound, static_shapes=static, keep_rules=keep, emittable=emittable)
    if not torch_graph:
        plan = free_function_names(plan, loaded.model)
    rewritten = rewrite_fx(loaded, plan, rule_set, backend=backend) if torch_graph else rewrite_onnx(loaded, plan)
    seconds = time.perf_counter() - start
    verification = None
    if verify and torch_graph:
        verification = compare_outputs(loaded, rewritten)
    elif verify:
        verification = verify_models(loaded.model, rewritten, seed=seed, base_dir=loaded.base_dir)
    generated = checks = None
    if not torch_graph and (verify_kernels or kernels):
        generated = generate_kernels(loaded.graph, plan, hardware, bound, static, rule_set,
                                     shapes_at=functools.partial(concrete_shapes, loaded))
        if verify_kernels:
            checks = check_kernels(loaded, plan, generated, hardware, static, seed=seed, rules=rule_set, dims=bound)
    report = build_report(loaded.graph, plan, source=loaded.source, target=hardware.name,
                          pass_seconds=seconds, verification=verification, generated=generated, kernel_checks=checks,
                          renamed_nodes=[] if torch_graph else [r.entry() for r in loaded.renamed])
    if torch_graph:
        return FxFuseResult(rewritten, annotate_report(report, rewritten), plan, loaded, verification)
    return FuseResult(rewritten, report, plan, loaded, verification, generated, checks)


def _is_torch_graph(model) -> bool:
    """An ExportedProgram or GraphModule. Such an object exists only once torch is imported, so
    the check never imports torch itself."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, (torch.export.ExportedProgram, torch.fx.GraphModule))


def load_rule_set(extra: Sequence[str | os.PathLike] = (), *, use_library: bool = True) -> list[Rule]:
    """The shipped rule library (unless `use_library` is False) plus the user's rule files."""
    files = (library_files() if use_library else []) + [Path(p) for p in extra]
    return list(_load_cached(tuple((str(f), *_identity(f)) for f in files)))


def _identity(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)  # load_rules reports the missing file
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=16)
def _load_cached(files: tuple[tuple[str, int, int], ...]) -> tuple[Rule, ...]:
    """Rules are immutable: the same files (same path, mtime and size) are parsed once."""
    return tuple(load_rules([f[0] for f in files]))


def _check_rule_names(rules: list[Rule], names: Sequence[str]) -> None:
    known = {r.name for r in rules}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(f"--disable-rule: no rule named '{name}'{hint}")


def write_outputs(result: FuseResult | FxFuseResult, outdir: Path) -> Path:
    """Write every output into a temporary directory beside `outdir`, then move them in."""
    with staged_outdir(outdir) as staging:
        result.write_model(staging)
        (staging / "report.json").write_text(report_json(result.report))
        (staging / "report.md").write_text(render_markdown(result.report))
        (staging / "report.html").write_text(render_html(result.report, result.loaded.graph, result.plan),
                                             encoding="utf-8")
    return outdir.resolve()


def report_json(report: dict) -> str:
    """JSON with one top-level key per line and one list entry per line: readable with a pager
    and diffable, yet written by the C encoder (an indented dump is ten times slower)."""
    lines = []
    for key, value in report.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(json.dumps(item) for item in value)
            lines.append(f"  {json.dumps(key)}: [\n    {items}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _copy_external_data(result: FuseResult, staging: Path) -> None:
    """External weight files keep their relative locations next to the rewritten model."""
    locations = {
        entry.value
        for tensor in result.model.graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    for location in sorted(locations):
        if result.loaded.base_dir is None:
            raise InputError(f"external data file '{location}' cannot be copied: the model was not loaded from a file")
        source = result.loaded.base_dir / location
        destination = staging / location
        if not source.is_file() or ".." in Path(location).parts:
            raise InputError(f"external data file '{location}' not found next to the model")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
