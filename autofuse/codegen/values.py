"""What lowering knows about each value of a group: where it lives (GM, UB tile, per-row
numbers, a scalar) and the small facts about nodes that several lowering modules share."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autofuse.codegen.program import GmArg
from autofuse.codegen.views import View
from autofuse.ir.graph import Graph, Node
from autofuse.ops.vector_ops import op_table  # noqa: F401 - the generator reads it from here

TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"
FLOAT = "float32"
REDUCE_KINDS = {"ReduceSum": "Sum", "ReduceMean": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}
VIEW_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand", "Transpose", "Slice", "Split"}
MATMUL_OPS = ("MatMul", "Gemm")
BOUND_OPS = ("Slice", "Split")  # ops whose non-data operands must be known when the kernel is built
C_COMPARE = {"LT": "<", "GT": ">", "EQ": "==", "LE": "<=", "GE": ">=", "NE": "!="}


class LoweringError(Exception):
    """The group uses something the generator cannot lower (the message says what)."""


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A value read through a view of GM data (an input, a MatMul result or a constant)."""

    view: View
    dtype: str


@dataclass(frozen=True)
class Scalar:
    """One number: a compile-time constant or a float member read once per core."""

    expr: str
    const: float | None = None


@dataclass(frozen=True)
class TileVal:
    """A value computed in UB: per tile row, `width` elements from column `col` of `buf`."""

    buf: str
    width: int
    col: int = 0
    owner: int = -1  # allocator slot (-1: not reusable)


@dataclass(frozen=True)
class RowVal:
    """One fp32 value per tile row (a reduction result), `rows` elements of `buf`."""

    buf: str
    owner: int = -1


Value = Stored | Scalar | TileVal | RowVal


@dataclass
class Storage:
    arg: GmArg | None  # None for a constant baked into the kernel
    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None


def float_literal(value: float) -> str:
    """The shortest C++ float literal that reads back as the same fp32 number."""
    value = float(np.float32(value))
    if math.isnan(value):
        return "AfBitsToFloat(0x7fc00000u)"
    if math.isinf(value):
        return "AfBitsToFloat(0x7f800000u)" if value > 0 else "AfBitsToFloat(0xff800000u)"
    text = str(np.float32(value))
    text = text if any(c in text for c in ".e") else text + ".0"
    return f"{text}f"


def const_scalar(value: float) -> Scalar:
    return Scalar(float_literal(value), float(np.float32(value)))


@dataclass(frozen=True)
class Viewed:
    """A computed value seen through Reshape/Transpose steps that move its rows around: only
    an output may be one (the store scatters the rows)."""

    tile: TileVal
    shape: tuple[int, ...]  # the computed value's shape
    steps: tuple[tuple[str, tuple[int, ...]], ...]  # ("Transpose", perm) or (op, shape before it)

    @property
    def owner(self) -> int:
        return self.tile.owner


@dataclass(frozen=True)
class PerRow:
    """A resident value read per tile row: a number (`scalar`, a C++ expression of R) or a row
    slice (`slice`, a LocalTensor expression of R)."""

    scalar: str | None
    slice: str | None
    width: int = 1


def is_int_result(graph: Graph, node: Node) -> bool:
    dtype = graph.type_of(node.outputs[0]).dtype or ""
    return dtype.startswith(("int", "uint"))

