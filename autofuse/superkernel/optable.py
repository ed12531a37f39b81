"""The op table (optable.yaml): which GE op an FX node becomes, and whether that kernel can join a
SuperKernel. Loaded and validated once; a user's file overrides entries key by key and is
validated the same way (errors name file:line)."""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autofuse.errors import InputError
from autofuse.yamlfile import LineMap, read_yaml

OPTABLE_PATH = Path(__file__).parent / "optable.yaml"
# Kernel kinds (optable.yaml explains each). Only these two can be members of a SuperKernel.
KINDS = ("ascendc", "excluded", "tbe", "aicpu", "host", "comm", "none")
CONFIDENCE = ("S", "M", "W", "G")
_ENTRY_KEYS = {"kind", "source", "confidence", "aiv"}


@dataclass(frozen=True)
class GeOp:
    """One GE op type and how its kernel is implemented."""

    name: str
    kind: str
    source: str  # "where the fact comes from (confidence X)"
    aiv: bool = False  # a collective HCCL may run on the AIV path (can then join)


@dataclass(frozen=True)
class OpTable:
    ge_ops: dict[str, GeOp]
    fx: dict[str, str | None]  # FX target key -> GE op type (None: no GE op)
    files: tuple[str, ...]

    def ge_op_of(self, keys: tuple[str, ...]) -> tuple[bool, GeOp | None]:
        """(found, GE op) for the first of `keys` (most specific first) the table knows."""
        for key in keys:
            if key in self.fx:
                name = self.fx[key]
                return True, None if name is None else self.ge_ops[name]
        return False, None


def target_keys(target: Any) -> tuple[str, ...]:
    """Lookup keys of an FX call target, most specific first: `aten.add.Tensor`, `aten.add`, and
    for in-place ops the functional name (`aten.div_` -> `aten.div`)."""
    if target is operator.getitem:
        return ("operator.getitem",)
    text = str(target)
    parts = text.split(".")
    if hasattr(target, "overloadpacket") and len(parts) == 3:  # torch._ops.OpOverload
        namespace, name, overload = parts
        keys = [f"{namespace}.{name}.{overload}", f"{namespace}.{name}"]
        if name.endswith("_") and not name.endswith("__"):
            keys.append(f"{namespace}.{name[:-1]}")
        return tuple(keys)
    if hasattr(target, "_qualified_op_name"):  # an OpOverloadPacket
        return (text,)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or text
    module = "operator" if module == "_operator" else module
    return (f"{module}.{name}" if module else name,)


@functools.lru_cache(maxsize=8)
def _load_cached(extra: str | None, mtime_ns: int) -> OpTable:
    ge_ops: dict[str, GeOp] = {}
    fx: dict[str, str | None] = {}
    files = [OPTABLE_PATH] + ([Path(extra)] if extra else [])
    for path in files:
        _merge(path, read_yaml(path, InputError, "op table"), ge_ops, fx)
    return OpTable(ge_ops, fx, tuple(str(f) for f in files))


def load_optable(extra: str | Path | None = None) -> OpTable:
    """The shipped table, with the entries of `extra` (a file of the same format) replacing ours."""
    if extra is None:
        return _load_cached(None, 0)
    path = Path(extra)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise InputError(f"{path}: op table file not found") from None
    return _load_cached(str(path), mtime)


def _merge(path: Path, root: Any, ge_ops: dict[str, GeOp], fx: dict[str, str | None]) -> None:
    def fail(line: int, message: str) -> InputError:
        return InputError(f"{path}:{line}: {message}")

    if not isinstance(root, LineMap) or not set(root) <= {"ge_ops", "fx"} or not root:
        raise fail(getattr(root, "line", 1), "an op table is a mapping with 'ge_ops' and/or 'fx'")
    table = root.get("ge_ops") or LineMap()
    if not isinstance(table, LineMap):
        raise fail(root.key_lines["ge_ops"], "'ge_ops' must be a mapping of GE op type -> {kind, source, confidence}")
    for name, entry in table.items():
        line = table.key_lines[name]
        if not isinstance(entry, LineMap):
            raise fail(line, f"ge_ops.{name}: must be a mapping {{kind, source, confidence}}")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise fail(line, f"ge_ops.{name}: unknown field '{min(unknown)}' (fields: kind, source, confidence, aiv)")
        kind, source, confidence = entry.get("kind"), entry.get("source"), entry.get("confidence")
        if kind not in KINDS:
            raise fail(line, f"ge_ops.{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(source, str) or not source.strip():
            raise fail(line, f"ge_ops.{name}: needs a source (where the fact comes from)")
        if confidence not in CONFIDENCE:
            raise fail(line, f"ge_ops.{name}: confidence must be one of S, M, W, G, got {confidence!r}")
        aiv = entry.get("aiv", False)
        if not isinstance(aiv, bool) or (aiv and kind != "comm"):
            raise fail(line, f"ge_ops.{name}: 'aiv' is true or false, and only for kind comm")
        ge_ops[str(name)] = GeOp(str(name), kind, f"{source.strip()} (confidence {confidence})", aiv)
    mapping = root.get("fx") or LineMap()
    if not isinstance(mapping, LineMap):
        raise fail(root.key_lines["fx"], "'fx' must be a mapping of FX target -> GE op type (or null)")
    for key, name in mapping.items():
        line = mapping.key_lines[key]
        if not isinstance(key, str) or "." not in key:
            raise fail(line, f"fx: key {key!r} must be 'namespace.op' or 'namespace.op.overload'")
        if name is not None and name not in ge_ops:
            raise fail(line, f"fx.{key}: GE op '{name}' is not in ge_ops")
        fx[key] = name
