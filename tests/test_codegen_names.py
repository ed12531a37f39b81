"""The C++ identifier and comment sanitizer, and a model whose names try to break the generated source."""
from __future__ import annotations

import re

import onnx
import pytest
from onnx import TensorProto, helper

from autofuse import fuse
from autofuse.codegen.names import (
    Namer,
    camel_case,
    comment_text,
    identifier,
    snake_case,
)

HOSTILE = [
    'x"; system("rm -rf /"); //',
    "a */ int evil; /* b",
    "line\nbreak\r\nend",
    "ends with a backslash \\",
    "class",
    "int",
    "1st_input",
    "größe_é_中文",
    "",
    "__reserved",
    "_Upper",
    "a" * 300,
    "??/ trigraph",
]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = {"class", "int", "float", "for", "while", "return", "template", "namespace", "half"}


@pytest.mark.parametrize("text", HOSTILE)
def test_identifiers_are_valid_unreserved_cpp(text):
    name = identifier(text)
    assert _IDENT.match(name), name
    assert name not in _KEYWORDS
    assert "__" not in name and not re.match(r"_[A-Z]", name)  # reserved to the implementation
    assert len(name) <= 48


def test_identifiers_with_a_prefix_and_camel_snake_forms():
    assert identifier("1st input", "in_") == "in_1st_input"
    assert identifier("class") == "class_"
    assert camel_case("RmsNorm_2") == "RmsNorm2"
    assert camel_case("9lives") == "Op9lives"
    assert snake_case("AutofuseRmsNorm2") == "autofuse_rms_norm2"
    assert snake_case("AutofuseMatMulGelu5") == "autofuse_mat_mul_gelu5"


def test_long_names_keep_a_distinguishing_hash():
    a, b = identifier("x" * 200 + "a"), identifier("x" * 200 + "b")
    assert a != b and len(a) <= 48


def test_collisions_are_disambiguated():
    namer = Namer(reserved=("workspace",))
    names = [namer.name(t) for t in ("a.b", "a-b", "a b", "a_b", "workspace")]
    assert names == ["a_b", "a_b_2", "a_b_3", "a_b_4", "workspace_2"]


@pytest.mark.parametrize("text", HOSTILE)
def test_comment_text_cannot_end_or_extend_a_comment(text):
    safe = comment_text(text)
    assert "\n" not in safe and "\r" not in safe
    assert "*/" not in safe and "/*" not in safe and "??" not in safe
    assert not safe.endswith("\\")
    assert all(32 <= ord(c) < 127 for c in safe)
    assert len(safe) <= 120


def _hostile_model() -> onnx.ModelProto:
    """RMSNorm-like and GELU-like groups whose every name is hostile."""
    names = {"x": HOSTILE[0], "w": HOSTILE[1], "sq": HOSTILE[2], "mean": "class", "v": "1st",
             "std": "größe", "r": "ends \\", "n": "int", "y": HOSTILE[3] + "out", "g": "a */ b"}
    f = TensorProto.FLOAT
    init = [helper.make_tensor("two", f, [], [2.0]), helper.make_tensor("eps", f, [], [1e-6]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [-1])]
    nodes = [
        helper.make_node("Pow", [names["x"], "two"], [names["sq"]], name='pow"; */'),
        helper.make_node("ReduceMean", [names["sq"], "axes"], [names["mean"]], name="reduce\nmean"),
        helper.make_node("Add", [names["mean"], "eps"], [names["v"]], name="class"),
        helper.make_node("Sqrt", [names["v"]], [names["std"]], name=""),
        helper.make_node("Reciprocal", [names["std"]], [names["r"]], name="größe"),
        helper.make_node("Mul", [names["x"], names["r"]], [names["n"]], name="int"),
        helper.make_node("Mul", [names["n"], names["w"]], [names["y"]], name="??/"),
        helper.make_node("Relu", [names["y"]], [names["g"]], name="relu \\"),
    ]
    graph = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info(names["x"], f, [24, 64]),
                                                 helper.make_tensor_value_info(names["w"], f, [64])],
                              [helper.make_tensor_value_info(names["g"], f, [24, 64])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_hostile_names_make_valid_kernels_that_verify():
    result = fuse(_hostile_model(), opt_level=3, verify_kernels=True)
    kernels = [k for k in result.kernels.values() if k.program is not None]
    assert kernels, "no kernel was generated"
    for kernel in kernels:
        for path, text in kernel.files.items():
            assert "*/" not in text and "\\\n" not in text, path
            if not path.endswith((".cpp", ".h")):
                continue
            for line in text.splitlines():
                code = line.split("//", 1)[0]
                assert all(ord(c) < 128 for c in code), line
                for literal in re.findall(r'"([^"]*)"', code):  # includes, OpDef names, SoC names
                    assert re.fullmatch(r"[\w./-]*", literal), line
    checks = result.kernel_checks
    assert checks and all(c.compiled and c.verified for c in checks.values()), checks
