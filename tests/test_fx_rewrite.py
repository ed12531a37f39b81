"""The rewritten PyTorch graph: one call per fused group, the original numbers on CPU, every
norm / SwiGLU / rotary embedding / attention block mapped to its torch_npu op, and the CLI's
`--input module.path:factory`.

torch_npu cannot be imported here, so the npu backend is checked against `FakeTorchNpu`, a
stand-in that computes each op's documented semantics on CPU (including the conventions that
are easy to get wrong: npu_rms_norm returns a tuple, npu_swiglu activates the first half,
npu_fusion_attention masks where its boolean mask is True and applies no causal mask of its own,
npu_rotary_mul rotates (x[2i], x[2i+1]) pairs in its 'interleave' mode).
It checks the argument mapping, never the NPU kernels themselves.
"""
from __future__ import annotations

import functools
import json
import re
import types
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from autofuse import cli, fuse
from autofuse.api import load_rule_set
from autofuse.rewrite.fx import rewrite_fx
from autofuse.testing import torch_models

F = torch.nn.functional
NORMS = ("torch_npu.npu_rms_norm", "torch_npu.npu_add_rms_norm")
# Blocks per decoder layer, from the architectures (tiny configs in autofuse/testing/torch_models.py).
# norm: input + post-attention RMSNorm (+ per-head q/k norms in Qwen3; + the q_a / kv_a LoRA norms
# of DeepSeek-V3's latent attention); rotary: one for q, one for k (in DeepSeek-V3: the rotary
# part of q, and the one shared rotary key head, both in the interleaved form); swiglu: the MLP's,
# or the routed experts' (+ the shared expert's in DeepSeek-V3's MoE layer).
_DENSE = {"norm": 2, "torch_npu.npu_rotary_mul": 2, "torch_npu.npu_fusion_attention": 1, "torch_npu.npu_swiglu": 1}
PER_LAYER = {
    "llama": [_DENSE, _DENSE],
    "qwen2": [_DENSE, _DENSE],
    "mixtral": [_DENSE, _DENSE],
    "qwen3_moe": [{**_DENSE, "norm": 4}, {**_DENSE, "norm": 4}],
    "deepseek_v3": [{**_DENSE, "norm": 4}, {**_DENSE, "norm": 4, "torch_npu.npu_swiglu": 2}],
}
# The default level: the rules with a torch_npu op are kept as matched (no merges around them),
# so every block still maps to its op.
MAPPING_LEVEL = 3


@functools.cache
def _fused(arch: str, opt_level: int = 3):
    return fuse(torch_models.export_decode_step(arch), opt_level=opt_level, backend="cpu", verify=True)


@functools.cache
def _eager(arch: str):
    model, inputs = torch_models.build(arch)
    with torch.no_grad():
        return inputs, model(*inputs)


def _layer_of(result, group: dict) -> str:
    """"layers.<i>" of the module the group's last node comes from, or "top"."""
    by_name = {n.name: n for n in result.loaded.module.graph.nodes}
    stack = by_name[group["members"][-1]].meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    found = re.search(r"layers\.(\d+)", path)
    return f"layers.{found.group(1)}" if found else "top"


def _blocks(result) -> Counter:
    counts: Counter = Counter()
    for group in result.report["groups"]:
        op = group["torch_npu"]
        if op:
            counts[(_layer_of(result, group), "norm" if op in NORMS else op)] += 1
    return counts


def _expected_blocks(arch: str) -> Counter:
    counts = Counter({("top", "norm"): 1})  # the final norm
    for i, layer in enumerate(PER_LAYER[arch]):
        counts.update({(f"layers.{i}", op): n for op, n in layer.items()})
    return counts


# -- CPU: the custom op computes the original subgraph ------------------------------------------


@pytest.mark.parametrize("arch", torch_models.ARCHES)
def test_rewritten_module_matches_the_model_on_cpu(arch):
    result = _fused(arch)
    assert result.verification.ok, result.verification.summary()
    inputs, want = _eager(arch)
    with torch.no_grad():
        got = result.graph_module(*inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    calls = [n for n in result.graph_module.graph.nodes if "autofuse.fused" in str(n.target)]
    assert len(calls) == len(result.report["groups"]) > 0  # every group is exactly one call
    assert {g["call"] for g in result.report["groups"]} == {"torch.ops.autofuse.fused"}


@pytest.mark.parametrize("arch", torch_models.ARCHES)
def test_every_block_of_every_layer_maps_to_its_torch_npu_op(arch):
    result = _fused(arch, MAPPING_LEVEL)
    assert _blocks(result) == _expected_blocks(arch)
    first_norm = next(g for g in result.report["groups"] if g["torch_npu"] in NORMS)
    assert first_norm["torch_npu"] == "torch_npu.npu_rms_norm"  # nothing to add before the first norm


def test_opaque_aten_ops_and_export_guards_are_kept():
    result = _fused("llama")
    targets = Counter(str(n.target) for n in result.graph_module.graph.nodes)
    assert targets["aten.unbind.int"] == 2 and targets["aten.stack.default"] == 2
    assert any(n.op == "call_module" and n.target == "_guards_fn" for n in result.graph_module.graph.nodes)


def test_rewritten_module_exports_again_through_the_fake_implementation():
    result = _fused("qwen3_moe")
    inputs, want = _eager("qwen3_moe")
    with torch.no_grad():
        program = torch.export.export(result.graph_module, inputs, strict=False)
        got = program.module()(*inputs)
    calls = [n for n in program.graph.nodes if "autofuse.fused" in str(n.target)]
    assert len(calls) == len(result.report["groups"])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_source_is_readable_python_naming_each_group():
    result = _fused("llama")
    source = result.source()
    compile(source, "<rewritten forward>", "exec")
    for group in result.report["groups"]:
        label = f"{group['id']}_{group['rule'] or group['kind']}"
        call = rf"^    {label} = torch\.ops\.autofuse\.fused\.default\('{label}_"
        assert re.search(call, source, re.MULTILINE), label
    model_py = result.rewrite.model_py()
    compile(model_py, "model.py", "exec")
    assert model_py.count("\ndef g") == len(result.report["groups"])  # one function per subgraph


# -- NPU: the torch_npu calls, checked against a stand-in --------------------------------------


class FakeTorchNpu(types.ModuleType):
    """The documented semantics of the torch_npu ops we call, on CPU, recording every call."""

    def __init__(self):
        super().__init__("torch_npu")
        self.calls: Counter = Counter()

    def npu_rms_norm(self, x, gamma, epsilon=1e-6):
        self.calls["torch_npu.npu_rms_norm"] += 1
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon)
        return x * rstd * gamma, rstd

    def npu_add_rms_norm(self, x1, x2, gamma, epsilon=1e-6):
        self.calls["torch_npu.npu_add_rms_norm"] += 1
        x = x1 + x2
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon)
        return x * rstd * gamma, rstd, x

    def npu_swiglu(self, x, dim=-1):
        self.calls["torch_npu.npu_swiglu"] += 1
        first, second = x.chunk(2, dim=dim)
        return F.silu(first) * second

    def npu_silu(self, x):
        self.calls["torch_npu.npu_silu"] += 1
        return F.silu(x)

    def npu_rotary_mul(self, x, r1, r2, rotary_mode="half"):
        self.calls["torch_npu.npu_rotary_mul"] += 1
        if rotary_mode == "interleave":  # rotate(x)[2i] = -x[2i+1], rotate(x)[2i+1] = x[2i]
            rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], -1).flatten(-2)
        else:
            assert rotary_mode == "half", rotary_mode
            half = x.shape[-1] // 2
            rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * r1 + rotated * r2

    def npu_fusion_attention(self, query, key, value, head_num, input_layout, pse=None, padding_mask=None,
                             atten_mask=None, scale=1.0, keep_prob=1.0, pre_tockens=2147483647,
                             next_tockens=2147483647, sparse_mode=0, **_):
        self.calls["torch_npu.npu_fusion_attention"] += 1
        assert input_layout == "BNSD" and query.shape[1] == head_num and sparse_mode == 0
        assert query.shape[1] % key.shape[1] == 0  # kv heads divide the query heads
        repeat = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeat, 1), value.repeat_interleave(repeat, 1)
        scores = query @ key.transpose(-1, -2) * scale
        if atten_mask is not None:
            assert atten_mask.dtype == torch.bool
            scores = scores.masked_fill(atten_mask, float("-inf"))  # True = masked out
        return torch.softmax(scores, -1) @ value, None, None, None, 0, 0, 0


@pytest.mark.parametrize("arch", ["llama", "qwen3_moe", "deepseek_v3"])
def test_npu_backend_calls_each_torch_npu_op_with_its_conventions(arch):
    fused = _fused(arch, MAPPING_LEVEL)
    npu = FakeTorchNpu()
    rewrite = rewrite_fx(fused.loaded, fused.plan, load_rule_set(), backend="npu", torch_npu=npu)
    inputs, want = _eager(arch)
    with torch.no_grad():
        got = rewrite.module(*inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    expected = Counter()
    for (_, op), n in _expected_blocks(arch).items():
        expected[op] += n
    calls = Counter({("norm" if op in NORMS else op): n for op, n in npu.calls.items()})
    calls["norm"] = sum(npu.calls[op] for op in NORMS)
    assert +calls == +expected
    assert rewrite.backend == "npu" and "torch_npu.npu_fusion_attention" in rewrite.source()


class _WrongSwiglu(FakeTorchNpu):
    def npu_swiglu(self, x, dim=-1):
        first, second = x.chunk(2, dim=dim)
        return first * F.silu(second)  # activates the second half


class _WrongMask(FakeTorchNpu):
    def npu_fusion_attention(self, query, key, value, head_num, input_layout, atten_mask=None, **kwargs):
        return super().npu_fusion_attention(query, key, value, head_num, input_layout,
                                            atten_mask=None if atten_mask is None else ~atten_mask, **kwargs)


class _HalfRotaryOnly(FakeTorchNpu):
    def npu_rotary_mul(self, x, r1, r2, rotary_mode="half"):
        return super().npu_rotary_mul(x, r1, r2)  # a stand-in that ignores rotary_mode


@pytest.mark.parametrize("wrong, arch", [(_WrongSwiglu, "llama"), (_WrongMask, "llama"),
                                         (_HalfRotaryOnly, "deepseek_v3")])
def test_the_npu_check_notices_a_broken_convention(wrong, arch):
    fused = _fused(arch, MAPPING_LEVEL)
    rewrite = rewrite_fx(fused.loaded, fused.plan, load_rule_set(), backend="npu", torch_npu=wrong())
    inputs, want = _eager(arch)
    with torch.no_grad():
        try:
            got = rewrite.module(*inputs)
        except RuntimeError:
            return  # a shape error is noticing too
    assert not all(torch.allclose(g, w, rtol=1e-4, atol=1e-4) for g, w in zip(got, want))


def test_tuple_returning_torch_npu_ops_are_indexed():
    """npu_rms_norm -> (y, rstd), npu_add_rms_norm -> (y, rstd, x), npu_fusion_attention -> (out, ...):
    only the right items are read. (At batch 1 taking [0] of y alone would go unnoticed in the
    numbers, so this looks at the graph.)"""
    fused = _fused("llama", MAPPING_LEVEL)
    npu = FakeTorchNpu()
    graph = rewrite_fx(fused.loaded, fused.plan, load_rule_set(), backend="npu", torch_npu=npu).module.graph
    wanted = {"npu_rms_norm": {0}, "npu_add_rms_norm": {0, 2}, "npu_fusion_attention": {0}}
    seen = Counter()
    for node in graph.nodes:
        name = getattr(node.target, "__name__", "")
        if node.op == "call_function" and name in wanted:
            seen[name] += 1
            assert all(u.target.__name__ == "getitem" for u in node.users), node.name
            assert {u.args[1] for u in node.users} == wanted[name], node.name
    assert seen == Counter({"npu_rms_norm": 1, "npu_add_rms_norm": 4, "npu_fusion_attention": 2})


def _rotary_calls(arch: str) -> list:
    fused = _fused(arch, MAPPING_LEVEL)
    graph = rewrite_fx(fused.loaded, fused.plan, load_rule_set(), backend="npu", torch_npu=FakeTorchNpu()).module.graph
    return [n for n in graph.nodes if n.op == "call_function" and getattr(n.target, "__name__", "") == "npu_rotary_mul"]


def test_interleaved_rotary_calls_npu_rotary_mul_in_interleave_mode():
    """DeepSeek-V3 rotates (x[2i], x[2i+1]) pairs with cos/sin of width D/2 and writes the result
    de-interleaved; torch_npu's interleave mode wants cos/sin per element ([c0, c0, c1, c1, ...])
    and returns the pairs in place. (At this tiny size a wrong layout could cancel out in a few
    numbers, so this looks at the graph.)"""
    calls = _rotary_calls("deepseek_v3")
    assert len(calls) == 4
    for call in calls:
        x, r1, r2 = call.args
        assert call.kwargs == {"rotary_mode": "interleave"}, call.name
        assert x.meta["val"].shape[-1] == 8  # qk_rope_head_dim: the pairs are read from x itself
        for r in (r1, r2):
            assert r.target == torch.ops.aten.repeat_interleave.self_int and tuple(r.args[1:]) == (2, -1)
            assert r.args[0].meta["val"].shape[-1] == 4  # one cos / sin per pair
        slices = sorted(call.users, key=lambda u: u.args[2])
        assert [(u.target, tuple(u.args[1:])) for u in slices] == [
            (torch.ops.aten.slice.Tensor, (-1, 0, None, 2)), (torch.ops.aten.slice.Tensor, (-1, 1, None, 2))]
        (cat,) = {u for s in slices for u in s.users}
        assert cat.args == ([slices[0], slices[1]], -1)  # even (real) elements first
    for call in _rotary_calls("llama"):  # the rotate-half form: default mode, its own cos / sin
        assert not call.kwargs and all(a.target != torch.ops.aten.repeat_interleave.self_int for a in call.args[1:])


class _InterleavedRope(torch.nn.Module):
    """Rotary embedding on interleaved pairs, for q and k: as transformers 5 writes it for DeepSeek-V3
    (step-2 slices, cos/sin of width D/2), or as older releases did (a view/transpose/reshape
    de-interleave, then the rotate-half form, which `rotary_embedding` matches on the
    de-interleaved tensor)."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form

    def forward(self, q, k, cos, sin):
        if self.form == "strided":
            from transformers.models.deepseek_v3.modeling_deepseek_v3 import (
                apply_rotary_pos_emb_interleave,
            )

            return apply_rotary_pos_emb_interleave(q, k, cos, sin)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        out = []
        for x in (q, k):
            b, h, s, d = x.shape
            x = x.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
            out.append(x * cos + torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1) * sin)
        return tuple(out)


@pytest.mark.parametrize("form, rule, mode", [("strided", "rotary_embedding_interleaved", {"rotary_mode": "interleave"}),
                                              ("view", "rotary_embedding", {})])
def test_both_interleaved_rotary_forms_map_to_npu_rotary_mul(form, rule, mode):
    gen = torch.Generator().manual_seed(7)
    q, k = torch.randn(2, 4, 5, 16, generator=gen), torch.randn(2, 1, 5, 16, generator=gen)
    angles = torch.arange(5.0)[:, None] * 10000.0 ** (-torch.arange(0, 16, 2) / 16)
    angles = torch.cat([angles, angles], -1)[None]  # [1, S, D], as HF's rotary embedding returns it
    inputs = (q, k, angles.cos(), angles.sin())
    model = _InterleavedRope(form)
    result = fuse(torch.export.export(model, inputs, strict=False), opt_level=1, backend="cpu", verify=True)
    assert [g["rule"] for g in result.report["groups"]] == [rule, rule]
    assert result.verification.ok, result.verification.summary()
    npu = FakeTorchNpu()
    module = rewrite_fx(result.loaded, result.plan, load_rule_set(), backend="npu", torch_npu=npu).module
    for got, want in zip(module(*inputs), model(*inputs), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert npu.calls == Counter({"torch_npu.npu_rotary_mul": 2})
    assert [n.kwargs for n in module.graph.nodes if getattr(n.target, "__name__", "") == "npu_rotary_mul"] == [mode] * 2


class _CausalPrefill(torch.nn.Module):
    """Prefill-style attention: is_causal=True and no mask (what HF sdpa does without padding)."""

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_causal_attention_gets_an_explicit_mask_on_npu():
    q, k, v = (torch.randn(1, 4, 6, 16) for _ in range(3))
    program = torch.export.export(_CausalPrefill(), (q, k, v), strict=False)
    result = fuse(program, opt_level=1, backend="cpu")
    assert [g["rule"] for g in result.report["groups"]] == ["attention_op_no_mask"]
    npu = FakeTorchNpu()
    rewrite = rewrite_fx(result.loaded, result.plan, load_rule_set(), backend="npu", torch_npu=npu)
    torch.testing.assert_close(rewrite.module(q, k, v), _CausalPrefill()(q, k, v), rtol=1e-5, atol=1e-6)
    assert npu.calls == Counter({"torch_npu.npu_fusion_attention": 1})


def test_npu_backend_without_torch_npu_is_an_input_error():
    fused = _fused("llama", MAPPING_LEVEL)
    with pytest.raises(Exception, match="torch_npu"):
        rewrite_fx(fused.loaded, fused.plan, load_rule_set(), backend="npu")


# -- the command line -----------------------------------------------------------------------------

_FACTORY_MODULE = '''
import torch

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.weight = torch.nn.Parameter(torch.rand(16) + 0.5)
        self.gate = torch.nn.Linear(16, 32, bias=False)
        self.up = torch.nn.Linear(16, 32, bias=False)

    def forward(self, x):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        return torch.nn.functional.silu(self.gate(h)) * self.up(h)

def make():
    return Block().eval(), (torch.randn(1, 1, 16),)

def wrong():
    return Block()

def broken():
    raise RuntimeError("no weights")
'''


@pytest.fixture()
def factory_dir(tmp_path, monkeypatch):
    (tmp_path / "fx_cli_factories.py").write_text(_FACTORY_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_cli_factory_writes_model_py_and_the_reports(factory_dir, capsys):
    code = cli.main(["--input", "fx_cli_factories:make", "--verify", "--backend", "cpu", "--opt-level", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    outdir = factory_dir / "make_autofuse"
    assert sorted(p.name for p in outdir.iterdir()) == ["model.py", "report.html", "report.json", "report.md"]
    assert "verify: ok" in out and f"wrote {outdir}/model.py" in out
    report = json.loads((outdir / "report.json").read_text())
    assert report["input"] == "fx_cli_factories:make" and report["torch_backend"] == "cpu"
    assert {(g["rule"], g["torch_npu"]) for g in report["groups"]} == {
        ("rms_norm", "torch_npu.npu_rms_norm"), ("swiglu", "torch_npu.npu_swiglu")}
    compile((outdir / "model.py").read_text(), "model.py", "exec")


@pytest.mark.parametrize("spec, message", [
    ("fx_cli_nowhere:make", "no module named 'fx_cli_nowhere'"),
    ("fx_cli_factories:absent", "module 'fx_cli_factories' has no function 'absent'"),
    ("fx_cli_factories:wrong", "must return (model, example_inputs)"),
    ("fx_cli_factories:broken", "broken() raised RuntimeError: no weights"),
])
def test_cli_bad_factory_exits_2_with_one_line_and_writes_nothing(factory_dir, capsys, spec, message):
    code = cli.main(["--input", spec, "-o", str(factory_dir / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and err.startswith("autofuse: error: --input ")
    assert not (factory_dir / "out").exists()


def test_cli_runs_a_tiny_hf_model_factory(tmp_path, capsys):
    code = cli.main(["--input", "autofuse.testing.torch_models:qwen2", "-o", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert code == 0 and "autofuse autofuse.testing.torch_models:qwen2 (opt-level 3" in out
    assert "torch.ops.autofuse.fused" in (tmp_path / "q" / "model.py").read_text()
