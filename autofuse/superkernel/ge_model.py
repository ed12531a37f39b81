"""What CANN's graph engine does with a set of scopes: a model of its SuperKernel pass
(superkernel.md 1.2), so a plan can say which SuperKernels each scope becomes and why it was cut.

- A scope boundary splits a fusion pattern it falls inside: GE does not fuse nodes whose scope
  attributes differ, so the pattern's nodes run apart (`IsSupportFuse`).
- Only Ascend C kernels join (collectives only on HCCL's AIV path); TBE, AI CPU, host and unknown
  ops lose the scope attribute, and Ascend C kernels on the blacklist do too.
- On each stream, a SuperKernel is an unbroken run, in execution order, of joining kernels of one
  scope: any other kernel on that stream in between (unfusible, unscoped, another scope's) cuts it,
  and GE splits the scope into `<scope>_split_*` pieces. With `stream-fusion=1` pieces of several
  streams that overlap in time run as one SuperKernel.
- Ops that launch nothing (views, bookkeeping, folded constants) neither join nor cut.
Execution order is taken to be the FX order (torchair converts nodes in that order; recipes compile
with topology_sorting_strategy=StableRDFS to keep it).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from autofuse.superkernel.graph import GraphView
from autofuse.superkernel.plan import Cut, Piece
from autofuse.superkernel.units import Unit, single


@dataclass(frozen=True)
class Prediction:
    pieces: tuple[tuple[Piece, ...], ...]  # per range
    cuts: tuple[tuple[Cut, ...], ...]  # per range
    kernels_before: int
    launches_after: int


def predict(view: GraphView, units: list[Unit], ranges: list[tuple[int, int]], *, stream_fusion: bool,
            hccl_aiv: bool) -> Prediction:
    """Pieces and cuts of each scope range (inclusive op indices; disjoint)."""
    def scope_of(index: int) -> int | None:
        for k, (start, end) in enumerate(ranges):
            if start <= index <= end:
                return k
        return None

    items: list[tuple[Unit, int | None]] = []
    split_cuts: list[list[Cut]] = [[] for _ in ranges]
    for unit in units:
        scopes = {scope_of(i) for i in unit.members}
        if len(scopes) == 1:
            items.append((unit, scopes.pop()))
            continue
        names = tuple(view.ops[i].name for i in unit.members)
        for k in sorted(s for s in scopes if s is not None):
            split_cuts[k].append(Cut(names, unit.ge_op, "pattern", "inside", False,
                                     f"the scope boundary splits fusion pattern {unit.rule} ({unit.ge_op}): "
                                     "GE does not fuse across a scope boundary, its nodes run apart"))
        items.extend((single(view, i), scope_of(i)) for i in unit.members)
    items.sort(key=lambda item: item[0].position)
    kernels = [(u, k) for u, k in items if u.is_kernel]

    pieces: list[list[list[tuple[Unit, int | None]]]] = [[] for _ in ranges]
    inside_cuts: list[list[tuple[Unit, str]]] = [[] for _ in ranges]
    for stream in sorted({u.stream for u, _ in kernels}):
        run: list[tuple[Unit, int | None]] = []
        for unit, k in [(u, k) for u, k in kernels if u.stream == stream] + [(None, None)]:
            if run and (unit is None or k != run[0][1] or not unit.joins(hccl_aiv)):
                pieces[run[0][1]].append(run)
                run = []
            if unit is None:
                break
            if k is not None and unit.joins(hccl_aiv):
                run.append((unit, k))
            elif k is not None:
                inside_cuts[k].append((unit, _why_unfusible(unit, hccl_aiv)))
        _outsiders(kernels, stream, pieces, inside_cuts, hccl_aiv)
    if stream_fusion:
        pieces = [_merge_streams(p) for p in pieces]

    all_pieces, all_cuts = [], []
    for k in range(len(ranges)):
        runs = sorted(pieces[k], key=lambda run: run[0][0].position)
        # A run of one kernel builds no SuperKernel: that kernel keeps its own launch.
        built = tuple(_piece(view, run) for run in runs if len(run) > 1)
        bounds = [(run[0][0].position, run[-1][0].position) for run in runs]
        cuts = [Cut(tuple(view.ops[i].name for i in u.members), u.ge_op, u.kind, "inside",
                    any(a[1] < u.position < b[0] for a, b in pairwise(bounds)), why)
                for u, why in sorted(inside_cuts[k], key=lambda c: c[0].position)]
        all_pieces.append(built)
        all_cuts.append(tuple(split_cuts[k] + cuts))
    before = sum(1 for u in units if u.is_kernel)
    after = len(kernels) - sum(p.kernels - 1 for ps in all_pieces for p in ps)
    return Prediction(tuple(all_pieces), tuple(all_cuts), before, after)


def _outsiders(kernels, stream, pieces, inside_cuts, hccl_aiv) -> None:
    """Kernels of no scope or another scope that run between two of a scope's kernels on the same
    stream (interleaved nodes): they cut it too."""
    on_stream = [(u, k) for u, k in kernels if u.stream == stream]
    for k, runs in enumerate(pieces):
        mine = [u.position for run in runs for u, _ in run if u.stream == stream]
        if not mine:
            continue
        low, high = min(mine), max(mine)
        for unit, owner in on_stream:
            if owner != k and low < unit.position < high:
                where = "in no scope" if owner is None else "in another scope"
                inside_cuts[k].append((unit, f"{unit.ge_op or unit.kind} runs between this scope's kernels but is {where}"))


def _why_unfusible(unit: Unit, hccl_aiv: bool) -> str:
    if unit.kind == "comm":
        return (f"{unit.ge_op}: a collective joins only with HCCL's AIV algorithm"
                + ("" if unit.aiv else " and only AllReduce, ReduceScatter, AllGather, AlltoAll")
                + ("" if hccl_aiv else " (planned without HCCL_OP_EXPANSION_MODE=AIV)"))
    return unit.reason


def _merge_streams(runs: list) -> list:
    """stream-fusion=1: pieces of different streams overlapping in execution order become one."""
    runs = sorted(runs, key=lambda run: run[0][0].position)
    merged: list = []
    for run in runs:
        if merged and run[0][0].position <= max(u.position for u, _ in merged[-1]):
            merged[-1] = sorted(merged[-1] + run, key=lambda item: item[0].position)
        else:
            merged.append(run)
    return merged


def _piece(view: GraphView, run) -> Piece:
    members = tuple(view.ops[i].name for unit, _ in run for i in unit.members)
    return Piece(members, len(run), tuple(sorted({unit.stream for unit, _ in run})),
                 tuple(unit.ge_op or unit.kind for unit, _ in run))
