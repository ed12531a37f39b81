"""The report dictionary -> report.md, for people."""
from __future__ import annotations

from collections import Counter

_MAX_GROUP_ROWS = 50


def render_markdown(report: dict) -> str:
    lines = [
        f"# autofuse report: {report['input']}",
        "",
        f"opt-level {report['opt_level']}, target `{report['target']}`, "
        f"pass time {report['pass_seconds']:.3f} s, autofuse {report['autofuse_version']}",
        "",
        "| | before | after |",
        "|---|---:|---:|",
        f"| nodes | {report['nodes_before']} | {report['nodes_after']} |",
        f"| kernels | {report['kernels_before']} | {report['kernels_after']} |",
        "",
    ]
    lines += _verification(report.get("verification"))
    lines += _renamed(report.get("renamed_nodes") or [])
    lines += _totals(report.get("totals") or {})
    lines += _top_groups(report["groups"])
    lines += _groups(report["groups"])
    lines += _kernels(report["groups"], report.get("totals") or {})
    lines += _refusals(report["rejected"])
    return "\n".join(lines) + "\n"


def _totals(totals: dict) -> list[str]:
    if totals.get("est_time_us_before") is None:
        return []
    dims = ", ".join(f"{k}={v}" for k, v in totals.get("dims", {}).items() if not k.startswith("unk__"))
    return [
        f"Cost model (`{totals['target']}`, microseconds, symbolic dims {dims or 'none'}):",
        "",
        "| | before | after |",
        "|---|---:|---:|",
        f"| estimated time (us) | {totals['est_time_us_before']:,.1f} | {totals['est_time_us_after']:,.1f} |",
        f"| HBM bytes | {_num(totals.get('hbm_bytes_before'))} | {_num(totals.get('hbm_bytes_after'))} |",
        f"| HBM lower bound | | {_num(totals.get('hbm_lower_bound'))} |",
        "",
    ]


def _top_groups(groups: list[dict], count: int = 10) -> list[str]:
    priced = [g for g in groups if g.get("est_time_us_before") is not None and g.get("est_time_us_after") is not None]
    if not priced:
        return []
    priced.sort(key=lambda g: g["est_time_us_after"] - g["est_time_us_before"])
    lines = [f"## Top {min(count, len(priced))} groups by estimated time saved", "",
             "| id | fused op | rule | us before | us after | saved | tile | UB used |", "|---|---|---|---:|---:|---:|---|---:|"]
    for g in priced[:count]:
        tile = g.get("tile") or {}
        ub = f"{g['ub_bytes']:,} / {g['ub_capacity']:,}" if g.get("ub_bytes") and g.get("ub_capacity") else "-"
        lines.append(f"| {g['id']} | {g['op_type']} | {g['rule'] or 'auto'} | {g['est_time_us_before']:.2f} | "
                     f"{g['est_time_us_after']:.2f} | {g['est_time_us_before'] - g['est_time_us_after']:.2f} | "
                     f"{tile.get('scheme', '-')} | {ub} |")
    return lines + [""]


def _verification(entry: dict | None) -> list[str]:
    if entry is None:
        return ["Verification: not run (use `--verify`).", ""]
    return [f"Verification: **{'passed' if entry['ok'] else 'FAILED'}**: {entry['summary']}", ""]


def _renamed(renamed: list[dict]) -> list[str]:
    """Nodes written under another name than the input's (report.json `renamed_nodes`)."""
    if not renamed:
        return []
    unnamed = sum(1 for r in renamed if not r["old"])
    lines = [f"## Renamed nodes: {len(renamed)}", "",
             f"Node names are made unique: onnxruntime refuses two nodes of one name in a graph. "
             f"{len(renamed) - unnamed} duplicate name(s) got a suffix and {unnamed} unnamed node(s) a name; "
             "this report, and the written model, use the new names.", "",
             "| graph | # | op | input name | written name |", "|---|---:|---|---|---|"]
    for r in renamed[:_MAX_GROUP_ROWS]:
        old = f"`{_escape(r['old'])}`" if r["old"] else "(none)"
        lines.append(f"| {_escape(r['graph'])} | {r['index']} | {r['op_type']} | {old} | `{_escape(r['new'])}` |")
    if len(renamed) > _MAX_GROUP_ROWS:
        lines.append(f"| … | {len(renamed) - _MAX_GROUP_ROWS} more in report.json `renamed_nodes` | | | |")
    return lines + [""]


def _groups(groups: list[dict]) -> list[str]:
    kinds = Counter(g["kind"] for g in groups)
    lines = [f"## Fused groups: {len(groups)}", ""]
    if not groups:
        return lines + ["Nothing was fused.", ""]
    lines += [", ".join(f"{kind}: {n}" for kind, n in kinds.most_common()), ""]
    lines += ["| id | fused op | rule | nodes | ops | HBM bytes before | after |", "|---|---|---|---:|---|---:|---:|"]
    for g in groups[:_MAX_GROUP_ROWS]:
        ops = " ".join(g["member_op_types"])
        lines.append(
            f"| {g['id']} | {g['op_type']} | {g['rule'] or 'auto'} | {len(g['members'])} | {ops} | "
            f"{_num(g['hbm_bytes_before'])} | {_num(g['hbm_bytes_after'])} |"
        )
    if len(groups) > _MAX_GROUP_ROWS:
        lines.append(f"| … | {len(groups) - _MAX_GROUP_ROWS} more in report.json | | | | | |")
    return lines + [""]


def _kernels(groups: list[dict], totals: dict) -> list[str]:
    """The Ascend C kernel of each group (report.json `kernel`), when kernels were generated:
    first the groups left without one and the groups left unverified (totals `kernels_missing`,
    `kernels_unverified`), then one row per group."""
    entries = [g for g in groups[:_MAX_GROUP_ROWS] if g.get("kernel")]
    if not entries:
        return []
    lines = ["## Kernels", ""]
    missing, unverified = totals.get("kernels_missing"), totals.get("kernels_unverified")
    if missing and missing["count"]:
        lines += [f"**Missing kernels: {missing['count']} of {len(groups)} fused groups** have no kernel, CANN "
                  f"call-through or host-side work (the rewritten model calls fused ops nothing implements "
                  f"for them): {', '.join(missing['groups'])}.", "",
                  "| why the generator declined | groups |", "|---|---:|"]
        lines += [f"| {_escape(reason)} | {count} |" for reason, count in missing["by_reason"].items()]
        lines.append("")
    if unverified is not None:
        lines += [f"**Unverified: {unverified['count']} of {unverified['of']}** groups that need a kernel "
                  f"({unverified['not_generated']} not generated, {unverified['failed']} failed the CPU check)."
                  if unverified["count"] else f"All {unverified['of']} kernels verified on the CPU emulator.", ""]
    lines += ["| id | kernel | compiled | verified | max abs error | GM bytes measured | predicted |",
              "|---|---|---|---|---:|---:|---:|"]
    for g in entries:
        k = g["kernel"]
        what = (f"`{k['source']}`" if k.get("source") else f"CANN {k['call_through']} (call-through)"
                if k.get("call_through") else "host-side shape arithmetic" if k.get("host")
                else f"not generated: {_escape(k.get('reason', ''))}")
        checked = k.get("compiled") is not None
        error = "-" if k.get("max_abs_error") is None else f"{k['max_abs_error']:.3g}"
        measured = _num(k.get("gm_bytes_measured")) if checked else "-"
        lines.append(f"| {g['id']} | {what} | {_yes(k.get('compiled'), checked)} | {_yes(k.get('verified'), checked)} | "
                     f"{error} | {measured} | {_num(k.get('gm_bytes_predicted'))} |")
    return lines + ["", "Kernels are checked with `--verify-kernels` (the CPU emulator of Ascend C).", ""]


def _yes(value, checked: bool) -> str:
    return "-" if not checked or value is None else ("yes" if value else "**NO**")


def _refusals(rejected: list[dict]) -> list[str]:
    lines = [f"## Refused fusions: {len(rejected)}", ""]
    if not rejected:
        return lines
    by_reason: dict[str, list[dict]] = {}
    for r in rejected:
        by_reason.setdefault(r["reason"], []).append(r)
    lines += ["| reason | count | example |", "|---|---:|---|"]
    for reason, entries in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        first = entries[0]
        example = " → ".join(first["members"][:3]) + (f": {first['detail']}" if first["detail"] else "")
        lines.append(f"| `{reason}` | {len(entries)} | {_escape(example)} |")
    return lines + [""]


def _num(value) -> str:
    return "?" if value is None else f"{value:,}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
