"""A rule's match at one root reused at another root whose surroundings are the same.

Matching a rule is a deterministic search upward from the root: every step reads a fact of the
graph (which node produces a value, its op, attributes and inputs, a value's type, constant
data, consumers) and nothing else. The search at the first root records the nodes it touched;
with the Constant nodes feeding them they form the match's *region*. At another root, the same
region is found by following the same input edges, and its facts are put side by side with the
first region's, in one canonical numbering of its nodes and values (`_facts`). If every fact
is equal, the search at the new root would read the same answers in the same order, so it would
find the same match: the first one, renamed. If anything differs, the caller searches as usual.

A stack of identical layers is thus searched once per distinct layer; the first and last layers
(which read graph inputs or feed graph outputs) and any layer that differs search on their own.
Only successful matches are kept: a failing search is usually short already.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from autofuse.ir.graph import Graph
from autofuse.ir.structure import Numbering, digest, node_heads
from autofuse.ops.table import reads_only_metadata

# Regions kept per (rule, root outline); a root is compared with each before it searches.
MAX_REGIONS = 4


@dataclass(frozen=True)
class _Region:
    edges: tuple[tuple[int, int], ...]  # per node after the root: (earlier node, input position) it produces
    facts: Hashable
    nodes: tuple[int, ...]  # the match's nodes, as indices into the region
    values: tuple[tuple[str, int], ...]  # binding/capture name -> index into the canonical values
    payload: object  # what the caller keeps beside (the constants the match bound)


class Replays:
    """Successful matches of one graph, kept for reuse by roots with the same surroundings."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.heads = graph.derived(node_heads)
        self.regions: dict[Hashable, list[_Region]] = {}
        self._values: dict[str, Hashable] = {}

    def reuse(self, key: Hashable, root: int) -> tuple[frozenset[int], dict[str, str], object] | None:
        """(nodes, values, payload) of the match a search at `root` would find, if a kept
        region of `key` has the same facts there; else None."""
        for region in self.regions.get(key, ()):
            nodes = self._follow(root, region.edges)
            if nodes is None:
                continue
            facts = self._facts(nodes)
            if facts is None or facts[0] != region.facts:
                continue
            values = facts[1]
            return (frozenset(nodes[i] for i in region.nodes), {name: values[i] for name, i in region.values},
                    region.payload)
        return None

    def remember(self, key: Hashable, root: int, touched: set[int], matched: frozenset[int],
                 values: dict[str, str], payload: object) -> None:
        """Keep a match found by searching at `root` (the search touched the nodes `touched`)."""
        kept = self.regions.setdefault(key, [])
        if len(kept) >= MAX_REGIONS:
            return
        found = self._region(root, touched | matched)
        if found is None:
            return
        nodes, edges = found
        facts = self._facts(nodes)
        if facts is None:
            return
        facts_key, order = facts
        index = {n: i for i, n in enumerate(nodes)}
        position = {v: i for i, v in enumerate(order)}
        if any(m not in index for m in matched) or any(v not in position for v in values.values()):
            return  # cannot be renamed through the region: not kept
        kept.append(_Region(edges, facts_key, tuple(sorted(index[m] for m in matched)),
                            tuple((name, position[v]) for name, v in values.items()), payload))

    # -- the region ---------------------------------------------------------------------------

    def _region(self, root: int, touched: set[int]) -> tuple[list[int], tuple[tuple[int, int], ...]] | None:
        """The touched nodes and the Constant nodes feeding them, in breadth-first order from
        the root over input edges, with the edge that reaches each. None if one is not reached."""
        graph = self.graph
        wanted = set(touched)
        for n in touched:
            for v in graph.nodes[n].inputs:
                p = graph.producer.get(v) if v else None
                if p is not None and graph.nodes[p].op_type == "Constant":
                    wanted.add(p)
        nodes, edges, seen = [root], [], {root}
        k = 0
        while k < len(nodes):
            for i, v in enumerate(graph.nodes[nodes[k]].inputs):
                p = graph.producer.get(v) if v else None
                if p is not None and p in wanted and p not in seen:
                    seen.add(p)
                    nodes.append(p)
                    edges.append((k, i))
            k += 1
        return (nodes, tuple(edges)) if len(nodes) == len(wanted | {root}) else None

    def _follow(self, root: int, edges: tuple[tuple[int, int], ...]) -> list[int] | None:
        graph = self.graph
        nodes, seen = [root], {root}
        for k, i in edges:
            inputs = graph.nodes[nodes[k]].inputs
            p = graph.producer.get(inputs[i]) if i < len(inputs) and inputs[i] else None
            if p is None or p in seen:
                return None
            seen.add(p)
            nodes.append(p)
        return nodes

    def _facts(self, nodes: list[int]) -> tuple[Hashable, list[str]] | None:
        """Everything a search can read about the region, in a numbering that does not depend
        on names, and the region's values in that numbering. None for a region the search
        could read more of (a node with subgraphs)."""
        graph = self.graph
        index = {n: i for i, n in enumerate(nodes)}
        vid = Numbering()
        order = vid.order
        node_facts = []
        for n in nodes:
            node = graph.nodes[n]
            if node.implicit_inputs:
                return None
            node_facts.append((self.heads[n], tuple(vid(v) for v in node.inputs), tuple(vid(v) for v in node.outputs)))
        value_facts = []
        for value in order:
            producer = graph.producer.get(value)
            if producer is not None and producer in index:  # who else uses what the region computes
                inside, data_reads, shape_reads = [], 0, 0
                for c in graph.consumers.get(value, ()):
                    if c in index:
                        inside.append(index[c])
                    elif reads_only_metadata(graph.nodes[c]):
                        shape_reads += 1
                    else:
                        data_reads += 1
                used = (tuple(sorted(inside)), data_reads, shape_reads)
            else:  # from outside the region: a graph input or weight, or a node's output
                used = None if producer is None else graph.nodes[producer].op_type == "Constant"
            value_facts.append((self._own_facts(value), used))
        return (tuple(node_facts), tuple(value_facts)), order

    def _own_facts(self, value: str) -> Hashable:
        """A value's type, whether it is a constant and its data, whether it is a graph output."""
        found = self._values.get(value)
        if found is None:
            graph = self.graph
            found = self._values[value] = (graph.type_of(value), value in graph.constants,
                                           digest(graph.constant(value)), value in graph.output_set)
        return found
