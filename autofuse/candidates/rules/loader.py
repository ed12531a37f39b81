"""Rule files (YAML) -> validated Rule objects. Every error names the file, the line and the rule.

Files are read with PyYAML's safe loader and checked against the schema in rules/README.md; no
field is ever evaluated as Python.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autofuse.candidates.rules.language import (
    Alt, Binding, Call, Expr, PatternSyntaxError, Ref, names_in, ops_in, parse_pattern,
)
from autofuse.errors import AutofuseError
from autofuse.ops.table import OP_CLASS
from autofuse.yamlfile import LineMap, read_yaml

KINDS = ("elementwise", "norm", "softmax", "attention", "rotary", "matmul_epilogue")
TEMPLATE_FAMILIES = ("elementwise", "row_reduction", "matmul_epilogue", "call_through")
LOWERING_KEYS = ("ascendc", "cann", "torch_npu", "onnx")
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")
_RULE_FIELDS = {
    "name", "kind", "description", "pattern", "inputs", "outputs", "constants", "where",
    "fused_op", "lowering", "tolerance", "examples", "priority",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_TOLERANCE = 1e-5


class RuleError(AutofuseError):
    """A rule file that cannot be used: the message starts with file:line."""

    exit_code = 2


@dataclass(frozen=True)
class ConstantSpec:
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class CaptureSpec:
    dtypes: tuple[str, ...] = ()
    min_rank: int | None = None
    max_rank: int | None = None


@dataclass(frozen=True)
class Rule:
    """One fusion rule: a pattern, what it becomes, and how it is lowered."""

    name: str
    kind: str
    description: str
    bindings: tuple[Binding, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: dict[str, ConstantSpec]
    where: dict[str, CaptureSpec]
    fused_op: str
    attributes: dict[str, str]  # fused-op attribute -> constant capture
    lowering: dict[str, str]
    tolerance: float
    priority: int
    examples_match: tuple[str, ...] = ()
    examples_near_miss: tuple[str, ...] = ()
    source: str = ""  # "file:line"
    binding_by_name: dict[str, Binding] = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Binding:
        return self.bindings[-1]

    @property
    def anchors(self) -> frozenset[str]:
        """Op types a node must have for the rule to be tried there (the root's ops)."""
        return frozenset(_root_ops(self.root.expr, self.binding_by_name))


def _root_ops(expr: Expr, bindings: dict[str, Binding], depth: int = 0) -> set[str]:
    """Op types that can produce the value `expr` matches, through alternatives and the
    bindings an alternative names (`y = Transpose(o) | o`)."""
    if isinstance(expr, Call):
        return set(expr.ops)
    if isinstance(expr, Alt):
        return {op for option in expr.options for op in _root_ops(option, bindings, depth + 1)}
    if isinstance(expr, Ref) and expr.name in bindings and depth < 16:
        return _root_ops(bindings[expr.name].expr, bindings, depth + 1)
    return set()


# -- validation -------------------------------------------------------------------------------


class _Checker:
    def __init__(self, path: Path, entry: LineMap) -> None:
        self.path = path
        self.entry = entry
        self.name = entry.get("name", "?") if isinstance(entry, dict) else "?"

    def fail(self, message: str, key: str | None = None, line: int | None = None) -> RuleError:
        if line is None:
            line = self.entry.key_lines[key] if key and key in self.entry.key_lines else self.entry.line
        return RuleError(f"{self.path}:{line}: rule '{self.name}': {message}")

    def get(self, key: str, kinds: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if key not in self.entry:
            if required:
                raise self.fail(f"missing required field '{key}'")
            return default
        value = self.entry[key]
        if not isinstance(value, kinds):
            want = kinds.__name__ if isinstance(kinds, type) else " or ".join(k.__name__ for k in kinds)
            raise self.fail(f"field '{key}' must be a {want}, got {type(value).__name__}", key)
        return value

    def pattern_line(self, binding_line: int) -> int:
        node = self.entry.value_nodes["pattern"]
        if getattr(node, "style", None) in ("|", ">"):
            return node.start_mark.line + 1 + binding_line
        return node.start_mark.line + binding_line


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def build_rule(path: Path, entry: Any) -> Rule:
    """Validate one rule entry and build the Rule. Raises RuleError naming file:line."""
    if not isinstance(entry, LineMap):
        raise RuleError(f"{path}: each entry of 'rules' must be a mapping")
    check = _Checker(path, entry)
    for key in entry:
        if key not in _RULE_FIELDS:
            raise check.fail(f"unknown field '{key}'{_suggest(str(key), _RULE_FIELDS)}", key)
    name = check.get("name", str, required=True)
    if not _NAME.match(name):
        raise check.fail(f"rule names are snake_case ([a-z][a-z0-9_]*), got '{name}'", "name")
    kind = check.get("kind", str, required=True)
    if kind not in KINDS:
        raise check.fail(f"unknown kind '{kind}'{_suggest(kind, KINDS)}; kinds: {', '.join(KINDS)}", "kind")
    bindings = _parse(check)
    by_name = {b.name: b for b in bindings}
    inputs = tuple(_names(check, "inputs", required=True))
    constants = _constants(check)
    captures = set(inputs) | set(constants)
    _check_references(check, bindings, by_name, captures)
    outputs = tuple(_names(check, "outputs") or [bindings[-1].name])
    for out in outputs:
        if out not in by_name:
            raise check.fail(f"output '{out}' is not a binding of the pattern", "outputs")
    if outputs[0] != bindings[-1].name:
        raise check.fail(f"the first output must be the pattern's root '{bindings[-1].name}'", "outputs")
    fused, attributes = _fused_op(check, constants)
    _check_always_bound(check, bindings, by_name, set(inputs) | set(attributes.values()))
    lowering = _lowering(check)
    tolerance = check.get("tolerance", (int, float), DEFAULT_TOLERANCE)
    if not tolerance > 0:
        raise check.fail("tolerance must be positive", "tolerance")
    match, near = _examples(check)
    return Rule(
        name=name, kind=kind, description=check.get("description", str, ""), bindings=tuple(bindings),
        inputs=inputs, outputs=outputs, constants=constants, where=_where(check, captures | set(by_name)),
        fused_op=fused, attributes=attributes, lowering=lowering, tolerance=float(tolerance),
        priority=check.get("priority", int, 0), examples_match=match, examples_near_miss=near,
        source=f"{path}:{entry.line}", binding_by_name=by_name,
    )


def _parse(check: _Checker) -> list[Binding]:
    text = check.get("pattern", str, required=True)
    try:
        bindings = parse_pattern(text)
    except PatternSyntaxError as exc:
        raise check.fail(f"pattern: {exc} (column {exc.column})", line=check.pattern_line(exc.line)) from None
    seen: dict[str, Binding] = {}
    for binding in bindings:
        if binding.name in seen:
            raise check.fail(f"pattern binds '{binding.name}' twice", line=check.pattern_line(binding.line))
        seen[binding.name] = binding
        for op in sorted(ops_in(binding.expr)):
            if op not in OP_CLASS:
                raise check.fail(f"unknown op '{op}'{_suggest(op, OP_CLASS)}",
                                 line=check.pattern_line(binding.line))
    root = bindings[-1].expr
    if not _root_ops(root, seen) or (isinstance(root, Call) and root.optional):
        raise check.fail("the last pattern line (the root) must be an op, not a name or an optional op",
                         line=check.pattern_line(bindings[-1].line))
    return bindings


def _names(check: _Checker, key: str, required: bool = False) -> list[str]:
    values = check.get(key, list, [] if not required else None, required=required)
    for value in values:
        if not isinstance(value, str):
            raise check.fail(f"'{key}' must be a list of names, got {value!r}", key)
    if len(set(values)) != len(values):
        raise check.fail(f"'{key}' lists a name twice", key)
    return values


def _constants(check: _Checker) -> dict[str, ConstantSpec]:
    specs = check.get("constants", dict, {})
    result = {}
    for name, spec in specs.items():
        if spec is None:
            spec = {}
        if not isinstance(spec, dict) or set(spec) - {"min", "max"}:
            raise check.fail(f"constant '{name}' takes only 'min' and 'max'", "constants")
        for bound in spec.values():
            if not isinstance(bound, (int, float)):
                hint = " (YAML reads 1.0e4 as text: write 1.0e+4)" if _looks_numeric(bound) else ""
                raise check.fail(f"constant '{name}': bounds must be numbers, got {bound!r}{hint}", "constants")
        result[name] = ConstantSpec(spec.get("min"), spec.get("max"))
    return result


def _looks_numeric(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _check_references(check: _Checker, bindings: list[Binding], by_name: dict, captures: set[str]) -> None:
    used: set[str] = set()
    for binding in bindings:
        for name in names_in(binding.expr):
            used.add(name)
            if name == "_" or name in by_name or name in captures:
                continue
            raise check.fail(f"pattern uses '{name}', which is neither a binding nor declared in "
                             "'inputs' or 'constants'", line=check.pattern_line(binding.line))
    for binding in bindings[:-1]:
        if binding.name not in used:
            raise check.fail(f"binding '{binding.name}' is never used", line=check.pattern_line(binding.line))
    for name in sorted(captures - used):
        key = "inputs" if name in (check.entry.get("inputs") or []) else "constants"
        raise check.fail(f"capture '{name}' is never bound by the pattern", key)
    _check_acyclic(check, bindings, by_name)


def _check_acyclic(check: _Checker, bindings: list[Binding], by_name: dict) -> None:
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise check.fail(f"pattern binding '{name}' refers to itself", line=check.pattern_line(by_name[name].line))
        state[name] = 1
        for ref in names_in(by_name[name].expr):
            if ref in by_name:
                visit(ref)
        state[name] = 2

    for binding in bindings:
        visit(binding.name)


def _always_bound(expr: Expr, by_name: dict) -> set[str]:
    """Names bound on every way the expression can match."""
    if isinstance(expr, Ref):
        inner = _always_bound(by_name[expr.name].expr, by_name) if expr.name in by_name else set()
        return {expr.name} | inner
    if isinstance(expr, Call):
        return {n for arg in expr.args for n in _always_bound(arg, by_name)}
    if isinstance(expr, Alt):
        sets = [_always_bound(option, by_name) for option in expr.options]
        return set.intersection(*sets)
    return set()


def _check_always_bound(check: _Checker, bindings: list[Binding], by_name: dict, needed: set[str]) -> None:
    bound = _always_bound(bindings[-1].expr, by_name)
    for name in sorted(needed - bound):
        raise check.fail(f"capture '{name}' is not bound on every alternative of the pattern, "
                         "so the fused op could lack it", "pattern")


def _fused_op(check: _Checker, constants: dict) -> tuple[str, dict[str, str]]:
    spec = check.get("fused_op", dict, required=True)
    if set(spec) - {"name", "attributes"} or "name" not in spec or not isinstance(spec["name"], str):
        raise check.fail("fused_op takes 'name' (a string) and optional 'attributes'", "fused_op")
    if not re.match(r"^[A-Z][A-Za-z0-9]*$", spec["name"]):
        raise check.fail(f"fused op names are CamelCase, got '{spec['name']}'", "fused_op")
    attributes = spec.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise check.fail("fused_op.attributes maps attribute names to constant captures", "fused_op")
    for attr, capture in attributes.items():
        if capture not in constants:
            raise check.fail(f"fused_op attribute '{attr}' takes undefined capture '{capture}' "
                             "(attributes come from 'constants')", "fused_op")
    return spec["name"], dict(attributes)


def _lowering(check: _Checker) -> dict[str, str]:
    spec = check.get("lowering", dict, required=True)
    for key, value in spec.items():
        if key not in LOWERING_KEYS:
            raise check.fail(f"unknown lowering '{key}'{_suggest(key, LOWERING_KEYS)}", "lowering")
        if not isinstance(value, str):
            raise check.fail(f"lowering '{key}' must be a string", "lowering")
    family = spec.get("ascendc")
    if family not in TEMPLATE_FAMILIES:
        raise check.fail(f"lowering.ascendc must name a template family ({', '.join(TEMPLATE_FAMILIES)}), "
                         f"got {family!r}", "lowering")
    return dict(spec)


def _where(check: _Checker, known: set[str]) -> dict[str, CaptureSpec]:
    specs = check.get("where", dict, {})
    result = {}
    for name, spec in specs.items():
        if name not in known:
            raise check.fail(f"'where' constrains undefined capture '{name}'{_suggest(name, known)}", "where")
        if not isinstance(spec, dict) or set(spec) - {"dtype", "rank"}:
            raise check.fail(f"'where.{name}' takes 'dtype' and 'rank'", "where")
        dtypes = spec.get("dtype", [])
        dtypes = [dtypes] if isinstance(dtypes, str) else dtypes
        for dtype in dtypes:
            if dtype not in DTYPES:
                raise check.fail(f"'where.{name}': unknown dtype '{dtype}'{_suggest(str(dtype), DTYPES)}", "where")
        rank = spec.get("rank")
        low = high = None
        if isinstance(rank, int):
            low = high = rank
        elif isinstance(rank, dict) and not set(rank) - {"min", "max"}:
            low, high = rank.get("min"), rank.get("max")
        elif rank is not None:
            raise check.fail(f"'where.{name}.rank' is an int or {{min, max}}", "where")
        result[name] = CaptureSpec(tuple(dtypes), low, high)
    return result


def _examples(check: _Checker) -> tuple[tuple[str, ...], tuple[str, ...]]:
    spec = check.get("examples", dict, required=True)
    if set(spec) - {"match", "near_miss"}:
        raise check.fail("examples take 'match' and 'near_miss' lists of ONNX-text graphs", "examples")
    match, near = spec.get("match") or [], spec.get("near_miss") or []
    if not match or not near:
        raise check.fail("every rule needs at least one 'match' and one 'near_miss' example graph", "examples")
    for graph in (*match, *near):
        if not isinstance(graph, str):
            raise check.fail("example graphs are ONNX-text strings", "examples")
    return tuple(match), tuple(near)


# -- files ------------------------------------------------------------------------------------


def load_rule_file(path: str | Path) -> list[Rule]:
    """All rules of one YAML file (a mapping with a 'rules' list)."""
    path = Path(path)
    data = read_yaml(path, RuleError, "rule file")
    if not isinstance(data, LineMap) or "rules" not in data:
        raise RuleError(f"{path}:1: a rule file is a mapping with a 'rules' list")
    extra = set(data) - {"rules"}
    if extra:
        key = sorted(extra)[0]
        raise RuleError(f"{path}:{data.key_lines[key]}: unknown top-level field '{key}' (only 'rules')")
    if not isinstance(data["rules"], list):
        raise RuleError(f"{path}:{data.key_lines['rules']}: 'rules' must be a list")
    return [build_rule(path, entry) for entry in data["rules"]]


def load_rules(paths: list[str | Path]) -> list[Rule]:
    """Rules of several files; a name defined twice is an error naming both places."""
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for path in paths:
        for rule in load_rule_file(path):
            if rule.name in seen:
                raise RuleError(f"{rule.source}: rule '{rule.name}' is already defined at {seen[rule.name].source}")
            seen[rule.name] = rule
            rules.append(rule)
    return rules


def library_dir() -> Path:
    """The shipped rule library: `rules/` of the installed package (or of the checkout)."""
    from importlib import resources

    packaged = Path(str(resources.files("autofuse"))) / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rules"


def library_files() -> list[Path]:
    return sorted(library_dir().glob("*.yaml"))
