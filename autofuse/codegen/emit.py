"""KernelProgram -> source text, by rendering the jinja2 templates in codegen_templates/.

One template per family for the kernel (elementwise, row_reduction, matmul_epilogue, all
extending common/kernel.cpp.j2) and one per host-side file. Nothing here decides anything about
the kernel: the values come from the program, the text from the templates.
"""
from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

import jinja2

from autofuse import __version__
from autofuse.codegen.program import CTYPES, ITEMSIZE, KernelProgram
from autofuse.codegen.values import TEMPLATES
from autofuse.codegen.views import row_index_expr
from autofuse.cost.hardware import Hardware
from autofuse.cost.tiling import BYTES_PER_CORE
from autofuse.errors import AutofuseError
from autofuse.yamlfile import read_yaml

# ONNX dtype -> the names CANN uses in an OpDef, msOpGen's JSON, and the Matmul tiling library.
_GE_TYPES = {"float32": "ge::DT_FLOAT", "float16": "ge::DT_FLOAT16", "bfloat16": "ge::DT_BF16",
             "int64": "ge::DT_INT64", "int32": "ge::DT_INT32", "bool": "ge::DT_BOOL", "uint8": "ge::DT_UINT8",
             "int8": "ge::DT_INT8", "int16": "ge::DT_INT16"}
_JSON_TYPES = {"float32": "float", "float16": "float16", "bfloat16": "bfloat16", "int64": "int64",
               "int32": "int32", "bool": "bool", "uint8": "uint8", "int8": "int8", "int16": "int16"}
_MATMUL_TYPES = {"float32": "DT_FLOAT", "float16": "DT_FLOAT16", "bfloat16": "DT_BF16"}
_SCALAR_MEMBER = re.compile(r"^(s\d+) = ")
# A number in C++ code (not part of a name or a floating-point literal).
NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # Templates are package data: loaded once per process, never re-checked on disk.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              **_OPTIONS, bytecode_cache=_TemplateCache(template_cache_dir()))


# How the templates are compiled; part of the cache's key with the versions of autofuse and jinja2.
_OPTIONS = {"keep_trailing_newline": True, "autoescape": False, "auto_reload": False}


def template_cache_dir() -> Path:
    """Where compiled templates are kept between runs: under $AUTOFUSE_CACHE_DIR/templates, else
    $XDG_CACHE_HOME/autofuse/templates, else ~/.cache/autofuse/templates, one folder per
    autofuse and jinja2 version and compile options (a template's entry is keyed by its source)."""
    root = os.environ.get("AUTOFUSE_CACHE_DIR")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "autofuse")
    options = ",".join(f"{k}={v}" for k, v in sorted(_OPTIONS.items()))
    tag = hashlib.sha1(f"{__version__}|{jinja2.__version__}|{options}".encode()).hexdigest()[:12]
    return Path(root) / "templates" / tag


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates on disk (compiling the templates costs ~0.1 s per run). An
    entry is keyed by the template's name and a checksum of its source and holds the Python
    version, so an edited template or another interpreter compiles afresh. A cache directory that
    cannot be created or written only means compiling every time."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self._usable: bool | None = None

    def load_bytecode(self, bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()  # unreadable or truncated: compile

    def dump_bytecode(self, bucket) -> None:
        if self._usable is None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                self._usable = os.access(self.directory, os.W_OK)
            except OSError:
                self._usable = False
        if self._usable:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                self._usable = False


@lru_cache(maxsize=1)
def _socs() -> dict[str, str]:
    return read_yaml(TEMPLATES / "host" / "socs.yaml", AutofuseError, "code generator SoC table")


def tile_text(tile: dict) -> str:
    """The cost model's tile in one line (as the kernel's header comment states it)."""
    parts = [str(tile.get("scheme"))]
    if tile.get("rows_per_tile"):
        parts.append(f"{tile['rows_per_tile']} rows of {tile['row_len']} per tile")
    else:
        parts.append(f"{tile.get('elements_per_tile')} elements per tile")
    parts.append(f"{tile.get('cores')} cores, {tile.get('tiles')} tiles")
    parts.append("single-buffered" if tile.get("single_buffered") else "double-buffered")
    return ", ".join(parts)


def _tile_text(p: KernelProgram) -> str:
    """The kernel's tile as its header comment states it."""
    tile = p.tile
    if not p.symbols or tile.rule is None:
        return tile_text(tile.as_dict())
    unit = "elements" if tile.rule.walk == "flat" else f"rows of {tile.row_len}"
    what = (f"chunks of {tile.elements} elements of a row" if tile.scheme == "split_row"
            else f"up to {tile.rule.cap} {unit} per tile")
    buffering = "single-buffered" if tile.single_buffered else "double-buffered"
    return f"{tile.scheme}, {what}, {buffering}; tile count and cores from the run-time sizes"


def _context(p: KernelProgram, hw: Hardware) -> dict:
    workspace_bytes = p.workspace_bytes
    targets = {a.ident: a.dtype for a in (*p.outputs, *(w for w, _ in p.workspace))}
    c_dtype = {mm.index: targets[mm.target] for mm in p.matmuls}
    row_expr = {}
    part_text = {}
    part_output = {}
    for part in p.parts:
        for load in part.loads:
            if part.walk == "split_row" or part.walk == "rows" and not load.contiguous:
                row_expr[load.local] = row_index_expr(load.dims, load.strides, load.offset, "R")
        for store in part.stores:
            if store.scattered:
                row_expr[store.local] = row_index_expr(store.dims, store.strides, store.offset, "R")
        walk = {"flat": f"flat tiles of up to {part.per_tile} elements",
                "split_row": f"one row at a time in chunks of {part.per_tile} elements, {len(part.passes)} pass(es)",
                "rows": f"tiles of up to {part.per_tile} rows of {part.width} elements (UB rows of "
                        f"{part.stores[0].pitch if part.stores else part.width})"}[part.walk]
        if p.symbols:  # the counts are the tiling function's, at the sizes it runs at
            part_text[part.index] = walk
        else:
            unit = "elements" if part.walk == "flat" else "rows"
            part_text[part.index] = f"{part.total} {unit} of space {list(part.space)}, {walk}"
        primary = max(part.stores, key=lambda s: s.arg.numel)
        per_row = part.width if part.walk == "split_row" else primary.width
        part_output[part.index] = ([a.ident for a in p.outputs].index(primary.arg.ident), per_row)
    args = [*p.inputs, *p.outputs]
    tensors = [*args, *(a for a, _ in p.workspace)]
    shapes = p.symbols.shapes if p.symbols else [a.shape for a in tensors]
    index = {a.ident: i for i, a in enumerate(tensors)}
    # Each MatMul's M: its result's elements over N (a symbolic expression in a generic kernel).
    mm_m = {mm.index: f"({p.symbols.elements(index[mm.target])}) / {mm.n * mm.batch}" if p.symbols else str(mm.m)
            for mm in p.matmuls}
    shape_text = ["[" + ", ".join(str(d) if isinstance(d, int) else d.cpp(lambda k: p.symbols.names[k])
                                  for d in shape) + "]" for shape in shapes]
    return {
        "p": p, "version": __version__, "tile_text": _tile_text(p), "part_text": part_text,
        "gm_args": [*p.inputs, *p.outputs], "row_expr": row_expr, "store_expr": row_expr, "itemsize": ITEMSIZE, "ctype": CTYPES,
        "scalar_members": [m[1] for line in p.scalars if (m := _SCALAR_MEMBER.match(line))],
        "mm_c": {i: CTYPES[d] for i, d in c_dtype.items()}, "mm_c_dtype": c_dtype, "mm_type": _MATMUL_TYPES,
        "cube_offset": _cube_offset, "guard": p.kernel_name.upper(), "workspace_bytes": workspace_bytes, "part_output": part_output,
        "ge_type": _GE_TYPES, "json_type": _JSON_TYPES, "soc_name": _socs().get(hw.name, hw.name),
        "aiv_cores": hw.aiv_cores, "aic_cores": hw.aic_cores, "bytes_per_core": BYTES_PER_CORE,
        "shape_text": shape_text, "tensors": tensors, "mm_m": mm_m, "space_name": tensors[p.symbols.space_arg].ident if p.symbols else "",
        "dim_sources": [(args[i].ident, i, axis) for i, axis in p.symbols.sources] if p.symbols else [],
        "infer_dim": lambda d: d.cpp(lambda k: "context->GetInputShape(%d)->GetDim(%d)" % p.symbols.sources[k]),
        "dim_name": lambda k: p.symbols.names[k],
        # Split AI cores (Atlas A2/A3) start 2 vector cores per cube; coupled ones (310P) one.
        "vector_per_block": max(1, hw.aiv_cores // max(hw.aic_cores, 1)),
    }


def _cube_offset(matrix: str, block: str) -> str:
    """A MatMul operand's GM element offset: its matrix's (a batched MatMul) plus its block's."""
    if matrix == "0":
        return block
    matrix = matrix if matrix.isdigit() else f"static_cast<uint64_t>({matrix})"
    return f"{matrix} + {block}"


def _tidy(text: str) -> str:
    """Drops the blank lines that template conditionals leave: runs of them, and those opening or closing a block."""
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"([{:])\n\n", r"\1\n", text)
    return re.sub(r"\n\n(\s*})", r"\n\1", text)


def render(template: str, p: KernelProgram, hw: Hardware) -> str:
    """One template rendered for the program on the target."""
    return _tidy(_environment().get_template(template).render(**_context(p, hw)))


def project_files(p: KernelProgram, hw: Hardware) -> dict[str, str]:
    """Every file of the op's custom-operator project, by path inside `kernels/<OpName>/`."""
    k = p.kernel_name
    return {
        f"op_kernel/{k}.cpp": with_numbers(render(f"{p.family}/kernel.cpp.j2", p, hw), p.kernel_numbers),
        f"op_kernel/{k}_tiling.h": render("host/tiling_data.h.j2", p, hw),
        f"op_host/{k}_tiling_func.h": render("host/tiling_func.h.j2", p, hw),
        f"op_host/{k}.cpp": render("host/op_host.cpp.j2", p, hw),
        f"{k}.json": render("host/op.json.j2", p, hw),
        "build.sh": render("host/build.sh.j2", p, hw),
        "CMakeLists.txt": render("host/CMakeLists.txt.j2", p, hw),
    }


def onnx_plugin(op_name: str, kernel_name: str, origin_types: list[str]) -> dict[str, str]:
    """ATC's ONNX parser plugin of a project: the rewritten model's fused nodes of `origin_types`
    ("ai.autofuse::<version>::<op_type>", every group the project serves) run as `op_name`."""
    text = _environment().get_template("host/onnx_plugin.cc.j2").render(
        op_name=op_name, origin_types=origin_types, version=__version__)
    return {f"framework/onnx_plugin/{kernel_name}_onnx_plugin.cc": _tidy(text)}


def with_numbers(source: str, numbers) -> str:
    """The rendered kernel with its size-dependent numbers written over the run-time dims (the
    program's `kernel_numbers`, found by _Fit.kernel_numbers on the same rendering)."""
    if not numbers:
        return source
    lines = source.split("\n")
    by_line: dict[int, dict[int, str]] = {}
    for line, ordinal, text in numbers:
        by_line.setdefault(line, {})[ordinal] = text
    for index, written in by_line.items():
        code, comment = split_comment(lines[index])
        pieces, found = NUMBER.split(code), NUMBER.findall(code)
        values = [written.get(j, n) for j, n in enumerate(found)]
        lines[index] = pieces[0] + "".join(v + p for v, p in zip(values, pieces[1:])) + comment
    return "\n".join(lines)


def split_comment(line: str) -> tuple[str, str]:
    at = line.find("//")
    return (line, "") if at < 0 else (line[:at], line[at:])


def harness_source(p: KernelProgram, hw: Hardware) -> str:
    """The CPU check's host program (not part of the CANN project)."""
    return render("verify/harness.cpp.j2", p, hw)
