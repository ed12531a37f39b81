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


def groups(result) -> list[list[str]]:
    return [g["members"] for g in result.report["groups"]]


def reasons(result) -> set[str]:
    return {r["reason"] for r in result.report["rejected"]}
