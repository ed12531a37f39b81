"""`autofuse superkernel --input module.path:factory [--strategy ...] [--options STR] [-o OUTDIR]`:
plan SuperKernel scopes for one decode step and write superkernel_plan.json,
superkernel_report.md and superkernel.patch into OUTDIR, all or nothing."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autofuse.cost.hardware import KNOWN_TARGETS
from autofuse.staging import staged_outdir
from autofuse.superkernel.planner import DEFAULT_TARGET, STRATEGIES

OUTPUTS = ("superkernel_plan.json", "superkernel_report.md", "superkernel.patch")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autofuse superkernel",
        description="Plan torchair SuperKernel scopes for one decode step of a PyTorch model.")
    p.add_argument("--input", required=True, metavar="module.path:factory",
                   help="a function returning (model, example_inputs) for one decode step")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="auto: scopes around every run of kernels GE can fuse; attention, moe, layer, "
                        "all-layers: the hand-written templates (default auto)")
    p.add_argument("--options", default="", metavar="STR",
                   help="SuperKernel options, key=value pairs joined by ':' (e.g. stream-fusion=1:feed-sync-all=1)")
    p.add_argument("-o", "--output-dir", metavar="OUTDIR",
                   help="where to write the plan, report and patch (default <factory>_superkernel/)")
    p.add_argument("--target", default=DEFAULT_TARGET, metavar="NAME",
                   help=f"hardware profile for the launch cost: {', '.join(KNOWN_TARGETS)} or a profile file "
                        f"(default {DEFAULT_TARGET}, Atlas A3)")
    p.add_argument("--optable", metavar="FILE", help="a YAML file overriding entries of the op table")
    p.add_argument("--hccl-aiv", action="store_true",
                   help="collectives run HCCL's AIV algorithm (HCCL_OP_EXPANSION_MODE=AIV) and may join scopes")
    return p


def run(args: argparse.Namespace) -> int:
    from autofuse.api import report_json
    from autofuse.frontends.fx import capture, load_factory
    from autofuse.superkernel.apply import module_scopes
    from autofuse.superkernel.options import parse_options
    from autofuse.superkernel.patch import make_patch
    from autofuse.superkernel.planner import plan_superkernel
    from autofuse.superkernel.report import render_report

    start = time.perf_counter()
    parse_options(args.options)  # a bad options string fails before the model is built
    model, example_inputs = load_factory(args.input)
    program = capture(model, example_inputs, source=args.input)
    plan = plan_superkernel(program, strategy=args.strategy, options=args.options, example_inputs=example_inputs,
                            target=args.target, hccl_aiv=args.hccl_aiv, optable=args.optable)
    notes = module_scopes(plan)[1]
    outdir = Path(args.output_dir) if args.output_dir else Path.cwd() / f"{args.input.rpartition(':')[2]}_superkernel"
    files = {
        OUTPUTS[0]: report_json({"input": args.input, **plan.to_dict()}),
        OUTPUTS[1]: render_report(plan, source=args.input, placement_notes=notes),
        OUTPUTS[2]: make_patch(model, plan),
    }
    with staged_outdir(outdir) as staging:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
    for warning in plan.warnings:
        print(f"autofuse: warning: {warning}", file=sys.stderr)
    totals = plan.to_dict()["totals"]
    print(f"autofuse superkernel {args.input} (strategy {plan.strategy}, target {plan.target}): "
          f"{time.perf_counter() - start:.2f} s\n"
          f"  scopes {totals['scopes']}, SuperKernels {totals['superkernels']}\n"
          f"  launches per decode step {totals['kernels_before']} -> {totals['launches_after']} "
          f"({totals['launches_saved']} saved)\n"
          f"  predicted time saved per decode step: {totals['time_saved_us']:.1f} to "
          f"{totals['time_saved_us_upper']:.1f} us (cost model launch heads; not measured)\n"
          f"  wrote {outdir}/{', '.join(OUTPUTS)}")
    return 0
