"""Each rule's own example graphs: every `match` example must match, no `near_miss` may."""
from __future__ import annotations

import onnx
import onnx.parser

from autofuse.candidates.rules.loader import Rule
from autofuse.candidates.rules.matcher import RuleIndex, find_matches
from autofuse.frontends.onnx import load_onnx

EXAMPLE_HEADER = '<ir_version: 8, opset_import: ["" : 18]>\n'


def example_model(text: str) -> onnx.ModelProto:
    """An example graph in ONNX text; the header (IR 8, opset 18) is added unless it has one."""
    source = text if text.lstrip().startswith("<") else EXAMPLE_HEADER + text
    model = onnx.parser.parse_model(source)
    onnx.checker.check_model(model, full_check=True)
    return model


def check_examples(rule: Rule) -> list[str]:
    """Problems with the rule's examples, one line each (empty when all behave as declared)."""
    problems = []
    index = RuleIndex([rule])
    for kind, texts in (("match", rule.examples_match), ("near_miss", rule.examples_near_miss)):
        for number, text in enumerate(texts, start=1):
            where = f"{rule.source}: rule '{rule.name}': {kind} example {number}"
            try:
                graph = load_onnx(example_model(text)).graph
            except Exception as exc:  # noqa: BLE001 - any parse/load problem is reported, not raised
                problems.append(f"{where}: does not load: {' '.join(str(exc).split())[:200]}")
                continue
            matches, misses = find_matches(graph, index, trace=True)
            if kind == "match" and not matches:
                why = f": {misses[0].reason} (in `{misses[0].step}`)" if misses else ""
                problems.append(f"{where}: does not match{why}")
            if kind == "near_miss" and matches:
                problems.append(f"{where}: matches, but it is declared a near miss")
    return problems
