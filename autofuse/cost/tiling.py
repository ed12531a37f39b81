"""The tiling decision for one fused kernel: how it is cut into tiles, what lives in the Unified
Buffer, and whether that fits. The cost model prices this tile and the code generator emits
this tile; nothing else decides it.

A vector kernel walks its iteration space in tiles spread over the vector cores. What it keeps in
UB is the layout the code generator writes (cost/layout.py walks the group as the generator
does): every streamed input in a queue (double-buffered while at most
`max_double_buffered_inputs` inputs exist, single-buffered beyond), every output in a
double-buffered queue, small broadcast inputs resident once (as fp32 rows, and as loaded when
not fp32), the fp32 temporaries and per-row values the generator's allocator ends up with, and
the scratch of the instructions it uses. The buffer sizes are the formulas below, which the
generator (codegen/part.py) reads too: the UB the cost model counts is the UB the kernel takes.

A TPosition holds at most `queue_buffers_per_position` queue buffers and a kernel at most
`queue_buffers_total` buffers (hardware profile `limits`). Streams beyond the first limit share
queues: one queue buffer holds the tiles of several tensors side by side (`shared_queues`, the
rule the generator follows); a kernel that would still need more buffers than the second limit
is refused where the group is formed (`QueueLimit`, reason `too_many_buffers`), and so is one
that takes more GM arguments than a launch passes (`ArgumentLimit`, `too_many_arguments`: the
profile's `kernel_arguments`, CANN's CPU debug launcher's limit). Row kernels
(norms, softmax, reductions) need whole rows per tile; a row that does not fit is split into
chunks, walked once per level of reduction (a stated penalty: traffic.py counts a read per pass).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from autofuse.cost.hardware import Hardware

_FP32 = 4
# Work per core before another core is worth its share of the launch head: Huawei recommends
# fewer cores for microsecond-scale ops (ascendc.md 4.1). Our estimate (G): 64 KiB moved per core.
BYTES_PER_CORE = 64 * 1024


def cores_for(moved_bytes: int, cores: int) -> int:
    """How many of `cores` a kernel moving `moved_bytes` spreads over."""
    return min(cores, max(1, -(-moved_bytes // BYTES_PER_CORE)))


# The most units (rows or elements) a tile of a kernel over a symbolic space may hold: the search
# for the largest tile the Unified Buffer fits starts below it.
_MOST_UNITS = 1 << 24


@dataclass(frozen=True)
class WalkRule:
    """How a kernel's tiles follow the size of its iteration space. The cost model prices the
    rule at the bound sizes; the generated tiling function (host/tiling_func.h.j2) runs the same
    rule on the real shapes, so a kernel over a symbolic space gets the tile count, the tail and
    the core split its run-time size calls for. One definition, spelled twice (Python here, C++
    there): tests/test_runtime_tiling.py runs both over many sizes and checks they agree.

    The space is counted in units: rows of `unit` elements for row walks, elements for a flat
    walk. A tile holds at most `cap` units (what the kernel's buffers were sized for)."""

    walk: str  # "flat" | "rows" | "split_row"
    unit: int  # elements per unit: the row length (row walks), 1 (flat)
    io_bytes: int  # bytes moved per element of the space (full-size inputs and outputs)
    cap: int  # units per tile the buffers hold (split_row: elements per chunk of a row)
    align: int = 1  # a flat tile is a multiple of this many elements (one 32-byte block)

    def units(self, space: int) -> int:
        return space if self.walk == "flat" else max(1, space // self.unit)

    def counts(self, space: int, cores: int) -> tuple[int, int, int]:
        """(units per tile, tiles, cores used) for a space of `space` elements over `cores`
        vector cores. A split row walks one row per tile (its chunks are the row's own walk)."""
        units = self.units(space)
        want = cores_for(units * self.unit * self.io_bytes, cores)
        if self.walk == "split_row":
            return 1, units, min(want, units)
        if self.walk == "flat":
            per_core = _round_up(-(-units // want), self.align) if units else self.align
        else:
            per_core = max(1, -(-units // want))
        per_tile = min(self.cap, per_core)
        tiles = max(1, -(-units // per_tile))
        return per_tile, tiles, min(want, tiles)


# Broadcast inputs up to this size are loaded whole once per kernel (a bias, a norm weight).
WHOLE_BROADCAST = 16 * 1024
# A split row keeps its per-row values and the reduction scratch of a chunk besides the chunk
# buffers (our allowance: the split walk is not laid out exactly, see _split_tile).
_SPLIT_SCRATCH = 2 * 1024
# Compare and Select count in 256-byte repeats: a temporary holds a tile rounded up to 64 fp32
# values, plus 64 more (part.py: the row of slack per-row instructions may touch).
_REPEAT_ELEMENTS = 64


# -- sizes: one formula per kind of buffer, read by the generator as well ------------------------


def tile_elements(walk: str, per_tile: int, pitch: int) -> int:
    """Elements of one tile buffer: rows of `pitch` elements (rows walk), else `per_tile`."""
    return per_tile * pitch if walk == "rows" else per_tile


def temp_elements(tile: int) -> int:
    """fp32 elements of a tile temporary holding `tile` elements."""
    return -(-tile // _REPEAT_ELEMENTS) * _REPEAT_ELEMENTS + _REPEAT_ELEMENTS


def row_value_elements(walk: str, per_tile: int) -> int:
    """Elements of a one-value-per-row buffer (room for Compare's 256-byte counts); a split
    row's values are one element (a whole repeat)."""
    return _REPEAT_ELEMENTS if walk == "split_row" else -(-per_tile // _REPEAT_ELEMENTS) * _REPEAT_ELEMENTS


def ub_bytes(elements: int, itemsize: int, alignment: int = 32) -> int:
    """Bytes of one UB buffer: InitBuffer rounds every buffer up to the UB alignment."""
    return -(-elements * itemsize // alignment) * alignment


def kept_whole(elements: int, itemsize: int, space: int, grows: bool, per_row: bool) -> bool:
    """Whether a broadcast input is loaded whole once per core and kept in UB (a bias, a norm
    weight, a rotary table) rather than read a tile at a time: it is smaller than the space, at
    most WHOLE_BROADCAST bytes, and its size does not grow with a symbolic dim of a kernel over
    symbolic dims (`grows`: a shape-generic kernel holds the same UB at any size), unless it is
    one value per row of a row walk (`per_row`), which is only ever read from UB (the kernel is
    then specialised to the bound sizes). One decision, read by the generator
    (codegen/part.py), the UB count (layout.py) and the byte count (traffic.py)."""
    small = elements < space and elements * itemsize <= WHOLE_BROADCAST
    return small and (not grows or per_row)


def row_pitch(width: int, itemsizes) -> int:
    """Elements between the rows of a tile in UB: the row length rounded up to a 32-byte block
    of the narrowest type a tile of the walk holds (the outputs and the inputs read a tile at a
    time, streamed_input). One decision, read by the generator and the UB count."""
    block = 32 // min([*itemsizes, 4])
    return -(-width // block) * block


def streamed_input(elements: int, space: int, grows: bool) -> bool:
    """Whether an input may be read a tile at a time in a row walk (so its rows share the tile's
    pitch): as large as the space, or growing with a symbolic dim of a shape-generic kernel
    (kept_whole)."""
    return elements >= space or grows


def whole_rows(col: int, row_len: int, space_width: int) -> bool:
    """Whether a slice of the last axis starting at column `col` of rows of `row_len` elements is
    read as whole rows (one load serving every slice of those rows, each slice then used at its
    column of the fp32 tile), or alone (a load of just its columns, landing at column 0). Whole
    rows only when the column starts a 32-byte block of the fp32 tile (vector operands must) and
    the rows fit the walk's width. One decision, read by the generator (codegen/part.py), the UB
    count (layout.py) and the byte count (traffic.py)."""
    return col % (32 // 4) == 0 and row_len <= space_width


def resident_pitch(width: int, itemsize: int) -> int:
    """Elements between the rows of a small input kept whole in UB (one decision, read by the
    cost model's UB count and the code generator's buffers): a row of one element packs (the
    input is one contiguous run); wider rows start on a 32-byte block both as loaded (`itemsize`)
    and as the fp32 copy the kernel computes with."""
    if width == 1:
        return 1
    per_block = max(32 // 4, 32 // max(itemsize, 1))
    return _round_up(width, per_block)


def shared_queues(copies: Sequence[int], limit: int) -> list[list[int]]:
    """Which streams of one TPosition share a queue buffer (indices into `copies`, each stream's
    buffers). Every stream keeps its own queue while their buffers fit `limit`; beyond it the
    streams of each buffering share as few queues as needed, neighbours together, the
    double-buffered ones giving up queues first. Raises ValueError when even one queue per
    buffering does not fit. The code generator follows this rule (codegen/part.py)."""
    if sum(copies) <= limit:
        return [[i] for i in range(len(copies))]
    kinds = sorted(set(copies), reverse=True)
    members = {c: [i for i, have in enumerate(copies) if have == c] for c in kinds}
    queues = {c: len(members[c]) for c in kinds}
    while sum(c * queues[c] for c in kinds) > limit:
        shrinking = next((c for c in kinds if queues[c] > 1), None)
        if shrinking is None:
            raise ValueError(f"{len(kinds)} queue bufferings need more than {limit} buffers")
        queues[shrinking] -= 1
    groups: list[list[int]] = []
    for c in kinds:
        base, extra = divmod(len(members[c]), queues[c])
        start = 0
        for q in range(queues[c]):
            size = base + (1 if q < extra else 0)
            groups.append(members[c][start:start + size])
            start += size
    return sorted(groups)


# -- the layout of a kernel -------------------------------------------------------------------------


@dataclass(frozen=True)
class UbAlloc:
    """One UB allocation of a kernel part, sized by the tile:

    tile               a tile of `itemsize` elements (queues: `position` "in" or "out")
    temp               an fp32 tile temporary (temp_elements)
    temp_mask          Compare's bit mask of a tile (a byte per 8 temporary elements)
    row                one `itemsize` value per tile row (row_value_elements)
    row_mask           Compare's bit mask of the per-row values
    row_values_bcast   a number spread over the tile's rows (fp32, rows rounded up to 8)
    fixed              `elements` of `itemsize`, whatever the tile
    """

    name: str
    sizing: str
    itemsize: int = _FP32
    copies: int = 1  # queue buffers; 0: the tile's buffering (2, or 1 when single-buffered)
    position: str = ""  # "in" / "out" for queues, "" for TBufs
    elements: int = 0  # `fixed` only

    def elements_for(self, walk: str, per_tile: int, pitch: int) -> int:
        tile = tile_elements(walk, per_tile, pitch)
        if self.sizing == "tile":
            return tile
        if self.sizing == "temp":
            return temp_elements(tile)
        if self.sizing == "temp_mask":
            return temp_elements(tile) // 8
        if self.sizing == "row":
            return row_value_elements(walk, per_tile)
        if self.sizing == "row_mask":
            return row_value_elements(walk, per_tile) // 8
        if self.sizing == "row_values_bcast":
            return -(-per_tile // 8) * 8
        return self.elements


@dataclass(frozen=True)
class PartLayout:
    """The allocations of one tile walk of a kernel (a part), independent of the tile size."""

    walk: str  # "flat" | "rows"
    total: int  # elements (flat) or rows of the part's space
    width: int  # row length (rows walk; 0 for flat)
    pitch: int  # elements between tile rows in UB (rows walk)
    allocs: tuple[UbAlloc, ...]


@dataclass(frozen=True)
class Buffer:
    """One UB allocation of the kernel."""

    name: str  # "in:x", "out:y", "tmp0", "res:w", "row0", "cmp_mask", ...; shared queues "in:a+b"
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
    buffers: tuple[Buffer, ...] = ()  # the buffers of the part that takes the most UB
    ub_capacity: int = 0
    single_buffered: bool = False
    note: str = ""
    queue_buffers: int = 0  # buffers of the part that takes the most (queues count each buffer)
    # How the tiles follow the space's size (the generated tiling function runs it at run time).
    rule: WalkRule | None = None
    # The space has symbolic dims: the buffers hold the largest tile the UB fits (`rule.cap`),
    # whatever size the kernel is run at; at the bound sizes it walks `rows`/`elements` per tile.
    dynamic: bool = False
    space: int = 0  # elements of the iteration space the rule was run on (at the bound sizes)

    @property
    def ub_bytes(self) -> int:
        return sum(b.total for b in self.buffers)

    def as_dict(self) -> dict:
        out = {"scheme": self.scheme, "elements_per_tile": self.elements, "cores": self.cores, "tiles": self.tiles}
        if self.rows:
            out.update(rows_per_tile=self.rows, row_len=self.row_len)
        if self.single_buffered:
            out["single_buffered"] = True
        if self.dynamic and self.rule is not None and self.scheme != "split_row":
            out["max_units_per_tile"] = self.rule.cap  # rows (row walks) or elements the buffers hold
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
    temporaries: int  # fp32 values live at once (only without `parts`)
    casts: int  # half-precision inputs computed in fp32 (only without `parts`)
    row_len: int = 0  # > 0 for row kernels (norm, softmax, reduction)
    rows: int = 0
    # > 0 for an elementwise kernel that must hold whole rows of this many elements per tile: it
    # broadcasts a value per row or per column, or moves data along the last axis (the code
    # generator walks such a kernel row by row).
    row_align: int = 0
    # UB the kernel keeps besides the tile buffers (bytes; only without `parts`).
    fixed_extra: int = 0
    compares: bool = False  # Compare/Select: a bit mask per element (only without `parts`)
    extra: tuple[str, ...] = field(default=())
    # The generated kernel's allocations, per part (cost/layout.py; none: the kernel has no
    # vector part). None: the fields above describe one part (a request written by hand, or a
    # group the code generator cannot lower).
    parts: tuple[PartLayout, ...] | None = None
    arguments: int = 0  # GM arguments of the kernel entry: inputs, outputs, workspace and tiling
    # The space has symbolic dims: the tile is sized for the largest the UB holds, the tile
    # count follows the run-time size (WalkRule).
    dynamic: bool = False


class TileOverflow(Exception):
    """Even the smallest legal tile does not fit the usable Unified Buffer."""

    reason = "ub_overflow"

    def __init__(self, message: str, buffers: tuple[Buffer, ...], capacity: int) -> None:
        super().__init__(message)
        self.buffers = buffers
        self.capacity = capacity


class LimitExceeded(TileOverflow):
    """The kernel would break a limit of the target's profile (`limits`) other than UB bytes."""


class QueueLimit(LimitExceeded):
    """The kernel would need more UB buffers than the target allows."""

    reason = "too_many_buffers"


class ArgumentLimit(LimitExceeded):
    """The kernel would take more GM arguments than a kernel launch may have."""

    reason = "too_many_arguments"


class DtypeLimit(LimitExceeded):
    """The kernel would read or write a dtype the target's vector core cannot copy or cast
    (profile `features.bf16_data`)."""

    reason = "dtype_not_on_target"


def choose_tile(request: TileRequest, hw: Hardware) -> Tile:
    """The largest tile that fits the usable UB (raises TileOverflow when none does, QueueLimit
    when the kernel needs more buffers than the target has, ArgumentLimit when it takes more GM
    arguments than a launch may pass)."""
    if request.arguments > hw.max_kernel_arguments:
        raise ArgumentLimit(f"the kernel takes {request.arguments} GM arguments (inputs, outputs, workspace and "
                            f"tiling), more than the {hw.max_kernel_arguments} a launch passes", (), hw.ub_usable_bytes)
    parts = request.parts if request.parts is not None else _hand_written(request, hw)
    if request.row_len or request.row_align:
        tile = _row_tile(request, parts, hw)
    else:
        tile = _flat_tile(request, parts, hw)
    return tile


# -- sizes of a layout -------------------------------------------------------------------------------


def _single(parts: tuple[PartLayout, ...], hw: Hardware) -> bool:
    """Single-buffered inputs: some part streams more full-size inputs than double buffering
    leaves queue buffers for."""
    streams = max((sum(1 for a in p.allocs if a.position == "in" and a.copies == 0) for p in parts), default=0)
    return streams > hw.max_double_buffered_inputs


def _part_buffers(part: PartLayout, per_tile: int, walk: str, single: bool, hw: Hardware) -> tuple[Buffer, ...]:
    """The part's buffers at `per_tile` (elements, chunk elements or rows), queues shared as the
    limits require."""
    buffers: list[Buffer] = []
    for position in ("in", "out"):
        queues = [a for a in part.allocs if a.position == position]
        copies = [a.copies or (1 if single else 2) for a in queues]
        try:
            groups = shared_queues(copies, hw.max_queue_buffers_per_position)
        except ValueError as exc:
            raise QueueLimit(f"the {position}put queues cannot share {hw.max_queue_buffers_per_position} buffers: "
                             f"{exc}", (), hw.ub_usable_bytes) from None
        for group in groups:
            size = sum(ub_bytes(queues[i].elements_for(walk, per_tile, part.pitch), queues[i].itemsize,
                                hw.ub_alignment) for i in group)
            name = "+".join(queues[i].name for i in group) if len(group) == 1 else \
                f"{position}:" + "+".join(queues[i].name.split(":", 1)[1] for i in group)
            buffers.append(Buffer(name, size, copies[group[0]]))
    for alloc in part.allocs:
        if not alloc.position:
            buffers.append(Buffer(alloc.name, ub_bytes(alloc.elements_for(walk, per_tile, part.pitch), alloc.itemsize,
                                                       hw.ub_alignment), 1))
    return tuple(buffers)


def _worst(parts: tuple[PartLayout, ...], per_tile: Callable[[PartLayout], int], walk: Callable[[PartLayout], str],
           single: bool, hw: Hardware) -> tuple[Buffer, ...]:
    """The buffers of the part that takes the most UB."""
    found: tuple[Buffer, ...] = ()
    for part in parts:
        buffers = _part_buffers(part, per_tile(part), walk(part), single, hw)
        if not found or sum(b.total for b in buffers) > sum(b.total for b in found):
            found = buffers
    return found


def _check_buffers(parts: tuple[PartLayout, ...], per_tile, walk, single: bool, hw: Hardware) -> int:
    """The most buffers a part takes (a queue counts each of its buffers); QueueLimit beyond
    the profile's `queue_buffers_total`."""
    most = 0
    for part in parts:
        buffers = _part_buffers(part, per_tile(part), walk(part), single, hw)
        count = sum(b.copies for b in buffers)
        if count > hw.max_queue_buffers_total:
            names = ", ".join(b.name for b in buffers[:8])
            raise QueueLimit(f"the kernel needs {count} UB buffers, more than the {hw.max_queue_buffers_total} a kernel "
                             f"may have on {hw.name} ({names}, ...)", buffers, hw.ub_usable_bytes)
        most = max(most, count)
    return most


def _largest(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest n in [low, high] with fits(n) (fits is monotone, fits(low) holds)."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _io_bytes(request: TileRequest) -> int:
    return sum(size for _, size in (*request.full_inputs, *request.outputs)) or 1


def _note(parts: tuple[PartLayout, ...], single: bool, hw: Hardware) -> str:
    shared = []
    for part in parts:
        for position in ("in", "out"):
            copies = [a.copies or (1 if single else 2) for a in part.allocs if a.position == position]
            groups = shared_queues(copies, hw.max_queue_buffers_per_position)
            if len(groups) < len(copies):
                shared.append(f"{len(copies)} {position}put streams share {len(groups)} queues")
    return "; ".join(dict.fromkeys(shared))


# -- the walks ---------------------------------------------------------------------------------------


def _flat_tile(request: TileRequest, parts: tuple[PartLayout, ...], hw: Hardware) -> Tile:
    widest = max([a.itemsize for p in parts for a in p.allocs if a.sizing == "tile"] + [1])
    align = max(1, hw.ub_alignment // widest)
    single = _single(parts, hw)
    flat = lambda _p: "flat"  # noqa: E731
    # A static space sizes each part's buffers for its own size; a symbolic one for any size.
    clamp = (lambda n, _p: max(1, n)) if request.dynamic else (lambda n, p: max(1, min(n, p.total)))

    def buffers(elements: int) -> tuple[Buffer, ...]:
        return _worst(parts, lambda p: clamp(elements, p), flat, single, hw)

    def fits(blocks: int) -> bool:
        return sum(b.total for b in buffers(blocks * align)) <= hw.ub_usable_bytes

    if not fits(1):
        smallest = buffers(align)
        raise TileOverflow(f"even a {align}-element tile needs {sum(b.total for b in smallest)} B of UB", smallest,
                           hw.ub_usable_bytes)
    io = _io_bytes(request)
    if request.dynamic:
        cap = _largest(fits, 1, _MOST_UNITS // align) * align
    else:
        cap = WalkRule("flat", 1, io, _MOST_UNITS, align).counts(request.space, hw.aiv_cores)[0]
        cap = _largest(fits, 1, max(1, cap // align)) * align
    rule = WalkRule("flat", 1, io, cap, align)
    elements, tiles, cores = rule.counts(request.space, hw.aiv_cores)
    count = _check_buffers(parts, lambda p: clamp(cap, p), flat, single, hw)
    return Tile("elementwise", elements, cores=cores, tiles=tiles, buffers=buffers(cap),
                ub_capacity=hw.ub_usable_bytes, single_buffered=single, note=_note(parts, single, hw),
                queue_buffers=count, rule=rule, dynamic=request.dynamic, space=request.space)


def _row_tile(request: TileRequest, parts: tuple[PartLayout, ...], hw: Hardware) -> Tile:
    # A row kernel, or an elementwise kernel walked in whole rows (`row_align`).
    row_len = request.row_len or request.row_align
    total_rows = request.rows or max(1, request.space // row_len)
    single = _single(parts, hw)
    rows_walk = lambda _p: "rows"  # noqa: E731

    def per_part(rows: int) -> Callable[[PartLayout], int]:
        # The generator walks each part in rows of its own width: `rows_per_tile` rows for a row
        # kernel, the tile's elements in rows of the part's width for an elementwise one; a
        # static space sizes each part for its own rows, a symbolic one for any number of rows.
        scaled = (lambda p: rows) if request.row_len else (lambda p: rows * row_len // max(p.width, 1))
        if request.dynamic:
            return lambda p: max(1, scaled(p))
        return lambda p: max(1, min(scaled(p), p.total))

    def buffers(rows: int) -> tuple[Buffer, ...]:
        return _worst(parts, per_part(rows), rows_walk, single, hw)

    def fits(rows: int) -> bool:
        return sum(b.total for b in buffers(rows)) <= hw.ub_usable_bytes

    if fits(1):
        io = _io_bytes(request)
        space = total_rows * row_len
        if request.dynamic:
            cap = _largest(fits, 1, _MOST_UNITS)
        else:
            cap = _largest(fits, 1, WalkRule("rows", row_len, io, _MOST_UNITS).counts(space, hw.aiv_cores)[0])
        rule = WalkRule("rows", row_len, io, cap)
        rows, tiles, cores = rule.counts(space, hw.aiv_cores)
        count = _check_buffers(parts, per_part(cap), rows_walk, single, hw)
        return Tile("rows" if request.row_len else "elementwise", rows * row_len, rows=rows, row_len=row_len,
                    cores=cores, tiles=tiles, buffers=buffers(cap), ub_capacity=hw.ub_usable_bytes,
                    single_buffered=single, note=_note(parts, single, hw), queue_buffers=count, rule=rule,
                    dynamic=request.dynamic, space=space)
    if not request.row_len:
        smallest = buffers(1)
        raise TileOverflow(f"one row of {row_len} elements needs {sum(b.total for b in smallest)} B of UB "
                           "and this kernel walks whole rows", smallest, hw.ub_usable_bytes)
    return _split_tile(request, parts, single, hw)


def _split_tile(request: TileRequest, parts: tuple[PartLayout, ...], single: bool, hw: Hardware) -> Tile:
    """Split rows: chunks of a row, reduce over the chunks, then a second pass re-reads them.
    The chunk keeps the row walk's allocations at chunk size (per-row values one repeat each)
    plus an allowance for the split's own per-row values and chunk reduction scratch."""
    widest = max([a.itemsize for p in parts for a in p.allocs if a.sizing == "tile"] + [1])
    align = max(1, hw.ub_alignment // widest)
    split = lambda _p: "split_row"  # noqa: E731
    allowance = UbAlloc("split_scratch", "fixed", 1, elements=_SPLIT_SCRATCH)
    chunked = tuple(PartLayout(p.walk, p.total, p.width, p.pitch, (*p.allocs, allowance)) for p in parts)

    def buffers(elements: int) -> tuple[Buffer, ...]:
        return _worst(chunked, lambda p: max(1, min(elements, p.width or elements)), split, single, hw)

    def fits(blocks: int) -> bool:
        return sum(b.total for b in buffers(blocks * align)) <= hw.ub_usable_bytes

    if not fits(1):
        smallest = buffers(align)
        raise TileOverflow(f"even a {align}-element chunk of a row needs {sum(b.total for b in smallest)} B of UB",
                           smallest, hw.ub_usable_bytes)
    cores_chunk = cores_for(request.row_len * _io_bytes(request), hw.aiv_cores)
    per_core = _round_up(-(-request.row_len // cores_chunk), align)
    elements = _largest(fits, 1, max(1, per_core // align)) * align
    chunks = math.ceil(request.row_len / elements)
    rule = WalkRule("split_row", request.row_len, _io_bytes(request), elements)
    _, rows, cores = rule.counts(request.rows * request.row_len, hw.aiv_cores)
    tiles = rows * chunks
    count = _check_buffers(chunked, lambda p: max(1, min(elements, p.width or elements)), split, single, hw)
    note = f"a row of {request.row_len} elements does not fit: {chunks} chunks per row, read once per reduction pass"
    shared = _note(parts, single, hw)
    return Tile("split_row", elements, rows=1, row_len=request.row_len, cores=cores, tiles=tiles,
                buffers=buffers(elements), ub_capacity=hw.ub_usable_bytes, single_buffered=single,
                note=f"{note}; {shared}" if shared else note, queue_buffers=count, rule=rule, dynamic=request.dynamic,
                space=request.rows * request.row_len)


# -- a request written by hand ---------------------------------------------------------------------


def _hand_written(request: TileRequest, hw: Hardware) -> tuple[PartLayout, ...]:
    """One part holding what a request without a layout lists: its full inputs and large
    broadcasts streamed, small broadcasts whole, its outputs, temporaries, casts and mask."""
    allocs = [UbAlloc(f"in:{name}", "tile", size, 0, "in") for name, size in request.full_inputs]
    for name, nbytes, size in request.small_inputs:
        if nbytes > WHOLE_BROADCAST:
            allocs.append(UbAlloc(f"in:{name}", "tile", size, 1, "in"))
        else:
            allocs.append(UbAlloc(f"res:{name}", "fixed", 1, elements=nbytes))
    allocs += [UbAlloc(f"out:{name}", "tile", size, 2, "out") for name, size in request.outputs]
    allocs += [UbAlloc(f"tmp{i}", "temp") for i in range(request.temporaries + request.casts)]
    if request.compares:
        allocs.append(UbAlloc("cmp_mask", "temp_mask", 1))
    if request.fixed_extra:
        allocs.append(UbAlloc("fixed", "fixed", 1, elements=request.fixed_extra))
    row_len = request.row_len or request.row_align
    if not row_len:
        return (PartLayout("flat", request.space, 0, 0, tuple(allocs)),)
    narrowest = min([size for _, size in (*request.full_inputs, *request.outputs)] + [_FP32])
    pitch = _round_up(row_len, max(1, hw.ub_alignment // narrowest))
    if request.row_len:
        allocs.append(UbAlloc("row_scratch", "row"))
    rows = request.rows or max(1, request.space // row_len)
    return (PartLayout("rows", rows, row_len, pitch, tuple(allocs)),)
