"""SuperKernel options strings: parsed and validated against the grammar and keys CANN accepts
(options.yaml), so a typo fails here, with the nearest valid key, rather than in a compile on the
target machine.

Grammar (CANN's option parser): `key=value` pairs joined by ':', surrounding quotes stripped. CANN
ignores a pair without '=' (with a warning: cann-recipes pass the placeholder "option_xxx2" on
purpose), and rejects an unknown key, an empty value or a repeated key. We do the same, and check
each value against its key's type.
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from autofuse.cost.hardware import Hardware
from autofuse.errors import InputError
from autofuse.yamlfile import read_yaml

OPTIONS_PATH = Path(__file__).parent / "options.yaml"
_OP_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Allowed cube:vector core ratios of debug-aic-num / debug-aiv-num (superkernel.md 1.3).
_CORE_RATIOS = ((1, 0), (0, 1), (1, 1), (1, 2))


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str  # choice | int | power_of_two_or_zero | op_list | text
    values: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    default: str | None = None
    doc: str = ""

    def describe(self) -> str:
        if self.type == "choice":
            return " or ".join(self.values)
        if self.type == "int":
            top = f"..{self.max}" if self.max is not None else " or more"
            return f"an integer {self.min}{top}"
        if self.type == "power_of_two_or_zero":
            return "0 or a power of 2"
        if self.type == "op_list":
            return "a comma-separated list of op types (e.g. GroupedMatmul,MoeGatingTopK)"
        return "a non-empty string without ':'"


@dataclass(frozen=True)
class SkOptions:
    """A validated options string. `text` is what goes into the scope: the pairs joined by ':'."""

    pairs: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return ":".join(f"{k}={v}" for k, v in self.pairs)

    def get(self, key: str) -> str | None:
        return dict(self.pairs).get(key)

    @property
    def stream_fusion(self) -> bool:
        return self.get("stream-fusion") == "1"


@functools.cache
def known_keys() -> dict[str, KeySpec]:
    """The option keys CANN accepts (options.yaml)."""
    root = read_yaml(OPTIONS_PATH, InputError, "options table")
    return {
        name: KeySpec(name, spec["type"], tuple(str(v) for v in spec.get("values", ())), spec.get("min"),
                      spec.get("max"), spec.get("default"), spec.get("doc", ""))
        for name, spec in root["keys"].items()
    }


def parse_options(text: str | None, *, hardware: Hardware | None = None, op_types: Iterable[str] = (),
                  where: str = "--options") -> SkOptions:
    """Validate an options string; InputError (one line, naming `where` and the pair) when CANN
    would reject it. `hardware` bounds the debug core counts; `op_types` (known GE op types) turns
    an unknown op type in a dcci list into a warning with the nearest known one."""
    raw = (text or "").strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1].strip()
    keys = known_keys()
    pairs: dict[str, str] = {}
    warnings: list[str] = []
    for token in raw.split(":") if raw else []:
        token = token.strip()
        if "=" not in token:
            warnings.append(_ignored(token, keys))
            continue
        key, _, value = (part.strip() for part in token.partition("="))
        if key not in keys:
            close = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; known keys: {', '.join(keys)}"
            raise InputError(f"{where}: unknown SuperKernel option '{key}' in '{token}'{hint}")
        if key in pairs:
            raise InputError(f"{where}: option '{key}' given twice ('{key}={pairs[key]}' and '{token}')")
        if not value:
            raise InputError(f"{where}: option '{key}' has an empty value; expected {keys[key].describe()}")
        _check_value(keys[key], value, where, set(op_types), warnings)
        pairs[key] = value
    _cross_check(pairs, hardware, where, warnings)
    return SkOptions(tuple(pairs.items()), tuple(warnings))


def _ignored(token: str, keys: dict[str, KeySpec]) -> str:
    if not token:
        return "an empty pair (two ':' in a row, or one at an end) is ignored"
    close = difflib.get_close_matches(token, list(keys), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}=...'?)" if close else ""
    return f"'{token}' has no '=': CANN ignores it{hint}"


def _check_value(spec: KeySpec, value: str, where: str, op_types: set[str], warnings: list[str]) -> None:
    def bad() -> InputError:
        return InputError(f"{where}: option '{spec.name}={value}': expected {spec.describe()}")

    if spec.type == "choice":
        if value not in spec.values:
            raise bad()
    elif spec.type in ("int", "power_of_two_or_zero"):
        if not re.fullmatch(r"\d+", value):
            raise bad()
        number = int(value)
        if spec.type == "power_of_two_or_zero" and number & (number - 1):
            raise bad()
        if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
            raise bad()
    elif spec.type == "op_list":
        for op in value.split(","):
            if not _OP_TYPE.match(op.strip()):
                raise InputError(f"{where}: option '{spec.name}={value}': '{op}' is not an op type; "
                                 f"expected {spec.describe()}")
            if op_types and op.strip() not in op_types:
                close = difflib.get_close_matches(op.strip(), sorted(op_types), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                warnings.append(f"option '{spec.name}': op type '{op.strip()}' is not in the op table{hint}")


def _cross_check(pairs: dict[str, str], hardware: Hardware | None, where: str, warnings: list[str]) -> None:
    aic, aiv = pairs.get("debug-aic-num"), pairs.get("debug-aiv-num")
    if aic is not None and aiv is not None:
        a, v = int(aic), int(aiv)
        if (a, v) != (0, 0) and not any(a * rv == v * ra for ra, rv in _CORE_RATIOS):
            raise InputError(f"{where}: debug-aic-num={aic} and debug-aiv-num={aiv}: the cube:vector ratio "
                             "must be 1:0, 0:1, 1:1 or 1:2")
    if hardware is not None:
        for key, value, cores in (("debug-aic-num", aic, hardware.aic_cores), ("debug-aiv-num", aiv, hardware.aiv_cores)):
            if value is not None and int(value) > cores:
                raise InputError(f"{where}: {key}={value} is more than the {cores} cores of {hardware.name}")
    if pairs.get("stream-fusion") == "1" and pairs.get("early-start") not in (None, "0"):
        warnings.append("early-start has no effect with stream-fusion=1 (stream fusion disables it)")
