"""The lowered form of one fused group: what the templates render.

A `KernelProgram` is plain data: the kernel's GM arguments, its Unified Buffer allocations, the
tile walk (taken from the cost model's Tile, never chosen here), and the compute body as a list of
C++ statements over named UB buffers, each statement one Ascend C API call. Groups that get no
source have a `CallThrough` (a CANN op already implements them) or a `HostOnly` record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from autofuse.cost.tiling import Tile

# ONNX dtype -> Ascend C element type (bool travels as one byte per element).
CTYPES = {
    "float32": "float", "float16": "half", "bfloat16": "bfloat16_t", "int64": "int64_t",
    "int32": "int32_t", "bool": "uint8_t", "uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t",
}
ITEMSIZE = {"float": 4, "half": 2, "bfloat16_t": 2, "int64_t": 8, "int32_t": 4, "uint8_t": 1, "int8_t": 1,
            "int16_t": 2}


@dataclass(frozen=True)
class SymDim:
    """A size that follows the symbolic dims: `coef` times the product of the kernel's dims,
    each to its power (codegen/dynamic.py finds them)."""

    coef: int
    powers: tuple[int, ...]  # exponent of each of Symbols.names

    def cpp(self, dim) -> str:
        """C++ expression; `dim(k)` writes kernel dim k."""
        factors = [dim(k) for k, p in enumerate(self.powers) for _ in range(p)]
        if self.coef != 1 or not factors:
            factors.insert(0, f"{self.coef}ULL")
        return " * ".join(factors)

    def value(self, dims) -> int:
        return self.coef * math.prod(d ** p for d, p in zip(dims, self.powers))


@dataclass(frozen=True)
class Symbols:
    """The dims a shape-generic kernel takes at run time (codegen/dynamic.py decides which
    kernels are). Each is a product of the model's symbolic dims that an input carries on one
    axis (`batch`, `seq`, or `batch*seq` where an exporter flattened them); the tiling function
    reads them from the inputs' shapes, computes every GM tensor's element count from them and
    runs the tile rule on the space's count."""

    names: tuple[str, ...]  # the kernel's dims, written as products of the model's
    sources: tuple[tuple[int, int], ...]  # (input, axis) each is read from
    shapes: tuple[tuple[int | SymDim, ...], ...]  # every GM tensor (inputs, outputs, workspace)
    space_arg: int  # the tensor (same order) whose element count is the walk's space
    model_dims: tuple[str, ...] = ()  # the model's dims the kernel's dims are products of
    basis: tuple[tuple[int, ...], ...] = ()  # each kernel dim's powers of `model_dims`

    def elements(self, tensor: int) -> str:
        """C++ expression of a tensor's element count over `dims[i]`."""
        factors = [str(d) if isinstance(d, int) else f"({d.cpp(lambda k: f'dims[{k}]')})" for d in self.shapes[tensor]
                   if d != 1]
        return " * ".join(factors) or "1"

    def kernel_dims(self, binding) -> list[int]:
        """The kernel's dims at a binding of the model's dims (a mapping name -> size)."""
        return [math.prod(binding[n] ** p for n, p in zip(self.model_dims, powers) if p) for powers in self.basis]

    def shape_at(self, tensor: int, binding) -> tuple[int, ...]:
        dims = self.kernel_dims(binding)
        return tuple(d if isinstance(d, int) else d.value(dims) for d in self.shapes[tensor])

    @property
    def used_model_dims(self) -> tuple[str, ...]:
        """The model's dims the kernel depends on."""
        return tuple(n for j, n in enumerate(self.model_dims) if any(powers[j] for powers in self.basis))


@dataclass(frozen=True)
class GmArg:
    """One GM pointer of the kernel entry (an input or output of the fused op)."""

    ident: str  # C++ parameter name
    onnx: str  # the ONNX value it carries
    dtype: str  # ONNX dtype
    shape: tuple[int, ...]
    role: str  # stream | resident | scalar | matmul | output
    comment: str = ""

    @property
    def ctype(self) -> str:
        return CTYPES[self.dtype]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE[self.ctype]


@dataclass(frozen=True)
class UbBuffer:
    """One Unified Buffer allocation (a TQue or a TBuf)."""

    ident: str
    kind: str  # "in" (TQue VECIN), "out" (TQue VECOUT), "calc" (TBuf VECCALC)
    ctype: str
    elements: int
    copies: int = 1  # buffers of a queue (2 = double buffering)
    purpose: str = ""

    @property
    def bytes(self) -> int:
        return -(-self.elements * ITEMSIZE[self.ctype] // 32) * 32

    @property
    def total(self) -> int:
        return self.bytes * self.copies


@dataclass(frozen=True)
class Load:
    """A tensor read once per tile: rows of `width` elements gathered from GM into UB.

    GM row of tile row r (global row R = rowStart + r): `offset + sum(coord_d(R) * stride_d)`
    over the part's row dims; `dims`/`strides` list them outermost first, merged where they nest.
    """

    arg: GmArg  # the GM tensor (an input, or a MatMul result in the workspace)
    queue: str  # TQue name
    local: str  # LocalTensor name in CopyIn/Compute
    width: int  # elements per row (flat walk: 0)
    pitch: int
    offset: int
    dims: tuple[int, ...]
    strides: tuple[int, ...]
    contiguous: bool  # rows follow each other in GM: one copy per tile
    # A queue shared with other tensors (more streams than a TPosition has queue buffers): its
    # buffer is `share` (a LocalTensor<uint8_t>), this tensor's tile starts `byte_offset` into it;
    # `opens` / `closes`: the first / last tensor of the queue (allocates and dequeues the buffer /
    # enqueues and frees it).
    share: str = ""
    byte_offset: int = 0
    opens: bool = False
    closes: bool = False

    @property
    def ctype(self) -> str:
        return self.arg.ctype

    @property
    def alloc(self) -> str:
        """The tensor the copy in fills."""
        return _view(self) if self.share else f"{self.queue}.AllocTensor<{self.ctype}>()"

    @property
    def deque(self) -> str:
        """The tensor Compute reads."""
        return _view(self) if self.share else f"{self.queue}.DeQue<{self.ctype}>()"


def _view(item: Load | Store) -> str:
    ctype = item.ctype if isinstance(item, Load) else item.arg.ctype
    return f"{item.share}[{item.byte_offset}].ReinterpretCast<{ctype}>()"


@dataclass(frozen=True)
class Store:
    """A fused-op output written once per tile from its VECOUT queue.

    Usually its rows follow each other in GM. An output that is a Reshape/Transpose of a computed
    value (the heads of a QKV projection) is scattered instead: tile row r (global row R) goes
    out as `chunks` pieces of `width / chunks` elements, `chunk_stride` elements apart, starting
    at `offset + sum(coord_d(R) * strides[d])` over `dims`.
    """

    arg: GmArg
    queue: str
    local: str
    width: int  # elements per row (flat walk: 0)
    pitch: int
    dims: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    offset: int = 0
    chunks: int = 1
    chunk_stride: int = 0
    share: str = ""  # a shared queue, as Load's
    byte_offset: int = 0
    opens: bool = False
    closes: bool = False

    @property
    def scattered(self) -> bool:
        return bool(self.dims or self.chunks > 1)

    @property
    def alloc(self) -> str:
        """The tensor Compute writes."""
        return _view(self) if self.share else f"{self.queue}.AllocTensor<{self.arg.ctype}>()"

    @property
    def deque(self) -> str:
        """The tensor the copy out reads."""
        return _view(self) if self.share else f"{self.queue}.DeQue<{self.arg.ctype}>()"


@dataclass(frozen=True)
class Resident:
    """A small input loaded whole once per core and kept in UB as fp32 rows of `pitch`."""

    arg: GmArg
    stage: str  # TBuf the input lands in (its own dtype)
    value: str  # TBuf of the fp32 copy (== stage for float32)
    rows: int
    width: int
    pitch: int


@dataclass(frozen=True)
class MatmulCall:
    """One MatMul/Gemm member computed by the cube unit through the high-level Matmul API."""

    index: int
    node: str  # comment: the ONNX node
    a: GmArg
    b: GmArg
    m: int
    n: int
    k: int
    trans_a: bool
    trans_b: bool
    dtype: str  # operand dtype (ONNX)
    target: str  # ident of the GmArg it writes: an output, or its region of the workspace
    batch: int = 1  # products: one per matrix of the result (cost/traffic.py cube_shape)
    a_offset: str = "0"  # C++ element offset of matrix `bt` of A (a batched MatMul)
    b_offset: str = "0"  # ... of B (0 for every matrix: a weight shared by the batch)


@dataclass(frozen=True)
class Pass:
    """One pass of a split-row walk over the chunks of one row: `start` runs once before the
    chunks, `body` on each chunk (after CopyIn of `loads`), `end` once after them. Each pass
    but the last accumulates reductions; the last also stores the outputs."""

    start: tuple[str, ...]
    body: tuple[str, ...]
    end: tuple[str, ...]
    loads: tuple[int, ...]  # indices into Part.loads
    opens: tuple[int, ...] = ()  # loads of a shared queue that allocate / dequeue its buffer in this pass
    closes: tuple[int, ...] = ()  # ... and that enqueue / free it


@dataclass
class Part:
    """One tile walk of the kernel. A group whose members form separate computations (the q and
    k halves of a rotary pair, several MatMul results) has one part per computation, run one
    after the other on the same cores."""

    index: int
    walk: str  # "flat" | "rows" | "split_row"
    space: tuple[int, ...]
    width: int  # elements per row (rows, split_row); 0 for flat
    total: int  # rows (rows, split_row) or elements (flat)
    # The most rows per tile (rows), elements per tile (flat) or elements per chunk (split_row)
    # the buffers hold; the tiling function picks the tile at run time, up to this.
    per_tile: int
    tiles: int  # at the sizes the kernel was generated for
    # A tile of the kernel's walk (cost/tiling.py WalkRule units) is scale[0] / scale[1] rows of
    # this part (a part walked in rows of another width than the tile's).
    scale: tuple[int, int] = (1, 1)
    nodes: tuple[str, ...] = ()
    loads: tuple[Load, ...] = ()
    stores: tuple[Store, ...] = ()
    residents: tuple[Resident, ...] = ()
    buffers: tuple[UbBuffer, ...] = ()
    init: tuple[str, ...] = ()  # once per core, after the residents are in UB
    locals: tuple[str, ...] = ()  # Compute: LocalTensor declarations of the TBufs
    body: tuple[str, ...] = ()  # Compute (rows/flat walks)
    passes: tuple[Pass, ...] = ()  # split_row: the passes over the chunks of each row

    @property
    def chunks(self) -> int:
        """split_row: chunks per row."""
        return -(-self.width // self.per_tile) if self.walk == "split_row" else 0

    @property
    def ub_bytes(self) -> int:
        return sum(b.total for b in self.buffers)


@dataclass
class KernelProgram:
    """Everything the family template needs to render one kernel and its host code."""

    op_name: str  # CANN op type, CamelCase
    kernel_name: str  # entry function, snake_case
    family: str  # elementwise | row_reduction | matmul_epilogue
    group_id: str
    group_kind: str
    rule: str | None
    target: str
    soc: str
    nodes: tuple[str, ...]  # comment lines: the ONNX nodes, sanitized
    inputs: tuple[GmArg, ...]
    outputs: tuple[GmArg, ...]
    tile: Tile  # the cost model's tile
    cores: int  # vector workers (AIV) the tiles are spread over
    buffer_num: int
    has_datacopy_pad: bool
    parts: tuple[Part, ...] = ()
    scalars: tuple[str, ...] = ()  # float members read once per core
    matmuls: tuple[MatmulCall, ...] = ()
    cube_blocks: int = 0  # AI cores whose cube computes the MatMul results
    workspace: tuple[tuple[GmArg, int], ...] = ()  # MatMul results kept in GM: (tensor, byte offset)
    workspace_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Shape-generic: the symbolic dims it runs at (None: generated for the bound shapes only,
    # `static_reason` says why when the group has symbolic dims).
    symbols: Symbols | None = None
    static_reason: str = ""
    # Numbers of the rendered kernel that follow the dims, written over `td_.dims` instead:
    # (line, which number of the line's code, C++ expression) (codegen/dynamic.py).
    kernel_numbers: tuple[tuple[int, int, str], ...] = ()

    @property
    def tensor_elements(self) -> tuple[int, ...]:
        """Element count of every GM tensor (inputs, outputs, MatMul results in the workspace) at
        the generated sizes."""
        return tuple(a.numel for a in (*self.inputs, *self.outputs, *(w for w, _ in self.workspace)))

    @property
    def ub_bytes(self) -> int:
        return max((p.ub_bytes for p in self.parts), default=0)

    @property
    def tiles(self) -> int:
        return sum(p.tiles for p in self.parts)


@dataclass(frozen=True)
class CallThrough:
    """A group a CANN op already implements: no source, the op is named instead."""

    group_id: str
    op_name: str
    cann_op: str
    rule: str | None


@dataclass(frozen=True)
class HostOnly:
    """Shape arithmetic: runs on the host (in the tiling/infer-shape code), no device kernel."""

    group_id: str


@dataclass(frozen=True)
class Unsupported:
    """A group the generator cannot lower yet, and why (shown in the report)."""

    group_id: str
    reason: str
