"""The pattern language of fusion rules: text -> a small expression tree.

A pattern is a list of bindings, one per line, the last one being the root:

    sq   = Pow(x, 2.0) | Mul(x, x)
    mean = ReduceMean<axes=last>(sq)
    std  = Sqrt(Add(mean, eps))
    y    = Mul(Mul(x, Reciprocal(std)) | Div(x, std), weight)

- `Op(a, b)` matches a node of type Op whose inputs match a and b; commutative ops (Add, Mul,
  ...) match in either operand order. `Op<attr=value, ...>` also checks attributes.
- `a | b` tries each alternative in turn; `Op?(a)` matches Op(a) or a alone (an optional node).
- a name bound by a line is a sub-pattern; any other name is a capture: the first use binds a
  value and every later use must see the same value. `_` matches anything without binding.
- a number matches a constant whose elements all equal it (within the rule's tolerance).
No part of a pattern is ever evaluated as Python.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from autofuse.errors import AutofuseError


class PatternSyntaxError(AutofuseError):
    """A pattern line that does not parse; `column` is 1-based within the line."""

    exit_code = 2

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Ref:
    name: str  # a binding, a capture, or "_"


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Call:
    ops: tuple[str, ...]  # one op type, or several for `Mul|Div(...)`-style shorthand
    args: tuple["Expr", ...]
    attrs: tuple[tuple[str, "AttrValue"], ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class Alt:
    options: tuple["Expr", ...]


Expr = Ref | Number | Call | Alt
AttrValue = int | float | str | tuple[int | float, ...]


@dataclass(frozen=True)
class Binding:
    name: str
    expr: Expr
    line: int  # 1-based line within the pattern text
    text: str  # the source line, for messages


_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+\.?\d*(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<sym>[=|(),<>?\[\]]))")


def parse_pattern(text: str) -> list[Binding]:
    """Parse pattern text into bindings (root last). Raises PatternSyntaxError."""
    bindings: list[Binding] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        bindings.append(_LineParser(line, number).binding())
    if not bindings:
        raise PatternSyntaxError("the pattern is empty", 1, 1)
    return bindings


class _LineParser:
    def __init__(self, line: str, number: int) -> None:
        self.line = line
        self.number = number
        self.tokens = self._tokenize()
        self.pos = 0

    def _tokenize(self) -> list[tuple[str, str, int]]:
        tokens, at = [], 0
        while at < len(self.line):
            if self.line[at:].strip() == "":
                break
            found = _TOKEN.match(self.line, at)
            if not found or found.end() == at:
                raise self._error(f"unexpected character {self.line[at:].lstrip()[0]!r}", at)
            kind = found.lastgroup
            tokens.append((kind, found.group(kind), found.start(kind)))
            at = found.end()
        return tokens

    def _error(self, message: str, column: int | None = None) -> PatternSyntaxError:
        if column is None:
            column = self.tokens[self.pos][2] if self.pos < len(self.tokens) else len(self.line)
        return PatternSyntaxError(message, self.number, column + 1)

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise self._error(f"expected {value or kind}, found the end of the line")
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise self._error(f"expected {value or kind}, found {token[1]!r}")
        self.pos += 1
        return token

    def binding(self) -> Binding:
        name = self._take(kind="name")[1]
        self._take("=")
        expr = self._alternatives()
        if self._peek() is not None:
            raise self._error(f"unexpected {self._peek()[1]!r} after the expression")
        return Binding(name, expr, self.number, self.line.strip())

    def _alternatives(self) -> Expr:
        options = [self._term()]
        while self._peek() is not None and self._peek()[1] == "|":
            self._take("|")
            options.append(self._term())
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def _term(self) -> Expr:
        token = self._peek()
        if token is None:
            raise self._error("expected an expression, found the end of the line")
        kind, value, _ = token
        if kind == "num":
            self.pos += 1
            return Number(float(value))
        if kind != "name":
            raise self._error(f"expected an expression, found {value!r}")
        self.pos += 1
        nxt = self._peek()
        if nxt is None or nxt[1] not in ("(", "<", "?"):
            return Ref(value)
        if not value[0].isupper():
            raise self._error(f"op names start with a capital letter, got {value!r}", token[2])
        return self._call(value)

    def _call(self, op: str) -> Call:
        optional = False
        if self._peek()[1] == "?":
            self._take("?")
            optional = True
        attrs: list[tuple[str, AttrValue]] = []
        if self._peek() is not None and self._peek()[1] == "<":
            self._take("<")
            while True:
                key = self._take(kind="name")[1]
                self._take("=")
                attrs.append((key, self._attr_value()))
                if self._peek() is not None and self._peek()[1] == ",":
                    self._take(",")
                    continue
                self._take(">")
                break
        self._take("(")
        args: list[Expr] = []
        if self._peek() is not None and self._peek()[1] != ")":
            args.append(self._alternatives())
            while self._peek() is not None and self._peek()[1] == ",":
                self._take(",")
                args.append(self._alternatives())
        self._take(")")
        if optional and len(args) != 1:
            raise self._error(f"an optional op takes exactly one input ({op}? has {len(args)})")
        return Call((op,), tuple(args), tuple(attrs), optional)

    def _attr_value(self) -> AttrValue:
        token = self._peek()
        if token is not None and token[1] == "[":
            self._take("[")
            items = [self._number()]
            while self._peek() is not None and self._peek()[1] == ",":
                self._take(",")
                items.append(self._number())
            self._take("]")
            return tuple(items)
        if token is not None and token[0] == "num":
            return self._number()
        return self._take(kind="name")[1]

    def _number(self) -> int | float:
        text = self._take(kind="num")[1]
        return float(text) if any(c in text for c in ".eE") else int(text)


def names_in(expr: Expr) -> list[str]:
    """Every name an expression refers to, in order of appearance."""
    if isinstance(expr, Ref):
        return [expr.name]
    if isinstance(expr, Call):
        return [n for arg in expr.args for n in names_in(arg)]
    if isinstance(expr, Alt):
        return [n for option in expr.options for n in names_in(option)]
    return []


def ops_in(expr: Expr) -> set[str]:
    if isinstance(expr, Call):
        return set(expr.ops) | {op for arg in expr.args for op in ops_in(arg)}
    if isinstance(expr, Alt):
        return {op for option in expr.options for op in ops_in(option)}
    return set()


@functools.lru_cache(maxsize=4096)
def describe(expr: Expr) -> str:
    """The expression written back as pattern text (for near-miss messages)."""
    if isinstance(expr, Ref):
        return expr.name
    if isinstance(expr, Number):
        return f"{expr.value:g}"
    if isinstance(expr, Alt):
        return " | ".join(describe(o) for o in expr.options)
    attrs = ", ".join(f"{k}={v}" for k, v in expr.attrs)
    head = "|".join(expr.ops) + ("?" if expr.optional else "") + (f"<{attrs}>" if attrs else "")
    return f"{head}({', '.join(describe(a) for a in expr.args)})"
