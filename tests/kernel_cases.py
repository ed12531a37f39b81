"""Models for the kernel tests: every rule's own example graphs, in each dtype the rule takes.

An fp32 example is turned into fp16 or bf16 by retyping every float tensor (inputs, outputs,
initializers, Constant nodes, Cast targets), which is what the same block looks like in a model
exported in that precision. A conversion that onnx's checker rejects is left out; the tests
require at least one example of every rule in every dtype it declares.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from autofuse.api import load_rule_set
from autofuse.candidates.rules.examples import example_model

LIBRARY = load_rule_set()
DTYPES = {"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16,
          "bfloat16": onnx.TensorProto.BFLOAT16}


def retyped(model: onnx.ModelProto, dtype: str) -> onnx.ModelProto | None:
    """`model` with every float32 tensor in `dtype`, or None when that is not a valid model."""
    target = DTYPES[dtype]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            info.type.tensor_type.elem_type = target
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == onnx.TensorProto.FLOAT:
            graph.initializer[index].CopyFrom(_cast_tensor(tensor, target))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                attr.i = target
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == onnx.TensorProto.FLOAT:
                attr.t.CopyFrom(_cast_tensor(attr.t, target))
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception:  # noqa: BLE001 - not every example has a valid retyped form
        return None
    return out


def _cast_tensor(tensor: onnx.TensorProto, target: int) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    if target == onnx.TensorProto.FLOAT16:
        with np.errstate(over="ignore"):  # -3.4e38 mask fillers become -inf, as in an fp16 export
            return numpy_helper.from_array(array.astype(np.float16), tensor.name)
    return onnx.helper.make_tensor(tensor.name, target, array.shape, array.astype(np.float32).reshape(-1).tolist())


def rule_dtypes(rule) -> list[str]:
    """The float dtypes the rule's first input may have (all three when it does not say)."""
    first = rule.where.get(rule.inputs[0]) if rule.inputs else None
    allowed = first.dtypes if first is not None and first.dtypes else tuple(DTYPES)
    return [d for d in DTYPES if d in allowed]


def rule_cases() -> list[tuple[str, int, str]]:
    """(rule, example number, dtype) for every example of every rule, in every dtype it takes."""
    cases = []
    for rule in LIBRARY:
        for number in range(1, len(rule.examples_match) + 1):
            for dtype in rule_dtypes(rule):
                cases.append((rule.name, number, dtype))
    return cases


def rule_model(name: str, number: int, dtype: str) -> onnx.ModelProto | None:
    rule = next(r for r in LIBRARY if r.name == name)
    model = example_model(rule.examples_match[number - 1])
    floats = {i.type.tensor_type.elem_type for i in model.graph.input} & set(DTYPES.values())
    if DTYPES[dtype] in floats:
        return model  # written in this dtype
    if floats == {onnx.TensorProto.FLOAT}:
        return retyped(model, dtype)
    return None  # written in another half precision: not retyped


# A softmax over rows as long as a symbolic dim: its kernel stays one of the bound shapes (the UB
# tile would grow with the row).
SOFTMAX_OVER_SEQUENCE = """g (float[B, S, S] x) => (float[B, S, S] y) <int64[1] ax = {-1}> {
  m = ReduceMax (x, ax)
  d = Sub (x, m)
  e = Exp (d)
  s = ReduceSum (e, ax)
  y = Div (e, s)
}"""
