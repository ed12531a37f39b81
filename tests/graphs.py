"""Tiny test graphs written in ONNX text syntax, and helpers to fuse and check them."""
from __future__ import annotations

import onnx
import onnx.parser

from autofuse import fuse
from autofuse.verify import verify_models

HEADER = '<ir_version: 8, opset_import: ["" : 17]>\n'


def model(text: str, header: str = HEADER) -> onnx.ModelProto:
    """Parse a model from ONNX text; the default header gives IR 8 / opset 17."""
    parsed = onnx.parser.parse_model(header + text)
    onnx.checker.check_model(parsed)
    return parsed


def fused(m: onnx.ModelProto, level: int = 3, **kwargs):
    """Fuse, check the rewritten model with onnx.checker and verify it in onnxruntime."""
    result = fuse(m, opt_level=level, **kwargs)
    onnx.checker.check_model(result.model)
    check = verify_models(m, result.model)
    assert check.ok, check.summary()
    return result


def planner_alone(monkeypatch) -> None:
    """Plan as if the code generator wrote a kernel for every group: what the planner alone
    decides. The product asks the generator first (codegen/gate.py) and refuses what it declines
    (`no_kernel_for_group`); `declined` shows that beside."""
    import autofuse.api
    monkeypatch.setattr(autofuse.api, "EmissionCheck", lambda *args, **kwargs: (lambda *candidate: None))


def declined(m: onnx.ModelProto, level: int, **kwargs) -> list[str]:
    """The details of the `no_kernel_for_group` refusals when the generator is asked."""
    result = fuse(m, opt_level=level, **kwargs)
    return [r["detail"] for r in result.report["rejected"] if r["reason"] == "no_kernel_for_group"]


def groups(result) -> list[list[str]]:
    return [g["members"] for g in result.report["groups"]]


def reasons(result) -> set[str]:
    return {r["reason"] for r in result.report["rejected"]}
