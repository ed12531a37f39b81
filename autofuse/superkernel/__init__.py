"""SuperKernel scopes for torchair: plan them on an FX graph of one decode step, and apply the plan
as an FX pass, by wrapping module forwards, or as a patch of the modeling source.
See planner.py for the strategies and ge_model.py for the model of CANN's SuperKernel pass."""
from autofuse.superkernel.air_ops import ensure_air_ops, super_kernel
from autofuse.superkernel.apply import TorchairUnavailable, apply
from autofuse.superkernel.fx_pass import SuperKernelPass, insert_scopes, scopes_in
from autofuse.superkernel.options import SkOptions, parse_options
from autofuse.superkernel.patch import make_patch
from autofuse.superkernel.plan import Cut, Piece, Plan, Scope
from autofuse.superkernel.planner import STRATEGIES, Analysis, analyze, plan_superkernel
from autofuse.superkernel.report import render_report

__all__ = [
    "STRATEGIES", "Analysis", "Cut", "Piece", "Plan", "Scope", "SkOptions", "SuperKernelPass", "TorchairUnavailable",
    "analyze", "apply", "ensure_air_ops", "insert_scopes", "make_patch", "parse_options", "plan_superkernel",
    "render_report", "scopes_in", "super_kernel",
]
