"""`fuse()`: the whole pass as one call. A thin layer over the pipeline stages."""
from __future__ import annotations

import contextlib
import difflib
import gc
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE
from autofuse.candidates.rules.loader import Rule, library_files, load_rules
from autofuse.cost.hardware import DEFAULT_TARGET, load_profile
from autofuse.errors import InputError
from autofuse.cost.model import bind_dims
from autofuse.frontends.onnx import LoadedModel, concrete_shapes, load_onnx
from autofuse.planner.plan import Plan, plan_fusion
from autofuse.report import build_report, render_html, render_markdown
from autofuse.rewrite.onnx import rewrite_onnx
from autofuse.verify.onnx_runtime import Verification, verify_models



@dataclass
class FuseResult:
    """The rewritten model, its report, and the plan and input they came from."""

    model: onnx.ModelProto
    report: dict
    plan: Plan
    loaded: LoadedModel
    verification: Verification | None = None

    def save(self, outdir: str | os.PathLike) -> Path:
        """Write model.onnx, report.json, report.md and report.html into `outdir`, all or nothing."""
        return write_outputs(self, Path(outdir))


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
) -> FuseResult:
    """Run the fusion pass on an ONNX model (a ModelProto or a path).

    Raises InputError for a bad or unsupported model. With `verify=True` the rewritten model is
    run against the original in onnxruntime; the outcome is in `result.verification` and the
    report (a mismatch does not raise: callers decide).
    """
    hardware = load_profile(str(target_file)) if target_file else load_profile(target or DEFAULT_TARGET)
    if not 0 <= opt_level <= 3:
        raise InputError(f"--opt-level must be 0-3, got {opt_level}")
    if max_group_size < 2:
        raise InputError(f"the group-size cap must be at least 2, got {max_group_size}")
    with _no_cyclic_gc():
        return _fuse(model, opt_level, hardware, max_group_size=max_group_size, verify=verify, seed=seed,
                     rules=rules, disable_rules=disable_rules, use_library=use_library,
                     disable_fusions=disable_fusions, dims=dims)


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
          disable_fusions, dims) -> FuseResult:
    start = time.perf_counter()
    rule_set = load_rule_set(rules, use_library=use_library)
    _check_rule_names(rule_set, disable_rules)
    loaded = load_onnx(model)
    bound = bind_dims(loaded.graph, dims)
    plan = plan_fusion(loaded.graph, opt_level, max_group_size=max_group_size, rules=rule_set,
                       disabled_rules=frozenset(disable_rules), disabled_groups=frozenset(disable_fusions),
                       hardware=hardware, dims=bound, static_shapes=concrete_shapes(loaded, bound))
    rewritten = rewrite_onnx(loaded, plan)
    seconds = time.perf_counter() - start
    verification = None
    if verify:
        verification = verify_models(loaded.model, rewritten, seed=seed, base_dir=loaded.base_dir)
    report = build_report(loaded.graph, plan, source=loaded.source, target=hardware.name,
                          pass_seconds=seconds, verification=verification)
    return FuseResult(rewritten, report, plan, loaded, verification)


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


def write_outputs(result: FuseResult, outdir: Path) -> Path:
    """Write every output into a temporary directory beside `outdir`, then move them in."""
    outdir = outdir.resolve()
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a directory")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        _copy_external_data(result, staging)
        onnx.save_model(result.model, staging / "model.onnx")
        (staging / "report.json").write_text(report_json(result.report))
        (staging / "report.md").write_text(render_markdown(result.report))
        (staging / "report.html").write_text(render_html(result.report, result.loaded.graph, result.plan),
                                             encoding="utf-8")
        if not outdir.exists():
            staging.rename(outdir)
            return outdir
        for item in staging.iterdir():
            os.replace(item, outdir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return outdir


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
