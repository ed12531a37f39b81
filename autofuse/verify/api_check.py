"""Generated sources checked against Huawei's real Ascend C and CANN headers.

The emulator (autofuse/emulator) checks what a kernel computes, but it was written by the same
hands as the generator: a misreading of the API shared by both would pass it. This check compiles
every generated kernel (as is, and for the vector core with `-D__DAV_VEC__`), every op_host
source and every ATC ONNX plugin (framework/onnx_plugin/) with `g++ -fsyntax-only` against
Huawei's own headers, in CANN's CPU-debug mode, with the
kit in `third_party/ascend-api/` (its README says what it checks and what it cannot: no linking,
no device code paths, nothing below the AscendC:: API). The architecture is the profile's
`__NPU_ARCH__` (autofuse/emulator/targets.yaml): 2201 for Atlas A2/A3, 2002 for Atlas 300I.

The sources are first compiled many to a translation unit (api_batch.py: CANN's headers parsed
once for dozens of sources); the projects a failing unit's messages name are then checked one by
one with the kit's check.sh, and only that verdict counts as a failure.

The kit is found at `$AUTOFUSE_ASCEND_API`, else `third_party/ascend-api` of the source checkout
autofuse runs from. Where it is not there (an installed package), the check reports that it did
not run (`api_checked` null, and the summary says why); it never counts as passed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autofuse.verify import api_batch as batch

KIT_ENV = "AUTOFUSE_ASCEND_API"
_CHECKED = ("op_kernel/", "op_host/", "framework/")  # the sources of a project that are compiled
_LINE = re.compile(r"^(ok|FAIL)\s+([^/\s]+)/(op_kernel|op_host)/(\S+)(?: \[(.*)\])?$")


@dataclass(frozen=True)
class ApiResult:
    """One project against the real headers: `ok` when its kernel (both passes) and its op_host
    source compile; `error` the first failing compile and its first error lines, on one line."""

    ok: bool
    error: str | None = None


class ApiCheckUnavailable(Exception):
    """The kit or its compiler is not there: the check did not run (the message says why)."""


def kit_directory() -> Path | None:
    """The ascend-api kit: $AUTOFUSE_ASCEND_API, else third_party/ascend-api of the checkout."""
    chosen = os.environ.get(KIT_ENV)
    candidates = [Path(chosen)] if chosen else [Path(__file__).resolve().parents[2] / "third_party" / "ascend-api"]
    for kit in candidates:
        if (kit / "tools" / "check.sh").is_file():
            return kit
    return None


def check_projects(projects: Mapping[str, Mapping[str, str]], npu_arch: int, *, work: Path | None = None,
                   cache_dir: Path | None = None, timeout_s: float = 1800) -> dict[str, ApiResult]:
    """Type-check op projects: `projects` maps the op name (the project folder) to its files
    (path under the project -> text, as the generator writes them). Returns the result per op.
    With `cache_dir`, a result is kept per content (the sources, the architecture, the kit and
    the compiler) and a project seen before is not compiled again. Raises ApiCheckUnavailable
    where the kit, bash or g++ is missing."""
    if not projects:
        return {}
    kit = kit_directory()
    if kit is None:
        raise ApiCheckUnavailable(f"the ascend-api kit is not here (third_party/ascend-api of a source checkout, "
                                  f"or ${KIT_ENV})")
    for tool in ("bash", "g++"):
        if shutil.which(tool) is None:
            raise ApiCheckUnavailable(f"{tool} not found on PATH")
    keys = {op: _key(kit, npu_arch, files) for op, files in projects.items()}
    cached = {op: _cached(cache_dir, key) for op, key in keys.items()} if cache_dir else {}
    todo = {op: files for op, files in projects.items() if cached.get(op) is None}
    results = {op: result for op, result in cached.items() if result is not None}
    if todo:
        results.update(_run(kit, todo, npu_arch, work, timeout_s))
        if cache_dir:
            for op in todo:
                _store(cache_dir, keys[op], results[op])
    return {op: results[op] for op in projects}


def _run(kit: Path, projects: Mapping[str, Mapping[str, str]], npu_arch: int, work: Path | None,
         timeout_s: float, jobs: int | None = None) -> dict[str, ApiResult]:
    """Batched first, check.sh for what a batch does not clear. The sources are compiled many to
    a translation unit (batch.py says how, and why that cannot pass a source that fails alone);
    every project of a unit that fails, and every source that cannot share a unit, then goes
    through check.sh one project at a time, whose words become the error."""
    own = work is None
    root = Path(tempfile.mkdtemp(prefix="autofuse-api-")) if own else work
    try:
        cleared = batch.check(kit, projects, npu_arch, root / "batched", timeout_s, jobs)
        results = {op: ApiResult(True) for op in cleared}
        rest = {op: files for op, files in projects.items() if op not in cleared}
        if rest:
            results.update(_run_one_by_one(kit, rest, npu_arch, root / "single", timeout_s, jobs))
        return results
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _run_one_by_one(kit: Path, projects: Mapping[str, Mapping[str, str]], npu_arch: int, root: Path,
                    timeout_s: float, jobs: int | None = None) -> dict[str, ApiResult]:
    """check.sh over the projects, split into `jobs` folders checked at once (one per core); the
    ATC plugins compiled one by one. Slow (each compile parses CANN's headers again) but its
    error lines are the compiler's own, for the source alone."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(projects)))
    chunks = [root / f"kernels{j}" for j in range(jobs)]
    for i, (op, files) in enumerate(projects.items()):
        for relative, text in files.items():
            if relative.startswith(_CHECKED):
                path = chunks[i % jobs] / op / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    running = [subprocess.Popen(["bash", str(kit / "tools" / "check.sh"), str(chunk), "--arch", str(npu_arch),
                                 "--pch", "--errors", "3", "--logs", str(root / f"logs{j}")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "LC_ALL": "C"})
               for j, chunk in enumerate(chunks)]
    output = ""
    try:
        for process in running:
            stdout, stderr = process.communicate(timeout=timeout_s)
            if process.returncode not in (0, 1):
                raise ApiCheckUnavailable(f"check.sh exited {process.returncode}: {' '.join(stderr.split())[:300]}")
            output += stdout
    except subprocess.TimeoutExpired:
        raise ApiCheckUnavailable(f"the real-header check took over {timeout_s:.0f} s") from None
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = _parse(output, projects)
    folders = {op: chunks[i % jobs] for i, op in enumerate(projects)}
    return _with_plugins(kit, folders, projects, results, timeout_s)


def _with_plugins(kit: Path, folders: Mapping[str, Path], projects: Mapping[str, Mapping[str, str]],
                  results: dict[str, ApiResult], timeout_s: float) -> dict[str, ApiResult]:
    """ATC's ONNX plugin of each project (framework/onnx_plugin/*.cc) compiled alone with the
    kit's host flags, against metadef's register/register.h (check.sh covers op_kernel and
    op_host only)."""
    out = dict(results)
    flags = batch.flags(kit, "host")
    for op, files in projects.items():
        for relative in sorted(files):
            if relative.startswith("framework/onnx_plugin/") and relative.endswith(".cc"):
                path = folders[op] / op / relative
                error = _compile(flags, path, timeout_s)
                if error is not None and out[op].ok:
                    text = " ".join(error.replace(str(path.parents[2]) + "/", "").split())
                    out[op] = ApiResult(False, f"{relative}: {text}"[:600])
    return out


def _compile(flags: list[str], source: Path, timeout_s: float) -> str | None:
    """g++ -fsyntax-only; None when it compiles, else its first error lines."""
    done = subprocess.run(["g++", "-fsyntax-only", *flags, str(source)], capture_output=True, text=True, check=False,
                          timeout=timeout_s, env={**os.environ, "LC_ALL": "C"})
    if done.returncode == 0:
        return None
    return " ".join([line for line in done.stderr.splitlines() if "error" in line][:3]) or done.stderr[:300]


def _parse(output: str, projects: Mapping[str, Mapping[str, str]]) -> dict[str, ApiResult]:
    """check.sh's lines: `ok|FAIL  Op/op_kernel/x.cpp [flags]`, a failure followed by its
    indented error lines. Every project must have a kernel and a host line."""
    seen: dict[str, set[str]] = {}
    errors: dict[str, str] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        match = _LINE.match(line)
        if match:
            status, op, side, source, flags = match.groups()
            seen.setdefault(op, set()).add(side)
            current = None
            if status == "FAIL" and op not in errors:
                current = [f"{side}/{source}{f' [{flags}]' if flags else ''}:"]
                errors[op] = current  # type: ignore[assignment] - filled below, joined at the end
        elif current is not None and line.startswith("      "):
            current.append(line.strip())
    results = {}
    for op in projects:
        if op in errors:
            results[op] = ApiResult(False, " ".join(errors[op])[:600])
        elif seen.get(op) == {"op_kernel", "op_host"}:
            results[op] = ApiResult(True)
        else:
            results[op] = ApiResult(False, "check.sh did not report both its kernel and its op_host source")
    return results


def _key(kit: Path, npu_arch: int, files: Mapping[str, str]) -> str:
    """What a result depends on: the architecture, the kit, and the compiled sources up to their
    comments, blank lines, trailing blanks and the text inside string literals (none can change
    whether a source compiles; they are where two targets of one architecture differ:
    `AddConfig("ascend910_93")`). `#include` lines are kept whole."""
    digest = hashlib.sha256(f"{npu_arch}\n{_kit_identity(kit)}\n".encode())
    for relative in sorted(files):
        if relative.startswith(_CHECKED):
            text = _normalized(files[relative])
            digest.update(f"{relative}\n{len(text)}\n".encode() + text.encode())
    return digest.hexdigest()[:32]


_LITERAL_OR_COMMENT = re.compile(r'^\s*#\s*include[^\n]*|"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.MULTILINE | re.DOTALL)


def _normalized(text: str) -> str:
    def keep(match: re.Match) -> str:
        found = match.group(0)
        if found.lstrip().startswith("#"):
            return found
        return '""' if found.startswith('"') else ""

    lines = (line.rstrip() for line in _LITERAL_OR_COMMENT.sub(keep, text).splitlines())
    return "\n".join(line for line in lines if line)


_KIT_IDS: dict[Path, str] = {}


def _kit_identity(kit: Path) -> str:
    """The kit's own scripts and stand-ins, its sources (NOTICE: repositories and commits) and the
    compiler version: what a cached result depends on besides the sources."""
    if kit not in _KIT_IDS:
        digest = hashlib.sha256()
        for path in sorted([*(kit / "tools").glob("*"), *(kit / "stubs").glob("*"), kit / "LICENSES" / "NOTICE"]):
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
        version = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=False).stdout
        digest.update(version.encode())
        _KIT_IDS[kit] = digest.hexdigest()
    return _KIT_IDS[kit]


def _cached(cache_dir: Path, key: str) -> ApiResult | None:
    try:
        data = json.loads((cache_dir / "api" / f"{key}.json").read_text())
        return ApiResult(bool(data["ok"]), data.get("error"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(cache_dir: Path, key: str, result: ApiResult) -> None:
    """Best effort: a cache that cannot be written only costs the next run its compile time."""
    try:
        folder = cache_dir / "api"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({"ok": result.ok, "error": result.error}))
        temporary.replace(folder / f"{key}.json")
    except OSError:
        pass
