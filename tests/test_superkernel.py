"""The SuperKernel scope planner and the three ways to apply a plan.

- A hand-written toy decoder whose plans are counted by hand, node by node.
- The tiny HF decode steps (Llama, Qwen2, Qwen3-MoE, Mixtral, DeepSeek-V3), five strategies each,
  checked against an oracle built here from optable.yaml and the FX graph (not from the planner):
  every SuperKernel member is an Ascend C kernel, every split is at an op the table marks
  unfusible, `auto` scopes are maximal and never split a fusion pattern, template scopes are the
  modules their names say, enter/exit pair up, and the pass is gated to decode steps.
- The FX pass output compiled with torch.compile and a recording backend keeps every scope node.
- apply() and the source patch, on torchair's ops defined locally, give the planned scopes.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import operator
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch import nn

from autofuse.cost.hardware import load_profile
from autofuse.errors import InputError
from autofuse.superkernel import (
    STRATEGIES,
    SuperKernelPass,
    TorchairUnavailable,
    analyze,
    apply,
    insert_scopes,
    make_patch,
    plan_superkernel,
    render_report,
    scopes_in,
    super_kernel,
)
from autofuse.superkernel.ge_model import predict
from autofuse.superkernel.graph import build_view
from autofuse.superkernel.optable import OPTABLE_PATH, load_optable
from autofuse.superkernel.units import build_units
from autofuse.testing import torch_models

A3_LAUNCH_US = load_profile("ascend910_93").launch_us_few_cores
CUT_KINDS = {"tbe", "aicpu", "host", "excluded", "unknown", "comm"}


# -- a toy decoder, counted by hand --------------------------------------------------------------


class _Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.o_proj = (nn.Linear(8, 8, bias=False) for _ in range(3))

    def forward(self, x):
        return self.o_proj(torch.cat([self.q_proj(x), self.k_proj(x)], -1)[..., :8])


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)

    def forward(self, x):
        return self.down(torch.sigmoid(self.up(x)))


class _Layer(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.self_attn, self.mlp, self.layer_idx = _Attn(), _MLP(), index

    def forward(self, x):
        return self.mlp(self.self_attn(x))


class Toy(nn.Module):
    """embedding (GatherV2, TBE) -> 2 x [attn: q, k (MatMul), cat, slice (TBE), o; mlp: up, sigmoid (TBE),
    down] -> head. 18 kernels, 11 of them Ascend C MatMuls."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.layers = nn.ModuleList([_Layer(0), _Layer(1)])
        self.head = nn.Linear(8, 8, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def _export(model, inputs, **kwargs):
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return torch.export.export(model, tuple(inputs), strict=False, **kwargs)


@functools.cache
def toy() -> tuple:
    torch.manual_seed(0)
    model = Toy().eval()
    return model, _export(model, (torch.tensor([[3]]),))


def _pieces(plan):
    return [(s.label, [p.members for p in s.pieces]) for s in plan.scopes]


def test_toy_auto_scopes_every_run_of_matmuls_between_cuts():
    plan = plan_superkernel(toy()[1], strategy="auto", rules=[])
    assert _pieces(plan) == [
        ("layer_0_attn", [("linear", "linear_1")]),  # q, k | cat
        ("layer_0", [("linear_2", "linear_3")]),  # slice | o, up | sigmoid
        ("layers_0_1", [("linear_4", "linear_5", "linear_6")]),  # down, next layer's q, k
        ("layer_1", [("linear_7", "linear_8")]),
        ("layer_1_head", [("linear_9", "linear_10")]),  # down, head
    ]
    bounds = [[(c.where, c.nodes[0], c.kind) for c in s.cuts] for s in plan.scopes]
    assert bounds[0] == [("before", "embedding", "tbe"), ("after", "cat", "tbe")]
    assert bounds[2] == [("before", "sigmoid", "tbe"), ("after", "cat_1", "tbe")]
    assert bounds[4] == [("before", "sigmoid_1", "tbe")]
    assert (plan.kernels_before, plan.launches_after, plan.launches_saved) == (18, 12, 6)
    assert plan.to_dict()["totals"]["time_saved_us"] == pytest.approx(6 * A3_LAUNCH_US)


def test_toy_templates_are_the_modules_and_ge_splits_them_at_the_cuts():
    program = toy()[1]
    attention = plan_superkernel(program, strategy="attention", rules=[])
    assert [(s.label, s.module, s.start, s.end) for s in attention.scopes] == [
        ("layer_0_attn", "layers.0.self_attn", "linear", "linear_2"),
        ("layer_1_attn", "layers.1.self_attn", "linear_5", "linear_7")]
    assert _pieces(attention) == [("layer_0_attn", [("linear", "linear_1")]), ("layer_1_attn", [("linear_5", "linear_6")])]
    assert [(c.nodes[0], c.splits) for c in attention.scopes[0].cuts] == [("cat", True), ("slice_1", True)]
    layer = plan_superkernel(program, strategy="layer", rules=[])
    assert _pieces(layer) == [("layer_0", [("linear", "linear_1"), ("linear_2", "linear_3")]),
                              ("layer_1", [("linear_5", "linear_6"), ("linear_7", "linear_8")])]
    everything = plan_superkernel(program, strategy="all-layers", rules=[])
    assert [(s.label, s.module, s.start, s.end) for s in everything.scopes] == [
        ("layers_0_1", "layers", "linear", "linear_9")]
    assert [len(p.members) for p in everything.scopes[0].pieces] == [2, 2, 3, 2]
    assert (everything.launches_after, layer.launches_after, attention.launches_after) == (13, 14, 16)
    assert plan_superkernel(program, strategy="moe", rules=[]).scopes == ()


def test_user_op_table_changes_the_plan(tmp_path):
    table = tmp_path / "optable.yaml"
    table.write_text("ge_ops:\n  Sigmoid: {kind: ascendc, source: measured on our A3, confidence: S}\n")
    plan = plan_superkernel(toy()[1], strategy="auto", rules=[], optable=table)
    assert ("linear_2", "linear_3", "sigmoid", "linear_4", "linear_5", "linear_6") in \
        [p.members for s in plan.scopes for p in s.pieces]


def test_dynamic_shapes_disable_superkernel():
    dim = torch.export.Dim("tokens", min=2, max=64)
    program = _export(Toy().eval(), (torch.tensor([[3, 4]]),), dynamic_shapes={"ids": {1: dim}})
    auto = plan_superkernel(program, strategy="auto", rules=[])
    assert auto.scopes == () and "dynamic shapes" in auto.disabled and auto.launches_saved == 0
    layer = plan_superkernel(program, strategy="layer", rules=[])
    assert len(layer.scopes) == 2 and all(not s.pieces for s in layer.scopes) and layer.launches_saved == 0


# -- hand-built graphs: collectives and streams ----------------------------------------------------


def _graph(build) -> torch.fx.GraphModule:
    """An ATen graph built node by node; `mm(a)` adds a MatMul named mm, mm_1, ..."""
    graph = torch.fx.Graph()
    x, w = graph.placeholder("x"), graph.placeholder("w")
    count = iter(range(100))

    def mm(a):
        k = next(count)
        return graph.create_node("call_function", torch.ops.aten.mm.default, (a, w), name=f"mm_{k}" if k else "mm")

    graph.output(build(graph, x, mm))
    return torch.fx.GraphModule(nn.Module(), graph)


def test_collectives_join_only_on_the_aiv_path():
    def build(graph, x, mm):
        reduced = graph.create_node("call_function", torch.ops._c10d_functional.all_reduce.default,
                                    (mm(mm(x)), "sum", "0"), name="all_reduce")
        waited = graph.call_function(torch.ops._c10d_functional.wait_tensor.default, (reduced,))
        return mm(mm(waited))

    gm = _graph(build)
    plain = plan_superkernel(gm, rules=[])
    assert _pieces(plain) == [("model_part1", [("mm", "mm_1")]), ("model_part2", [("mm_2", "mm_3")])]
    assert plain.scopes[0].cuts[-1].nodes == ("all_reduce",) and "AIV" in plain.scopes[0].cuts[-1].reason
    aiv = plan_superkernel(gm, rules=[], hccl_aiv=True)
    assert _pieces(aiv) == [("model", [("mm", "mm_1", "all_reduce", "mm_2", "mm_3")])]
    # Without shape metadata the rule matcher cannot run: the plan says so and goes on.
    assert any("fusion patterns not searched" in w for w in plan_superkernel(gm).warnings)
    # A scope over the whole model has no call site in the model's own source.
    text = make_patch(gm, aiv)
    assert "# note: scope model covers the whole model" in text and text.endswith("# nothing to patch\n")


def _two_streams(graph, x, mm):
    b = mm(mm(x))
    graph.call_function(torch.ops.air.scope_enter.default, (["_user_stream_label"], ["s1"]))
    d = mm(mm(x))
    graph.call_function(torch.ops.air.scope_exit.default, ())
    return graph.call_function(torch.ops.aten.add.Tensor, (mm(mm(b)), d))


def test_streams_split_scopes_unless_stream_fusion():
    from autofuse.superkernel.air_ops import ensure_air_ops

    ensure_air_ops()
    gm = _graph(_two_streams)
    plain = plan_superkernel(gm, rules=[])
    assert [p.members for s in plain.scopes for p in s.pieces] == [("mm", "mm_1"), ("mm_2", "mm_3"), ("mm_4", "mm_5")]
    assert [p.streams for s in plain.scopes for p in s.pieces] == [("",), ("s1",), ("",)]
    assert "stream-fusion=1" in plain.scopes[0].cuts[-1].reason
    fused = plan_superkernel(gm, rules=[], options="stream-fusion=1")
    assert [(p.kernels, p.streams) for s in fused.scopes for p in s.pieces] == [(6, ("", "s1"))]
    # One scope over all six kernels: on the main stream mm, mm_1, mm_4, mm_5 are contiguous (the
    # s1 kernels run on another stream), so GE builds one SuperKernel per stream without stream fusion.
    view = build_view(gm)
    units = build_units(view, [], load_optable())
    whole = [(view.by_name["mm"].index, view.by_name["mm_5"].index)]
    per_stream = predict(view, units, whole, stream_fusion=False, hccl_aiv=False)
    assert sorted(p.members for p in per_stream.pieces[0]) == [("mm", "mm_1", "mm_4", "mm_5"), ("mm_2", "mm_3")]
    assert (per_stream.kernels_before, per_stream.launches_after) == (7, 3)  # six MatMuls and the Add


def test_a_graph_with_superkernel_scopes_is_refused():
    gm = _graph(lambda graph, x, mm: mm(mm(x)))
    plan = plan_superkernel(gm, rules=[])
    insert_scopes(gm, plan)
    with pytest.raises(InputError, match="already has a super_kernel scope"):
        plan_superkernel(gm, rules=[])


# -- the tiny HF decode steps, node by node against an oracle ----------------------------------------


@functools.cache
def analysis(arch: str):
    return analyze(torch_models.export_decode_step(arch))


@functools.cache
def hf_plan(arch: str, strategy: str):
    return plan_superkernel(strategy=strategy, analysis=analysis(arch))


@functools.cache
def _table() -> dict:
    return yaml.safe_load(OPTABLE_PATH.read_text())


def oracle_kinds(program) -> dict[str, str]:
    """The kind of every FX call node, straight from optable.yaml: its target's GE op, none for
    views and for nodes that read only weights (frozen) or nothing, unknown when not listed."""
    table = _table()
    sig = program.graph_signature
    constant = set(sig.inputs_to_parameters) | set(sig.inputs_to_buffers) | set(sig.inputs_to_lifted_tensor_constants)
    kinds = {}
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        if all(i.name in constant for i in node.all_input_nodes):
            constant.add(node.name)
            kinds[node.name] = "none"
            continue
        if node.target is operator.getitem:
            kinds[node.name] = "none"
            continue
        namespace, name, overload = str(node.target).split(".")
        keys = [f"{namespace}.{name}.{overload}", f"{namespace}.{name}", f"{namespace}.{name.rstrip('_')}"]
        key = next((k for k in keys if k in table["fx"]), None)
        ge = table["fx"][key] if key else "?"
        kinds[node.name] = "unknown" if key is None else "none" if ge is None else table["ge_ops"][ge]["kind"]
    return kinds


def _positions(program) -> dict[str, int]:
    return {n.name: i for i, n in enumerate(n for n in program.graph.nodes if n.op == "call_function")}


@pytest.mark.parametrize("arch", torch_models.ARCHES)
def test_hf_superkernels_hold_only_ascend_c_and_split_only_at_unfusible_ops(arch):
    program = torch_models.export_decode_step(arch)
    kinds, position = oracle_kinds(program), _positions(program)
    names = list(position)
    for strategy in STRATEGIES:
        plan = hf_plan(arch, strategy)
        fused = {m: p["op"] for p in plan.patterns for m in p["members"]}
        for scope in plan.scopes:
            for piece in scope.pieces:
                for member in piece.members:
                    kind = _table()["ge_ops"][fused[member]]["kind"] if member in fused else kinds[member]
                    assert kind == "ascendc", (arch, strategy, scope.label, member, kind)
            for left, right in itertools.pairwise(scope.pieces):
                between = names[position[left.members[-1]] + 1:position[right.members[0]]]
                assert any(kinds[n] in CUT_KINDS and n not in fused for n in between), (arch, strategy, scope.label)
            for cut in scope.cuts:  # an op that cuts is unfusible, or a pattern a boundary splits
                if cut.kind != "pattern" and "runs between" not in cut.reason:
                    assert kinds[cut.nodes[0]] in CUT_KINDS or cut.nodes[0] in fused, (arch, strategy, cut)


@pytest.mark.parametrize("arch", torch_models.ARCHES)
def test_hf_auto_scopes_are_maximal_and_never_split_a_pattern(arch):
    program = torch_models.export_decode_step(arch)
    kinds, position = oracle_kinds(program), _positions(program)
    plan = hf_plan(arch, "auto")
    assert plan.scopes, arch
    patterns = [p["members"] for p in plan.patterns]
    fused = {m: p["op"] for p in plan.patterns for m in p["members"]}
    owner = {}
    for scope in plan.scopes:
        inside = set(scope.members)
        for members in patterns:
            assert len(inside & set(members)) in (0, len(members)), (arch, scope.label, members)
        for piece in scope.pieces:
            owner.update(dict.fromkeys(piece.members, scope.label))
        assert len(scope.pieces) == 1 and scope.pieces[0].kernels >= 2
    # Joining kernels in execution order (a fusion pattern at its last node); two of them with no
    # unfusible op in between must be in the same scope.
    last_of = {p[-1]: p for p in patterns}
    sequence = []
    for name in position:
        if name in fused and name not in last_of:
            continue
        kind = _table()["ge_ops"][fused[name]]["kind"] if name in fused else kinds[name]
        if kind != "none":
            sequence.append((name, kind))
    for (a, kind_a), (b, kind_b) in itertools.pairwise(sequence):
        if kind_a == kind_b == "ascendc":
            assert owner.get(a) is not None and owner.get(a) == owner.get(b), (arch, a, b)


@pytest.mark.parametrize("arch", torch_models.ARCHES)
def test_hf_templates_are_the_modules_they_name(arch):
    program = torch_models.export_decode_step(arch)
    calls = [n for n in program.graph.nodes if n.op == "call_function"]

    def in_module(node, pattern):
        stack = node.meta.get("nn_module_stack") or {}
        return any(re.search(pattern, str(path)) for path, _ in stack.values())

    layers = sorted({int(m.group(1)) for n in calls for path, _ in (n.meta.get("nn_module_stack") or {}).values()
                     if (m := re.search(r"model\.layers\.(\d+)$", str(path)))})
    assert layers == list(range(torch_models.LAYERS))
    layer_plan = hf_plan(arch, "layer")
    for i, scope in zip(layers, layer_plan.scopes, strict=True):
        expected = [n.name for n in calls if in_module(n, rf"layers\.{i}$")]
        assert scope.label == f"layer_{i}" and list(scope.members) == expected
    everything = hf_plan(arch, "all-layers")
    [scope] = everything.scopes
    first = next(k for k, n in enumerate(calls) if in_module(n, r"layers\.\d+$"))
    last = max(k for k, n in enumerate(calls) if in_module(n, r"layers\.\d+$"))
    assert scope.label == f"layers_0_{layers[-1]}" and list(scope.members) == [n.name for n in calls[first:last + 1]]
    attention = hf_plan(arch, "attention")
    for i, scope in zip(layers, attention.scopes, strict=True):
        assert scope.label == f"layer_{i}_attn" and scope.module.endswith(f"layers.{i}.self_attn")
        assert set(scope.members) == {n.name for n in calls if in_module(n, rf"layers\.{i}\.self_attn$")}
    moe = hf_plan(arch, "moe")
    moe_layers = [i for i in layers if arch in torch_models.MOE_ARCHES and not (arch == "deepseek_v3" and i == 0)]
    assert [s.label for s in moe.scopes] == [f"layer_{i}_moe" for i in moe_layers]
    for i, scope in zip(moe_layers, moe.scopes):
        assert set(scope.members) == {n.name for n in calls if in_module(n, rf"layers\.{i}\.mlp$")}
    if not moe_layers:
        assert "no MoE blocks" in moe.warnings[-1]


def test_hf_template_boundaries_that_split_a_fusion_pattern_are_reported():
    # Llama: the residual Add of layer 0 and the input RMSNorm of layer 1 are one AddRmsNorm; the
    # layer scopes cut between them, so GE cannot fuse it.
    plan = hf_plan("llama", "layer")
    split = [c for c in plan.scopes[1].cuts if c.kind == "pattern"]
    assert split and split[0].op == "AddRmsNorm" and "splits fusion pattern add_rms_norm" in split[0].reason
    assert plan.launches_saved < hf_plan("llama", "auto").launches_saved


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hf_fx_pass_pairs_enter_and_exit_around_the_planned_nodes(strategy):
    plan = hf_plan("qwen2", strategy)
    gm = torch_models.export_decode_step("qwen2").module()
    insert_scopes(gm, plan)
    depth, seen = 0, []
    for node in gm.graph.nodes:
        if node.target == torch.ops.air.scope_enter.default:
            assert depth == 0 and node.args[0] == ["_super_kernel_scope", "_super_kernel_options"]
            depth += 1
            seen.append(node.args[1][0])
        elif node.target == torch.ops.air.scope_exit.default:
            assert depth == 1
            depth -= 1
    assert depth == 0 and seen == [s.label for s in plan.scopes]
    assert [(label, members) for label, _, members in scopes_in(gm)] == \
        [(s.label, list(s.members)) for s in plan.scopes]
    assert plan.to_dict()["gate"] == {"expression": "enable and not is_prefill", "decode_only": True}


# -- gating, and the FX pass under torch.compile ------------------------------------------------------


def test_the_pass_runs_in_decode_steps_only(monkeypatch):
    model = toy()[0]
    decode = _export(model, (torch.tensor([[3]]),)).module()
    prefill = _export(model, (torch.tensor([[3, 4, 5]]),)).module()

    def count(gm):
        return sum(1 for n in gm.graph.nodes if n.target == torch.ops.air.scope_enter.default)

    assert count(SuperKernelPass()(prefill, None, None)) == 0
    assert count(SuperKernelPass(enable=False)(decode, None, None)) == 0
    assert count(SuperKernelPass(is_prefill=lambda gm, inputs: True)(decode, None, None)) == 0
    monkeypatch.setenv("AUTOFUSE_SUPERKERNEL", "0")
    assert count(SuperKernelPass()(decode, None, None)) == 0
    monkeypatch.delenv("AUTOFUSE_SUPERKERNEL")
    applied = SuperKernelPass("auto", "feed-sync-all=1")
    assert count(applied(decode, None, None)) == 5 and applied.last_plan.options == "feed-sync-all=1"
    with pytest.raises(InputError, match="did you mean 'stream-fusion'"):
        SuperKernelPass("auto", "stream-funsion=1")


def _compiled_graph(gm, inputs):
    from torch._dynamo.backends.common import aot_autograd

    received = []

    def record(graph, example_inputs):
        received.append(graph)
        return graph.forward

    torch._dynamo.reset()
    compiled = torch.compile(gm, backend=aot_autograd(fw_compiler=record), dynamic=False, fullgraph=True)
    with torch.no_grad():
        compiled(*inputs)
    assert len(received) == 1
    return received[0]


_MATMULS = ("aten.linear", "aten.mm", "aten.addmm", "aten.bmm", "aten.matmul")


def _matmuls(graph, names) -> int:
    targets = {n.name: str(n.target) for n in graph.graph.nodes}
    return sum(1 for n in names if targets[n].startswith(_MATMULS))


@pytest.mark.parametrize("which", ["toy", "llama"])
def test_compiled_fx_pass_output_keeps_every_scope_node(which):
    if which == "toy":
        gm, inputs = toy()[1].module(), (torch.tensor([[3]]),)
    else:
        gm, inputs = torch_models.export_decode_step("llama").module(), torch_models.build("llama")[1]
    expected = torch.cat([o.flatten() for o in _flat(gm(*inputs))])
    SuperKernelPass("auto", "stream-fusion=1")(gm, inputs, None)
    planned = scopes_in(gm)
    graph = _compiled_graph(gm, inputs)
    received = scopes_in(graph)  # raises if an enter lost its exit
    assert [(label, options) for label, options, _ in received] == [(label, options) for label, options, _ in planned]
    assert all(options == "stream-fusion=1" for _, options, _ in received)
    assert [_matmuls(graph, m) for _, _, m in received] == [_matmuls(gm, m) for _, _, m in planned]
    enters = [n for n in graph.graph.nodes if n.target == torch.ops.air.scope_enter.default]
    exits = [n for n in graph.graph.nodes if n.target == torch.ops.air.scope_exit.default]
    assert len(enters) == len(exits) == len(planned) > 0
    with torch.no_grad():
        assert torch.equal(torch.cat([o.flatten() for o in _flat(gm(*inputs))]), expected)


def test_the_pass_inside_torch_compile_plans_the_post_grad_graph():
    # Where torchair runs it: on the graph AOT autograd hands the backend, whose weights are inputs
    # (AOT lists them as static inputs) and whose Linear is a weight transpose and a matmul.
    from torch._dynamo.backends.common import aot_autograd

    model, program = toy()
    sk = SuperKernelPass("auto")

    def backend(gm, example_inputs):
        return sk(gm, example_inputs, None).forward

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=aot_autograd(fw_compiler=backend), dynamic=False, fullgraph=True)
    with torch.no_grad():
        assert torch.equal(compiled(torch.tensor([[3]])), model(torch.tensor([[3]])))
    exported = plan_superkernel(program, strategy="auto")
    assert [s.label for s in sk.last_plan.scopes] == [s.label for s in exported.scopes]
    assert (sk.last_plan.kernels_before, sk.last_plan.launches_after) == (exported.kernels_before, exported.launches_after)


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


# -- apply() and the source patch ---------------------------------------------------------------------


@functools.cache
def plain_llama():
    """Analysis of Llama's decode step exported without functionalization: the graph that a model
    carrying scope ops exports to (run_decompositions rejects ops that return None)."""
    model, inputs = torch_models.build("llama")
    return analyze(_export(model, inputs))


def _scopes_after(model, inputs):
    return [(label, options, set(members)) for label, options, members in scopes_in(_export(model, inputs).graph_module)]


def test_apply_without_torchair_says_so():
    with pytest.raises(TorchairUnavailable, match="needs torchair"):
        apply(toy()[0], plan_superkernel(toy()[1], strategy="layer", rules=[]))


@pytest.mark.parametrize("strategy", ["attention", "layer", "all-layers"])
def test_apply_wraps_the_planned_modules(strategy):
    result = plain_llama()
    plan = plan_superkernel(strategy=strategy, options="feed-sync-all=1", analysis=result)
    model, inputs = torch_models.build("llama")
    handle = apply(model, plan, scope_factory=super_kernel)
    got = _scopes_after(model, inputs)
    if strategy == "all-layers":  # each layer wrapped with the one label: GE sees one scope
        assert [g[0] for g in got] == ["layers_0_1", "layers_0_1"]
        assert set().union(*(g[2] for g in got)) == set(plan.scopes[0].members)
    else:
        assert got == [(s.label, "feed-sync-all=1", set(s.members)) for s in plan.scopes]
    handle.remove()
    assert _scopes_after(model, inputs) == []


def test_apply_is_gated_to_decode_steps():
    calls = []

    def recording(label, options):
        calls.append(label)
        return super_kernel(label, options)

    model = Toy().eval()
    apply(model, plan_superkernel(toy()[1], strategy="attention", rules=[]), scope_factory=recording)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))
        assert calls == []
        model(torch.tensor([[1]]))
    assert calls == ["layer_0_attn", "layer_1_attn"]


def _decorated(forward, calls):
    """A forward wrapped the way transformers' decorators and accelerate's hooks wrap one: a
    function that records the call and runs `forward`, with its name and signature."""

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        calls.append(forward)
        return forward(*args, **kwargs)

    return wrapper


def test_apply_wraps_forwards_that_something_else_already_wraps():
    """An instance forward set by someone else (accelerate's hooks, a hub kernel's `kernelize`) and
    a class forward behind a decorator: the scope opens around them, they still run, the signature
    is kept, and remove() gives each module back the forward it had (the hook stays)."""
    model = Toy().eval()
    program = toy()[1]
    plan = plan_superkernel(program, strategy="attention", rules=[])
    calls = []
    hook = _decorated(model.layers[0].self_attn.forward, calls)  # instance forward, as accelerate sets it
    model.layers[0].self_attn.forward = hook
    decorated_class = type("DecoratedAttn", (type(model.layers[1].self_attn),), {})
    decorated_class.forward = _decorated(type(model.layers[1].self_attn).forward, calls)
    model.layers[1].self_attn.__class__ = decorated_class
    want = [(s.label, "", set(s.members)) for s in plan.scopes]

    handle = apply(model, plan, scope_factory=super_kernel)
    assert _scopes_after(model, (torch.tensor([[3]]),)) == want
    assert len(calls) == 2  # both wrapped forwards ran inside their scopes
    assert inspect.signature(model.layers[0].self_attn.forward) == inspect.signature(hook)
    with pytest.raises(InputError, match="already has the SuperKernel scope 'layer_0_attn'"):
        apply(model, plan, scope_factory=super_kernel)
    handle.remove()
    assert model.layers[0].self_attn.forward is hook and "forward" not in model.layers[1].self_attn.__dict__
    assert _scopes_after(model, (torch.tensor([[3]]),)) == []


def test_apply_reaches_the_modules_of_a_compiled_model():
    """`torch.compile(model)` wraps the model; apply() wraps the modules it compiles, and the scope
    ops are in the graph dynamo hands the backend (torchair's), in the planned places."""
    model = Toy().eval()
    plan = plan_superkernel(toy()[1], strategy="attention", rules=[])
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    handle = apply(compiled, plan, scope_factory=super_kernel)
    assert [path for _, path, _ in handle.wrapped] == ["layers.0.self_attn", "layers.1.self_attn"]
    with torch.no_grad():
        assert torch.equal(compiled(torch.tensor([[3]])), model(torch.tensor([[3]])))
    assert [label for label, _, _ in scopes_in(graphs[-1])] == [s.label for s in plan.scopes]


def _patched_scopes(model, inputs, text: str, tmp_path: Path):
    """What a user does with the patch: apply it to copies of the model's source files, load them,
    build the model from the patched classes (weights copied from `model`, which is a DecodeStep
    around a transformers LM) and export it, with torchair's ops defined locally. The patched
    model must compute what the original computes."""
    import importlib

    import transformers

    root = Path(transformers.__file__).parent.parent
    files = re.findall(r"^--- a/(\S+)", text, re.MULTILINE)
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text((root / relative).read_text())
    done = subprocess.run(["patch", "-p1"], input=text, text=True, cwd=tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    fake = types.ModuleType("torchair")
    fake.scope = types.SimpleNamespace(super_kernel=super_kernel)
    saved = sys.modules.get("torchair")
    sys.modules["torchair"] = fake
    try:
        patched = {}
        for relative in files:
            name = relative[:-3].replace("/", ".")
            original = importlib.import_module(name)
            module = types.ModuleType(name)  # the real name, not registered: classes look like the originals
            module.__package__, module.__file__ = original.__package__, str(tmp_path / relative)
            source = compile((tmp_path / relative).read_text(), module.__file__, "exec")
            exec(source, module.__dict__)  # noqa: S102 - loading the patched copy of the model's source
            patched[name] = module
        lm = model.lm
        fresh = getattr(patched[type(lm).__module__], type(lm).__name__)(lm.config).eval().requires_grad_(False)
        fresh.load_state_dict(lm.state_dict())
        rebuilt = type(model)(fresh).eval()
        classes = {type(m) for m in rebuilt.modules() if type(m).__module__ in patched}
        assert classes and all(c is getattr(patched[c.__module__], c.__name__) for c in classes)
        with torch.no_grad():
            for want, got in zip(_flat(model(*inputs)), _flat(rebuilt(*inputs))):
                assert torch.equal(want, got)
        return _scopes_after(rebuilt, inputs)
    finally:
        sys.modules.pop("torchair")
        if saved is not None:
            sys.modules["torchair"] = saved


@pytest.mark.parametrize("strategy", ["attention", "all-layers", "auto"])
def test_patched_source_places_the_planned_scopes(strategy, tmp_path):
    result = plain_llama()
    plan = plan_superkernel(strategy=strategy, analysis=result)
    model, inputs = torch_models.build("llama")
    text = make_patch(model, plan)
    assert text.startswith("# autofuse superkernel") and "_autofuse_super_kernel(" in text
    got = _patched_scopes(model, inputs, text, tmp_path)
    if strategy == "auto":  # module granularity: the runs reach across layers, so all layers
        assert "# note: " in text and [g[0] for g in got] == ["layers_0_1"]
        members = set(plan_superkernel(strategy="all-layers", analysis=result).scopes[0].members)
        assert got[0][2] == members
    else:
        assert got == [(s.label, "", set(s.members)) for s in plan.scopes]


def test_patch_for_moe_labels_only_the_moe_layers(tmp_path):
    model, inputs = torch_models.build("deepseek_v3")
    program = _export(model, inputs)
    plan = plan_superkernel(program, strategy="moe", rules=[])
    text = make_patch(model, plan)
    assert "{1: 'layer_1_moe'}.get(self.self_attn.layer_idx)" in text
    assert [(label, members) for label, _, members in _patched_scopes(model, inputs, text, tmp_path)] == \
        [("layer_1_moe", set(plan.scopes[0].members))]


def test_report_names_scopes_cuts_savings_and_the_a3_procedure():
    plan = hf_plan("llama", "layer")
    text = render_report(plan, source="llama")
    for scope in plan.scopes:
        assert f"### `{scope.label}`" in text
    assert "splits fusion pattern add_rms_norm" in text and "| inside | `transpose` | Transpose | tbe | yes |" in text
    assert f"{plan.kernels_before} -> {plan.launches_after} launches" in text
    assert "## Measuring it on an Atlas A3 machine" in text and "This cannot run here" in text
    assert "post_grad_custom_post_pass = SuperKernelPass('layer', '')" in text
