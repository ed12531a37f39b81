"""Kernels per transformer layer on the real-architecture corpus: autofuse at each level, and
onnxruntime's transformers optimizer on the same files.

    python bench/corpus_kernels.py [--levels 2,3]

Per-layer counts are the difference between the 3-layer and the 2-layer export of the same
architecture, so embeddings, masks and the head do not blur them. Kernels are counted as in
report.json (README, "Reading the report"), on the model each tool writes; ORT's fused
contrib ops (com.microsoft domain) count as one kernel each.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx

from autofuse import fuse
from autofuse.frontends.onnx import load_onnx
from autofuse.ops.table import is_kernel
from autofuse.testing.corpus import ARCHES, EXPORTERS, HEADS, HIDDEN, corpus_model

ORT_TYPE_FOR_ARCH = {"gpt2": "gpt2", "bert": "bert", "llama": "qwen3", "qwen2": "qwen3"}


def kernels(model: onnx.ModelProto | str) -> int:
    graph = load_onnx(model).graph
    return sum(is_kernel(n, graph) for n in graph.nodes)


def ort_optimized(path: Path, arch: str) -> onnx.ModelProto:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(path), model_type=ORT_TYPE_FOR_ARCH[arch], num_heads=HEADS, hidden_size=HIDDEN,
                               opt_level=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ort.onnx"
        optimized.save_model_to_file(str(out))
        return onnx.load(out)


def per_layer(arch: str, exporter: str, measure) -> float:
    small, large = corpus_model(arch, exporter, 2), corpus_model(arch, exporter, 3)
    return measure(large.path, arch) - measure(small.path, arch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="3", help="comma-separated autofuse levels (default 3)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    header = ["model", "exporter", "before"] + [f"autofuse L{lv}" for lv in levels] + ["ratio", "ORT optimizer"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for arch in ARCHES:
        for exporter in EXPORTERS:
            before = per_layer(arch, exporter, lambda p, a: kernels(str(p)))
            after = [per_layer(arch, exporter, lambda p, a, lv=lv: fuse(str(p), opt_level=lv).report["kernels_after"])
                     for lv in levels]
            ort = per_layer(arch, exporter, lambda p, a: kernels(ort_optimized(p, a)))
            cells = [arch, exporter, f"{before:g}"] + [f"{a:g}" for a in after] + [f"{after[-1] / before:.2f}", f"{ort:g}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
