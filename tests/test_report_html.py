"""report.html: well-formed, complete, escaped, bounded, and robust to missing cost-model keys."""
from __future__ import annotations

import copy
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from autofuse import fuse
from autofuse.planner.plan import FusionGroup, Plan
from autofuse.report import render_html
from autofuse.report.html import MAX_GRAPH_NODES, MAX_REFUSAL_EXAMPLES
from graphs import model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import layers_for_nodes, make_stack  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_llama.onnx"
NASTY = "a<b>&\"c'*/ \n--></script><script>alert(1)</script>\x01]]>"
COST_KEYS = ("est_time_us_before", "est_time_us_after", "launches_saved", "tile", "ub_bytes", "ub_capacity")
VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area", "base", "embed", "track", "param"}


class _StrictParser(HTMLParser):
    """Fails on unbalanced or misnested elements (outside SVG, whose self-closing tags it accepts)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_well_formed(page: str) -> list[ET.Element]:
    """Balanced HTML, and every inline SVG parses as XML. Returns the parsed SVGs."""
    parser = _StrictParser()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, parser.stack
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, re.S)]
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    return svgs


@pytest.fixture(scope="module")
def llama():
    return fuse(EXAMPLE)


def test_example_page_is_well_formed_and_names_every_group(llama):
    page = render_html(llama.report, llama.loaded.graph, llama.plan)
    svgs = check_well_formed(page)
    assert len(svgs) == 2  # the graph and the chart
    assert llama.report["groups"]
    for group in llama.report["groups"]:
        assert f">{group['id']}<" in page
    graph_svg = svgs[0]
    titles = {t.text for t in graph_svg.iter("{http://www.w3.org/2000/svg}title")}
    # every group that appears in the picture is boxed and labelled
    for group in llama.plan.groups:
        assert any(t.startswith(f"{group.id}: {group.op_type}") for t in titles)
    assert "All 187 nodes" in page
    for reason in llama.report["rejected_by_reason"]:
        assert f"<code>{reason}</code>" in page


def _nasty_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info(NASTY + "out", TensorProto.FLOAT, [4, 8])
    nodes = [
        helper.make_node("Add", ["x", "x"], [NASTY + "v1"], name=NASTY),
        helper.make_node("Relu", [NASTY + "v1"], [NASTY + "v2"], name=NASTY + "2"),
        helper.make_node("Exp", [NASTY + "v2"], [NASTY + "out"], name="plain"),
    ]
    graph = helper.make_graph(nodes, "g<&>", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_strings_from_the_model_are_escaped():
    result = fuse(_nasty_model())
    assert result.report["groups"], "the chain should fuse"
    report = copy.deepcopy(result.report)
    report["input"] = NASTY
    report["rejected"] = [{"members": [NASTY], "reason": NASTY, "detail": NASTY}]
    report["groups"][0]["tile"] = {NASTY: NASTY}
    page = render_html(report, result.loaded.graph, result.plan)
    svgs = check_well_formed(page)
    assert "<b>&" not in page and "<script>" not in page and "\x01" not in page
    assert "a&lt;b&gt;&amp;&quot;c&#x27;*/" in page
    # the escaped name survives a round trip through an XML parser (newline included)
    titles = [t.text for svg in svgs for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t and t.startswith(NASTY.replace("\x01", "\ufffd") + " (Add)") for t in titles)


def test_big_graphs_are_capped():
    result = fuse(make_stack(layers_for_nodes(1000)))
    assert len(result.loaded.graph.nodes) > 2 * MAX_GRAPH_NODES
    page = render_html(result.report, result.loaded.graph, result.plan)
    graph_svg = check_well_formed(page)[0]
    nodes = [g for g in graph_svg.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "")]
    assert len(nodes) == MAX_GRAPH_NODES
    assert f"first {MAX_GRAPH_NODES} of {len(result.loaded.graph.nodes):,} nodes" in page
    assert float(graph_svg.get("width")) < 12_000 and float(graph_svg.get("height")) < 14_000
    for group in result.report["groups"]:
        assert f">{group['id']}<" in page


def test_missing_cost_keys_fall_back(llama):
    report = copy.deepcopy(llama.report)
    report.pop("totals", None)
    for group in report["groups"]:
        for key in COST_KEYS:
            group.pop(key, None)
    page = render_html(report, llama.loaded.graph, llama.plan)
    check_well_formed(page)
    assert "estimated times not available" in page.lower()
    for group in report["groups"]:
        assert f">{group['id']}<" in page
    # known HBM bytes are charted instead; without them, kernel launches
    report["groups"][0]["hbm_bytes_before"], report["groups"][0]["hbm_bytes_after"] = 1000, 400
    assert "Showing HBM bytes" in render_html(report, llama.loaded.graph, llama.plan)
    for group in report["groups"]:
        group["hbm_bytes_before"] = group["hbm_bytes_after"] = None
    assert "showing kernel launches" in render_html(report, llama.loaded.graph, llama.plan)
    assert "showing kernel launches" in render_html(report)  # no graph, no plan
    # times null for some groups, and odd values, do not crash either
    report["groups"][0].update(est_time_us_before=None, est_time_us_after=3.0, tile="rows", ub_bytes=10,
                               ub_capacity=0)
    report["groups"][1].update(est_time_us_before=float("nan"), est_time_us_after="?")
    report["totals"] = {"est_time_us_before": None}
    check_well_formed(render_html(report, llama.loaded.graph, llama.plan))
    check_well_formed(render_html({}))


def test_refusals_are_summarised(llama):
    report = copy.deepcopy(llama.report)
    report["rejected"] = [{"members": [f"n{i}", f"m{i}"], "reason": "too_big" if i % 3 else "cycle",
                           "detail": f"detail {i}"} for i in range(3000)]
    page = render_html(report, llama.loaded.graph, llama.plan)
    check_well_formed(page)
    assert "Refused candidates: 3,000" in page
    assert ">2,000<" in page and ">1,000<" in page
    assert page.count("detail ") <= 2 * MAX_REFUSAL_EXAMPLES


def test_non_convex_group_is_drawn_without_a_box():
    m = model("""
    g (float[4] x) => (float[4] y) {
      a = Relu (x)
      b = Exp (a)
      y = Neg (b)
    }
    """)
    result = fuse(m, opt_level=0)
    bogus = FusionGroup("g0", "Fused<0>", "elementwise", None, (0, 2), ("x",), ("y",))
    plan = Plan(0, (bogus,), ())
    report = {"groups": [{"id": "g0", "op_type": "Fused<0>", "kind": "elementwise", "rule": None,
                          "members": ["a", "c"], "member_op_types": ["Relu", "Neg"]}], "rejected": []}
    page = render_html(report, result.loaded.graph, plan)
    check_well_formed(page)
    assert "by node colour only" in page and "Fused&lt;0&gt;" in page


def test_save_writes_report_html(llama, tmp_path):
    out = llama.save(tmp_path / "out")
    page = (out / "report.html").read_text(encoding="utf-8")
    check_well_formed(page)
    assert all(f">{g['id']}<" in page for g in llama.report["groups"])
