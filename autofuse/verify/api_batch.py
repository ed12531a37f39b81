"""Many generated sources type-checked in one compiler run against CANN's headers.

Compiling one kernel against CANN's headers costs about half a second even with kernel_operator.h
precompiled, and an op_host source close to a second: nearly all of it is the headers, parsed
again for every source. The suite generates about five hundred distinct projects per target, so
api_check.py puts many sources into one translation unit and parses the headers once:

- kernels (op_kernel/*.cpp), once as is and once with -D__DAV_VEC__: each source is `#include`d
  inside a namespace of its own, after the CANN headers it includes itself (already included,
  their include guards make its own #include lines no-ops). GET_TILING_DATA, which CANN's op
  compiler defines per op in a header it force-includes, is the kit's generated macro for that
  source's tiling struct, redefined before each source;
- op_host sources: included one after the other, their file-local functions (TilingFunc,
  InferShape, InferDataType, AfSetNumBlocks) renamed per source by macros; the op classes and
  their registrations are named after the op, which is unique within a unit;
- ATC plugins (framework/onnx_plugin/*.cc): one after the other, as they are.

A unit holds sources that include exactly the same CANN headers, that define no macros of their
own (no #define, #undef or #pragma) and whose file names differ (so their ops, kernels, structs
and include guards do too). A source can therefore see nothing in a unit that it would not see
alone: no header it did not include, no macro of another source. The reverse is not promised —
a unit may fail where each source would pass alone — so a failing unit is never an answer: the
members its error messages name are handed back, the others compiled again without them (a
unit whose messages name no member is split in halves), and the caller checks what was handed
back with check.sh, whose verdict and words are the answer.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

UNIT_SIZE = 48  # sources per unit: large enough that the headers are a small part of a unit's time
_COMPILED = ("op_kernel/", "op_host/", "framework/")
_PASSES = ("", "-D__DAV_VEC__")  # the two compiles of a kernel, as check.sh does them
_HOST_LOCALS = ("TilingFunc", "InferShape", "InferDataType", "AfSetNumBlocks")
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.MULTILINE)
_OWN_MACROS = re.compile(r"^[ \t]*#[ \t]*(define|undef|pragma)\b", re.MULTILINE)
_TILING_STRUCT = re.compile(r"REGISTER_TILING_DEFAULT\(\s*([A-Za-z_]\w*)\s*\)")
_SOC = {2201: "Ascend910B", 2002: "Ascend310P"}


@dataclass
class _Unit:
    kind: str  # "kernel", "host" or "plugin"
    pass_flag: str
    headers: tuple[str, ...]  # what every member includes besides its own files, as written: '"x.h"', "<vector>"
    members: list[tuple[str, Path]] = field(default_factory=list)  # (project, source)


def check(kit: Path, projects: Mapping[str, Mapping[str, str]], npu_arch: int, work: Path, timeout_s: float,
          jobs: int | None = None) -> set[str]:
    """The projects (op folder -> path -> text) all of whose sources compiled in units that
    passed. Everything else is for the caller to check alone."""
    folder = work / "projects"
    seen: dict[str, int] = {}
    for op, files in projects.items():
        _write(folder / op, files, seen)
    units, unbatched = _units(folder, list(projects))
    if not units:
        return set()
    kernel_flags, host_flags = flags(kit, "kernel", npu_arch), flags(kit, "host")
    headers = _tiling_headers(kit, npu_arch, [u for u in units if u.kind == "kernel"], work)
    with ThreadPoolExecutor(len(_PASSES)) as pool:
        pch = dict(zip(_PASSES, pool.map(lambda p: _precompiled(kit, kernel_flags, p), _PASSES)))
    failed = set(unbatched)
    pending, number = units, 0
    with ThreadPoolExecutor(max(1, jobs or os.cpu_count() or 1)) as pool:
        while pending:
            commands = []
            for unit in pending:
                commands.append(_command(unit, work / f"unit{number}", headers, kernel_flags, host_flags, pch))
                number += 1
            retry = []
            for unit, errors in zip(pending, pool.map(lambda command: _errors(command, timeout_s), commands)):
                if errors is None:
                    continue
                # the members the compiler's messages name go to check.sh; the others are tried
                # again without them. Where no member is named, the unit is split in halves.
                named = [m for m in unit.members if f"{folder / m[0]}/" in errors]
                if len(unit.members) == 1 or len(named) == len(unit.members):
                    failed.update(op for op, _ in named or unit.members)
                elif named:
                    failed.update(op for op, _ in named)
                    retry.append(replace(unit, members=[m for m in unit.members if m not in named]))
                else:
                    half = len(unit.members) // 2
                    retry += [replace(unit, members=unit.members[:half]), replace(unit, members=unit.members[half:])]
            pending = retry
    batched = {op for unit in units for op, _ in unit.members}
    return {op for op in projects if op in batched and op not in failed and _complete(folder / op)}


def _command(unit: _Unit, stem: Path, headers: dict[Path, Path], kernel_flags: list[str], host_flags: list[str],
             pch: dict[str, Path | None]) -> list[str]:
    """Write the unit's source; the compiler command that checks it."""
    source = stem.with_suffix(".cc" if unit.kind == "plugin" else ".cpp")
    if unit.kind != "kernel":
        source.write_text(_host_unit(unit))
        return ["g++", "-fsyntax-only", *host_flags, str(source)]
    source.write_text(_kernel_unit(unit, headers))
    extra = [unit.pass_flag] if unit.pass_flag else []
    use_pch = pch[unit.pass_flag] if '"kernel_operator.h"' in unit.headers else None
    return ["g++", "-fsyntax-only", *kernel_flags, *extra, *(["-include", str(use_pch)] if use_pch else []),
            str(source)]


def _write(project: Path, files: Mapping[str, str], seen: dict[str, int]) -> None:
    """The project's compiled sources, under `project`. Projects of one op name (the same rule
    example at two sizes, one block in two models) are renamed apart: every spelling of the op
    name (AutofuseRmsNorm3, autofuse_rms_norm3, AUTOFUSE_RMS_NORM3), in file names and texts,
    gets a suffix, so that their kernels, classes, structs and include guards differ."""
    compiled = {relative: text for relative, text in files.items() if relative.startswith(_COMPILED)}
    kernel = next((r for r in sorted(compiled) if r.startswith("op_kernel/") and r.endswith(".cpp")), None)
    struct = _TILING_STRUCT.search(compiled[kernel]) if kernel else None
    spellings: list[tuple[str, str]] = []
    if kernel and struct and struct.group(1).endswith("TilingData"):
        snake, camel = Path(kernel).stem, struct.group(1)[:-len("TilingData")]
        count = seen[snake] = seen.get(snake, 0) + 1
        if count > 1:
            spellings = [(camel, f"{camel}Dup{count}"), (snake.upper(), f"{snake.upper()}_DUP{count}"),
                         (snake, f"{snake}_dup{count}")]
    for relative, text in compiled.items():
        for before, after in spellings:
            relative, text = relative.replace(before, after), text.replace(before, after)
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def flags(kit: Path, kind: str, npu_arch: int = 2201) -> list[str]:
    """check.sh's compiler flags for a kernel (of an architecture) or a host source."""
    key = (kit, kind, npu_arch if kind == "kernel" else 0)
    if key not in _FLAGS:
        done = subprocess.run(["bash", str(kit / "tools" / "check.sh"), "--print-flags", kind, "--arch", str(npu_arch)],
                              capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
        lines = done.stdout.split("\n")[:-1]
        if done.returncode != 0 or not lines:
            from autofuse.verify.api_check import ApiCheckUnavailable
            raise ApiCheckUnavailable(f"check.sh --print-flags {kind} failed: {' '.join(done.stderr.split())[:300]}")
        _FLAGS[key] = lines
    return _FLAGS[key]


_FLAGS: dict[tuple, list[str]] = {}


def _complete(project: Path) -> bool:
    """check.sh's rule: a project has a kernel and an op_host source."""
    return any((project / "op_kernel").glob("*.cpp")) and any((project / "op_host").glob("*.cpp"))


def _units(folder: Path, projects: Sequence[str]) -> tuple[list[_Unit], set[str]]:
    """The units, and the projects with a source that cannot share one."""
    groups: dict[tuple, list[_Unit]] = {}
    unbatched: set[str] = set()

    def add(kind: str, pass_flag: str, op: str, source: Path, text: str) -> None:
        own = source.parent
        headers = tuple(f"<{name}>" if bracket == "<" else f'"{name}"' for bracket, name in _INCLUDE.findall(text)
                        if not (own / name).exists())
        bucket = groups.setdefault((kind, pass_flag, headers), [])
        unit = next((u for u in bucket if len(u.members) < UNIT_SIZE
                     and all(s.name != source.name for _, s in u.members)), None)  # names differ after _write
        if unit is None:
            unit = _Unit(kind, pass_flag, headers)
            bucket.append(unit)
        unit.members.append((op, source))

    for op in projects:
        sources = [("kernel", path) for path in sorted((folder / op / "op_kernel").glob("*.cpp"))]
        sources += [("host", path) for path in sorted((folder / op / "op_host").glob("*.cpp"))]
        sources += [("plugin", path) for path in sorted((folder / op / "framework" / "onnx_plugin").glob("*.cc"))]
        texts = [(kind, path, path.read_text(encoding="utf-8")) for kind, path in sources]
        if any(_OWN_MACROS.search(text) for _, _, text in texts) or \
                any(kind == "kernel" and len(set(_TILING_STRUCT.findall(text))) != 1 for kind, _, text in texts):
            unbatched.add(op)
            continue
        for kind, path, text in texts:
            for pass_flag in (_PASSES if kind == "kernel" else ("",)):
                add(kind, pass_flag, op, path, text)
    return [unit for bucket in groups.values() for unit in bucket], unbatched


def _tiling_headers(kit: Path, npu_arch: int, units: list[_Unit], work: Path) -> dict[Path, Path]:
    """The kit's generated GET_TILING_DATA header for every kernel source (one generator run)."""
    out: dict[Path, Path] = {}
    arguments = []
    for unit in units:
        for op, source in unit.members:
            if source not in out:
                struct = _TILING_STRUCT.search(source.read_text(encoding="utf-8")).group(1)
                out[source] = work / "tiling" / f"{len(out)}.{source.stem}.h"
                arguments += [source.stem, struct, str(out[source])]
    (work / "tiling").mkdir(parents=True, exist_ok=True)
    if arguments:
        done = subprocess.run([sys.executable, str(kit / "tools" / "gen_tiling_header.py"), "--soc", _SOC[npu_arch],
                               *arguments], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            from autofuse.verify.api_check import ApiCheckUnavailable
            raise ApiCheckUnavailable(f"the kit's tiling header generator failed: {done.stderr.strip()[-300:]}")
    return out


_GET_TILING_DATA = re.compile(r"^#define GET_TILING_DATA\(.*?(?<!\\)\n", re.MULTILINE | re.DOTALL)


def _kernel_unit(unit: _Unit, tiling: dict[Path, Path]) -> str:
    lines = [f"// autofuse: {len(unit.members)} kernels type-checked together (autofuse/verify/api_batch.py)"]
    lines += [f"#include {name}" for name in unit.headers]
    lines.append(f'#include "{tiling[unit.members[0][1]]}"')  # InitTilingData and the other macros, once
    for number, (_, source) in enumerate(unit.members):
        macro = _GET_TILING_DATA.findall(tiling[source].read_text(encoding="utf-8"))[-1]
        lines += ["#undef GET_TILING_DATA", macro.rstrip("\n"),
                  f"namespace autofuse_unit_member_{number} {{", f'#include "{source}"', "}"]
    return "\n".join(lines) + "\n"


def _host_unit(unit: _Unit) -> str:
    lines = [f"// autofuse: {len(unit.members)} sources type-checked together (autofuse/verify/api_batch.py)"]
    lines += [f"#include {name}" for name in unit.headers]
    for number, (_, source) in enumerate(unit.members):
        if unit.kind == "host":
            lines += [f"#define {name} {name}_autofuse_unit_member_{number}" for name in _HOST_LOCALS]
        lines.append(f'#include "{source}"')
        if unit.kind == "host":
            lines += [f"#undef {name}" for name in _HOST_LOCALS]
    return "\n".join(lines) + "\n"


def _errors(command: list[str], timeout_s: float) -> str | None:
    """None when the unit compiles, else the compiler's messages."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout_s,
                              env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        return f"the compile took over {timeout_s:.0f} s"
    return None if done.returncode == 0 else done.stderr


def _precompiled(kit: Path, kernel_flags: list[str], pass_flag: str) -> Path | None:
    """kernel_operator.h precompiled for these flags (about 200 MB, kept beside check.sh's own in
    the kit's cache folder); None where it cannot be built (the units then parse the header).
    Keyed by the flags (whose header view is named by the headers' content), the kit's stand-in
    headers (their folder is the same whatever they hold) and the compiler."""
    cache = _cache_folder()
    if cache is None:
        return None
    version = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256("\n".join([*kernel_flags, pass_flag, version]).encode())
    for stub in sorted((kit / "stubs").glob("*")):
        digest.update(stub.name.encode() + stub.read_bytes())
    key = digest.hexdigest()[:20]
    folder = cache / f"autofuse-pch-{key}"
    header = folder / "kernel_operator_pch.h"
    if (folder / "kernel_operator_pch.h.gch").is_file():
        return header
    temporary = cache / f".autofuse-pch-{key}.{os.getpid()}"
    temporary.mkdir(parents=True, exist_ok=True)
    (temporary / header.name).write_text('#include "kernel_operator.h"\n')
    done = subprocess.run(["g++", "-x", "c++-header", *kernel_flags, *([pass_flag] if pass_flag else []),
                           str(temporary / header.name), "-o", str(temporary / f"{header.name}.gch")],
                          capture_output=True, check=False, env={**os.environ, "LC_ALL": "C"})
    if done.returncode != 0:
        shutil.rmtree(temporary, ignore_errors=True)
        return None
    try:
        temporary.rename(folder)
    except OSError:  # another process built it first
        shutil.rmtree(temporary, ignore_errors=True)
    return header if (folder / "kernel_operator_pch.h.gch").is_file() else None


def _cache_folder() -> Path | None:
    """check.sh's cache folder: $ASCEND_API_CACHE, $XDG_CACHE_HOME/ascend-api, ~/.cache/ascend-api."""
    for chosen in (os.environ.get("ASCEND_API_CACHE"),
                   os.environ.get("XDG_CACHE_HOME") and Path(os.environ["XDG_CACHE_HOME"]) / "ascend-api",
                   os.environ.get("HOME") and Path(os.environ["HOME"]) / ".cache" / "ascend-api"):
        if chosen:
            try:
                Path(chosen).mkdir(parents=True, exist_ok=True)
                return Path(chosen)
            except OSError:
                continue
    return None
