"""Our shape evaluator against onnxruntime's actual output shapes, on the ONNX backend node cases.

For every backend node test case (``conformance_cases.py``) whose inputs are all tensors, the
evaluator (``autofuse.frontends.shape_eval.evaluate_shapes``) is run on the case's model with
nothing but the inputs' shapes and values (no ONNX shape inference), and onnxruntime runs the
same model with every node output exposed as a graph output. Every value both give a shape for
must agree. Where onnxruntime gives a shape and we give none, the node that produced the value is
listed when all of its inputs were sized (the op is where sizing stopped); a value that is
unsized only because an input was unsized is counted against that earlier op.

``python tests/shape_conformance.py [-k SUBSTR] [-v]`` prints the counts; the pytest view is
``tests/test_shape_conformance.py``.
"""
from __future__ import annotations

import argparse
import functools
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:  # tests/ as a package or as a rootdir-relative directory
    from . import conformance_cases as cc
except ImportError:
    import conformance_cases as cc  # type: ignore[no-redef]

# Outputs whose shape onnxruntime gives but our evaluator must not, by design: op -> (indices of
# the outputs that may stay unsized, why). The conformance test fails if sizing stops anywhere else.
DATA_DEPENDENT: dict[str, tuple[frozenset[int], str]] = {
    "NonZero": (frozenset({0}), "the number of non-zero elements is data"),
    "Unique": (frozenset({0, 1, 3}), "Y, indices and counts are as long as the number of distinct elements "
                                     "(data); inverse_indices is sized"),
    "NonMaxSuppression": (frozenset({0}), "the number of boxes kept depends on the boxes and scores (data)"),
    "Compress": (frozenset({0}), "the output length is the number of true elements of the condition (data)"),
    "StringSplit": (frozenset({0}), "Y's last dim is the most substrings in any element (data); Z is sized"),
    "StringNormalizer": (frozenset({0}), "with stop words, how many elements are removed is data"),
    "ImageDecoder": (frozenset({0}), "the image size is written in the encoded bytes (data)"),
}
# Not in the default-domain op table (the evaluator only reads ai.onnx ops): ONNX-ML and the
# preview / training domains.
OTHER_DOMAINS = ("ai.onnx.ml::", "ai.onnx.preview::", "ai.onnx.preview.training::")


# Input positions whose *values* an op's output shape depends on (pads, targets, repeats, ...).
# The second pass gives the evaluator the values of graph inputs read there only, so the rules
# that size outputs from shapes alone are checked even where the first pass computes values.
PARAMETERS: dict[str, frozenset[int]] = {op: frozenset(i) for op, i in {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1, 3}, "Resize": {1, 2, 3},
    "Upsample": {1}, "ConstantOfShape": {0}, "Range": {0, 1, 2}, "TopK": {1}, "Split": {1}, "OneHot": {1},
    "Squeeze": {1}, "Unsqueeze": {1}, "CenterCropPad": {1}, "Col2Im": {1, 2}, "AffineGrid": {1}, "DFT": {1, 2},
    "STFT": {1, 3}, "BlackmanWindow": {0}, "HammingWindow": {0}, "HannWindow": {0}, "MelWeightMatrix": {0, 1},
    "MaxUnpool": {2}, "SplitToSequence": {1}, "SequenceAt": {1}, "SequenceInsert": {2}, "SequenceErase": {1},
    "Loop": {0, 1}, "If": {0}, "ReduceSum": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1},
    "ReduceProd": {1}, "ReduceL1": {1}, "ReduceL2": {1}, "ReduceLogSum": {1}, "ReduceLogSumExp": {1},
    "ReduceSumSquare": {1},
}.items()}


def allowed(op: str, index: int) -> bool:
    """Whether sizing may stop at output `index` of `op` (data-dependent, or outside the op table)."""
    if op.startswith(OTHER_DOMAINS):
        return True
    return op in DATA_DEPENDENT and index in DATA_DEPENDENT[op][0]


@dataclass
class CaseShapes:
    name: str
    status: str  # "compared", "skipped: ..." (inputs not all tensors, ORT cannot run, not loadable)
    compared: int = 0  # values both sides give a shape for
    wrong: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (value, op, ours, reference)
    stopped_at: list[tuple[str, int, str]] = field(default_factory=list)  # (op, output index, value)
    downstream: int = 0  # values unsized because an input was unsized
    reference: str = "onnxruntime"  # or "expected outputs" where onnxruntime cannot run the model
    compared_shape_only: int = 0  # values sized in the second pass (parameter values only)
    ops_producing: set[str] = field(default_factory=set)  # ops whose outputs the reference shapes
    ops_sized: set[str] = field(default_factory=set)  # ... and those with an output we sized


def _is_tensor(v: Any) -> bool:
    return isinstance(v, (np.ndarray, np.generic))


def _feedable(case: cc.Case) -> list[Any] | None:
    """The case's inputs when each is a tensor or a sequence of tensors (not an empty optional)."""
    inputs = []
    for v in case.inputs:
        if _is_tensor(v):
            inputs.append(np.asarray(v))
        elif isinstance(v, list) and all(_is_tensor(e) for e in v):
            inputs.append([np.asarray(e) for e in v])
        else:
            return None
    return inputs


def _with_all_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    have = {o.name for o in exposed.graph.output} | {i.name for i in exposed.graph.input}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in have:
                have.add(out)
                exposed.graph.output.append(onnx.ValueInfoProto(name=out))
    return exposed


def ort_shapes(case: cc.Case, inputs: list[Any]) -> dict[str, tuple[int, ...]] | None:
    """Shape of every tensor value onnxruntime computes (node outputs and graph outputs), or
    None when it cannot run the model. Falls back to the graph outputs alone when exposing the
    intermediates does not load (untyped outputs of types numpy cannot hold, say)."""
    import onnxruntime as ort

    for model in (_with_all_outputs(case.model), case.model):
        names = [o.name for o in model.graph.output]
        try:
            if model is case.model:
                got = cc.run_ort(model, inputs)
            else:
                so = ort.SessionOptions()
                so.log_severity_level = 4
                so.intra_op_num_threads = so.inter_op_num_threads = 1
                sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
                feeds = dict(zip(cc.io_names(model)[0], inputs, strict=True))
                got = sess.run(names, feeds)
        except Exception:  # noqa: BLE001 - try the plain model, then give up
            continue
        shapes: dict[str, Any] = {}
        for n, v in zip(names, got):
            if isinstance(v, np.ndarray) or np.isscalar(v):
                shapes[n] = tuple(int(d) for d in np.shape(v))
            elif isinstance(v, list) and all(isinstance(e, np.ndarray) for e in v):
                shapes[n] = [tuple(e.shape) for e in v]  # a sequence: its elements' shapes
        return shapes
    return None


def expected_shapes(case: cc.Case) -> dict[str, tuple[int, ...]]:
    """Shapes of the case's expected graph outputs (tensors, and sequences as element shapes)."""
    names = [o.name for o in case.model.graph.output]
    shapes: dict[str, Any] = {}
    for n, v in zip(names, case.outputs):
        if _is_tensor(v):
            shapes[n] = tuple(int(d) for d in np.shape(v))
        elif isinstance(v, list) and all(_is_tensor(e) for e in v):
            shapes[n] = [tuple(np.shape(e)) for e in v]
    return shapes


def _parameter_inputs(model: onnx.ModelProto) -> set[str]:
    return {v for n in model.graph.node if n.domain in ("", "ai.onnx")
            for i, v in enumerate(n.input) if i in PARAMETERS.get(n.op_type, ())}


def our_shapes(case: cc.Case, inputs: list[Any], all_values: bool = True):
    """(graph, shapes) from our evaluator given only the inputs' shapes and values (and the
    element shapes of sequence inputs); with `all_values` false, only the values of inputs read
    as parameters (`PARAMETERS`)."""
    from autofuse.frontends.onnx import load_onnx
    from autofuse.frontends.shape_eval import evaluate

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = load_onnx(model).graph
    names = cc.io_names(case.model)[0]
    known = {v: graph.type_of(v).shape for v in graph.initializers if graph.type_of(v).is_static}
    tensors = {n: a for n, a in zip(names, inputs) if isinstance(a, np.ndarray)}
    known.update({n: tuple(a.shape) for n, a in tensors.items()})
    if not all_values:
        wanted = _parameter_inputs(case.model)
        tensors_with_values = {n: a for n, a in tensors.items() if n in wanted}
    else:
        tensors_with_values = tensors
    constants = {**graph.constant_values, **tensors_with_values}
    sequences = {n: [e.shape for e in a] for n, a in zip(names, inputs) if isinstance(a, list)}
    state = evaluate(graph, known, constants, sequences)
    ours: dict[str, Any] = dict(state.shapes)
    ours.update((name, list(shapes)) for name, shapes in state.sequences.items())
    return graph, ours


@functools.lru_cache(maxsize=None)
def check_case(name: str) -> CaseShapes:
    from autofuse.errors import InputError

    case = cc.cases_by_name()[name]
    inputs = _feedable(case)
    if inputs is None:
        return CaseShapes(name, "skipped: an input is an empty optional")
    actual = ort_shapes(case, inputs)
    reference = "onnxruntime"
    if actual is None:
        # onnxruntime lacks the op (or this version of it): the graph outputs the case expects,
        # computed by onnx's reference implementation, are compared instead.
        actual = expected_shapes(case)
        reference = "expected outputs"
        if not actual:
            return CaseShapes(name, "skipped: neither onnxruntime nor the case gives a tensor output")
    try:
        graph, ours = our_shapes(case, inputs)
    except InputError as exc:
        return CaseShapes(name, f"skipped: not loadable ({str(exc)[:80]})")
    result = CaseShapes(name, "compared", reference=reference)
    # Second pass: values of parameter inputs only. Fewer values may be sized; none may differ.
    _, shape_only = our_shapes(case, inputs, all_values=False)
    for value, shape in actual.items():
        if value in shape_only:
            result.compared_shape_only += 1
            if shape_only[value] != shape:
                node = producer_of(graph, value)
                result.wrong.append((value, f"{node.op_type if node else '<input>'} (parameter values only)",
                                     shape_only[value], shape))
    for value, shape in actual.items():
        node = producer_of(graph, value)
        op = node.op_type if node is not None else "<input>"
        if node is not None:
            result.ops_producing.add(node.key)
        if value in ours:
            result.compared += 1
            if node is not None:
                result.ops_sized.add(node.key)
            if ours[value] != shape:
                result.wrong.append((value, op, ours[value], shape))
        elif node is not None and all(v in ours for v in node.inputs if v):
            result.stopped_at.append((node.key, node.outputs.index(value), value))
        else:
            result.downstream += 1
    return result


def producer_of(graph, value: str):
    index = graph.producer.get(value)
    return None if index is None else graph.nodes[index]


def check_all(filter_: str | None = None) -> list[CaseShapes]:
    return [check_case(c.name) for c in cc.generate_cases() if filter_ is None or filter_ in c.name]


def summarize(results: list[CaseShapes]) -> dict[str, Any]:
    compared = [r for r in results if r.status == "compared"]
    stopped = Counter(op for r in compared for op, _, _ in r.stopped_at)
    return {
        "cases": len(results),
        "cases_compared": len(compared),
        "cases_compared_ort": sum(r.reference == "onnxruntime" for r in compared),
        "cases_skipped": Counter(r.status for r in results if r.status != "compared"),
        "values_compared": sum(r.compared for r in compared),
        "values_wrong": sum(len(r.wrong) for r in compared),
        "values_compared_shape_only": sum(r.compared_shape_only for r in compared),
        "cases_fully_sized": sum(not r.stopped_at and not r.downstream for r in compared),
        "stopped_at": stopped,  # op -> values where sizing stopped
        "stopped_cases": Counter(op for r in compared for op in {op for op, _, _ in r.stopped_at}),
        "stopped_not_allowed": [(r.name, op, i, v) for r in compared for op, i, v in r.stopped_at
                                if not allowed(op, i)],
        "downstream": sum(r.downstream for r in compared),
        "ops_compared": set().union(*(r.ops_producing for r in compared)),
        "ops_never_sized": set().union(*(r.ops_producing for r in compared)) - set().union(
            *(r.ops_sized for r in compared)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="filter", default=None, help="only cases whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every case where sizing stopped")
    args = ap.parse_args(argv)
    results = check_all(args.filter)
    s = summarize(results)
    print(f"cases {s['cases']}, compared {s['cases_compared']} ({s['cases_compared_ort']} against onnxruntime, "
          f"{s['cases_compared'] - s['cases_compared_ort']} against the expected outputs), "
          f"fully sized {s['cases_fully_sized']}")
    for status, n in sorted(s["cases_skipped"].items()):
        print(f"  {status}: {n}")
    print(f"values compared {s['values_compared']} (with parameter values only: "
          f"{s['values_compared_shape_only']}), wrong {s['values_wrong']}, "
          f"unsized downstream of an unsized value {s['downstream']}")
    for r in results:
        for value, op, mine, theirs in r.wrong:
            print(f"  WRONG {r.name}: {op} -> {value}: ours {mine}, {r.reference} {theirs}")
    print(f"default-domain ops compared: {sum(not op.startswith(OTHER_DOMAINS) for op in s['ops_compared'])}, "
          f"never sized: {sorted(s['ops_never_sized'])}")
    print("sizing stopped at (op: values, cases):")
    for op, n in sorted(s["stopped_at"].items()):
        why = DATA_DEPENDENT[op][1] if op in DATA_DEPENDENT else "outside the default domain" \
            if op.startswith(OTHER_DOMAINS) else ""
        print(f"  {op}: {n}, {s['stopped_cases'][op]}  ({why})")
    for case, op, index, value in s["stopped_not_allowed"]:
        print(f"  NOT ALLOWED {case}: {op} output {index} ({value})")
    if args.verbose:
        for r in results:
            if r.stopped_at:
                print(f"  {r.name}: " + ", ".join(f"{op}[{i}]({v})" for op, i, v in r.stopped_at))
    return 1 if s["values_wrong"] or s["stopped_not_allowed"] else 0


if __name__ == "__main__":
    sys.exit(main())
