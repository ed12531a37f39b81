"""Shape arithmetic over static and symbolic dims (pure functions, no op knowledge)."""
from __future__ import annotations

from autofuse.ir.graph import Dim


def broadcast_shapes(shapes: list[tuple[Dim, ...]]) -> tuple[Dim, ...]:
    """Numpy broadcasting; a dim is None where the result is not known."""
    rank = max(len(s) for s in shapes)
    result: list[Dim] = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        result.append(_broadcast_dim(dims))
    return tuple(result)


def _broadcast_dim(dims: list[Dim]) -> Dim:
    known = {d for d in dims if d != 1}
    if not known:
        return 1
    if None in known:
        return None
    static = {d for d in known if isinstance(d, int)}
    if len(static) == 1:
        return static.pop()
    if len(static) > 1:
        return None  # not broadcastable; the runtime will say so
    return known.pop() if len(known) == 1 else None


def numel_key(shape: tuple[Dim, ...]) -> tuple[int, tuple[str, ...]] | None:
    """A comparable element count: static product and sorted symbolic factors (None if unknown)."""
    static, symbols = 1, []
    for d in shape:
        if d is None:
            return None
        if isinstance(d, int):
            static *= d
        else:
            symbols.append(d)
    return static, tuple(sorted(symbols))


def format_shape(shape: tuple[Dim, ...] | None) -> str:
    if shape is None:
        return "[?]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
