"""A small corpus of real transformer architectures exported to ONNX.

The corpus exists so that the fusion pass is exercised on the graphs that the
PyTorch exporters really produce for the common decoder/encoder families, not
only on hand-built toy graphs.  Every model is a *tiny* Hugging Face model
(built from a config object, random but deterministic weights -- nothing is
downloaded) exported with one of the two PyTorch ONNX exporters:

``dynamo``
    ``torch.onnx.export(..., dynamo=True)``: torch.export + onnxscript
    translation + the onnxscript optimizer.  The default exporter since
    torch 2.9.
``torchscript``
    ``torch.onnx.export(..., dynamo=False)``: the legacy TorchScript tracer.
    torch 2.13 still ships it (it emits a ``DeprecationWarning``, which is
    silenced here).  Should a future torch drop it, the alternative is the
    dynamo exporter with ``optimize=False`` (the raw, unoptimized translation,
    which is the closest thing to "a second, noisier exporter"), or ONNX files
    exported with an older torch and checked in.

Choices (keep ``CORPUS_VERSION`` in step when changing any of them -- it is part
of the cache key):

* opset 18 for both exporters.  Both produce it natively, onnxruntime loads it,
  and it is the newest opset accepted by the Ascend ATC converter.  (The dynamo
  default in torch 2.13 would be opset 20, the TorchScript default 17.)
* ``attn_implementation="sdpa"``: the transformers default, so the graphs look
  like what users export.  Both exporters decompose
  ``scaled_dot_product_attention`` into MatMul/Softmax at opset 18 (no
  ``Attention`` op, which only exists from opset 23); the decomposition carries
  IsNaN/Where guards for fully-masked rows.  "eager" exports too.
* ``use_cache=False``, eval mode, inputs ``input_ids`` + ``attention_mask``
  (BERT also ``token_type_ids``), all int64 ``[batch, seq]`` with dynamic batch
  and sequence dims; output ``logits`` (gpt2/llama/qwen2) or
  ``last_hidden_state`` (bert).
* Hidden 64, 4 heads (llama/qwen2 with 2 KV heads, i.e. grouped-query
  attention), intermediate 128, vocab 256, 128 positions; initializer range
  0.1 and randomized norm scales / biases so that numerical checks are
  sensitive.  A 2-layer model is well under 1 MB, always a single file.
* Per-node stack traces (``pkg.torch.onnx.stack_trace`` metadata, which
  contain local file paths) are stripped; the other dynamo metadata (module
  namespace / name scopes) is kept.

Every export is sanity-checked: the model is loaded in onnxruntime and run at a
batch size and sequence length different from the export ones, with padding in
the attention mask, and compared against PyTorch.

torch and transformers are imported lazily, so ``autofuse`` itself imports
without them.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autofuse.testing.cache import cache_root, dist_version

ARCHES = ("gpt2", "bert", "llama", "qwen2")
EXPORTERS = ("dynamo", "torchscript")

#: Bump whenever the configs, inputs, export options or post-processing change.
CORPUS_VERSION = "1"
OPSET = 18
ATTN_IMPLEMENTATION = "sdpa"

HIDDEN = 64
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
VOCAB = 256
MAX_POSITIONS = 128
INIT_RANGE = 0.1

_EXPORT_BATCH = 2  # torch.export specialises dims of size 0/1, so export with 2
_STRIP_METADATA_KEYS = ("pkg.torch.onnx.stack_trace",)


@dataclass(frozen=True)
class CorpusModel:
    arch: str
    exporter: str
    num_layers: int
    path: pathlib.Path

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.exporter}-L{self.num_layers}"


# --------------------------------------------------------------------------
# configs and models


def _config_kwargs(arch: str, num_layers: int) -> dict[str, Any]:
    common = dict(use_cache=False, initializer_range=INIT_RANGE)
    if arch == "gpt2":
        return dict(
            common,
            vocab_size=VOCAB,
            n_positions=MAX_POSITIONS,
            n_embd=HIDDEN,
            n_layer=num_layers,
            n_head=HEADS,
            n_inner=INTERMEDIATE,
            bos_token_id=VOCAB - 1,
            eos_token_id=VOCAB - 1,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    if arch == "bert":
        return dict(
            common,
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            num_hidden_layers=num_layers,
            num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE,
            max_position_embeddings=MAX_POSITIONS,
            type_vocab_size=2,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    if arch in ("llama", "qwen2"):
        return dict(
            common,
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            num_hidden_layers=num_layers,
            num_attention_heads=HEADS,
            num_key_value_heads=KV_HEADS,
            intermediate_size=INTERMEDIATE,
            max_position_embeddings=MAX_POSITIONS,
        )
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")


def _seed(arch: str) -> int:
    return ARCHES.index(arch) + 1234


def _build_torch_model(arch: str, num_layers: int):
    """Returns (wrapper nn.Module, input names, output name)."""
    import torch
    import transformers

    kwargs = _config_kwargs(arch, num_layers)
    torch.manual_seed(_seed(arch))
    if arch == "gpt2":
        cfg = transformers.GPT2Config(**kwargs)
        cls = transformers.GPT2LMHeadModel
    elif arch == "bert":
        cfg = transformers.BertConfig(**kwargs)
        cls = transformers.BertModel
    elif arch == "llama":
        cfg = transformers.LlamaConfig(**kwargs)
        cls = transformers.LlamaForCausalLM
    else:
        cfg = transformers.Qwen2Config(**kwargs)
        cls = transformers.Qwen2ForCausalLM
    cfg._attn_implementation = ATTN_IMPLEMENTATION
    if arch == "bert":
        inner = cls(cfg, add_pooling_layer=False)
    else:
        inner = cls(cfg)
    inner.eval()
    # Make norm scales and all biases non-trivial (HF initialises them to 1/0),
    # so that a fusion bug that drops or swaps them shows up numerically.
    gen = torch.Generator().manual_seed(_seed(arch))
    with torch.no_grad():
        for pname, p in inner.named_parameters():
            if p.ndim == 1:
                noise = torch.randn(p.shape, generator=gen) * 0.1
                p.copy_(1.0 + noise if pname.endswith("weight") else noise)

    if arch == "bert":

        class _Encoder(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                    return_dict=True,
                ).last_hidden_state

        return _Encoder(inner).eval(), ("input_ids", "attention_mask", "token_type_ids"), "last_hidden_state"

    class _Decoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True
            ).logits

    return _Decoder(inner).eval(), ("input_ids", "attention_mask"), "logits"


def _example_inputs(input_names, batch: int, seq: int, seed: int, pad: bool) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, VOCAB, size=(batch, seq), dtype=np.int64)}
    mask = np.ones((batch, seq), dtype=np.int64)
    if pad and seq > 2:
        mask[0, -2:] = 0  # right padding keeps every query row with a valid key
    feeds["attention_mask"] = mask
    if "token_type_ids" in input_names:
        tt = np.zeros((batch, seq), dtype=np.int64)
        tt[:, seq // 2 :] = 1
        feeds["token_type_ids"] = tt
    return feeds


# --------------------------------------------------------------------------
# export


def _export_dynamo(model, args, input_names, output_name):
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    seq = torch.export.Dim("seq", min=1, max=MAX_POSITIONS)
    dynamic_shapes = {n: {0: batch, 1: seq} for n in input_names}
    prog = torch.onnx.export(
        model,
        args,
        None,
        dynamo=True,
        opset_version=OPSET,
        input_names=list(input_names),
        output_names=[output_name],
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    return prog.model_proto


def _export_torchscript(model, args, input_names, output_name, tmp_path: str):
    import onnx
    import torch

    axes = {0: "batch", 1: "seq"}
    dynamic_axes = {n: dict(axes) for n in (*input_names, output_name)}
    torch.onnx.export(
        model,
        args,
        tmp_path,
        dynamo=False,
        opset_version=OPSET,
        input_names=list(input_names),
        output_names=[output_name],
        dynamic_axes=dynamic_axes,
        do_constant_folding=True,
        verbose=False,
    )
    return onnx.load(tmp_path)


def _strip_metadata(model_proto) -> None:
    def strip(graph):
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key not in _STRIP_METADATA_KEYS]
            if len(keep) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(keep)
            for attr in node.attribute:
                if attr.HasField("g"):
                    strip(attr.g)
                for sub in attr.graphs:
                    strip(sub)

    strip(model_proto.graph)


def _sanity_check(model_proto, torch_model, input_names, seq_len: int) -> None:
    """Runs the ONNX model in onnxruntime at a new batch/seq and compares to torch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch, seq in ((3, seq_len + 5), (1, max(2, seq_len - 3))):
        feeds = _example_inputs(input_names, batch, seq, seed=batch * 100 + seq, pad=True)
        (got,) = sess.run(None, feeds)
        with torch.no_grad():
            want = torch_model(*(torch.from_numpy(feeds[n]) for n in input_names)).numpy()
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4, equal_nan=True):
            diff = np.nanmax(np.abs(got - want)) if got.shape == want.shape else "shape mismatch"
            raise RuntimeError(
                f"exported model disagrees with torch at batch={batch} seq={seq}: "
                f"got {got.shape}, want {want.shape}, max abs diff {diff}"
            )


def export_model(arch: str, exporter: str, num_layers: int, path: Path, *, seq_len: int = 8) -> Path:
    """Builds the tiny ``arch`` model and exports it to ``path`` (single file).

    The file is written atomically (temp file + rename).  Raises if the exported
    model does not run in onnxruntime at a different shape or disagrees with
    PyTorch.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
    if num_layers < 1:
        raise ValueError("num_layers must be >= 1")
    import logging

    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model, input_names, output_name = _build_torch_model(arch, num_layers)
    feeds = _example_inputs(input_names, _EXPORT_BATCH, seq_len, seed=0, pad=False)
    args = tuple(torch.from_numpy(feeds[n]) for n in input_names)

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    onnx_logger = logging.getLogger("torch.onnx")
    old_level = onnx_logger.level
    try:
        onnx_logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                proto = _export_dynamo(model, args, input_names, output_name)
            else:
                proto = _export_torchscript(model, args, input_names, output_name, tmp)
        _strip_metadata(proto)
        proto.doc_string = f"autofuse corpus {arch}-{exporter}-L{num_layers} (corpus v{CORPUS_VERSION})"
        onnx.checker.check_model(proto)
        _sanity_check(proto, model, input_names, seq_len)
        onnx.save_model(proto, tmp, save_as_external_data=False)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        onnx_logger.setLevel(old_level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# --------------------------------------------------------------------------
# cache


def default_cache_dir() -> Path:
    return cache_root("AUTOFUSE_CORPUS_DIR", "corpus")


def _cache_key(arch: str, exporter: str, num_layers: int) -> str:
    ident = repr(
        (
            CORPUS_VERSION,
            OPSET,
            ATTN_IMPLEMENTATION,
            sorted(_config_kwargs(arch, num_layers).items()),
            dist_version("torch"),
            dist_version("transformers"),
            dist_version("onnxscript"),
        )
    )
    digest = hashlib.sha1(ident.encode()).hexdigest()[:10]
    return f"{arch}-{exporter}-L{num_layers}-v{CORPUS_VERSION}-{digest}.onnx"


def corpus_model(arch: str, exporter: str, num_layers: int = 2, cache_dir: Path | None = None) -> CorpusModel:
    """Returns the corpus model, exporting it on first use and caching it on disk."""
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / _cache_key(arch, exporter, num_layers)
    if not path.is_file():
        export_model(arch, exporter, num_layers, path)
    return CorpusModel(arch=arch, exporter=exporter, num_layers=num_layers, path=path)


def build_corpus(
    num_layers: int = 2,
    cache_dir: Path | None = None,
    arches=ARCHES,
    exporters=EXPORTERS,
) -> list[CorpusModel]:
    return [corpus_model(a, e, num_layers, cache_dir) for a in arches for e in exporters]


def kernels_per_layer(
    arch: str, exporter: str, opt_level: int, cache_dir: Path | None = None
) -> tuple[float, float]:
    """(kernels before, kernels after) fusion per transformer layer.

    Exporter naming independent: fuses the 2- and 3-layer models and takes the
    difference of ``report["kernels_before"]`` resp. ``report["kernels_after"]``.
    """
    from autofuse import fuse

    counts = []
    for layers in (2, 3):
        m = corpus_model(arch, exporter, layers, cache_dir)
        report = fuse(str(m.path), opt_level=opt_level).report
        counts.append((report["kernels_before"], report["kernels_after"]))
    (b2, a2), (b3, a3) = counts
    return float(b3 - b2), float(a3 - a2)
