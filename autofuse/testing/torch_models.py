"""Tiny random-weight Hugging Face decoders for one decode step, as PyTorch modules and FX graphs.

The PyTorch (FX) path of autofuse and the SuperKernel scope planner both work on
the graph of *one decode step*: batch 1, one new token, a KV cache holding a few
past tokens.  This module builds such steps for the common decoder families from
transformers config objects (random but deterministic weights, nothing is
downloaded) and captures them with ``torch.export``.

Choices (bump ``TORCH_MODELS_VERSION`` when changing any of them -- it is part of
the on-disk cache key):

* Hidden 64, 2 layers, 4 heads (2 KV heads: grouped-query attention),
  intermediate 128, vocab 256, 4 past tokens.  MoE models: 4 experts, top-2,
  expert intermediate 32.  DeepSeek-V3: multi-head latent attention with small
  LoRA ranks, the first layer dense and the second MoE (``first_k_dense_replace=1``).
* ``attn_implementation="sdpa"`` (the transformers default): attention reaches
  the graph as one ``aten.scaled_dot_product_attention`` op.
* MoE experts use transformers' ``batched_mm`` experts implementation: it
  gathers the top-k experts' weights and runs batched matmuls, which
  ``torch.export`` captures without data-dependent control flow (the default
  per-expert loop branches on which experts were hit).
* The KV cache is passed as two plain tensors ``past_keys`` / ``past_values`` of
  shape ``[layers, batch, kv_heads, past, head_dim]`` and the step returns the
  grown cache the same way, so the step is a pure function (a transformers
  ``DynamicCache`` passed as an input would be mutated by every call).  Inside the
  step the tensors fill a ``DynamicCache``, so the graph has the real decode
  path: ``cat(past, new)`` per layer, then attention over ``past + 1`` keys.
* Shapes are static (batch 1, one token, fixed past length): a decode step on
  Ascend is compiled for fixed shapes, and SuperKernel scopes require them.
* Norm scales are randomised around 1 (HF initialises them to exactly 1), so a
  fusion that drops or swaps a scale shows up numerically.

torch and transformers are imported lazily, so ``autofuse`` imports without them.

API::

    model, example_inputs = build("llama")        # or llama() / qwen2() / qwen3_moe() / mixtral() / deepseek_v3()
    ep = export_decode_step("llama")              # torch.export.ExportedProgram, cached
    logits, keys, values = model(*example_inputs)

``llama`` etc. have the signature the CLI's ``--input module.path:factory``
expects: ``autofuse --input autofuse.testing.torch_models:llama``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from autofuse.testing.cache import cache_root, dist_version

ARCHES = ("llama", "qwen2", "qwen3_moe", "mixtral", "deepseek_v3")
MOE_ARCHES = ("qwen3_moe", "mixtral", "deepseek_v3")

#: Bump whenever the configs, inputs, wrapper or export options change.
TORCH_MODELS_VERSION = "2"
ATTN_IMPLEMENTATION = "sdpa"
EXPERTS_IMPLEMENTATION = "batched_mm"

HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
VOCAB = 256
MAX_POSITIONS = 128
PAST_LEN = 4
INIT_RANGE = 0.1
EXPERTS = 4
TOP_K = 2
EXPERT_INTERMEDIATE = 32


def _config_kwargs(arch: str, num_layers: int) -> dict[str, Any]:
    """Config keyword arguments of the tiny ``arch`` model (also part of the cache key)."""
    common = {
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "num_hidden_layers": num_layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": MAX_POSITIONS,
        "initializer_range": INIT_RANGE,
        "use_cache": True,
    }
    if arch in ("llama", "qwen2"):
        return common
    if arch == "qwen3_moe":
        return dict(
            common,
            head_dim=HIDDEN // HEADS,
            num_experts=EXPERTS,
            num_experts_per_tok=TOP_K,
            moe_intermediate_size=EXPERT_INTERMEDIATE,
            decoder_sparse_step=1,
            norm_topk_prob=True,
        )
    if arch == "mixtral":
        return dict(common, num_local_experts=EXPERTS, num_experts_per_tok=TOP_K, intermediate_size=EXPERT_INTERMEDIATE)
    if arch == "deepseek_v3":
        return dict(
            common,
            num_key_value_heads=HEADS,  # MLA expands the latent to one key/value per head
            moe_intermediate_size=EXPERT_INTERMEDIATE,
            n_routed_experts=EXPERTS,
            n_shared_experts=1,
            num_experts_per_tok=TOP_K,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            rope_interleave=True,
        )
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")


def _config(arch: str, num_layers: int):
    import transformers

    cls = {
        "llama": transformers.LlamaConfig,
        "qwen2": transformers.Qwen2Config,
        "qwen3_moe": transformers.Qwen3MoeConfig,
        "mixtral": transformers.MixtralConfig,
        "deepseek_v3": transformers.DeepseekV3Config,
    }[arch]
    cfg = cls(**_config_kwargs(arch, num_layers))
    cfg._attn_implementation = ATTN_IMPLEMENTATION
    if arch in MOE_ARCHES:
        cfg._experts_implementation = EXPERTS_IMPLEMENTATION
    return cfg


def _cache_dims(cfg) -> tuple[int, int, int]:
    """(heads, key dim, value dim) of one layer's cache entry."""
    if getattr(cfg, "kv_lora_rank", None):
        # Multi-head latent attention caches the compressed latent (one "head") as keys and the
        # shared rotary key part as values; both are expanded per head after the cache read.
        return 1, cfg.kv_lora_rank, cfg.qk_rope_head_dim
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return cfg.num_key_value_heads, head_dim, head_dim


def _seed(arch: str) -> int:
    return ARCHES.index(arch) + 4321


def _decode_step_class():
    """The wrapper class, defined lazily because it subclasses ``torch.nn.Module``."""
    import torch
    from transformers.cache_utils import DynamicCache

    class DecodeStep(torch.nn.Module):
        """One decode step of a causal LM as a pure function of (token, position, KV cache)."""

        def __init__(self, lm: torch.nn.Module):
            super().__init__()
            self.lm = lm
            # transformers 5.25 renamed `past_key_values` to `cache` (the old name goes in 5.40)
            parameters = inspect.signature(lm.forward).parameters
            self.cache_argument = "cache" if "cache" in parameters else "past_key_values"

        def forward(self, input_ids, position_ids, past_keys, past_values):
            cache = DynamicCache(config=self.lm.config)
            for layer, keys, values in zip(cache.layers, past_keys.unbind(0), past_values.unbind(0)):
                # Filled directly rather than through ``update``: ``update`` on an empty layer
                # concatenates onto a fresh empty tensor, which only adds noise to the graph.
                layer.dtype, layer.device = keys.dtype, keys.device
                layer.keys, layer.values, layer.is_initialized = keys, values, True
            out = self.lm(
                input_ids=input_ids,
                position_ids=position_ids,
                **{self.cache_argument: cache},
                use_cache=True,
                return_dict=True,
            )
            new_keys = torch.stack([layer.keys for layer in out.past_key_values.layers])
            new_values = torch.stack([layer.values for layer in out.past_key_values.layers])
            return out.logits, new_keys, new_values

    return DecodeStep


def build(arch: str, num_layers: int = LAYERS) -> tuple[Any, tuple]:
    """Returns ``(model, example_inputs)`` for one decode step of the tiny ``arch`` model.

    ``example_inputs`` = ``(input_ids [1, 1], position_ids [1, 1], past_keys, past_values)``
    with ``PAST_LEN`` past tokens; the model returns ``(logits, keys, values)``.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    import torch
    import transformers

    cfg = _config(arch, num_layers)
    torch.manual_seed(_seed(arch))
    lm = transformers.AutoModelForCausalLM.from_config(cfg).eval().requires_grad_(False)  # inference only
    gen = torch.Generator().manual_seed(_seed(arch))
    with torch.no_grad():
        for name, p in lm.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
    kv_heads, k_dim, v_dim = _cache_dims(cfg)
    past_keys = torch.randn(num_layers, 1, kv_heads, PAST_LEN, k_dim, generator=gen)
    past_values = torch.randn(num_layers, 1, kv_heads, PAST_LEN, v_dim, generator=gen)
    input_ids = torch.tensor([[int(torch.randint(VOCAB, (1,), generator=gen))]])
    position_ids = torch.tensor([[PAST_LEN]])
    return _decode_step_class()(lm).eval(), (input_ids, position_ids, past_keys, past_values)


def llama():
    """CLI factory: ``autofuse --input autofuse.testing.torch_models:llama``."""
    return build("llama")


def qwen2():
    """CLI factory: tiny Qwen2 decode step."""
    return build("qwen2")


def qwen3_moe():
    """CLI factory: tiny Qwen3-MoE decode step."""
    return build("qwen3_moe")


def mixtral():
    """CLI factory: tiny Mixtral decode step."""
    return build("mixtral")


def deepseek_v3():
    """CLI factory: tiny DeepSeek-V3 decode step."""
    return build("deepseek_v3")


# --------------------------------------------------------------------------
# export + cache


def default_cache_dir() -> Path:
    return cache_root("AUTOFUSE_TORCH_MODELS_DIR", "torch_models")


def _cache_path(arch: str, num_layers: int, cache_dir: Path) -> Path:
    ident = repr(
        (
            TORCH_MODELS_VERSION,
            ATTN_IMPLEMENTATION,
            EXPERTS_IMPLEMENTATION,
            PAST_LEN,
            sorted(_config_kwargs(arch, num_layers).items()),
            dist_version("torch"),
            dist_version("transformers"),
        )
    )
    digest = hashlib.sha1(ident.encode()).hexdigest()[:10]
    return cache_dir / f"{arch}-L{num_layers}-v{TORCH_MODELS_VERSION}-{digest}.pt2"


@functools.cache
def _export_cached(arch: str, num_layers: int, cache_dir: str):
    import torch

    from autofuse.frontends.fx import capture

    path = _cache_path(arch, num_layers, Path(cache_dir))
    if path.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.load(path)
    model, inputs = build(arch, num_layers)
    # Functionalized: the in-place ops of the pre-dispatch graph (copy_, div_, scatter_) go,
    # nothing else is decomposed (linear, scaled_dot_product_attention, silu stay single ops).
    ep = capture(model, inputs, source=arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".pt2", dir=path.parent)
    os.close(fd)
    try:
        torch.export.save(ep, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ep


def export_decode_step(arch: str, num_layers: int = LAYERS, cache_dir: Path | None = None):
    """The ``torch.export.ExportedProgram`` of ``build(arch, num_layers)``.

    Cached in memory and on disk (``.cache/torch_models/`` in a checkout), keyed by
    the configs, the versions of torch and transformers and ``TORCH_MODELS_VERSION``.
    The program's weights equal those of a fresh ``build(arch, num_layers)``, so its
    outputs can be compared with that model's.  Treat the returned program as
    read-only: it is shared between callers.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHES}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _export_cached(arch, num_layers, str(cache))
