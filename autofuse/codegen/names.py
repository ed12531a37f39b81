"""C++ identifiers and comment text from ONNX names.

ONNX value and node names are arbitrary strings: they can hold quotes, `*/`, newlines, C++
keywords, leading digits, non-ASCII letters, or be empty. Nothing from an ONNX name reaches the
generated source except through this module: identifiers are rebuilt from `[A-Za-z0-9_]` with a
role prefix and made unique per scope, and comment text is reduced to printable ASCII that cannot
end a `//` comment early or continue it onto the next line.
"""
from __future__ import annotations

import hashlib
import re

# C++20 keywords and alternative tokens, plus names the generated kernels themselves use.
_KEYWORDS = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
    return short signed sizeof static static_assert static_cast struct switch template this
    thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
    wchar_t while xor xor_eq half bfloat16_t main
""".split())  # noqa: SIM905
_MAX_LENGTH = 40
_NOT_IDENT = re.compile(r"[^A-Za-z0-9]+")


def _fold(text: str) -> str:
    """ASCII letters and digits of `text`, runs of anything else as one underscore."""
    ascii_text = "".join(ch if ord(ch) < 128 else f"_u{ord(ch):x}_" for ch in text)
    return _NOT_IDENT.sub("_", ascii_text).strip("_")


def identifier(text: str, prefix: str = "") -> str:
    """A valid, non-reserved C++ identifier made from `text` (not yet unique)."""
    core = _fold(text) or "v"
    if len(core) > _MAX_LENGTH:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        core = f"{core[:_MAX_LENGTH - 9].rstrip('_')}_{digest}"
    name = f"{prefix}{core}" if prefix else core
    if name[0].isdigit():
        name = f"v{name}"
    if name in _KEYWORDS:
        name = f"{name}_"
    return name


def camel_case(text: str) -> str:
    """`RmsNorm_2` -> `RmsNorm2`: a CamelCase identifier (CANN op class names)."""
    parts = [p for p in _fold(text).split("_") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Op"
    return name if not name[0].isdigit() else f"Op{name}"


def snake_case(camel: str) -> str:
    """`AutofuseRmsNorm2` -> `autofuse_rms_norm2` (the kernel entry name msOpGen derives)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", camel)
    return identifier(spaced.lower())


class Namer:
    """Hands out identifiers unique within one scope (one generated kernel)."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._used: set[str] = set(reserved)

    def name(self, text: str, prefix: str = "") -> str:
        base = identifier(text, prefix)
        candidate, n = base, 2
        while candidate in self._used:
            candidate = f"{base}_{n}"
            n += 1
        self._used.add(candidate)
        return candidate


def comment_text(text: str, limit: int = 120) -> str:
    """`text` made safe for a `//` comment: printable ASCII, no line breaks, no trailing
    backslash (which would continue the comment), no `*/` or `/*`, at most `limit` characters."""
    if not text.isascii() or not text.isprintable():
        text = "".join(_comment_char(ch) for ch in text)
    safe = text.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    if len(safe) > limit:
        safe = safe[: limit - 3] + "..."
    return safe.rstrip("\\ ") or "(unnamed)"


def _comment_char(ch: str) -> str:
    code = ord(ch)
    if 32 <= code < 127:
        return ch
    return " " if ch in "\r\n\t\v\f" else f"<U+{code:04X}>"
