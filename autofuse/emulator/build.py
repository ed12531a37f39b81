"""Ascend C sources -> a CPU executable (g++ against the emulator headers), and running it.

`build()` compiles a kernel .cpp and its host harness .cpp (which uses tikicpulib.h) into one
executable, configured for a hardware profile: `-D__NPU_ARCH__` from targets.yaml and the UB size
and queue limits from the profile. Builds are cached under `.cache/emulator/` (or the caller's
directory) by a hash of everything that goes into them, failed builds included, so repeated
verification runs recompile nothing. `run()` executes a build and parses the emulator's lines.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autofuse.cost.hardware import Hardware, load_profile
from autofuse.errors import AutofuseError, InputError
from autofuse.yamlfile import read_yaml

_HERE = Path(__file__).parent
_TARGETS_FILE = _HERE / "targets.yaml"
_HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".inc")
DEFAULT_CACHE_DIR = Path(".cache") / "emulator"
EXIT_CODE = 86  # AUTOFUSE_EMU_EXIT_CODE in the headers: a kernel broke a limit or misused the API


class EmulatorError(AutofuseError):
    """A kernel did not build or did not run cleanly on the emulator."""


class CompileError(EmulatorError):
    """g++ rejected the sources; `compiler_output` holds its full output."""

    def __init__(self, message: str, compiler_output: str = "") -> None:
        super().__init__(message)
        self.compiler_output = compiler_output


class KernelRunError(EmulatorError):
    """The executable failed: an emulator error (a broken limit), a crash, or a timeout."""


def include_dir() -> Path:
    """The emulator's include directory (kernel_operator.h, tikicpulib.h, lib/matmul_intf.h)."""
    return _HERE / "include"


@dataclass(frozen=True)
class EmulatorTarget:
    """What the emulator is compiled for: the profile's architecture and limits."""

    name: str
    npu_arch: int
    ub_bytes: int
    ub_alignment: int
    queue_buffers_per_position: int
    queue_buffers_total: int
    repeat_bytes: int
    kernel_arguments: int

    def defines(self) -> list[str]:
        return [
            f"-D__NPU_ARCH__={self.npu_arch}",
            f"-DAUTOFUSE_EMU_UB_BYTES={self.ub_bytes}",
            f"-DAUTOFUSE_EMU_UB_ALIGN={self.ub_alignment}",
            f"-DAUTOFUSE_EMU_QUE_BUFFERS_PER_POSITION={self.queue_buffers_per_position}",
            f"-DAUTOFUSE_EMU_QUE_BUFFERS_TOTAL={self.queue_buffers_total}",
            f"-DAUTOFUSE_EMU_REPEAT_BYTES={self.repeat_bytes}",
            f"-DAUTOFUSE_EMU_KERNEL_ARGS={self.kernel_arguments}",
        ]


@functools.cache
def _npu_archs() -> dict[str, int]:
    data = read_yaml(_TARGETS_FILE, InputError, "emulator target table")
    if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
        raise InputError(f"{_TARGETS_FILE}: expected a mapping of profile name -> __NPU_ARCH__ number")
    return dict(data)


def target_for(hardware: Hardware | str | Path) -> EmulatorTarget:
    """The emulator configuration of a hardware profile (a Hardware, a target name or a file)."""
    hw = hardware if isinstance(hardware, Hardware) else load_profile(hardware)
    archs = _npu_archs()
    if hw.name not in archs:
        raise InputError(f"hardware profile '{hw.name}': no __NPU_ARCH__ known for it in {_TARGETS_FILE} "
                         f"(known: {', '.join(archs)})")
    return EmulatorTarget(hw.name, archs[hw.name], hw.ub_usable_bytes, hw.ub_alignment,
                          hw.max_queue_buffers_per_position, hw.max_queue_buffers_total, hw.vector_repeat_bytes,
                          hw.max_kernel_arguments)


# -- building ------------------------------------------------------------------------------------


@functools.cache
def _compiler() -> tuple[str, str]:
    path = shutil.which("g++")
    if path is None:
        raise EmulatorError("g++ not found on PATH: the Ascend C emulator needs g++ (C++17, _Float16)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return path, version.splitlines()[0] if version else ""


def _files_in(directory: Path) -> Iterable[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _headers_beside(directory: Path) -> Iterable[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in _HEADER_SUFFIXES)


def _cache_key(sources: Sequence[Path], include_dirs: Sequence[Path], flags: Sequence[str]) -> str:
    """Hash of the compiler, the flags, the sources, the headers beside them and in the extra
    include directories (top level), and every emulator header. Contents and relative layout only,
    not absolute paths: the same project written to another (temporary) directory hits the entry."""
    digest = hashlib.sha256()
    digest.update("\0".join([*_compiler(), *(f for f in flags if not f.startswith("-I"))]).encode())

    def add(label: str, path: Path) -> None:
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")

    for i, source in enumerate(sources):
        add(f"source{i}:{source.name}", source)
    for j, directory in enumerate([*(s.parent for s in sources), *include_dirs]):
        for header in _headers_beside(directory):
            add(f"dir{j}:{header.name}", header)
    for path in _files_in(include_dir()):
        add(f"emulator:{path.relative_to(include_dir())}", path)
    return digest.hexdigest()[:24]


def _error_summary(output: str, limit: int = 6) -> str:
    """The error lines, with the "required from here" line that points into the caller's code."""
    lines = [line for line in output.splitlines() if "error" in line or "required from here" in line]
    return "\n".join(lines[:limit]) or "\n".join(output.splitlines()[:limit])


def build(sources: Sequence[str | Path], target: EmulatorTarget | Hardware | str, *,
          include_dirs: Sequence[str | Path] = (), defines: Sequence[str] = (),
          cache_dir: str | Path | None = None, opt: str = "-O1", name: str = "kernel") -> Path:
    """Compile `sources` (kernel and harness .cpp files) into an executable for `target`; returns
    its path. `defines` are extra "NAME=VALUE" macros. Raises CompileError with the first error
    lines when g++ fails (also when the failure was cached). Safe to call from several threads."""
    tgt = target if isinstance(target, EmulatorTarget) else target_for(target)
    srcs = [Path(s).resolve() for s in sources]
    incs = [Path(d).resolve() for d in include_dirs]
    for path in srcs:
        if not path.is_file():
            raise InputError(f"emulator build: source file {path} does not exist")
    flags = ["-std=c++17", opt, "-fno-strict-aliasing", "-DASCENDC_CPU_DEBUG=1", *tgt.defines(),
             *(f"-D{d}" for d in defines), f"-I{include_dir()}", *(f"-I{d}" for d in incs)]
    out_dir = Path(cache_dir or DEFAULT_CACHE_DIR).resolve() / _cache_key(srcs, incs, flags)
    exe, failed = out_dir / name, out_dir / "compile_error.txt"
    label = ", ".join(p.name for p in srcs)
    if not exe.is_file() and not failed.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / ".lock", "w") as lock:  # one compile per key, across threads and processes
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not exe.is_file() and not failed.is_file():
                _compile(flags, srcs, exe, failed)
    if failed.is_file():
        output = failed.read_text()
        raise CompileError(f"emulator build of {label} failed:\n{_error_summary(output)}", output)
    return exe


def _compile(flags: Sequence[str], sources: Sequence[Path], exe: Path, failed: Path) -> None:
    """g++ into a temporary file renamed into place, or the compiler output into `failed`."""
    fd, tmp = tempfile.mkstemp(dir=exe.parent, prefix=f".{exe.name}.")
    os.close(fd)
    proc = subprocess.run([_compiler()[0], *flags, *map(str, sources), "-o", tmp],
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        os.replace(tmp, exe)
    else:
        os.unlink(tmp)
        failed.write_text(proc.stderr)


# -- running -------------------------------------------------------------------------------------

_LAUNCH = re.compile(r"autofuse-emulator: launch (\S+) mode=(\S+) blocks=(\d+) gm_read=(\d+) "
                     r"gm_written=(\d+) warnings=(\d+)")


@dataclass(frozen=True)
class Launch:
    """One ICPU_RUN_KF, as the emulator reported it."""

    kernel: str
    mode: str
    blocks: int
    gm_bytes_read: int
    gm_bytes_written: int
    warnings: int


@dataclass(frozen=True)
class RunResult:
    """What an emulator executable did: its exit code, output, and the emulator's own lines."""

    returncode: int
    stdout: str
    stderr: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.errors

    def check(self) -> RunResult:
        """Self, or KernelRunError naming the first emulator error (or the exit code)."""
        if self.ok:
            return self
        if self.errors:
            raise KernelRunError(self.errors[0])
        tail = self.stderr.strip().splitlines()[-1:] or ["no output"]
        raise KernelRunError(f"emulator executable exited with code {self.returncode}: {tail[0]}")


def _parse(returncode: int, stdout: str, stderr: str) -> RunResult:
    errors, warnings, launches = [], [], []
    for line in stderr.splitlines():
        if line.startswith("autofuse-emulator: error: "):
            errors.append(line[len("autofuse-emulator: error: "):])
        elif line.startswith("autofuse-emulator: warning: "):
            warnings.append(line[len("autofuse-emulator: warning: "):])
        elif (m := _LAUNCH.match(line)) is not None:
            launches.append(Launch(m[1], m[2], int(m[3]), int(m[4]), int(m[5]), int(m[6])))
    return RunResult(returncode, stdout, stderr, errors, warnings, launches)


def run(exe: str | Path, args: Sequence[str | Path] = (), *, timeout: float = 300,
        cwd: str | Path | None = None) -> RunResult:
    """Run an emulator executable; never raises for a failing kernel (see RunResult.check).
    On timeout the whole process group (the launcher and its forked cores) is killed."""
    proc = subprocess.Popen([str(exe), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise KernelRunError(f"{Path(exe).name} timed out after {timeout:g} s") from None
    return _parse(proc.returncode, stdout, stderr)
