"""Strided views: how a kernel finds an element of a tensor it reads without moving it.

Reshape, Transpose, Unsqueeze, Squeeze, Expand and last-axis Slice inside a fused group move no
data: the kernel reads its GM input (or the MatMul workspace) through a view with strides, the
way numpy and torch describe views. A view that no strides describe (a reshape merging axes a
transpose separated) is None, and the group is reported as not lowered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    """Element (i0, ..., in) of the view is element `offset + sum(i_d * strides[d])` of `storage`."""

    storage: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0

    @staticmethod
    def contiguous(storage: str, shape: tuple[int, ...]) -> View:
        return View(storage, tuple(shape), row_major(shape))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def is_contiguous(view: View) -> bool:
    """Row-major with no offset (strides of size-1 axes do not matter)."""
    return view.offset == 0 and all(d == 1 or s == r for d, s, r in zip(view.shape, view.strides,
                                                                          row_major(view.shape)))


def row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def reshape(view: View, shape: tuple[int, ...]) -> View | None:
    """The view with a new shape of the same size, if strides can describe it."""
    shape = tuple(shape)
    if math.prod(shape) != view.numel:
        return None
    # Drop size-1 axes (their stride is irrelevant), then split or merge the remaining axes.
    old = [(d, s) for d, s in zip(view.shape, view.strides) if d != 1]
    new_strides: list[int] = []
    i = 0
    for d in shape:
        if d == 1:
            new_strides.append(0)
            continue
        if i >= len(old):
            return None
        size, stride = old[i]
        if size == d:
            new_strides.append(stride)
            i += 1
        elif size % d == 0:  # split an old axis: the outer part comes first
            new_strides.append(stride * (size // d))
            old[i] = (size // d, stride)
        else:  # merge consecutive old axes whose strides nest
            total, merged = size, stride
            i += 1
            while total < d and i < len(old):
                nsize, nstride = old[i]
                if merged != nstride * nsize:
                    return None
                total, merged = total * nsize, nstride
                i += 1
            if total != d:
                return None
            new_strides.append(merged)
    return View(view.storage, shape, tuple(new_strides), view.offset)


def transpose(view: View, perm: tuple[int, ...]) -> View:
    return View(view.storage, tuple(view.shape[p] for p in perm), tuple(view.strides[p] for p in perm), view.offset)


def expand(view: View, shape: tuple[int, ...]) -> View | None:
    """numpy broadcasting of the view to `shape` (right-aligned; size-1 axes get stride 0)."""
    if len(shape) < len(view.shape):
        return None
    pad = len(shape) - len(view.shape)
    dims = (1,) * pad + view.shape
    strides = (0,) * pad + view.strides
    out = []
    for have, want, stride in zip(dims, shape, strides):
        if have == want:
            out.append(stride if have != 1 else 0)
        elif have == 1:
            out.append(0)
        else:
            return None
    return View(view.storage, tuple(shape), tuple(out), view.offset)


def slice_axis(view: View, axis: int, start: int, stop: int) -> View:
    """Elements [start, stop) of one axis (step 1; bounds already clamped)."""
    shape = list(view.shape)
    shape[axis] = max(0, stop - start)
    return View(view.storage, tuple(shape), view.strides, view.offset + start * view.strides[axis])


def slice_bounds(op_type: str, attrs, shape: tuple[int, ...], output_dims: list[int] | None,
                 bounds: list) -> list[tuple[int, int, int]]:
    """(axis, start, stop) of each output of a Split or a one-axis, step-1 Slice of a value of
    `shape`. Split: `output_dims` are the outputs' sizes along the axis. Slice: `bounds` are the
    known values of its starts, ends, axes and steps inputs (None where absent). Raises
    ValueError for a Slice the kernels do not take (several axes, a step other than 1)."""
    rank = len(shape)
    if op_type == "Split":
        axis = int(attrs.get("axis", 0)) % rank
        out, start = [], 0
        for size in output_dims or []:
            out.append((axis, start, start + size))
            start += size
        return out
    starts, ends = [int(x) for x in bounds[0].reshape(-1)], [int(x) for x in bounds[1].reshape(-1)]
    axes = [int(x) for x in bounds[2].reshape(-1)] if len(bounds) > 2 and bounds[2] is not None \
        else list(range(len(starts)))
    steps = [int(x) for x in bounds[3].reshape(-1)] if len(bounds) > 3 and bounds[3] is not None else [1] * len(starts)
    if len(axes) != 1 or steps[0] != 1:
        raise ValueError("one axis with step 1 is supported")
    axis = axes[0] % rank
    size = shape[axis]
    start = max(0, min(size, starts[0] + size if starts[0] < 0 else starts[0]))
    end = max(0, min(size, ends[0] + size if ends[0] < 0 else ends[0]))
    return [(axis, start, end)]


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy's broadcast of several shapes, or None when they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)

# -- row addressing ---------------------------------------------------------------------------


def merge_dims(dims: tuple[int, ...], strides: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row dims and their strides with size-1 dims dropped and nesting neighbours merged."""
    pairs = [(d, s) for d, s in zip(dims, strides) if d != 1]
    merged: list[list[int]] = []
    for d, s in pairs:
        if merged and merged[-1][1] == s * d:
            merged[-1] = [merged[-1][0] * d, s]
        else:
            merged.append([d, s])
    return tuple(d for d, _ in merged), tuple(s for _, s in merged)


def rows_contiguous(dims: tuple[int, ...], strides: tuple[int, ...], width: int) -> bool:
    return len(dims) <= 1 and (not dims or strides[0] == width)


def row_index_expr(dims: tuple[int, ...], strides: tuple[int, ...], offset: int, row: str) -> str:
    """C++ expression of the storage element index of global row `row` (below the product of
    `dims`: the outermost coordinate needs no wrap, so the expression does not name its extent)."""
    terms = [str(offset)] if offset else []
    inner = 1
    for axis in reversed(range(len(dims))):
        d, s = dims[axis], strides[axis]
        if s:
            coord = f"({row} / {inner})" if inner > 1 else row
            terms.append(f"(({coord} % {d}) * {s})" if d > 1 and axis else f"({coord} * {s})")
        inner *= d
    return " + ".join(terms) or "0"


def pitched(index: str, width: int, pitch: int) -> str:
    if pitch == width:
        return index if index.isdigit() else f"({index})"
    return f"((({index}) / {width}) * {pitch} + ({index}) % {width})"


def moves_nothing(shape: tuple[int, ...], perm) -> bool:
    if perm is None:
        return len([d for d in shape if d != 1]) <= 1
    order = [p for p in perm if shape[p] != 1]
    return order == sorted(order)
