"""Reports: what was fused, why, what was refused and what it saved (JSON and Markdown)."""
from autofuse.report.build import build_report
from autofuse.report.markdown import render_markdown

__all__ = ["build_report", "render_markdown"]
