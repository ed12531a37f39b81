"""The tiling decision for one fused kernel: how it is cut into tiles, what lives in the Unified
Buffer, and whether that fits. The cost model prices this tile and the code generator emits
this tile; nothing else decides it.

A vector kernel walks its iteration space in tiles spread over the vector cores. Per tile it
keeps, in UB: every full-size input in a queue (double-buffered while at most
`max_double_buffered_inputs` inputs exist, single-buffered beyond), every full-size output in a
double-buffered queue, small broadcast inputs once, and fp32 temporaries for each value live at
the same time (plus one fp32 cast buffer per fp16/bf16 input, since Huawei's kernels compute
half-precision in fp32). Row kernels (norms, softmax, reductions) need whole rows per tile; a
row that does not fit is split into chunks, walked once per level of reduction (a stated penalty:
traffic.py counts a read per pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from autofuse.cost.hardware import Hardware

_FP32 = 4
# Work per core before another core is worth its share of the launch head: Huawei recommends
# fewer cores for microsecond-scale ops (ascendc.md 4.1). Our estimate (G): 64 KiB moved per core.
BYTES_PER_CORE = 64 * 1024


def cores_for(moved_bytes: int, cores: int) -> int:
    """How many of `cores` a kernel moving `moved_bytes` spreads over."""
    return min(cores, max(1, -(-moved_bytes // BYTES_PER_CORE)))
# Per-row scratch a row kernel keeps besides the row itself (reduction results, one 32 B block each).
_ROW_SCRATCH = 2 * 32


@dataclass(frozen=True)
class Buffer:
    """One UB allocation of the kernel."""

    name: str  # "in:x", "out:y", "tmp0", "cast:x", "row_scratch"
    bytes_per_copy: int
    copies: int  # 2 = double-buffered queue

    @property
    def total(self) -> int:
        return self.bytes_per_copy * self.copies


@dataclass(frozen=True)
class Tile:
    """The chosen tiling. `elements` is per tile; for row kernels `rows` x `row_len` elements."""

    scheme: str  # "elementwise" | "rows" | "split_row" | "matmul_epilogue" | "call_through" | "host"
    elements: int
    rows: int = 0
    row_len: int = 0
    cores: int = 1
    tiles: int = 1  # tiles in the whole kernel (over all cores)
    buffers: tuple[Buffer, ...] = ()
    ub_capacity: int = 0
    single_buffered: bool = False
    note: str = ""

    @property
    def ub_bytes(self) -> int:
        return sum(b.total for b in self.buffers)

    def as_dict(self) -> dict:
        out = {"scheme": self.scheme, "elements_per_tile": self.elements, "cores": self.cores, "tiles": self.tiles}
        if self.rows:
            out.update(rows_per_tile=self.rows, row_len=self.row_len)
        if self.single_buffered:
            out["single_buffered"] = True
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class TileRequest:
    """What a vector kernel has to hold per element of its iteration space."""

    space: int  # elements of the iteration space (the largest tensor walked)
    full_inputs: tuple[tuple[str, int], ...]  # (name, itemsize) of inputs as large as the space
    # (name, bytes, itemsize) of broadcast inputs: loaded whole when small, else a tile's worth
    small_inputs: tuple[tuple[str, int, int], ...]
    outputs: tuple[tuple[str, int], ...]  # (name, itemsize)
    temporaries: int  # fp32 values live at once
    casts: int  # half-precision inputs computed in fp32
    row_len: int = 0  # > 0 for row kernels (norm, softmax, reduction)
    rows: int = 0
    # > 0 for an elementwise kernel that must hold whole rows of this many elements per tile: it
    # broadcasts a value per row or per column, or moves data along the last axis (the code
    # generator walks such a kernel row by row).
    row_align: int = 0
    # UB the generated kernel keeps besides the tile buffers: fp32 copies of small inputs, rows
    # padded to 32 B, reduction scratch (bytes).
    fixed_extra: int = 0
    compares: bool = False  # Compare/Select: a bit mask per element (counted as a byte)
    extra: tuple[str, ...] = field(default=())


class TileOverflow(Exception):
    """Even the smallest legal tile does not fit the usable Unified Buffer."""

    def __init__(self, message: str, buffers: tuple[Buffer, ...], capacity: int) -> None:
        super().__init__(message)
        self.buffers = buffers
        self.capacity = capacity


def choose_tile(request: TileRequest, hw: Hardware) -> Tile:
    """The largest tile that fits the usable UB (raises TileOverflow when none does)."""
    if request.row_len or request.row_align:
        return _row_tile(request, hw)
    return _elementwise_tile(request, hw)


def _align(hw: Hardware, itemsize: int) -> int:
    """Elements per 32-byte UB block for the widest element in play."""
    return max(1, hw.ub_alignment // itemsize)


def _buffers(request: TileRequest, elements: int, hw: Hardware) -> tuple[tuple[Buffer, ...], bool]:
    single = len(request.full_inputs) > hw.max_double_buffered_inputs
    buffers = [Buffer(f"in:{name}", _round_up(elements * size, hw.ub_alignment), 1 if single else 2)
               for name, size in request.full_inputs]
    buffers += [Buffer(f"in:{name}", _round_up(min(nbytes, elements * size), hw.ub_alignment), 1)
                for name, nbytes, size in request.small_inputs]
    buffers += [Buffer(f"out:{name}", _round_up(elements * size, hw.ub_alignment), 2) for name, size in request.outputs]
    buffers += [Buffer(f"tmp{i}", _temp_bytes(elements), 1) for i in range(request.temporaries)]
    buffers += [Buffer(f"cast{i}", _temp_bytes(elements), 1) for i in range(request.casts)]
    if request.compares:
        buffers.append(Buffer("mask", _round_up(elements, hw.ub_alignment), 1))
    if request.fixed_extra:
        buffers.append(Buffer("fixed", _round_up(request.fixed_extra, hw.ub_alignment), 1))
    return tuple(buffers), single


def _temp_bytes(elements: int) -> int:
    """An fp32 temporary: Compare/Select counts are rounded up to 256 B, plus one block of it spare."""
    return _round_up(elements * _FP32, _COMPARE_BYTES) + _COMPARE_BYTES


_COMPARE_BYTES = 256


def _per_element(request: TileRequest, hw: Hardware) -> int:
    single = len(request.full_inputs) > hw.max_double_buffered_inputs
    inputs = sum(size for _, size in request.full_inputs) * (1 if single else 2)
    outputs = sum(size for _, size in request.outputs) * 2
    masks = 1 if request.compares else 0
    return inputs + outputs + _FP32 * (request.temporaries + request.casts) + masks + _large_broadcast(request)


def _large_broadcast(request: TileRequest) -> int:
    """Broadcast inputs too big to keep whole take a tile's worth per element (single copy)."""
    return sum(size for _, nbytes, size in request.small_inputs if nbytes > WHOLE_BROADCAST)


def _fixed(request: TileRequest, hw: Hardware) -> int:
    whole = sum(_round_up(nbytes, hw.ub_alignment) for _, nbytes, _ in request.small_inputs
                if nbytes <= WHOLE_BROADCAST)
    padding = 2 * _COMPARE_BYTES * (request.temporaries + request.casts)
    return whole + padding + _round_up(request.fixed_extra, hw.ub_alignment)


# Broadcast inputs up to this size are loaded whole once per kernel (a bias, a norm weight).
WHOLE_BROADCAST = 16 * 1024


def resident_pitch(width: int, itemsize: int) -> int:
    """Elements between the rows of a small input kept whole in UB (one decision, read by the
    cost model's UB count and the code generator's buffers): a row of one element packs (the
    input is one contiguous run); wider rows start on a 32-byte block both as loaded (`itemsize`)
    and as the fp32 copy the kernel computes with."""
    if width == 1:
        return 1
    per_block = max(32 // 4, 32 // max(itemsize, 1))
    return _round_up(width, per_block)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _elementwise_tile(request: TileRequest, hw: Hardware) -> Tile:
    widest = max([size for _, size in (*request.full_inputs, *request.outputs)] + [1])
    align = _align(hw, widest)
    per_element = max(_per_element(request, hw), 1)
    room = hw.ub_usable_bytes - _fixed(request, hw) - _ROUNDING_SLACK * (len(request.full_inputs) + len(request.outputs))
    fit = (room // per_element) // align * align
    if fit < align:
        buffers, _ = _buffers(request, align, hw)
        raise TileOverflow(f"even a {align}-element tile needs {sum(b.total for b in buffers)} B of UB", buffers,
                           hw.ub_usable_bytes)
    io_bytes = sum(size for _, size in (*request.full_inputs, *request.outputs)) or 1
    cores = cores_for(request.space * io_bytes, hw.aiv_cores)
    per_core = _round_up(-(-request.space // cores), align) if request.space else align
    elements = max(align, min(fit, per_core))
    tiles = max(1, -(-request.space // elements))
    buffers, single = _buffers(request, elements, hw)
    return Tile("elementwise", elements, cores=min(cores, tiles), tiles=tiles, buffers=buffers,
                ub_capacity=hw.ub_usable_bytes, single_buffered=single)


# Alignment rounding can add up to one 32 B block per queue buffer; keep that much room.
_ROUNDING_SLACK = 64
# A split row keeps its per-row values (one 256 B block each, room for 4) and the reduction
# scratch of a chunk besides the chunk buffers.
_SPLIT_SCRATCH = 2 * 1024


def _row_tile(request: TileRequest, hw: Hardware) -> Tile:
    # A row kernel, or an elementwise kernel walked in whole rows (`row_align`, no row scratch).
    row_len = request.row_len or request.row_align
    total_rows = request.rows or max(1, request.space // row_len)
    scratch = _ROW_SCRATCH if request.row_len else 0
    # Rows start 32 B-aligned in UB: a row occupies its length rounded up to the narrowest
    # element's 32 B block.
    narrowest = min([size for _, size in (*request.full_inputs, *request.outputs)] + [_FP32])
    pitch = _round_up(row_len, _align(hw, narrowest))
    row_bytes = _per_element(request, hw) * pitch + scratch
    room = hw.ub_usable_bytes - _fixed(request, hw) - _ROUNDING_SLACK * (len(request.full_inputs) + len(request.outputs) + 2)
    rows_fit = room // row_bytes
    if rows_fit >= 1:
        io_bytes = sum(size for _, size in (*request.full_inputs, *request.outputs)) or 1
        cores = cores_for(total_rows * row_len * io_bytes, hw.aiv_cores)
        per_core = max(1, -(-total_rows // cores))
        rows = int(min(rows_fit, per_core))
        tiles = max(1, -(-total_rows // rows))
        buffers, single = _buffers(request, rows * pitch, hw)
        if scratch:
            buffers = (*buffers, Buffer("row_scratch", scratch * rows, 1))
        return Tile("rows" if request.row_len else "elementwise", rows * row_len, rows=rows, row_len=row_len,
                    cores=min(cores, tiles), tiles=tiles, buffers=buffers, ub_capacity=hw.ub_usable_bytes,
                    single_buffered=single)
    if not request.row_len:
        buffers, _ = _buffers(request, pitch, hw)
        raise TileOverflow(f"one row of {row_len} elements needs {sum(b.total for b in buffers)} B of UB "
                           "and this kernel walks whole rows", buffers, hw.ub_usable_bytes)
    # Split rows: chunks of a row, reduce over the chunks, then a second pass re-reads them.
    chunk_request = TileRequest(request.row_len, request.full_inputs, request.small_inputs, request.outputs,
                                request.temporaries, request.casts, compares=request.compares,
                                fixed_extra=request.fixed_extra + _SPLIT_SCRATCH)
    chunk = _elementwise_tile(chunk_request, hw)
    chunks = math.ceil(request.row_len / chunk.elements)
    buffers = (*chunk.buffers, Buffer("row_scratch", _ROW_SCRATCH, 1))
    tiles = request.rows * chunks
    io_bytes = sum(size for _, size in (*request.full_inputs, *request.outputs)) or 1
    cores = min(cores_for(request.rows * request.row_len * io_bytes, hw.aiv_cores), request.rows)
    return Tile("split_row", chunk.elements, rows=1, row_len=request.row_len, cores=cores,
                tiles=tiles, buffers=buffers, ub_capacity=hw.ub_usable_bytes, single_buffered=chunk.single_buffered,
                note=f"a row of {request.row_len} elements does not fit: {chunks} chunks per row, "
                     "read once per reduction pass")
