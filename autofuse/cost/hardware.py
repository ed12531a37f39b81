"""Hardware profiles (YAML) -> validated `Hardware` objects for the cost model.

A profile states every fact as `{value, unit, source, confidence}` (confidence S/M/W/G, see
profiles/ascend910b.yaml). The loader converts units, checks every field, and keeps
"source (confidence X)" per field for the report. Errors name the file and line. Files are read
with PyYAML's safe loader; nothing is evaluated as Python. A user's own profile is validated exactly
like the shipped ones.
"""
from __future__ import annotations

import bisect
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from autofuse.errors import InputError
from autofuse.yamlfile import LineMap, read_yaml

KNOWN_TARGETS: tuple[str, ...] = ("ascend910b", "ascend910_93", "ascend310p")
DEFAULT_TARGET = "ascend910b"
PROFILE_DIR = Path(__file__).parent / "profiles"
CONFIDENCE = ("S", "M", "W", "G")
DTYPES = ("float16", "bfloat16", "float32", "int8", "uint8", "int16", "int32", "int64", "float64")


@dataclass(frozen=True)
class Hardware:
    """One target's numbers (values only, base units: bytes, B/s, FLOP/s, Hz, us)."""

    name: str
    description: str
    aic_cores: int
    aiv_cores: int
    vector_only_cores: int  # stand-alone vector cores (310P); 0 on split A2/A3
    ub_bytes: int
    ub_usable_bytes: int
    l1_bytes: int
    l0a_bytes: int
    l0b_bytes: int
    l0c_bytes: int
    hbm_bytes: int
    hbm_bandwidth: float
    l2_bytes: int
    l2_bandwidth: float
    cube_flops: dict[str, float]
    vector_ops: dict[str, float]
    clock_hz: float
    dma_efficiency: tuple[tuple[int, float], ...]  # (bytes per DataCopy, fraction of peak), ascending
    launch_us_all_cores: float  # head cost per kernel, all cores started (upper bound)
    launch_us_few_cores: float  # head cost per kernel, few cores started
    mix_extra_us: float  # extra head cost per cube+vector (MIX) kernel
    vector_dtypes: frozenset[str]
    has_datacopy_pad: bool
    has_bf16_data: bool  # bf16 tensors can be copied to/from the UB and cast to fp32 there
    l0c_to_ub: bool
    ub_alignment: int
    max_queue_buffers_per_position: int
    max_queue_buffers_total: int
    max_kernel_arguments: int  # GM pointers of a kernel entry, workspace and tiling included
    max_double_buffered_inputs: int
    vector_repeat_bytes: int
    sources: dict[str, str]  # field (or "cube_flops.float16", "dma_efficiency.16384") -> "source (confidence X)"

    def dma_fraction(self, transfer_bytes: int) -> float:
        """Fraction of peak bandwidth one DataCopy of `transfer_bytes` reaches: log-linear, clamped."""
        table = self.dma_efficiency
        if transfer_bytes <= table[0][0]:
            return table[0][1]
        if transfer_bytes >= table[-1][0]:
            return table[-1][1]
        i = bisect.bisect_left([size for size, _ in table], transfer_bytes)
        (s0, f0), (s1, f1) = table[i - 1], table[i]
        t = math.log(transfer_bytes / s0) / math.log(s1 / s0)
        return f0 + t * (f1 - f0)


# -- schema ------------------------------------------------------------------------------------

_BYTES = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_BANDWIDTH = {"B/s": 1.0, "GB/s": 1e9, "TB/s": 1e12}
_RATE = {"FLOP/s": 1.0, "GFLOP/s": 1e9, "TFLOP/s": 1e12, "OP/s": 1.0, "GOP/s": 1e9, "TOP/s": 1e12}
_HZ = {"Hz": 1.0, "MHz": 1e6, "GHz": 1e9}
_US = {"us": 1.0}


@dataclass(frozen=True)
class _Field:
    attr: str  # Hardware attribute
    kind: str  # int | float | bool | dtypes | rates | table
    units: dict | None = None
    zero_ok: bool = False


_SCHEMA: dict[str, dict[str, _Field]] = {
    "cores": {
        "aic": _Field("aic_cores", "int", {"cores": 1}),
        "aiv": _Field("aiv_cores", "int", {"cores": 1}),
        "vector_only": _Field("vector_only_cores", "int", {"cores": 1}, zero_ok=True),
    },
    "memory": {
        "ub": _Field("ub_bytes", "int", _BYTES),
        "ub_usable": _Field("ub_usable_bytes", "int", _BYTES),
        "l1": _Field("l1_bytes", "int", _BYTES),
        "l0a": _Field("l0a_bytes", "int", _BYTES),
        "l0b": _Field("l0b_bytes", "int", _BYTES),
        "l0c": _Field("l0c_bytes", "int", _BYTES),
        "hbm": _Field("hbm_bytes", "int", _BYTES),
        "l2": _Field("l2_bytes", "int", _BYTES),
    },
    "bandwidth": {
        "hbm": _Field("hbm_bandwidth", "float", _BANDWIDTH),
        "l2": _Field("l2_bandwidth", "float", _BANDWIDTH),
    },
    "compute": {
        "clock": _Field("clock_hz", "float", _HZ),
        "cube": _Field("cube_flops", "rates", _RATE),
        "vector": _Field("vector_ops", "rates", _RATE),
    },
    "launch": {
        "all_cores": _Field("launch_us_all_cores", "float", _US),
        "few_cores": _Field("launch_us_few_cores", "float", _US),
        "mix_extra": _Field("mix_extra_us", "float", _US, zero_ok=True),
    },
    "dma": {"efficiency": _Field("dma_efficiency", "table")},
    "limits": {
        "ub_alignment": _Field("ub_alignment", "int", _BYTES),
        "queue_buffers_per_position": _Field("max_queue_buffers_per_position", "int", {"buffers": 1}),
        "queue_buffers_total": _Field("max_queue_buffers_total", "int", {"buffers": 1}),
        "kernel_arguments": _Field("max_kernel_arguments", "int", {"arguments": 1}),
        "double_buffered_inputs": _Field("max_double_buffered_inputs", "int", {"queues": 1}),
        "vector_repeat": _Field("vector_repeat_bytes", "int", _BYTES),
    },
    "features": {
        "vector_dtypes": _Field("vector_dtypes", "dtypes"),
        "datacopy_pad": _Field("has_datacopy_pad", "bool"),
        "bf16_data": _Field("has_bf16_data", "bool"),
        "l0c_to_ub": _Field("l0c_to_ub", "bool"),
    },
}
_TOP = ("name", "description", *_SCHEMA)
_FACT_KEYS = {"value", "unit", "source", "confidence", "note"}
_ROW_KEYS = {"bytes", "fraction", "source", "confidence", "note"}


# -- validation --------------------------------------------------------------------------------


def _suggest(word: str, options, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Profile:
    """Walks one parsed profile, collecting Hardware attributes, sources and line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.lines: dict[str, int] = {}

    def fail(self, line: int, message: str) -> InputError:
        return InputError(f"{self.path}:{line}: {message}")

    def check_keys(self, node: LineMap, allowed, prefix: str) -> None:
        for key in node:
            if key not in allowed:
                hint = _suggest(str(key), allowed, prefix)
                raise self.fail(node.key_lines[key], f"unknown field '{prefix}{key}'{hint}")

    def require(self, node: LineMap, key: str, dotted: str) -> Any:
        if key not in node:
            raise self.fail(node.line, f"missing field '{dotted}'")
        return node[key]

    def mapping(self, parent: LineMap, key: str, dotted: str) -> LineMap:
        node = self.require(parent, key, dotted)
        if not isinstance(node, LineMap):
            raise self.fail(parent.key_lines[key], f"'{dotted}' must be a mapping")
        return node

    def profile(self, root: Any) -> Hardware:
        if not isinstance(root, LineMap):
            raise self.fail(1, "a hardware profile is a mapping with fields " + ", ".join(_TOP))
        self.check_keys(root, _TOP, "")
        for key in ("name", "description"):
            value = self.require(root, key, key)
            if not isinstance(value, str) or not value.strip():
                raise self.fail(root.key_lines[key], f"'{key}' must be a non-empty string")
            self.values[key] = value
        for group, fields in _SCHEMA.items():
            node = self.mapping(root, group, group)
            self.check_keys(node, fields, f"{group}.")
            for key, spec in fields.items():
                dotted = f"{group}.{key}"
                self.require(node, key, dotted)
                self.lines[spec.attr] = node.key_lines[key]
                self.field(node, key, dotted, spec)
        self.cross_checks()
        return Hardware(**self.values, sources=self.sources)

    def field(self, node: LineMap, key: str, dotted: str, spec: _Field) -> None:
        if spec.kind == "rates":
            rates = self.mapping(node, key, dotted)
            self.check_keys(rates, DTYPES, f"{dotted}.")
            if not rates:
                raise self.fail(rates.line, f"'{dotted}' needs at least one dtype")
            self.values[spec.attr] = {}
            for dtype in rates:
                name = f"{spec.attr}.{dtype}"
                value = self.fact(rates, dtype, f"{dotted}.{dtype}", _Field(name, "float", spec.units))
                self.values[spec.attr][dtype] = value
            return
        if spec.kind == "table":
            self.values[spec.attr] = self.table(node, key, dotted, spec.attr)
            return
        self.values[spec.attr] = self.fact(node, key, dotted, spec)

    def fact(self, parent: LineMap, key: str, dotted: str, spec: _Field) -> Any:
        node, line = parent[key], parent.key_lines[key]
        if not isinstance(node, LineMap):
            if _is_number(node):
                raise self.fail(line, f"'{dotted}' is a number without a source: write "
                                      f"{{value: {node}, unit: ..., source: \"...\", confidence: S|M|W|G}}")
            raise self.fail(line, f"'{dotted}' must be a mapping {{value, source, confidence}}")
        numeric = spec.kind in ("int", "float")
        self.check_keys(node, _FACT_KEYS if numeric else _FACT_KEYS - {"unit"}, f"{dotted}.")
        raw = self.require(node, "value", f"{dotted}.value")
        line = node.key_lines["value"]
        if numeric:
            value = self.number(raw, line, dotted, spec.zero_ok)
            unit = self.require(node, "unit", f"{dotted}.unit")
            if unit not in spec.units:
                raise self.fail(node.key_lines["unit"], f"'{dotted}': unit must be one of "
                                f"{', '.join(spec.units)}, got '{unit}'")
            value = value * spec.units[unit]
            if spec.kind == "int":
                if value != int(value):
                    raise self.fail(line, f"'{dotted}': {raw} {unit} is not a whole number")
                value = int(value)
            else:  # 1.07 GHz -> 1.07e9, not 1.0700000000000001e9
                value = float(f"{value:.12g}")
        elif spec.kind == "bool":
            if not isinstance(raw, bool):
                raise self.fail(line, f"'{dotted}': value must be true or false, got {raw!r}")
            value = raw
        else:  # dtypes
            if not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw):
                raise self.fail(line, f"'{dotted}': value must be a non-empty list of dtype names")
            for dtype in raw:
                if dtype not in DTYPES:
                    raise self.fail(line, f"'{dotted}': unknown dtype '{dtype}'{_suggest(dtype, DTYPES)}")
            value = frozenset(raw)
        self.sources[spec.attr] = self.source(node, dotted, raw, "a number" if numeric else "a fact")
        return value

    def number(self, raw: Any, line: int, dotted: str, zero_ok: bool) -> float:
        want = "a non-negative number" if zero_ok else "a positive number"
        if isinstance(raw, str):
            try:
                float(raw)
            except ValueError:
                pass
            else:  # PyYAML reads 1.6e12 (no dot or exponent sign) as text
                raise self.fail(line, f"'{dotted}': value must be {want}, got the string '{raw}' "
                                      "(write 1.6e+12, or use a larger unit)")
        if not _is_number(raw) or not math.isfinite(raw) or raw < 0 or (raw == 0 and not zero_ok):
            raise self.fail(line, f"'{dotted}': value must be {want}, got {raw!r}")
        return raw

    def source(self, node: LineMap, dotted: str, value: Any, what: str = "a number") -> str:
        source = node.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(node.line, f"'{dotted}' = {value!r} is {what} without a source "
                                       "(add source: where it comes from)")
        if "confidence" not in node:
            raise self.fail(node.line, f"missing field '{dotted}.confidence' (one of S, M, W, G)")
        confidence = node["confidence"]
        if confidence not in CONFIDENCE:
            raise self.fail(node.key_lines["confidence"], f"'{dotted}': confidence must be one of "
                            f"S, M, W, G, got {confidence!r}")
        return f"{source.strip()} (confidence {confidence})"

    def table(self, parent: LineMap, key: str, dotted: str, attr: str) -> tuple[tuple[int, float], ...]:
        rows = parent[key]
        if not isinstance(rows, list) or not rows:
            raise self.fail(parent.key_lines[key], f"'{dotted}' must be a non-empty list of "
                                                   "{bytes, fraction, source, confidence}")
        table: list[tuple[int, float]] = []
        for row in rows:
            if not isinstance(row, LineMap):
                raise self.fail(parent.key_lines[key], f"each row of '{dotted}' must be a mapping "
                                                       "{bytes, fraction, source, confidence}")
            self.check_keys(row, _ROW_KEYS, f"{dotted}[].")
            size = self.require(row, "bytes", f"{dotted}[].bytes")
            line = row.key_lines["bytes"]
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise self.fail(line, f"'{dotted}': bytes must be a positive whole number, got {size!r}")
            fraction = self.number(self.require(row, "fraction", f"{dotted}[].fraction"),
                                   row.key_lines["fraction"], f"{dotted}[{size}].fraction", False)
            if fraction > 1:
                raise self.fail(row.key_lines["fraction"], f"'{dotted}': fraction must be at most 1, "
                                                           f"got {fraction}")
            if table and size <= table[-1][0]:
                raise self.fail(line, f"'{dotted}': transfer sizes must ascend ({size} after {table[-1][0]})")
            if table and fraction < table[-1][1]:
                raise self.fail(row.key_lines["fraction"], f"'{dotted}': a larger transfer cannot reach "
                                f"a smaller fraction ({fraction} after {table[-1][1]})")
            self.sources[f"{attr}.{size}"] = self.source(row, f"{dotted}[{size}]", size)
            table.append((size, float(fraction)))
        return tuple(table)

    def cross_checks(self) -> None:
        v = self.values
        if v["ub_usable_bytes"] > v["ub_bytes"]:
            raise self.fail(self.lines["ub_usable_bytes"], "'memory.ub_usable' is larger than 'memory.ub'")
        dtypes, rates = v["vector_dtypes"], set(v["vector_ops"])
        if rates != dtypes:
            detail = ", ".join([f"{d} (no rate)" for d in sorted(dtypes - rates)]
                               + [f"{d} (not a vector dtype)" for d in sorted(rates - dtypes)])
            raise self.fail(self.lines["vector_ops"], "'compute.vector' must give a rate for exactly "
                            f"the dtypes in 'features.vector_dtypes': {detail}")
        if 2 * v["max_double_buffered_inputs"] > v["max_queue_buffers_per_position"]:
            raise self.fail(self.lines["max_double_buffered_inputs"], "'limits.double_buffered_inputs' "
                            "needs two buffers each, more than 'limits.queue_buffers_per_position'")


# -- entry point -------------------------------------------------------------------------------


def load_profile(name_or_path: str | Path) -> Hardware:
    """A known target name -> the packaged profile; anything path-like -> that file."""
    text = str(name_or_path)
    if text in KNOWN_TARGETS:
        path = PROFILE_DIR / f"{text}.yaml"
    elif isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")) \
            or Path(text).is_file():
        path = Path(text)
    else:
        raise InputError(f"unknown target '{text}'{_suggest(text, KNOWN_TARGETS)}; known targets: "
                         f"{', '.join(KNOWN_TARGETS)} (or pass a profile file)")
    return _Profile(path).profile(read_yaml(path, InputError, "hardware profile"))
