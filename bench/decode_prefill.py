"""The corpus at the two points an LLM is served at: one decode step and a long prefill.

    python bench/decode_prefill.py [--target ascend910b] [--batch 1] [--prefill 2048] [--build 128]

For each corpus model (3-layer exports, both exporters) the cost model's estimated time of one
forward pass before and after level-3 fusion, at sequence 1 (a decode step; the corpus runs
without a KV cache, so this is a one-token forward) and at sequence `--prefill`, each planned at
its own point, and whether the plan is the same at both points ("same groups": the fused groups
have the same members).

Then one build for both: the plan and its kernels made once at sequence `--build` (what a
deployment ships), priced at the decode point and at the prefill ("one build" columns), and how
many of its generated kernels are shape-generic ("generic": the same binary runs at both points;
the others are generated for the build's shapes and would be rebuilt per point).

The corpus models have 128 positions: a prefill past them is priced (the rotary models size it),
but BERT's TorchScript export slices its position ids from a 128-entry table, which cannot be
sized at 2048 ("unknown").
"""
from __future__ import annotations

import argparse
import sys

from autofuse import fuse
from autofuse.cost.hardware import load_profile
from autofuse.cost.model import CostModel, bind_dims, group_scheme
from autofuse.frontends.onnx import concrete_shapes
from autofuse.planner.merge import has_matmul
from autofuse.testing.corpus import ARCHES, EXPORTERS, corpus_model


def _us(value) -> str:
    return "unknown" if value is None else f"{value:.1f}"


def point(path: str, target: str, batch: int, seq: int):
    result = fuse(path, opt_level=3, target=target, dims={"batch": batch, "seq": seq})
    totals = result.report["totals"]
    groups = sorted(tuple(g["members"]) for g in result.report["groups"])
    return totals["est_time_us_before"], totals["est_time_us_after"], result.report["kernels_after"], groups


def one_build(path: str, target: str, batch: int, build: int, seqs: tuple[int, ...]):
    """The plan and kernels made at sequence `build`, priced at each of `seqs` (None where a
    shape cannot be sized there), and (shape-generic kernels, generated kernels)."""
    result = fuse(path, opt_level=3, target=target, dims={"batch": batch, "seq": build}, kernels=True)
    loaded, plan = result.loaded, result.plan
    graph, hw = loaded.graph, load_profile(target)
    fused = {m for g in plan.groups for m in g.members}
    times = []
    for seq in seqs:
        try:
            dims = bind_dims(graph, {"batch": batch, "seq": seq})
            model = CostModel(graph, hw, dims, concrete_shapes(loaded, dims))
            total = sum(model.node(n).time_us for n in graph.nodes if n.id not in fused)
            for g in plan.groups:
                members = frozenset(g.members)
                scheme = group_scheme(g.kind, g.lowering, has_matmul(graph, members))
                total += model.group(members, g.inputs, g.outputs, scheme).time_us
            times.append(None if total != total else total)
        except Exception:  # noqa: BLE001 - a shape the cost model cannot size at this point
            times.append(None)
    programs = [k.program for k in result.kernels.values() if k.generated]
    return times, sum(1 for p in programs if p.symbols), len(programs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="ascend910b")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prefill", type=int, default=2048)
    parser.add_argument("--build", type=int, default=128, help="the sequence the one build is made at")
    args = parser.parse_args(argv)
    print(f"target {args.target}, batch {args.batch}; estimated microseconds per forward pass (3-layer exports)")
    header = ["model", "decode us before", "after", "kernels", f"prefill {args.prefill} us before", "after",
              "kernels", "same groups", f"one build (seq {args.build}): decode after", "prefill after", "generic"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for arch in ARCHES:
        for exporter in EXPORTERS:
            path = str(corpus_model(arch, exporter, 3).path)
            d_before, d_after, d_kernels, d_groups = point(path, args.target, args.batch, 1)
            p_before, p_after, p_kernels, p_groups = point(path, args.target, args.batch, args.prefill)
            (b_decode, b_prefill), generic, generated = one_build(path, args.target, args.batch, args.build,
                                                                  (1, args.prefill))
            cells = [f"{arch}-{exporter}", _us(d_before), _us(d_after), str(d_kernels), _us(p_before), _us(p_after),
                     str(p_kernels), "yes" if d_groups == p_groups else "no", _us(b_decode), _us(b_prefill),
                     f"{generic}/{generated}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
