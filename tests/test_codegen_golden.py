"""Golden tests of generated Ascend C source: a template or lowering change shows up here as a
readable diff. Regenerate the expected files after an intended change with

    AUTOFUSE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_codegen_golden.py

and review the diff of tests/golden/ like any other change.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from kernel_cases import LIBRARY

from autofuse import fuse
from autofuse.candidates.rules.examples import example_model

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AUTOFUSE_UPDATE_GOLDEN") == "1"
DEMO = Path(__file__).resolve().parent.parent / "examples" / "tiny_llama.onnx"


def _rule_example(name: str, number: int = 1):
    rule = next(r for r in LIBRARY if r.name == name)
    return example_model(rule.examples_match[number - 1])


ATTENTION_SCORES = """g (float[B, 4, 8, 16] q, float[B, 4, 8, 16] k, float[B, 1, 8, 8] mask) => (float[B, 4, 8, 8] y)
  <float s = {0.25}> {
  kt = Transpose <perm = [0, 1, 3, 2]> (k)
  m = MatMul (q, kt)
  d = Div (m, s)
  y = Add (d, mask)
}"""

# (golden file, model, fuse options, group the source comes from)
CASES = {
    "rms_norm_ascend910b": (lambda: _rule_example("rms_norm"), {"opt_level": 1, "dims": {"B": 2, "S": 50}}, "g0"),
    "rms_norm_ascend310p": (lambda: _rule_example("rms_norm"),
                            {"opt_level": 1, "dims": {"B": 2, "S": 50}, "target": "ascend310p"}, "g0"),
    "gelu_erf_ascend910b": (lambda: _rule_example("gelu_erf"), {"opt_level": 1}, "g0"),
    "softmax_ascend910b": (lambda: _rule_example("softmax"), {"opt_level": 1, "dims": {"B": 1, "H": 2, "S": 40}}, "g0"),
    "matmul_bias_act_ascend910b": (lambda: _rule_example("matmul_bias_act"), {"opt_level": 3}, "g0"),
    # Attention scores when no rule matched: a batched MatMul over the transposed K, scaled and masked.
    "attention_scores_ascend910b": (lambda: example_model(ATTENTION_SCORES),
                                    {"opt_level": 3, "use_library": False, "dims": {"B": 2}}, "g0"),
    "demo_rotary_pair_ascend910b": (lambda: str(DEMO), {"opt_level": 3}, "RotaryMulPair"),
}


def _source(case: str) -> str:
    build, options, group = CASES[case]
    result = fuse(build(), kernels=True, **options)
    for entry in result.report["groups"]:
        if group in (entry["id"], entry["op_type"].rsplit("_", 1)[0]):
            kernel = result.kernels[entry["id"]]
            assert kernel.program is not None, entry["kernel"]
            return kernel.files[f"op_kernel/{kernel.program.kernel_name}.cpp"]
    raise AssertionError(f"{case}: no group {group} in {[g['op_type'] for g in result.report['groups']]}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_source_matches_golden(case):
    path = GOLDEN / f"{case}.cpp"
    source = _source(case)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with AUTOFUSE_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    if source != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), source.splitlines(keepends=True),
                                            f"golden/{case}.cpp", "generated", n=2))
        pytest.fail(f"generated source differs from tests/golden/{case}.cpp "
                    f"(AUTOFUSE_UPDATE_GOLDEN=1 regenerates it):\n{diff[:6000]}")


def test_golden_sources_carry_the_required_idioms():
    """The goldens themselves are checked for the Ascend C idioms the kernels must use."""
    for case in CASES:
        text = (GOLDEN / f"{case}.cpp").read_text(encoding="utf-8")
        assert 'extern "C" __global__ __aicore__ void' in text
        assert "TPipe pipe;" in text and "GET_TILING_DATA(td, tiling);" in text
        assert "GetBlockIdx()" in text and "td_.usedCores" in text
        assert "CopyIn0(" in text and "Compute0(" in text and "CopyOut0(" in text
        if "matmul" in case or "attention" in case:
            assert "KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);" in text and "REGIST_MATMUL_OBJ" in text
            assert "IterateAll(" in text and "SyncAll();" in text
        else:
            assert "KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);" in text
        assert ("DataCopyPad(" in text) == ("310p" not in case)
