"""The code generator without the emulator: strided views, what gets generated for which group,
the custom-operator project, and the command-line switches."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from graphs import model
from kernel_cases import LIBRARY

from autofuse import fuse
from autofuse.candidates.rules.examples import example_model
from autofuse.cli import main
from autofuse.codegen import views
from autofuse.codegen.views import View

DEMO = Path(__file__).resolve().parent.parent / "examples" / "tiny_llama.onnx"
RMS = next(r for r in LIBRARY if r.name == "rms_norm").examples_match[0]


# -- strided views ----------------------------------------------------------------------------------


def test_reshape_splits_and_merges_contiguous_axes():
    base = View.contiguous("x", (2, 6, 4))
    split = views.reshape(base, (2, 6, 2, 2))
    assert split.strides == (24, 4, 2, 1)
    assert views.reshape(split, (12, 4)).strides == (4, 1)
    assert views.reshape(base, (5, 5)) is None  # another size


def test_a_transpose_that_separates_axes_cannot_be_merged_back():
    heads = views.transpose(views.reshape(View.contiguous("q", (1, 128, 64)), (1, 128, 4, 16)), (0, 2, 1, 3))
    assert heads.shape == (1, 4, 128, 16) and heads.strides[1:] == (16, 64, 1)
    assert views.reshape(heads, (1, 4, 2048)) is None  # rows of 16 come from 128 places
    assert views.reshape(heads, (4, 128, 16)).strides == (16, 64, 1)


def test_expand_and_slice_and_broadcast():
    cos = View.contiguous("cos", (1, 1, 128, 16))
    wide = views.expand(cos, (1, 4, 128, 16))
    assert wide.strides == (0, 0, 16, 1)
    assert views.expand(cos, (1, 4, 64, 16)) is None
    half = views.slice_axis(wide, 3, 8, 16)
    assert half.shape[-1] == 8 and half.offset == 8
    assert views.broadcast_shape((1, 128, 1), (64,)) == (1, 128, 64)
    assert views.broadcast_shape((3,), (4,)) is None
    assert views.is_contiguous(views.reshape(View.contiguous("x", (128, 64)), (1, 128, 64)))
    assert not views.is_contiguous(views.transpose(View.contiguous("x", (4, 8)), (1, 0)))


# -- what is generated ------------------------------------------------------------------------------


def test_the_api_generates_kernels_when_asked():
    assert fuse(example_model(RMS), opt_level=3).kernels is None
    assert fuse(example_model(RMS), opt_level=2, kernels=True).kernels is not None
    assert fuse(example_model(RMS), opt_level=1, verify_kernels=True).kernel_checks


def test_random_graphs_never_crash_the_generator():
    """The random DAGs of the property test, lowered at level 3: every group gets a kernel or
    a reason, never a generator error (which raises GeneratorError)."""
    import random_graphs as rg
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=rg.random_models())
    def check(case):
        result = fuse(case.model, opt_level=3, kernels=True)
        for group in result.report["groups"]:
            kernel = group["kernel"]
            assert kernel["generated"] or kernel.get("reason") or kernel.get("call_through") or kernel.get("host")

    check()


def test_a_comparison_of_two_numbers_is_computed_by_the_scalar_unit():
    """Found by the random graphs: a full reduction to a scalar, doubled, cast to bool. Both sides of
    the Cast's comparison with zero are numbers, not tiles or rows."""
    m = model("""
    g (float[N] x) => (bool y) <int64[1] axis = {0}> {
      s = ReduceSum <keepdims = 0> (x, axis)
      d = Add (s, s)
      y = Cast <to = 9> (d)
    }""")
    result = fuse(m, opt_level=3, verify_kernels=True)
    (group,) = result.report["groups"]
    assert group["kernel"]["compiled"] and group["kernel"]["verified"], group["kernel"]


def test_report_says_call_through_host_and_source():
    result = fuse(str(DEMO), opt_level=3, kernels=True)
    kinds = {}
    for group in result.report["groups"]:
        kernel = group["kernel"]
        for key in ("source", "compiled", "verified", "max_abs_error", "gm_bytes_measured", "gm_bytes_predicted"):
            assert key in kernel
        assert kernel["compiled"] is None and kernel["verified"] is None  # not checked without --verify-kernels
        assert kernel["gm_bytes_predicted"] == group["hbm_bytes_after"]
        if group["kind"] == "shape":
            kinds["host"] = kernel
        elif group["rule"] and group["rule"].startswith("attention"):
            kinds["call"] = kernel
        else:
            kinds.setdefault("source", kernel)
    assert kinds["host"]["host"] is True and kinds["host"]["source"] is None
    assert kinds["call"]["call_through"] == "FlashAttentionScore" and kinds["call"]["source"] is None
    assert kinds["source"]["source"].startswith("kernels/") and kinds["source"]["generated"] is True


def test_repeated_layers_share_one_project():
    result = fuse(str(DEMO), opt_level=3, kernels=True)
    by_source: dict[str, list[str]] = {}
    for group in result.report["groups"]:
        if group["kernel"].get("source"):
            by_source.setdefault(group["kernel"]["source"], []).append(group["id"])
    shared = [ids for ids in by_source.values() if len(ids) > 1]
    assert shared, "the two decoder layers should share their kernels"
    for ids in shared:
        owner, *others = ids
        assert all(result.kernels[g].same_as == owner for g in others)


def _stack(layers: int):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.synthetic import make_stack

    return make_stack(layers)


def _without_comments(text: str) -> str:
    return "\n".join(line.split("//")[0].rstrip() for line in text.splitlines())


@pytest.mark.parametrize("source,target", [("demo", "ascend910b"), ("stack", "ascend910b"), ("stack", "ascend310p")])
def test_a_repeated_group_gets_the_kernel_it_would_get_on_its_own(source, target, monkeypatch):
    """The generator lowers each distinct group structure once and renames it for the repeats
    (codegen/reuse.py). Every group must come out as lowering it alone gives: the same GM
    arguments (ONNX names included), node lists, refusal reasons, and the same kernel text."""
    from autofuse.api import load_rule_set
    from autofuse.codegen import generate
    from autofuse.codegen.emit import harness_source, project_files
    from autofuse.codegen.generate import generate_kernels
    from autofuse.cost.hardware import load_profile
    from autofuse.cost.model import bind_dims
    from autofuse.frontends.onnx import concrete_shapes

    lowered = []
    real = generate.lower_group
    monkeypatch.setattr(generate, "lower_group", lambda ctx, group: lowered.append(group.id) or real(ctx, group))
    model = str(DEMO) if source == "demo" else _stack(4)
    result = fuse(model, opt_level=3, target=target, kernels=True)
    lowered_with_reuse = len(lowered)
    hw = load_profile(target)
    bound = bind_dims(result.loaded.graph, None)
    alone = generate_kernels(result.loaded.graph, result.plan, hw, bound, concrete_shapes(result.loaded, bound),
                             load_rule_set(), reuse_lowering=False,
                             shapes_at=functools.partial(concrete_shapes, result.loaded))
    repeats = 0
    assert alone.keys() == result.kernels.keys()
    for gid, mine in result.kernels.items():
        ref = alone[gid]
        assert (mine.program is None) == (ref.program is None), gid
        assert mine.record == ref.record, gid
        assert mine.same_as == ref.same_as and mine.files == ref.files, gid
        if ref.program is None:
            continue
        repeats += mine.same_as is not None
        a, b = mine.program, ref.program
        assert (a.inputs, a.outputs, a.workspace, a.nodes, a.group_id) == (b.inputs, b.outputs, b.workspace, b.nodes,
                                                                             b.group_id), gid
        assert [p.nodes for p in a.parts] == [p.nodes for p in b.parts], gid
        assert [(m.a, m.b, m.node) for m in a.matmuls] == [(m.a, m.b, m.node) for m in b.matmuls], gid
        for x, y in ((project_files(a, hw), project_files(b, hw)), ({0: harness_source(a, hw)}, {0: harness_source(b, hw)})):
            assert {k: _without_comments(v) for k, v in x.items()} == {k: _without_comments(v) for k, v in y.items()}, gid
    assert repeats >= 4, "the layers should repeat kernels"
    assert lowered_with_reuse <= len(result.plan.groups) - repeats, "a repeated group should not be lowered again"


def test_groups_that_differ_only_in_a_constant_they_bake_in_get_their_own_kernels():
    """Two chains with the same structure whose scale is a different one-number constant: the
    number is a literal in the kernel, so the second chain must not reuse the first's lowering."""
    m = model("""
    g (float[64,128] x, float[64,128] y) => (float[64,128] a, float[64,128] b)
      <float[1] c1 = {2.0}, float[1] c2 = {3.0}> {
      t1 = Mul (x, c1)
      u1 = Tanh (t1)
      a = Relu (u1)
      t2 = Mul (y, c2)
      u2 = Tanh (t2)
      b = Relu (u2)
    }""")
    result = fuse(m, opt_level=3, verify_kernels=True)
    groups = result.report["groups"]
    assert len(groups) == 2
    assert all(g["kernel"]["verified"] for g in groups), [g["kernel"] for g in groups]
    assert result.kernels[groups[1]["id"]].same_as is None


@pytest.mark.parametrize("dtype,scale", [("float32", "Mul (x, c)"), ("float16", "Div (x, c)")])
def test_a_scalar_scale_on_the_matmul_operand_is_applied_to_the_result(dtype, scale):
    """Found by the fp16 TorchScript BERT: GELU's final `* 0.5` joins the next MatMul as a
    prologue (the planner allows a scalar scale there); the cube reads the unscaled activation
    and the vector unit scales the result."""
    from kernel_cases import retyped

    m = model(f"""
    g (float[64,96] x, float[96,80] w, float[80] b) => (float[64,80] y) <float[1] c = {{{"0.5" if "Mul" in scale else "4.0"}}}> {{
      s = {scale}
      t = MatMul (s, w)
      y = Add (t, b)
    }}""")
    m = retyped(m, dtype) if dtype != "float32" else m
    result = fuse(m, opt_level=3, verify_kernels=True)
    (group,) = result.report["groups"]
    assert group["kind"] == "matmul_epilogue" and len(group["members"]) == 3
    kernel = group["kernel"]
    assert kernel["compiled"] and kernel["verified"], kernel
    assert result.kernel_checks[group["id"]].bytes_within_tolerance, kernel
    program = result.kernels[group["id"]].program
    assert program.matmuls[0].a.onnx == "x"  # the cube reads x itself


# Small inputs kept whole in UB (residents) whose rows do not fill whole 32-byte blocks in their own
# dtype. Found with the corpus at batch 6, sequence 100: position ids times a stride (6 int64
# numbers) and a boolean mask row of 100 bytes.
RESIDENTS = {
    "int64-rows-of-one": """g (int64[6,1,1,1] a, int64[1,1,1,100] b) => (int64[6,1,1,100] y) <int64[1] k = {3}> {
      t = Mul (a, k)
      y = Add (b, t)
    }""",
    "bool-rows-of-100": """g (float[6,4,100] x, bool[6,1,100] m) => (float[6,4,100] y) <float z = {0.0}> {
      t = Where (m, x, z)
      y = Relu (t)
    }""",
    "fp16-rows-of-100": """g (float16[6,4,100] x, float16[6,1,100] s) => (float16[6,4,100] y) {
      t = Mul (x, s)
      y = Relu (t)
    }""",
}


@pytest.mark.parametrize("target", ["ascend910b", "ascend310p"])
@pytest.mark.parametrize("case", sorted(RESIDENTS))
def test_resident_rows_narrower_than_their_blocks_load_right(target, case):
    result = fuse(model(RESIDENTS[case]), opt_level=3, target=target, verify_kernels=True)
    (group,) = result.report["groups"]
    assert group["kernel"]["verified"], group["kernel"]
    assert result.kernel_checks[group["id"]].bytes_within_tolerance, group["kernel"]
    (part,) = result.kernels[group["id"]].program.parts
    assert part.residents, "the case should keep its small input resident"


def test_the_generated_kernel_takes_the_cost_models_tile():
    result = fuse(example_model(RMS), opt_level=1, kernels=True, dims={"B": 3, "S": 1000})
    (group,) = result.report["groups"]
    kernel = result.kernels[group["id"]]
    tiling = kernel.files[f"op_host/{kernel.program.kernel_name}_tiling_func.h"]
    # The tiling function runs the cost model's rule (cost/tiling.py WalkRule) with its numbers.
    rule = kernel.program.tile.rule
    assert f"constexpr uint64_t kUnit = {group['tile']['row_len']};" in tiling and rule.unit == 8
    assert f"constexpr uint64_t kMaxUnitsPerTile = {group['tile']['max_units_per_tile']};" in tiling
    assert f"constexpr uint64_t kIoBytes = {rule.io_bytes};" in tiling
    assert kernel.program.symbols.names == ("B", "S") and kernel.program.symbols.model_dims == ("B", "S")
    source = kernel.files[f"op_kernel/{kernel.program.kernel_name}.cpp"]
    assert f"up to {group['tile']['max_units_per_tile']} rows of 8 per tile" in source
    assert "InitBuffer(q_x, 2," in source  # double-buffered: the tile is not single-buffered


def test_310p_kernels_use_no_datacopypad():
    result = fuse(example_model(RMS), opt_level=1, kernels=True, target="ascend310p")
    kernel = next(k for k in result.kernels.values() if k.program)
    source = kernel.files[f"op_kernel/{kernel.program.kernel_name}.cpp"]
    assert "DataCopyPad(" not in source and "SetValue(r * width + i" in source
    a2 = next(k for k in fuse(example_model(RMS), opt_level=1, kernels=True).kernels.values() if k.program)
    assert "DataCopyPad(" in a2.files[f"op_kernel/{a2.program.kernel_name}.cpp"]


def test_unsupported_groups_say_why(monkeypatch):
    """An op the generator has no lowering for (Sign): the planner asks the generator first and
    refuses the group with the generator's reason; a group formed all the same (here: the
    question switched off) gets no kernel, and the report says why instead of a source path."""
    from graphs import planner_alone

    text = """g (float[4, 64] x) => (float[4, 64] y) {
  e = Exp (x)
  y = Sign (e)
}"""
    result = fuse(example_model(text), opt_level=3, kernels=True)
    assert not result.report["groups"]
    (refusal,) = [r for r in result.report["rejected"] if r["reason"] == "no_kernel_for_group"]
    assert "Sign" in refusal["detail"] and "has no vector lowering" in refusal["detail"]
    planner_alone(monkeypatch)
    result = fuse(example_model(text), opt_level=3, kernels=True)
    kernels = [g["kernel"] for g in result.report["groups"]]
    assert kernels and all(k["generated"] is False and k["reason"] and k["source"] is None for k in kernels)


# -- the project ------------------------------------------------------------------------------------


def test_project_layout_and_host_files(tmp_path):
    out = tmp_path / "out"
    assert main(["--input", str(DEMO), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    entry = next(g for g in report["groups"] if g["rule"] == "rms_norm")
    project = out / entry["kernel"]["project"]
    name = Path(entry["kernel"]["source"]).stem
    opdef = (project / "op_host" / f"{name}.cpp").read_text()
    assert f'AddConfig("{report["target"]}")' in opdef and "ge::DT_FLOAT" in opdef
    assert "SetInferShape" in opdef and "SetTiling(optiling::TilingFunc)" in opdef
    assert f"{name}_tiling::ComputeTiling" in opdef
    description = json.loads((project / f"{name}.json").read_text())
    assert description[0]["op"] == entry["kernel"]["op_type"]
    assert [d["type"] for d in description[0]["input_desc"]] == [["float"], ["float"]]
    build = (project / "build.sh").read_text()
    assert "NEEDS CANN" in build and "msopgen gen" in build
    assert (project / "build.sh").stat().st_mode & 0o111


def test_emit_none_writes_no_kernels(tmp_path):
    out = tmp_path / "out"
    assert main(["--input", str(DEMO), "--emit", "none", "-o", str(out)]) == 0
    assert not (out / "kernels").exists()
    report = json.loads((out / "report.json").read_text())
    assert all("kernel" not in g for g in report["groups"])


@pytest.mark.parametrize("flag", [["--emit", "kernels"], []])
def test_level_two_emits_only_when_asked(tmp_path, flag):
    out = tmp_path / "out"
    assert main(["--input", str(DEMO), "--opt-level", "2", *flag, "-o", str(out)]) == 0
    assert (out / "kernels").exists() == bool(flag)


def test_compiled_templates_are_cached_and_a_broken_cache_only_costs_time(tmp_path, monkeypatch):
    """The templates are compiled once into the cache directory and read back on later runs; a
    cache that cannot be written (its path runs through a file) or holds garbage changes nothing
    in what is generated."""
    from autofuse.codegen import emit

    def files(cache: Path) -> dict:
        monkeypatch.setenv("AUTOFUSE_CACHE_DIR", str(cache))
        emit._environment.cache_clear()
        try:
            kernels = fuse(DEMO, opt_level=3, kernels=True).kernels
        finally:
            emit._environment.cache_clear()
        return {(k, path): text for k, kernel in kernels.items() for path, text in kernel.files.items()}

    cache = tmp_path / "cache"
    fresh = files(cache)
    entries = sorted((cache / "templates").rglob("*.cache"))
    assert fresh and len(entries) >= 5  # kernel families, helpers and host files
    written = {e: e.stat().st_mtime_ns for e in entries}
    assert files(cache) == fresh
    assert {e: e.stat().st_mtime_ns for e in entries} == written  # read back, not compiled and written again
    for entry in entries:
        entry.write_bytes(b"not a compiled template")
    assert files(cache) == fresh
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert files(blocker / "cache") == fresh
    assert not (blocker / "cache").exists()
