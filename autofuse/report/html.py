"""The report dictionary (+ the graph and plan) -> report.html: one self-contained page for people.

The page needs no network and no JavaScript: CSS and SVG are inline. It shows a summary, a picture of
the first part of the graph with every fused group boxed, a chart of estimated time (or HBM bytes,
or kernel launches, whatever the report has) per group before and after fusion, and tables.

Every string that comes from the model is escaped (`_e`); the SVG is well-formed XML.
"""
from __future__ import annotations

import heapq
import html
import math
import re
from dataclasses import dataclass, field

from autofuse.ir.graph import Graph
from autofuse.ops.table import NO_KERNEL_OPS, is_kernel
from autofuse.planner.plan import FusionGroup, Plan


class _Dag:
    """The few DAG operations the picture needs, on at most MAX_GRAPH_NODES nodes (networkx
    would cost 0.18 s of import in every run that writes a report)."""

    def __init__(self, nodes) -> None:
        self.preds: dict[int, dict[int, None]] = {n: {} for n in nodes}
        self.succs: dict[int, dict[int, None]] = {n: {} for n in nodes}

    def add_edge(self, a: int, b: int) -> None:
        self.succs[a][b] = None
        self.preds[b][a] = None

    def predecessors(self, n: int):
        return iter(self.preds[n])

    def successors(self, n: int):
        return iter(self.succs[n])

    def out_degree(self, n: int) -> int:
        return len(self.succs[n])

    def topological_order(self, key=None) -> list[int] | None:
        """Kahn's order, smallest `key` first among the ready nodes; None on a cycle."""
        key = key or (lambda n: n)
        waiting = {n: len(p) for n, p in self.preds.items()}
        ready = [(key(n), n) for n, k in waiting.items() if k == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, n = heapq.heappop(ready)
            order.append(n)
            for s in self.succs[n]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    heapq.heappush(ready, (key(s), s))
        return order if len(order) == len(self.preds) else None

    def generations(self) -> list[list[int]]:
        """Topological levels: sources first, each node one below its latest predecessor."""
        level: dict[int, int] = {}
        for n in self.topological_order():
            level[n] = max((level[p] + 1 for p in self.preds[n]), default=0)
        rows: list[list[int]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for n, row in level.items():
            rows[row].append(n)
        return rows

MAX_GRAPH_NODES = 250  # the picture shows at most this many nodes (the first in topological order)
MAX_CHART_GROUPS = 30
MAX_GROUP_ROWS = 1000
MAX_REFUSAL_EXAMPLES = 5

# Picture geometry (pixels). One column unit holds one node; one row is one topological level.
_COL = 96
_ROW = 50
_NODE_W, _NODE_H = 84, 22
_SMALL_W, _SMALL_H = 62, 16
_SMALL_UNITS = 0.72
_GAP = 0.14  # free space between neighbouring elements, in column units
_MARGIN = 16
_GROUP_TOP = 15  # room above a group's first row of nodes for its label
_GROUP_BOTTOM = 6
_CHAR_PX = 6.1  # width of one character at the label font size (approximation for layout)

_KIND_COLOURS = {
    "elementwise": ("#dbeafe", "#2563eb"),
    "norm": ("#dcfce7", "#16a34a"),
    "rotary": ("#fef3c7", "#d97706"),
    "attention": ("#fce7f3", "#db2777"),
    "matmul_epilogue": ("#ede9fe", "#7c3aed"),
    "softmax": ("#ffedd5", "#ea580c"),
    "reduction": ("#cffafe", "#0891b2"),
    "shape": ("#f1f5f9", "#64748b"),
}
_EXTRA_COLOURS = [("#fee2e2", "#dc2626"), ("#ecfccb", "#65a30d"), ("#e0e7ff", "#4f46e5"), ("#fae8ff", "#c026d3")]

_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def render_html(report: dict, graph: Graph | None = None, plan: Plan | None = None) -> str:
    """The whole page. `graph` and `plan` are optional: without them there is no picture."""
    title = f"autofuse report: {report.get('input', '?')}"
    groups = list(report.get("groups") or [])
    kinds = _kind_colours(groups)
    body = [
        _header(report),
        _graph_section(report, graph, plan, kinds),
        _chart_section(report, graph, plan, kinds),
        _groups_section(groups, kinds),
        _refusals_section(report.get("rejected") or []),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + f"\n<footer>autofuse {_e(report.get('autofuse_version', ''))}. "
        "Full data in report.json next to this file.</footer>\n</main>\n</body>\n</html>\n"
    )


# -- helpers ------------------------------------------------------------------------------------


def _e(value) -> str:
    """Escape for HTML text, HTML attributes and SVG (XML) alike."""
    return html.escape(_BAD_XML_CHARS.sub("\ufffd", str(value)), quote=True)


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # newlines and tabs -> one space
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def _num(value) -> str:
    return f"{value:,}" if _is_number(value) else ("?" if value is None else str(value))


def _bytes(value) -> str:
    if not _is_number(value):
        return "?"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return "?"  # pragma: no cover


def _us(value) -> str:
    if not _is_number(value):
        return "?"
    value = float(value)
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f} s"
    if abs(value) >= 1e3:
        return f"{value / 1e3:,.2f} ms"
    return f"{value:,.2f} µs" if abs(value) < 100 else f"{value:,.1f} µs"


def _us_tick(value: float) -> str:
    for scale, unit in ((1e6, "s"), (1e3, "ms")):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} µs"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind_colours(groups: list[dict]) -> dict[str, tuple[str, str]]:
    colours = {}
    extra = 0
    for kind in sorted({str(g.get("kind")) for g in groups}):
        if kind in _KIND_COLOURS:
            colours[kind] = _KIND_COLOURS[kind]
        else:
            colours[kind] = _EXTRA_COLOURS[extra % len(_EXTRA_COLOURS)]
            extra += 1
    return colours


def _colour(kinds: dict, kind) -> tuple[str, str]:
    return kinds.get(str(kind), ("#e5e7eb", "#4b5563"))


def _change(before, after) -> str:
    if not _is_number(before) or not _is_number(after) or before == 0:
        return ""
    pct = (after - before) / before * 100
    return f" ({pct:+.0f}%)".replace("-", "−")


# -- header -------------------------------------------------------------------------------------


def _header(report: dict) -> str:
    meta = (
        f"opt-level <b>{_e(report.get('opt_level', '?'))}</b> · target <b>{_e(report.get('target', '?'))}</b> · "
        f"pass time {_e(_seconds(report.get('pass_seconds')))} · autofuse {_e(report.get('autofuse_version', '?'))}"
    )
    cards = [
        _card("nodes", _num(report.get("nodes_before")), _num(report.get("nodes_after")),
              _change(report.get("nodes_before"), report.get("nodes_after"))),
        _card("kernels", _num(report.get("kernels_before")), _num(report.get("kernels_after")),
              _change(report.get("kernels_before"), report.get("kernels_after"))),
        _card("fused groups", _num(len(report.get("groups") or [])), None,
              f"{_num(len(report.get('rejected') or []))} candidates refused"),
    ]
    totals = report.get("totals") or {}
    t_before, t_after = totals.get("est_time_us_before"), totals.get("est_time_us_after")
    if _is_number(t_before) or _is_number(t_after):
        cards.append(_card("estimated time", _us(t_before), _us(t_after), _change(t_before, t_after)))
    else:
        cards.append(_card("estimated time", "n/a", None, "estimated times not available", muted=True))
    h_before, h_after = totals.get("hbm_bytes_before"), totals.get("hbm_bytes_after")
    if _is_number(h_before) or _is_number(h_after):
        bound = totals.get("hbm_lower_bound")
        note = _change(h_before, h_after) + (f" · lower bound {_bytes(bound)}" if _is_number(bound) else "")
        cards.append(_card("HBM traffic", _bytes(h_before), _bytes(h_after), note))
    cards.append(_verification_card(report.get("verification")))
    dims = totals.get("dims")
    if isinstance(dims, dict) and dims:
        assumed = ", ".join(f"{k}={v}" for k, v in dims.items())
        meta += f"<br>estimates assume symbolic dimensions {_e(_clip(assumed, 300))}"
    return (
        f"<header><h1>autofuse report: <span class=\"path\">{_e(report.get('input', '?'))}</span></h1>"
        f"<p class=\"meta\">{meta}</p>\n<div class=\"cards\">{''.join(cards)}</div></header>"
    )


def _seconds(value) -> str:
    return f"{value:.3f} s" if _is_number(value) else "?"


def _card(title: str, before: str, after: str | None, note: str = "", *, muted: bool = False,
          cls: str = "") -> str:
    value = _e(before) if after is None else f"{_e(before)} <span class=\"arrow\">→</span> {_e(after)}"
    classes = " ".join(c for c in ("card", cls, "muted" if muted else "") if c)
    return (f"<div class=\"{classes}\"><div class=\"card-title\">{_e(title)}</div>"
            f"<div class=\"card-value\">{value}</div><div class=\"card-note\">{_e(note.strip())}</div></div>")


def _verification_card(entry) -> str:
    if not entry:
        return _card("verification", "not run", None, "use --verify", muted=True)
    ok = bool(entry.get("ok"))
    return _card("verification", "passed" if ok else "FAILED", None, _clip(entry.get("summary", ""), 120),
                 cls="ok" if ok else "bad")


# -- the picture of the graph --------------------------------------------------------------------


@dataclass
class _Element:
    """A unit of layout: one ungrouped node, or the visible members of one fused group."""

    members: list[int]
    group: FusionGroup | None
    rows: dict[int, int] = field(default_factory=dict)  # node id -> row inside the element
    cols: dict[int, float] = field(default_factory=dict)  # node id -> column offset inside (centre)
    h: int = 1
    w: float = 1.0
    top: int = 0
    x: float = 0.0
    partial: bool = False
    box: bool = True  # draw the group as a box (False: members only coloured)


def _graph_section(report: dict, graph: Graph | None, plan: Plan | None, kinds: dict) -> str:
    head = "<section><h2>The graph, with the fused groups</h2>"
    if graph is None or not graph.nodes:
        return head + "<p class=\"note\">No graph to draw.</p></section>"
    n = len(graph.nodes)
    window = list(range(min(n, MAX_GRAPH_NODES)))
    plan_groups = list(plan.groups) if plan is not None else []
    elements, boxed = _elements(graph, window, plan_groups)
    _layout(graph, elements)
    svg = _graph_svg(graph, elements, kinds, report)
    shown = [e for e in elements if e.group is not None]
    partial = sum(e.partial for e in shown)
    if n > len(window):
        what = (f"Showing the first {len(window):,} of {n:,} nodes in topological order (nodes "
                f"1–{len(window):,}: usually the embeddings and the first layer); "
                "the rest of the graph is not drawn.")
    else:
        what = f"All {n:,} nodes."
    groups_note = f" {len(shown):,} of {len(plan_groups):,} fused groups appear"
    groups_note += f" ({partial} only partly)." if partial else "."
    if not boxed:
        groups_note += " Groups are shown by node colour only (their boxes would overlap)."
    legend = "".join(
        f"<span class=\"swatch\" style=\"background:{fill};border-color:{stroke}\"></span>{_e(kind)} "
        for kind, (fill, stroke) in kinds.items()
    )
    caption = (
        f"<p class=\"caption\">{_e(what)}{_e(groups_note)} Rows are topological levels, edges point down. "
        "Each coloured box is one fused kernel, labelled with its group id and fused op (rule in the tooltip: "
        "hover a box or node for names). Small grey boxes: views, shape ops and constants, which launch no kernel."
        f"</p><p class=\"legend\">{legend}</p>"
    )
    return f"{head}{caption}<div class=\"graph-scroll\">{svg}</div></section>"


def _is_small(graph: Graph, node_id: int) -> bool:
    return not is_kernel(graph.nodes[node_id], graph)


def _elements(graph: Graph, window: list[int], groups: list[FusionGroup]) -> tuple[list[_Element], bool]:
    """The layout elements of the window and whether groups are drawn as boxes."""
    inside = set(window)
    elements: list[_Element] = []
    owner: dict[int, int] = {}
    for group in groups:
        visible = [m for m in group.members if m in inside]
        if visible:
            for m in visible:
                owner[m] = len(elements)
            elements.append(_Element(visible, group, partial=len(visible) < len(group.members)))
    for node_id in window:
        if node_id not in owner:
            owner[node_id] = len(elements)
            elements.append(_Element([node_id], None))
    dag = _element_dag(graph, elements, owner)
    if dag.topological_order() is None:  # a non-convex group: draw nodes only, coloured
        singles = [_Element([m], e.group, box=False) for e in elements for m in e.members]
        for element in singles:
            _inner_layout(graph, element)
        return singles, False
    for element in elements:
        _inner_layout(graph, element)
    return elements, True


def _element_dag(graph: Graph, elements: list[_Element], owner: dict[int, int]):
    dag = _Dag(range(len(elements)))
    for index, element in enumerate(elements):
        for m in element.members:
            for p in graph.producer_ids(graph.nodes[m]):
                source = owner.get(p)
                if source is not None and source != index:
                    dag.add_edge(source, index)
    return dag


def _label(group: FusionGroup, partial: bool) -> str:
    return f"{group.id} {group.op_type}" + (" (part)" if partial else "")


def _inner_layout(graph: Graph, element: _Element) -> None:
    """Rows and columns of a group's members (topological levels of the members alone)."""
    if element.group is None or len(element.members) == 1:
        element.rows = {m: 0 for m in element.members}
        small = element.group is None and _is_small(graph, element.members[0])
        element.w = _SMALL_UNITS if small else 1.0
        if element.group is not None and element.box:
            element.w = max(1.0, _label_units(element))
        element.cols = {m: element.w / 2 for m in element.members}
        element.h = 1
        return
    members = set(element.members)
    sub = _Dag(element.members)
    for m in element.members:
        for p in graph.producer_ids(graph.nodes[m]):
            if p in members:
                sub.add_edge(p, m)
    levels = [sorted(level) for level in sub.generations()]
    width = max(len(level) for level in levels)
    element.w = max(float(width), _label_units(element))
    element.h = len(levels)
    for row, level in enumerate(levels):
        def key(m: int) -> tuple[float, int]:
            above = [element.cols[p] for p in graph.producer_ids(graph.nodes[m]) if p in element.cols]
            return (sum(above) / len(above) if above else -1.0, m)

        level.sort(key=key)
        start = (element.w - len(level)) / 2
        for i, m in enumerate(level):
            element.rows[m] = row
            element.cols[m] = start + i + 0.5


def _label_units(element: _Element) -> float:
    assert element.group is not None
    chars = min(len(_label(element.group, element.partial)), 30)
    return math.ceil((chars * _CHAR_PX + 22) / _COL * 2) / 2


def _layout(graph: Graph, elements: list[_Element]) -> None:
    """Levels by longest path (sources sit just above their first consumer), then columns greedily:
    each element goes to the free position nearest to its neighbours, refined over a few sweeps."""
    owner = {m: i for i, e in enumerate(elements) for m in e.members}
    dag = _element_dag(graph, elements, owner)
    order = dag.topological_order(key=lambda i: min(elements[i].members))
    for i in order:
        preds = list(dag.predecessors(i))
        elements[i].top = max((elements[p].top + elements[p].h for p in preds), default=0)
    for i in reversed(order):  # as late as the consumers allow: side computations sit next to their use
        if dag.out_degree(i) > 0:
            elements[i].top = min(elements[s].top for s in dag.successors(i)) - elements[i].h

    # edges between nodes of different elements: (producer node, consumer node)
    edges = [(p, m) for e in elements for m in e.members for p in graph.producer_ids(graph.nodes[m])
             if p in owner and owner[p] != owner[m]]
    links: dict[int, list[tuple[int, int, float]]] = {i: [] for i in range(len(elements))}
    for p, m in edges:
        links[owner[m]].append((m, p, 1.0))  # the consumer leans on its producer
        links[owner[p]].append((p, m, 0.6))  # and the producer, less, on its consumer

    def centre(node: int) -> float:
        e = elements[owner[node]]
        return e.x + e.cols[node]

    placed: set[int] = set()
    for sweep in range(4):
        occupied: dict[int, list[tuple[float, float]]] = {}
        placed_now: set[int] = set()
        sequence = sorted(range(len(elements)), key=lambda i: (elements[i].top, elements[i].x if sweep else 0, i))
        for i in sequence:
            element = elements[i]
            known = placed_now if sweep == 0 else placed
            pulls = [(centre(other) - element.cols[mine], weight)
                     for mine, other, weight in links[i] if owner[other] in known]
            if pulls:
                want = sum(x * w for x, w in pulls) / sum(w for _, w in pulls)
            else:
                want = element.w / 2 if sweep == 0 else element.x + element.w / 2
                want -= element.w / 2
            element.x = _free_spot(occupied, element, want)
            for row in range(element.top, element.top + element.h):
                occupied.setdefault(row, []).append((element.x, element.x + element.w))
            placed_now.add(i)
        placed = placed_now
    left = min((e.x for e in elements), default=0.0)
    for e in elements:
        e.x -= left


def _free_spot(occupied: dict[int, list[tuple[float, float]]], element: _Element, want: float) -> float:
    rows = range(element.top, element.top + element.h)
    spans = [span for row in rows for span in occupied.get(row, ())]
    candidates = {want}
    for a, b in spans:
        candidates.add(b + _GAP)
        candidates.add(a - _GAP - element.w)

    def free(x: float) -> bool:
        return all(x >= b + _GAP - 1e-9 or x + element.w <= a - _GAP + 1e-9 for a, b in spans)

    return min((c for c in candidates if free(c)), key=lambda c: (abs(c - want), c))


def _graph_svg(graph: Graph, elements: list[_Element], kinds: dict, report: dict) -> str:
    rules = {g.get("id"): g.get("rule") for g in report.get("groups") or []}
    width = max((e.x + e.w for e in elements), default=1) * _COL + 2 * _MARGIN
    height = max((e.top + e.h for e in elements), default=1) * _ROW + 2 * _MARGIN
    where: dict[int, tuple[float, float, bool]] = {}
    for e in elements:
        for m in e.members:
            x = _MARGIN + (e.x + e.cols[m]) * _COL
            y = _MARGIN + (e.top + e.rows[m] + 0.5) * _ROW
            where[m] = (x, y, _is_small(graph, m))
    owner = {m: i for i, e in enumerate(elements) for m in e.members}

    boxes, labels, lines, nodes = [], [], [], []
    for e in elements:
        if e.group is None or not e.box:
            continue
        fill, stroke = _colour(kinds, e.group.kind)
        x0 = _MARGIN + e.x * _COL + 3
        x1 = _MARGIN + (e.x + e.w) * _COL - 3
        y0 = _MARGIN + (e.top + 0.5) * _ROW - _NODE_H / 2 - _GROUP_TOP
        y1 = _MARGIN + (e.top + e.h - 0.5) * _ROW + _NODE_H / 2 + _GROUP_BOTTOM
        rule = rules.get(e.group.id) or e.group.rule
        tip = f"{e.group.id}: {e.group.op_type} ({e.group.kind}, rule {rule or 'auto'}), {len(e.group.members)} nodes"
        if e.partial:
            tip += f", {len(e.members)} shown"
        dash = " stroke-dasharray=\"5 3\"" if e.partial else ""
        boxes.append(
            f"<g><title>{_e(tip)}</title><rect x=\"{x0:.1f}\" y=\"{y0:.1f}\" width=\"{x1 - x0:.1f}\" "
            f"height=\"{y1 - y0:.1f}\" rx=\"9\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.6\"{dash}/></g>"
        )
        chars = max(4, int((x1 - x0 - 10) / _CHAR_PX))
        text = _clip(_label(e.group, e.partial), chars)
        labels.append(
            f"<text class=\"glabel\" x=\"{x0 + 6:.1f}\" y=\"{y0 + 11:.1f}\" fill=\"{stroke}\">"
            f"<tspan font-weight=\"700\">{_e(text.split(' ', 1)[0])}</tspan>"
            f"{_e(' ' + text.split(' ', 1)[1]) if ' ' in text else ''}</text>"
        )
    for m, (x2, y2, small2) in where.items():
        for p in graph.producer_ids(graph.nodes[m]):
            if p not in where:
                continue
            x1, y1, small1 = where[p]
            y1 += (_SMALL_H if small1 else _NODE_H) / 2
            y2_top = y2 - (_SMALL_H if small2 else _NODE_H) / 2 - 2
            inner = owner[p] == owner[m] and elements[owner[m]].group is not None
            bend = min(_ROW * 0.55, max(8.0, (y2_top - y1) / 2))
            span = round((y2 - where[p][1]) / _ROW)
            cls = "edge inner" if inner else ("edge light" if small1 or span > 2 else "edge")
            lines.append(
                f"<path class=\"{cls}\" d=\"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} "
                f"{x2:.1f},{y2_top - bend:.1f} {x2:.1f},{y2_top:.1f}\"/>"
            )
    for e in elements:
        for m in e.members:
            x, y, small = where[m]
            node = graph.nodes[m]
            w, h = (_SMALL_W, _SMALL_H) if small else (_NODE_W, _NODE_H)
            cls = "node small" if small else "node"
            style = ""
            if e.group is not None:
                fill, stroke = _colour(kinds, e.group.kind)
                style = f" stroke=\"{stroke}\"" if e.box else f" stroke=\"{stroke}\" fill=\"{fill}\""
            limit = int((w - 6) / (_CHAR_PX * (0.85 if small else 1)))
            tip = f"{node.name} ({node.op_type})"
            if e.group is not None:
                tip += f" in {e.group.id}"
            nodes.append(
                f"<g class=\"{cls}\"><title>{_e(tip)}</title>"
                f"<rect x=\"{x - w / 2:.1f}\" y=\"{y - h / 2:.1f}\" width=\"{w}\" height=\"{h}\" rx=\"4\"{style}/>"
                f"<text x=\"{x:.1f}\" y=\"{y + (3 if small else 3.6):.1f}\">{_e(_clip(node.op_type, limit))}</text></g>"
            )
    return (
        f"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" width=\"{width:.0f}\" height=\"{height:.0f}\" "
        f"viewBox=\"0 0 {width:.0f} {height:.0f}\" role=\"img\" aria-label=\"fused graph\">"
        "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" "
        "orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#94a3b8\"/></marker></defs>"
        + "".join(boxes) + "".join(lines) + "".join(nodes) + "".join(labels) + "</svg>"
    )


# -- the chart ----------------------------------------------------------------------------------


def _chart_section(report: dict, graph: Graph | None, plan: Plan | None, kinds: dict) -> str:
    groups = list(report.get("groups") or [])
    head = "<section><h2>Per group: before and after fusion</h2>"
    if not groups:
        return head + "<p class=\"note\">Nothing was fused.</p></section>"
    metric, rows, note = _chart_rows(groups, graph, plan)
    if not rows:
        return head + f"<p class=\"note\">{_e(note)}</p></section>"
    rows.sort(key=lambda r: (-(r[1] - r[2]), r[0].get("id", "")))
    shown = rows[:MAX_CHART_GROUPS]
    title = {"time": "estimated time", "bytes": "HBM bytes", "launches": "kernel launches"}[metric]
    caption = (f"Top {len(shown)} of {len(groups):,} groups by {title} saved. Grey: the member nodes as separate "
               f"kernels; coloured: the fused kernel.")
    return head + f"<p class=\"caption\">{_e(note)} {_e(caption)}</p>" + _chart_svg(shown, metric, kinds) + "</section>"


def _chart_rows(groups: list[dict], graph: Graph | None, plan: Plan | None) -> tuple[str, list, str]:
    def pairs(before_key: str, after_key: str):
        return [(g, g.get(before_key), g.get(after_key)) for g in groups]

    timed = [r for r in pairs("est_time_us_before", "est_time_us_after") if _is_number(r[1]) and _is_number(r[2])]
    if timed:
        missing = len(groups) - len(timed)
        note = "Estimated time per group from the cost model." + (
            f" {missing:,} groups have no estimate (unknown shapes) and are left out." if missing else "")
        return "time", timed, note
    note = "Estimated times not available."
    sized = [r for r in pairs("hbm_bytes_before", "hbm_bytes_after") if _is_number(r[1]) and _is_number(r[2])]
    if sized:
        missing = len(groups) - len(sized)
        note += " Showing HBM bytes moved instead." + (
            f" {missing:,} groups with unknown shapes are left out." if missing else "")
        return "bytes", sized, note
    note += " HBM bytes are unknown too (symbolic shapes): showing kernel launches instead."
    launches = _launches(groups, graph, plan)
    return "launches", [(g, launches[i], 1) for i, g in enumerate(groups)], note


def _launches(groups: list[dict], graph: Graph | None, plan: Plan | None) -> list[int]:
    """Kernels each group's members launched before fusion (the fused kernel is one)."""
    by_id = {g.id: g for g in plan.groups} if plan is not None else {}
    counts = []
    for entry in groups:
        saved = entry.get("launches_saved")
        group = by_id.get(entry.get("id"))
        if _is_number(saved):
            counts.append(int(saved) + 1)
        elif graph is not None and group is not None:
            counts.append(sum(is_kernel(graph.nodes[m], graph) for m in group.members))
        else:
            counts.append(sum(op not in NO_KERNEL_OPS for op in entry.get("member_op_types") or []))
    return counts


def _chart_svg(rows: list, metric: str, kinds: dict) -> str:
    label_w, bar_w, value_w, row_h, top = 250, 600, 190, 30, 26
    width = label_w + bar_w + value_w
    height = top + row_h * len(rows) + 8
    peak = max(max(r[1], r[2]) for r in rows) or 1
    step = _nice_step(peak / 5)
    fmt = {"time": _us, "bytes": _bytes, "launches": lambda v: f"{v:,.0f}"}[metric]
    tick_fmt = {"time": _us_tick, "bytes": _bytes, "launches": lambda v: f"{v:,.0f}"}[metric]
    parts = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{width}\" height=\"{height}\" "
             f"viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"per-group chart\">"]
    scale = bar_w / (math.ceil(peak / step - 1e-9) * step)
    tick = 0.0
    while tick * scale <= bar_w + 1e-6:
        x = label_w + tick * scale
        parts.append(f"<line class=\"grid\" x1=\"{x:.1f}\" y1=\"{top - 6}\" x2=\"{x:.1f}\" y2=\"{height - 6}\"/>"
                     f"<text class=\"tick\" x=\"{x:.1f}\" y=\"{top - 10}\">{_e(tick_fmt(tick))}</text>")
        tick += step
    for i, (group, before, after) in enumerate(rows):
        y = top + i * row_h
        _, stroke = _colour(kinds, group.get("kind"))
        label = _clip(f"{group.get('id', '?')} {group.get('op_type', '')}", 38)
        tip = f"{group.get('id')}: {group.get('op_type')} ({group.get('kind')}, rule {group.get('rule') or 'auto'})"
        saved = before - after
        value = f"{fmt(before)} → {fmt(after)}" + _change(before, after)
        if i % 2 == 0:
            parts.append(f"<rect class=\"band\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{row_h}\"/>")
        parts.append(
            f"<g><title>{_e(tip)}; saves {_e(fmt(saved))}</title>"
            f"<text class=\"clabel\" x=\"{label_w - 8}\" y=\"{y + 19}\">{_e(label)}</text>"
            f"<rect x=\"{label_w}\" y=\"{y + 5}\" width=\"{max(before * scale, 1):.1f}\" height=\"9\" "
            "fill=\"#cbd5e1\"/>"
            f"<rect x=\"{label_w}\" y=\"{y + 16}\" width=\"{max(after * scale, 1):.1f}\" height=\"9\" "
            f"fill=\"{stroke}\"/>"
            f"<text class=\"cvalue\" x=\"{label_w + bar_w + 8}\" y=\"{y + 19}\">{_e(value)}</text></g>"
        )
    parts.append("</svg>")
    return ("<div class=\"legend\"><span class=\"swatch\" style=\"background:#cbd5e1\"></span>before "
            "<span class=\"swatch\" style=\"background:#475569\"></span>after (colour = group kind)</div>"
            "<div class=\"chart-scroll\">" + "".join(parts) + "</div>")


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power  # pragma: no cover


# -- tables -------------------------------------------------------------------------------------


def _groups_section(groups: list[dict], kinds: dict) -> str:
    head = f"<section><h2>Fused groups: {len(groups):,}</h2>"
    if not groups:
        return head + "<p class=\"note\">Nothing was fused.</p></section>"
    rows = []
    for g in groups[:MAX_GROUP_ROWS]:
        _, stroke = _colour(kinds, g.get("kind"))
        ops = _clip(" ".join(g.get("member_op_types") or []), 90)
        names = ", ".join(str(n) for n in (g.get("members") or []))
        rows.append(
            "<tr>"
            f"<td class=\"id\"><span class=\"dot\" style=\"background:{stroke}\"></span>{_e(g.get('id', '?'))}</td>"
            f"<td>{_e(g.get('op_type', ''))}<div class=\"sub ops\">{_e(ops)}</div></td>"
            f"<td>{_e(g.get('rule') or 'auto')}<div class=\"sub\">{_e(g.get('kind', ''))}</div></td>"
            f"<td class=\"num\" title=\"{_e(_clip(names, 2000))}\">{len(g.get('members') or [])}</td>"
            f"<td class=\"num\">{_pair(g.get('hbm_bytes_before'), g.get('hbm_bytes_after'), _bytes)}</td>"
            f"<td class=\"num\">{_pair(g.get('est_time_us_before'), g.get('est_time_us_after'), _us)}</td>"
            f"<td class=\"num\">{_e(_num(g.get('launches_saved')) if 'launches_saved' in g else '')}</td>"
            f"<td class=\"tile\">{_tile(g.get('tile'))}</td>"
            f"<td>{_ub(g.get('ub_bytes'), g.get('ub_capacity'))}</td>"
            "</tr>"
        )
    more = ""
    if len(groups) > MAX_GROUP_ROWS:
        more = f"<p class=\"note\">{len(groups) - MAX_GROUP_ROWS:,} more groups in report.json.</p>"
    return (
        head + "<div class=\"table-scroll\"><table><thead><tr><th>id</th><th>fused op</th><th>rule</th>"
        "<th class=\"num\">nodes</th><th class=\"num\">HBM bytes<div class=\"sub\">before → after</div></th>"
        "<th class=\"num\">est. time<div class=\"sub\">before → after</div></th>"
        "<th class=\"num\">launches<div class=\"sub\">saved</div></th><th>tile</th>"
        "<th>UB use<div class=\"sub\">of capacity</div></th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>" + more
        + "</section>"
    )


def _pair(before, after, fmt) -> str:
    if before is None and after is None:
        return "<span class=\"muted\">?</span>"
    return f"{_e(fmt(before))} → {_e(fmt(after))}<div class=\"sub\">{_e(_change(before, after).strip())}</div>"


def _tile(tile) -> str:
    if not tile:
        return "<span class=\"muted\">–</span>"
    if not isinstance(tile, dict):
        return _e(_clip(str(tile), 80))
    full = ", ".join(f"{k}={v}" for k, v in tile.items())
    parts = [f"<span class=\"kv\">{_e(_clip(f'{k}={v}', 44))}</span>" for k, v in list(tile.items())[:8]]
    return f"<div title=\"{_e(_clip(full, 1000))}\">{' '.join(parts)}</div>"


def _ub(used, capacity) -> str:
    if not _is_number(used):
        return "<span class=\"muted\">–</span>"
    if not _is_number(capacity) or capacity <= 0:
        return _e(_bytes(used))
    share = used / capacity
    cls = "meter over" if share > 1 else "meter"
    return (f"<div class=\"{cls}\"><div style=\"width:{min(share, 1) * 100:.1f}%\"></div></div>"
            f"<div class=\"sub\">{_e(_bytes(used))} / {_e(_bytes(capacity))} ({share * 100:.0f}%)</div>")


def _refusals_section(rejected: list[dict]) -> str:
    head = f"<section><h2>Refused candidates: {len(rejected):,}</h2>"
    if not rejected:
        return head + "<p class=\"note\">No candidate was refused.</p></section>"
    by_reason: dict[str, list[dict]] = {}
    for entry in rejected:
        by_reason.setdefault(str(entry.get("reason", "?")), []).append(entry)
    ordered = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    peak = len(ordered[0][1])
    blocks = []
    for reason, entries in ordered:
        examples = []
        for entry in entries[:MAX_REFUSAL_EXAMPLES]:
            members = [str(m) for m in entry.get("members") or []]
            shown = " → ".join(_clip(m, 60) for m in members[:4])
            if len(members) > 4:
                shown += f" … (+{len(members) - 4} more)"
            examples.append(f"<li><span class=\"members\">{_e(shown)}</span>"
                            f"<div class=\"sub\">{_e(_clip(entry.get('detail') or '', 300))}</div></li>")
        rest = len(entries) - len(examples)
        more = f"<li class=\"muted\">… {rest:,} more in report.json</li>" if rest > 0 else ""
        blocks.append(
            f"<details><summary><code>{_e(reason)}</code><span class=\"count\">{len(entries):,}</span>"
            f"<span class=\"bar\" style=\"width:{len(entries) / peak * 160:.0f}px\"></span></summary>"
            f"<ul>{''.join(examples)}{more}</ul></details>"
        )
    return (head + "<p class=\"caption\">Grouped by reason code, most frequent first; open a reason for examples.</p>"
            + "".join(blocks) + "</section>")


_CSS = """
:root { --fg:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1320px; margin:0 auto; padding:24px 28px 40px; }
h1 { font-size:22px; margin:0 0 4px; }
h1 .path { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:19px; overflow-wrap:anywhere; }
h2 { font-size:17px; margin:0 0 8px; }
.meta { color:var(--muted); margin:0 0 16px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px 18px; margin:18px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(190px, 1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:10px 14px; }
.card-title { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card-value { font-size:16px; font-weight:650; margin:3px 0; white-space:nowrap; }
.card-note { color:var(--muted); font-size:12px; min-height:16px; overflow-wrap:anywhere; }
.card .arrow { color:var(--muted); font-weight:400; }
.card.ok { border-color:#86efac; background:#f0fdf4; } .card.ok .card-value { color:#15803d; }
.card.bad { border-color:#fca5a5; background:#fef2f2; } .card.bad .card-value { color:#b91c1c; }
.card.muted .card-value { color:var(--muted); font-weight:500; }
.caption, .note { color:#334155; margin:4px 0 10px; max-width:1100px; }
.legend { color:#334155; font-size:13px; margin:4px 0 10px; }
.swatch { display:inline-block; width:12px; height:12px; border:1.5px solid transparent; border-radius:3px;
  vertical-align:-2px; margin:0 4px 0 10px; }
.legend .swatch:first-child { margin-left:0; }
.graph-scroll { overflow:auto; max-height:1100px; border:1px solid var(--line); border-radius:8px; background:#fcfcfd; }
.chart-scroll, .table-scroll { overflow:auto; }
.table-scroll { max-height:760px; }
svg text { font-family:system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg.graph .node rect { fill:#fff; stroke:#334155; stroke-width:1.1; }
svg.graph .node text { font-size:10.5px; text-anchor:middle; fill:#0f172a; }
svg.graph .node.small rect { fill:#f1f5f9; stroke:#cbd5e1; }
svg.graph .node.small text { font-size:9px; fill:#64748b; }
svg.graph .edge { fill:none; stroke:#94a3b8; stroke-width:1.1; marker-end:url(#arrow); }
svg.graph .edge.light { stroke:#cbd5e1; stroke-width:1; }
svg.graph .edge.inner { stroke:#475569; }
svg.graph .glabel { font-size:10px; }
svg.chart .grid { stroke:#e2e8f0; } svg.chart .tick { font-size:10px; fill:#64748b; text-anchor:middle; }
svg.chart .band { fill:#f8fafc; }
svg.chart .clabel { font-size:12px; text-anchor:end; fill:#0f172a; }
svg.chart .cvalue { font-size:11.5px; fill:#334155; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { position:sticky; top:0; background:#f1f5f9; text-align:left; font-weight:600; }
th, td { border-bottom:1px solid var(--line); padding:5px 7px; vertical-align:top; }
td.num, th.num { text-align:right; } td.num { white-space:nowrap; }
td.id { font-weight:600; white-space:nowrap; }
td.tile { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:11px; min-width:200px; max-width:250px; }
td.tile .kv { display:inline-block; margin-right:8px; overflow-wrap:anywhere; }
.dot { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:6px; }
.sub { color:var(--muted); font-size:11.5px; }
.sub.ops { max-width:340px; }
.muted { color:var(--muted); }
.meter { width:96px; height:8px; background:#e2e8f0; border-radius:4px; overflow:hidden; margin-top:4px; }
.meter div { height:100%; background:#0ea5e9; } .meter.over div { background:#dc2626; }
details { border-top:1px solid var(--line); padding:6px 0; }
summary { cursor:pointer; } summary code { font-size:13px; }
summary .count { display:inline-block; min-width:56px; text-align:right; margin:0 10px; font-weight:600; }
summary .bar { display:inline-block; height:8px; background:#f59e0b; border-radius:4px; vertical-align:1px; }
details ul { margin:6px 0 4px; padding-left:22px; }
.members { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; overflow-wrap:anywhere; }
footer { color:var(--muted); font-size:12px; margin-top:8px; }
"""
