"""The corpus at the two points an LLM is served at: one decode step and a long prefill.

    python bench/decode_prefill.py [--target ascend910b] [--batch 1] [--prefill 2048]

For each corpus model (3-layer exports, both exporters) the cost model's estimated time of one
forward pass before and after level-3 fusion, at sequence 1 (a decode step; the corpus runs
without a KV cache, so this is a one-token forward) and at sequence `--prefill`, and whether the
plan is the same at both points ("same groups": the fused groups have the same members).

The corpus models have 128 positions: a prefill past them is priced (the rotary models size it),
but BERT's TorchScript export slices its position ids from a 128-entry table, which cannot be
sized at 2048 ("unknown"). What this does not show yet: the generated kernels are specialised to the shapes they were
planned at (issue 14 item 2), so a deployment needs one build per point; where the groups are
the same, the kernels differ only in their sizes.
"""
from __future__ import annotations

import argparse
import sys

from autofuse import fuse
from autofuse.testing.corpus import ARCHES, EXPORTERS, corpus_model


def _us(value) -> str:
    return "unknown" if value is None else f"{value:.1f}"


def point(path: str, target: str, batch: int, seq: int):
    result = fuse(path, opt_level=3, target=target, dims={"batch": batch, "seq": seq})
    totals = result.report["totals"]
    groups = sorted(tuple(g["members"]) for g in result.report["groups"])
    return totals["est_time_us_before"], totals["est_time_us_after"], result.report["kernels_after"], groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="ascend910b")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prefill", type=int, default=2048)
    args = parser.parse_args(argv)
    print(f"target {args.target}, batch {args.batch}; estimated microseconds per forward pass (3-layer exports)")
    header = ["model", "decode us before", "after", "kernels", f"prefill {args.prefill} us before", "after",
              "kernels", "same groups"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for arch in ARCHES:
        for exporter in EXPORTERS:
            path = str(corpus_model(arch, exporter, 3).path)
            d_before, d_after, d_kernels, d_groups = point(path, args.target, args.batch, 1)
            p_before, p_after, p_kernels, p_groups = point(path, args.target, args.batch, args.prefill)
            cells = [f"{arch}-{exporter}", _us(d_before), _us(d_after), str(d_kernels), _us(p_before), _us(p_after),
                     str(p_kernels), "yes" if d_groups == p_groups else "no"]
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
