"""The structure of a set of nodes, independent of names: what repeats from layer to layer.

Two groups with the same structure have members with the same ops, attributes and wiring, in
the same order, the same boundary (inputs and outputs in order), and values that agree on
whatever `value_key` says matters to the caller (dtype, bound shape, constant data...). Later
stages use it to do per-group work once per distinct structure: the cost model prices a group
once, the code generator lowers it once, and the layers of a stack reuse the result.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from autofuse.ir.graph import Graph


def structure(graph: Graph, members: Sequence[int], inputs: Sequence[str], outputs: Sequence[str],
              value_key: Callable[[str], Hashable]) -> tuple[Hashable, tuple[str, ...]]:
    """(key, values): equal keys mean equal structure; `values` lists the value names in the
    canonical order the key numbers them, so two groups' values pair up position by position."""
    vid = Numbering()
    order = vid.order
    for value in inputs:
        vid(value)
    heads = graph.derived(node_heads)
    nodes = []
    for m in members:
        node = graph.nodes[m]
        nodes.append((heads[m], tuple(vid(v) for v in node.inputs), tuple(vid(v) for v in node.outputs)))
    boundary = (len(inputs), tuple(vid(v) for v in outputs))
    return (boundary, tuple(nodes), tuple(value_key(v) for v in order)), tuple(order)


class Numbering:
    """Value names numbered 0, 1, 2... in the order first seen (an omitted optional, '', is -1):
    the name-free identity of values within one structure."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.order: list[str] = []

    def __call__(self, value: str) -> int:
        if not value:
            return -1
        index = self.ids.get(value)
        if index is None:
            index = self.ids[value] = len(self.order)
            self.order.append(value)
        return index


def node_heads(graph: Graph) -> tuple[Hashable, ...]:
    """Per node: its op, domain and attributes, frozen once."""
    return tuple((n.op_type, n.domain, freeze(n.attrs)) for n in graph.nodes)


def digest(array) -> Hashable:
    """A short, exact identity of an array's dtype, shape and contents (None for None)."""
    if array is None:
        return None
    array = np.asarray(array)
    return array.dtype.str, array.shape, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def freeze(x) -> Hashable:
    """A hashable, exact form of an attribute value (arrays by digest, protobufs by their text)."""
    if isinstance(x, np.ndarray):
        return digest(x)
    if isinstance(x, dict) or hasattr(x, "items") and callable(x.items):
        return tuple(sorted((str(k), freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(freeze(i) for i in x)
    if x is None or isinstance(x, (str, int, float, bool, bytes)):
        return x
    return type(x).__name__, repr(x)
