"""Reports: what was fused, why, what was refused and what it saved (JSON, Markdown and HTML)."""
from autofuse.report.build import build_report
from autofuse.report.html import render_html
from autofuse.report.markdown import render_markdown

__all__ = ["build_report", "render_html", "render_markdown"]
