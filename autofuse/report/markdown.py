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
    lines += _groups(report["groups"])
    lines += _refusals(report["rejected"])
    return "\n".join(lines) + "\n"


def _verification(entry: dict | None) -> list[str]:
    if entry is None:
        return ["Verification: not run (use `--verify`).", ""]
    return [f"Verification: **{'passed' if entry['ok'] else 'FAILED'}**: {entry['summary']}", ""]


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
