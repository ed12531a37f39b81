"""The tile rule is one definition spelled twice: cost/tiling.py WalkRule (what the cost model
prices) and the generated tiling function (what the kernel runs with). The generated C++ is
compiled and run at many sizes of the symbolic dims, far beyond the bound ones; at every size
its cores, tile counts, tiles and tails are those WalkRule gives, and it rejects shapes that do
not follow the dims."""
from __future__ import annotations

import math
import subprocess

import pytest
from kernel_cases import SOFTMAX_OVER_SEQUENCE

from autofuse import fuse
from autofuse.candidates.rules.examples import example_model
from autofuse.cost.hardware import load_profile
from autofuse.emulator import build

CASES = {
    # rows walk of a row kernel (fp32)
    "rms_norm": """g (float[B, S, 64] x, float[64] w) => (float[B, S, 64] y)
      <float eps = {1e-6}, float two = {2.0}, int64[1] ax = {-1}> {
      p = Pow (x, two)
      m = ReduceMean (p, ax)
      e = Add (m, eps)
      r = Sqrt (e)
      n = Div (x, r)
      y = Mul (n, w)
    }""",
    # flat walk (fp16 in and out)
    "silu_fp16": """g (float16[B, S, 96] x, float16[B, S, 96] u) => (float16[B, S, 96] y) {
      s = Sigmoid (x)
      a = Mul (x, s)
      y = Mul (a, u)
    }""",
    # an elementwise kernel walked in rows (a bias broadcast along them, kept whole in UB)
    "row_broadcast": """g (float[B, S, 48] x, float[48] b) => (float[B, S, 48] y) {
      m = Add (x, b)
      y = Relu (m)
    }""",
    # one row longer than the Unified Buffer holds: a split row, rows dynamic
    "split_row": """g (float[B, 65536] x) => (float[B, 65536] y) <int64[1] ax = {-1}> {
      m = ReduceMax (x, ax)
      d = Sub (x, m)
      y = Exp (d)
    }""",
}

# Sizes of B (and S) far apart: one row, tails, a few rows per core, many tiles per core.
SIZES = [(1, 1), (1, 7), (3, 37), (2, 129), (5, 1000), (16, 4096), (64, 8191), (1, 1 << 20)]
TARGETS = ("ascend910b", "ascend310p")


def _generic_kernel(text: str, target: str):
    result = fuse(example_model(text), opt_level=3, target=target, use_library=False, kernels=True, dims={"B": 3})
    (group,) = result.plan.groups
    kernel = result.kernels[group.id]
    program = kernel.program
    assert program is not None, kernel.record
    assert program.symbols is not None, program.static_reason
    return kernel, program


def _driver(program, rows: list[list[int]], aiv: int, aic: int) -> str:
    symbols = program.symbols
    n_in, n_out = len(program.inputs), len(program.outputs)
    width = len(symbols.names) + n_in + n_out
    table = ",\n".join("    {" + ", ".join(f"{v}ULL" for v in row) + "}" for row in rows)
    parts = "".join(
        f'        std::printf(" %u %u %u", td.part{p.index}PerTile, td.part{p.index}Tiles, td.part{p.index}LastTile);\n'
        if p.walk != "split_row" else
        f'        std::printf(" 0 %u %u", td.part{p.index}Tiles, td.part{p.index}LastTile);\n'
        for p in program.parts)
    return f"""#include <cstdio>
#include "{program.kernel_name}_tiling_func.h"
static const unsigned long long kCases[][{width}] = {{
{table}
}};
int main()
{{
    for (const auto& c : kCases) {{
        uint64_t v[{width}];
        for (int i = 0; i < {width}; ++i) v[i] = c[i];
        {program.op_name}TilingData td{{}};
        const uint32_t block = {program.kernel_name}_tiling::ComputeTiling(v, {len(symbols.names)},
            v + {len(symbols.names)}, {n_in}, v + {len(symbols.names) + n_in}, {n_out}, {aiv}, {aic}, td);
        std::printf("%u %u", block, block ? td.usedCores : 0);
        if (block) {{
{parts}        }}
        std::printf("\\n");
    }}
    return 0;
}}
"""


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_tiling_function_runs_the_cost_models_rule(case, target, tmp_path):
    kernel, program = _generic_kernel(CASES[case], target)
    hw = load_profile(target)
    symbols, rule = program.symbols, program.tile.rule
    bindings = [dict(zip(symbols.model_dims, size)) for size in SIZES]
    n_args = len(program.inputs) + len(program.outputs)
    rows = [symbols.kernel_dims(dims) + [math.prod(symbols.shape_at(i, dims)) for i in range(n_args)]
            for dims in bindings]
    # shapes that do not follow the dims: an input one row short, and a dim of 0
    wrong = list(rows[3])
    wrong[len(symbols.names)] -= program.parts[0].width or 1
    zero = [0] * len(symbols.names) + [0] * (len(rows[0]) - len(symbols.names))
    for relative, text in kernel.files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    driver = tmp_path / "driver.cpp"
    driver.write_text(_driver(program, rows + [wrong, zero], hw.aiv_cores, hw.aic_cores))
    exe = build([driver], hw, include_dirs=[tmp_path / "op_host", tmp_path / "op_kernel"], cache_dir=tmp_path / "cache",
                name="driver")
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
    for dims, line in zip(bindings, lines):
        got = [int(x) for x in line.split()]
        space = math.prod(symbols.shape_at(symbols.space_arg, dims))
        per_tile, tiles, cores = rule.counts(space, hw.aiv_cores)
        assert got[:2] == [cores, cores], (case, dims, line)
        (part,) = program.parts
        total = rule.units(space)
        if part.walk == "split_row":
            assert got[2:] == [0, total, 1], (case, dims, line)
            assert tiles == total
            continue
        per = max(1, min(per_tile * part.scale[0] // part.scale[1], total))
        count = -(-total // per)
        assert got[2:] == [per, count, total - (count - 1) * per], (case, dims, line)
        assert per <= part.per_tile  # within what the buffers were sized for
        if part.scale == (1, 1):
            assert count == tiles
    assert lines[len(bindings)].split() == ["0", "0"], "a shape one row short must be rejected"
    assert lines[len(bindings) + 1].split() == ["0", "0"], "a dim of 0 must be rejected"


def test_the_rule_at_the_bound_sizes_is_the_priced_tile():
    """At the sizes the plan was priced at, WalkRule gives the tile in the report."""
    for case, text in CASES.items():
        result = fuse(example_model(text), opt_level=3, use_library=False, dims={"B": 5})
        (entry,) = result.report["groups"]
        (group,) = result.plan.groups
        tile = group.cost.tile
        per_tile, tiles, cores = tile.rule.counts(tile.space, load_profile("ascend910b").aiv_cores)
        assert cores == entry["tile"]["cores"], case
        if tile.scheme == "split_row":
            assert entry["tile"]["tiles"] == tiles * -(-tile.row_len // tile.elements), case
        else:
            assert (per_tile, tiles) == (entry["tile"].get("rows_per_tile") or entry["tile"]["elements_per_tile"],
                                         entry["tile"]["tiles"]), case
            assert entry["tile"]["max_units_per_tile"] >= per_tile, case


def test_a_static_kernels_tiling_accepts_only_its_shapes(tmp_path):
    """A kernel generated for the bound shapes (a softmax over rows as long as the sequence)
    takes no dims, and its tiling function accepts those shapes and refuses any other."""
    result = fuse(example_model(SOFTMAX_OVER_SEQUENCE), opt_level=3, use_library=False, kernels=True,
                  dims={"B": 2, "S": 24})
    (group,) = result.plan.groups
    kernel = result.kernels[group.id]
    program = kernel.program
    assert program.symbols is None and "row length" in program.static_reason
    for relative, source in kernel.files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    hw = load_profile("ascend910b")
    bound, other = 2 * 24 * 24, 2 * 25 * 25
    driver = tmp_path / "driver.cpp"
    driver.write_text(f"""#include <cstdio>
#include "{program.kernel_name}_tiling_func.h"
int main()
{{
    const unsigned long long sizes[] = {{{bound}ULL, {other}ULL}};
    for (unsigned long long n : sizes) {{
        uint64_t in[1] = {{n}}, out[1] = {{n}};
        {program.op_name}TilingData td{{}};
        std::printf("%u\\n", {program.kernel_name}_tiling::ComputeTiling(nullptr, 0, in, 1, out, 1,
                                                                     {hw.aiv_cores}, {hw.aic_cores}, td));
    }}
    return 0;
}}
""")
    exe = build([driver], hw, include_dirs=[tmp_path / "op_host", tmp_path / "op_kernel"], cache_dir=tmp_path / "cache",
                name="driver")
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60)
    accepted, refused = run.stdout.split()
    assert int(accepted) == group.cost.tile.cores and int(refused) == 0
