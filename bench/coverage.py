"""Kernel coverage on architectures outside the test corpus: does every fused group get a kernel?

    python bench/coverage.py [--arches mistral,t5,...] [--target ascend910b] [--verify] [--dims batch=2,seq=16]

Each architecture is a transformers config with random weights (2 layers, hidden 128, 4 heads, 2
KV heads where the family has them; Mixtral with 4 experts, 2 per token; nothing is downloaded),
run with eager attention (the MatMul/Softmax spelling: where no rule of ours matches it, the
automatic groups carry it), exported by both PyTorch exporters, with symbolic batch/sequence dims
and with static ones. Exports are cached under .cache/coverage (key: the transformers and torch
versions). Each model is fused at level 3 with kernels; one row per export:

- groups: fused groups formed; kernel / call-through / host: what each got; missing: groups formed
  without any (the run's exit code would say so);
- declined: merges the planner refused because the generator has no kernel for them
  (`no_kernel_for_group`; their parts are fused instead, and counted in groups);
- generic: generated kernels that are shape-generic (run at any batch/sequence size; the others
  are generated for the bound shapes, and their reasons are summed under the table);
- with --verify: kernels that compiled on the CPU emulator, matched onnxruntime, moved the GM
  bytes the cost model predicted (within 2%) and compiled against Huawei's headers at every size
  they were checked at, the sizes checked (bindings of batch/seq a shape-generic kernel ran at:
  the bound ones, all 1, odd, large), and the largest absolute error over all of them.

The reasons of the declined merges are summed under the table. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import sys
import warnings
from pathlib import Path

import onnx

from autofuse import fuse
from autofuse.testing.cache import cache_root, dist_version
from autofuse.verify.kernels import reason_kind

ARCHES = ("mistral", "gemma", "qwen3", "olmo2", "phi", "gpt_neox", "mixtral", "t5", "vit")
SMALL = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, head_dim=32)


def _config(arch: str):
    import transformers as t

    if arch == "t5":
        return t.T5Config(d_model=128, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=32,
                          vocab_size=256)
    if arch == "vit":
        return t.ViTConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8)
    if arch in ("gpt_neox", "phi"):
        cls = t.GPTNeoXConfig if arch == "gpt_neox" else t.PhiConfig
        return cls(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                   vocab_size=256, max_position_embeddings=64)
    if arch == "mixtral":  # MoE: 4 experts, 2 per token, run as batched MatMuls over the gathered expert weights
        return t.MixtralConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2, experts_implementation="batched_mm")
    cls = {"mistral": t.MistralConfig, "qwen3": t.Qwen3Config, "gemma": t.GemmaConfig,
           "olmo2": t.Olmo2Config}[arch]
    return cls(**SMALL)


def _module(arch: str):
    """(torch module, example inputs): a wrapper returning one tensor."""
    import torch
    import transformers as t

    config = _config(arch)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    if arch == "vit":
        inner = t.ViTModel(config).eval()
        return _wrapped(inner, lambda m, x: m(pixel_values=x).last_hidden_state), (torch.randn(2, 3, 32, 32),)
    ids = torch.randint(0, 256, (2, 16))
    if arch == "t5":
        inner = t.T5ForConditionalGeneration(config).eval()
        return _wrapped(inner, lambda m, a, b: m(input_ids=a, decoder_input_ids=b, use_cache=False).logits), (ids, ids)
    inner = t.AutoModelForCausalLM.from_config(config).eval()
    mask = torch.ones(2, 16, dtype=torch.int64)
    return _wrapped(inner, lambda m, a, b: m(input_ids=a, attention_mask=b, use_cache=False).logits), (ids, mask)


def _wrapped(inner, call):
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, first, second=None):  # fixed arity: torch.export matches dynamic_shapes to it
            return call(self.inner, first) if second is None else call(self.inner, first, second)

    return Wrapped().eval()


def export(arch: str, exporter: str, shapes: str) -> Path:
    """The cached export (built on first use)."""
    import torch

    key = f"torch{dist_version('torch')}-transformers{dist_version('transformers')}"
    path = cache_root("AUTOFUSE_COVERAGE_CACHE", "coverage") / key / f"{arch}-{exporter}-{shapes}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module, args = _module(arch)
    names = [f"input{i}" for i in range(len(args))]
    # Images: batch only; token ids: batch and sequence.
    axes = [{0: "batch"} if a.dim() == 4 else {0: "batch", 1: "seq"} for a in args]
    tmp = path.with_suffix(".tmp")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dims = {name: torch.export.Dim(name) for name in ("batch", "seq")}
            dynamic = tuple({i: dims[n] for i, n in a.items()} for a in axes) if shapes == "symbolic" else None
            torch.onnx.export(module, args, str(tmp), dynamo=True, input_names=names, dynamic_shapes=dynamic)
        else:
            dynamic = dict(zip(names, axes)) if shapes == "symbolic" else None
            torch.onnx.export(module, args, str(tmp), dynamo=False, input_names=names, opset_version=18,
                              dynamic_axes=dynamic)
    proto = onnx.load(str(tmp))
    onnx.save(proto, str(path))  # one file (the dynamo exporter may write external data beside it)
    tmp.unlink(missing_ok=True)
    for extra in path.parent.glob(f"{tmp.name}*"):
        extra.unlink()
    return path


def row(arch: str, exporter: str, shapes: str, target: str, dims: dict, verify: bool, declined: collections.Counter,
        static: collections.Counter):
    result = fuse(onnx.load(str(export(arch, exporter, shapes))), opt_level=3, target=target, kernels=True,
                  verify_kernels=verify, dims=dims)
    coverage = result.kernel_coverage
    kinds = collections.Counter()
    for kernel in result.kernels.values():
        kinds[type(kernel.record).__name__ if kernel.record is not None else "kernel"] += 1
    refused = [r["detail"] for r in result.report["rejected"] if r["reason"] == "no_kernel_for_group"]
    for detail in refused:  # "the code generator declines it: [as for nodes a, b: ]<reason>"
        declined[reason_kind(detail.split(": ", 1)[-1].split(": ", 1)[-1] if detail.count(": ") > 1
                             and "as for nodes" in detail else detail.split(": ", 1)[-1])] += 1
    programs = [k.program for k in result.kernels.values() if k.generated]
    generic = sum(1 for p in programs if p.symbols)
    static.update(reason_kind(p.static_reason) for p in programs if not p.symbols and p.static_reason)
    cells = [arch, exporter, shapes, str(len(result.kernels)), str(kinds["kernel"]), str(kinds["CallThrough"]),
             str(kinds["HostOnly"]), str(len(coverage.missing) if coverage else 0), str(len(refused)),
             f"{generic}/{kinds['kernel']}"]
    if verify:
        checks = [c for c in (result.kernel_checks or {}).values() if c is not None]
        good = [c for c in checks if c.passed and c.bytes_within_tolerance]  # passed: real headers too
        worst = max((c.max_abs_error or 0.0 for c in checks), default=0.0)
        sizes = max((len(c.sizes) for c in checks), default=0)
        cells += [f"{len(good)}/{kinds['kernel']}", str(sizes), f"{worst:.1e}"]
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arches", default=",".join(ARCHES))
    parser.add_argument("--target", default="ascend910b")
    parser.add_argument("--dims", default="batch=2,seq=16")
    parser.add_argument("--verify", action="store_true", help="compile and check every kernel on the emulator")
    args = parser.parse_args(argv)
    dims = {k: int(v) for k, v in (item.split("=") for item in args.dims.split(","))}
    header = ["model", "exporter", "shapes", "groups", "kernel", "call-through", "host", "missing", "declined",
              "generic"]
    if args.verify:
        header += ["verified", "sizes", "max abs error"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    declined: collections.Counter = collections.Counter()
    static: collections.Counter = collections.Counter()
    for arch in args.arches.split(","):
        for exporter in ("dynamo", "torchscript"):
            for shapes in ("symbolic", "static"):
                print(f"{arch} {exporter} {shapes} ...", file=sys.stderr, flush=True)
                try:
                    cells = row(arch, exporter, shapes, args.target, dims, args.verify, declined, static)
                except Exception as exc:  # an export the installed torch/transformers cannot do
                    cells = [arch, exporter, shapes, f"failed: {type(exc).__name__}: {str(exc)[:80]}"]
                print("| " + " | ".join(cells) + " |", flush=True)
    if declined:
        print("\nMerges declined for want of a kernel, by reason:\n")
        for reason, count in declined.most_common():
            print(f"- {count} x {reason}")
    if static:
        print("\nKernels generated for the bound shapes only (over symbolic dims), by reason:\n")
        for reason, count in static.most_common():
            print(f"- {count} x {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
