"""Graph IR: frozen nodes over named values, kept in topological order.

Values are referenced by name (the ONNX convention) and typed through `Graph.values`; nodes are
referenced by integer id, which is also their position in `Graph.nodes`. Nothing here knows about
protobuf or torch: front ends build a `Graph`, later stages only read it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

# A dimension: an int when static, a name when symbolic, None when unknown.
Dim = int | str | None

_ITEMSIZE = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8,
    "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "bool": 1, "int4": 1, "uint4": 1,
    "float8e4m3fn": 1, "float8e4m3fnuz": 1, "float8e5m2": 1, "float8e5m2fnuz": 1,
    "complex64": 8, "complex128": 16,
}


@dataclass(frozen=True)
class TensorType:
    """Element type and shape of one value. `shape is None` means the rank is unknown."""

    dtype: str | None
    shape: tuple[Dim, ...] | None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def itemsize(self) -> int | None:
        return _ITEMSIZE.get(self.dtype) if self.dtype else None

    @cached_property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @cached_property
    def _numel(self) -> int | None:
        return math.prod(self.shape) if self.is_static else None  # type: ignore[arg-type]

    def numel(self) -> int | None:
        """Element count when every dim is static, else None."""
        return self._numel

    def nbytes(self) -> int | None:
        n, size = self.numel(), self.itemsize
        return None if n is None or size is None else n * size


UNKNOWN = TensorType(None, None)


@dataclass(frozen=True)
class Node:
    """One operation. `id` is its position in `Graph.nodes`; `name` is the original node name."""

    id: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]  # "" marks an omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Outer-scope values read by this node's subgraphs (If/Loop/Scan bodies).
    implicit_inputs: tuple[str, ...] = ()
    # Position of the node in the source graph (front ends use it to write the graph back).
    source_index: int = -1

    @property
    def key(self) -> str:
        """Op identity used by tables: "Add" for the default domain, "domain::Op" otherwise."""
        return self.op_type if self.domain in ("", "ai.onnx") else f"{self.domain}::{self.op_type}"

    @cached_property
    def all_inputs(self) -> tuple[str, ...]:
        """Explicit and implicit inputs, without omitted optionals or repeats."""
        return tuple(dict.fromkeys((*(v for v in self.inputs if v), *self.implicit_inputs)))


@dataclass(frozen=True, eq=False)
class Graph:
    """A computation graph. `nodes` are topologically sorted and `nodes[i].id == i`."""

    nodes: tuple[Node, ...]
    values: Mapping[str, TensorType]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    initializers: frozenset[str]
    # Small constant tensors (initializers and Constant outputs) that rules and shape logic may read.
    constant_values: Mapping[str, np.ndarray] = field(default_factory=dict)
    opset: int = 0
    name: str = ""

    def type_of(self, value: str) -> TensorType:
        return self.values.get(value, UNKNOWN)

    def derived(self, compute):
        """`compute(self)`, computed once per graph: facts later stages derive from an immutable
        graph (which nodes compute shapes, which launch kernels) and read several times per pass.
        `compute` must be a module-level function and its result must not be mutated."""
        cache = self.__dict__.setdefault("_derived", {})
        if compute not in cache:
            cache[compute] = compute(self)
        return cache[compute]

    @cached_property
    def producer(self) -> dict[str, int]:
        """Value name -> id of the node that produces it (graph inputs and initializers absent)."""
        return {out: node.id for node in self.nodes for out in node.outputs if out}

    @cached_property
    def consumers(self) -> dict[str, tuple[int, ...]]:
        """Value name -> ids of the nodes that read it, explicitly or from a subgraph."""
        uses: dict[str, list[int]] = {}
        for node in self.nodes:
            for value in node.all_inputs:
                uses.setdefault(value, []).append(node.id)
        return {value: tuple(ids) for value, ids in uses.items()}

    @cached_property
    def output_set(self) -> frozenset[str]:
        return frozenset(self.outputs)

    @cached_property
    def constants(self) -> frozenset[str]:
        """Values known before the graph runs: initializers and outputs of Constant nodes."""
        consts = set(self.initializers)
        consts.update(n.outputs[0] for n in self.nodes if n.op_type == "Constant" and n.outputs)
        return frozenset(consts)

    @cached_property
    def _predecessors(self) -> tuple[tuple[int, ...], ...]:
        produced = self.producer
        return tuple(
            tuple(dict.fromkeys(produced[v] for v in node.all_inputs if v in produced)) for node in self.nodes
        )

    @cached_property
    def _successors(self) -> tuple[tuple[int, ...], ...]:
        uses = self.consumers
        return tuple(
            tuple(dict.fromkeys(c for out in node.outputs for c in uses.get(out, ()))) for node in self.nodes
        )

    def producer_ids(self, node: Node) -> tuple[int, ...]:
        """Ids of the nodes producing `node`'s inputs (explicit and implicit), without repeats."""
        return self._predecessors[node.id]

    def consumer_ids(self, node: Node) -> tuple[int, ...]:
        """Ids of the nodes reading any output of `node`, without repeats."""
        return self._successors[node.id]

    def constant(self, value: str) -> np.ndarray | None:
        """The value of a small constant tensor, or None when it is not a (small) constant."""
        return self.constant_values.get(value)
