"""Strided views of GM data: the geometry lives in autofuse/ir/views.py (the cost model's Unified
Buffer layout reads it too); this module keeps the code generator's name for it."""
from autofuse.ir.views import (  # noqa: F401
    View,
    broadcast_shape,
    expand,
    is_contiguous,
    merge_dims,
    moves_nothing,
    pitched,
    reshape,
    row_index_expr,
    row_major,
    rows_contiguous,
    slice_bounds,
    slice_axis,
    transpose,
)
