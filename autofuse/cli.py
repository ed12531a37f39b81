"""Command line: `autofuse --input model.onnx|module.path:factory [--opt-level 0-3] [-o OUTDIR] [--target NAME]
[--verify]`,
`autofuse rules check|list|explain` for rule authors, `autofuse bisect` (autofuse/bisect.py)
to find the fused groups that break verification, and `autofuse superkernel`
(autofuse/superkernel/cli.py) to plan torchair SuperKernel scopes for a decode step.

A thin layer over `autofuse.fuse`: parse, run, print a summary, map errors to exit codes
(2: bad input, 3: verification mismatch, 4: --verify-kernels left fused groups unverified
because they have no kernel, 1: internal error).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from autofuse.api import FuseResult, FxFuseResult, fuse
from autofuse.cost.hardware import DEFAULT_TARGET, KNOWN_TARGETS
from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE
from autofuse.errors import AutofuseError, GeneratorError, PlanInvariantError, UnverifiedError, VerificationError

_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autofuse",
        description="Fuse operators of an ONNX or PyTorch model for Ascend NPUs and report what was fused and why.",
    )
    parser.add_argument("--input", required=True, metavar="PATH.onnx|module.path:factory",
                        help="the ONNX model to optimize, or a Python function returning (torch model, example "
                             "inputs) -- the model is captured with torch.export (the module is imported from "
                             "the current directory or sys.path)")
    parser.add_argument("-o", "--output-dir", metavar="OUTDIR",
                        help="where to write model.onnx (model.py for a PyTorch model), report.json, report.md, "
                             "report.html (default <input stem or factory>_autofuse/)")
    parser.add_argument("--backend", choices=("auto", "cpu", "npu"), default="auto",
                        help="PyTorch input: fused groups call torch.ops.autofuse.fused (cpu), their torch_npu op "
                             "(npu), or npu where torch_npu and an NPU are present (auto, the default)")
    add_plan_options(parser)
    parser.add_argument("--target-file", metavar="PROFILE.yaml", help="a hardware profile of your own (overrides --target)")
    parser.add_argument("--dims", type=_dims, default={}, metavar="NAME=N,...",
                        help="sizes of symbolic dims for the cost model (default: batch-like names 1, others 128)")
    parser.add_argument("--verify", action="store_true",
                        help="run original and rewritten model in onnxruntime and compare every output")
    parser.add_argument("--emit", choices=("kernels", "none"), default=None,
                        help="kernels: write an Ascend C custom-operator project per fused group under "
                             "OUTDIR/kernels/ (the default at --opt-level 3); none: do not")
    parser.add_argument("--verify-kernels", action="store_true",
                        help="compile every generated kernel on autofuse's CPU emulator of Ascend C, run it and "
                             "compare it with onnxruntime running the group's original nodes (implies --emit kernels)")
    parser.add_argument("--disable-fusion", action="append", default=[], metavar="ID",
                        help="leave the fused group with this id (g0, g1, ... in report.json) unfused; "
                             "other groups keep their ids (repeatable)")
    return parser


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The options that decide the plan, shared by `autofuse` and `autofuse bisect` (so a bisect
    plans exactly what the main command planned)."""
    parser.add_argument("--opt-level", type=int, default=3, choices=range(4), metavar="0-3",
                        help="0: nothing, 1: rules only, 2: + automatic fusion, 3: + MatMul epilogues, "
                             "multi-output groups and group merges (default 3)")
    parser.add_argument("--target", default=DEFAULT_TARGET, metavar="NAME",
                        help=f"target chip profile: {', '.join(KNOWN_TARGETS)} (default {DEFAULT_TARGET})")
    parser.add_argument("--max-group-size", type=int, default=DEFAULT_MAX_GROUP_SIZE, metavar="N",
                        help=f"largest number of nodes in one fused group (default {DEFAULT_MAX_GROUP_SIZE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs used for verification")
    _add_rule_options(parser)
    parser.add_argument("--disable-rule", action="append", default=[], metavar="NAME",
                        help="do not apply this rule (repeatable)")


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", action="append", default=[], metavar="FILE",
                        help="a YAML rule file to add to the shipped library (repeatable)")
    parser.add_argument("--no-library", action="store_true", help="do not load the shipped rule library")


def _rules_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autofuse rules", description="Tools for rule authors.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate rule files (and run their examples)")
    check.add_argument("files", nargs="+", metavar="FILE")
    listing = sub.add_parser("list", help="list the rules that would be loaded")
    _add_rule_options(listing)
    explain = sub.add_parser("explain", help="where each rule matched in a model, and its near misses")
    explain.add_argument("--input", required=True, metavar="PATH.onnx")
    _add_rule_options(explain)
    explain.add_argument("--rule", action="append", default=[], metavar="NAME", help="only these rules")
    return parser


def _dims(text: str) -> dict[str, int]:
    dims = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if not name or not value.isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"expected NAME=N with N >= 1, got '{item}'")
        dims[name.strip()] = int(value)
    return dims


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "rules":
        from autofuse import rules_cli

        args = _rules_parser().parse_args(argv[1:])
        runner = rules_cli.run
    elif argv and argv[0] == "bisect":
        from autofuse import bisect

        args = bisect.parser().parse_args(argv[1:])
        runner = bisect.run
    elif argv and argv[0] == "superkernel":
        from autofuse.superkernel import cli as superkernel_cli

        args = superkernel_cli.parser().parse_args(argv[1:])
        runner = superkernel_cli.run
    else:
        args = _parser().parse_args(argv)
        runner = _run
    try:
        return runner(args)
    except AutofuseError as exc:
        kind = "internal error" if isinstance(exc, (GeneratorError, PlanInvariantError)) else "error"
        print(f"autofuse: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `autofuse ... | head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("autofuse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
        print(f"autofuse: internal error: {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    path = Path(args.input)
    source, stem, example_inputs = path, path.stem, None
    if _is_factory(args.input):
        from autofuse.frontends.fx import capture, load_factory

        model, example_inputs = load_factory(args.input)
        source, stem = capture(model, example_inputs, source=f"--input {args.input}"), args.input.partition(":")[2]
    outdir = Path(args.output_dir) if args.output_dir else Path.cwd() / f"{stem}_autofuse"
    result = fuse(source, args.opt_level, args.target, max_group_size=args.max_group_size,
                  verify=args.verify, seed=args.seed, rules=args.rules, disable_rules=args.disable_rule,
                  use_library=not args.no_library, disable_fusions=args.disable_fusion,
                  target_file=args.target_file, dims=args.dims, backend=args.backend,
                  example_inputs=example_inputs, name=args.input,
                  kernels=args.opt_level == 3 if args.emit is None else args.emit == "kernels",
                  verify_kernels=args.verify_kernels)
    result.save(outdir)
    print(_summary(result, outdir))
    if result.verification is not None and not result.verification.ok:
        raise VerificationError(result.verification.summary())
    coverage = getattr(result, "kernel_coverage", None)
    if coverage is None:
        return 0
    if not coverage.checked:  # kernels written, not checked: a group without one is still a gap
        if coverage.missing:
            raise UnverifiedError(f"kernel generation incomplete: {coverage.missing_line()}")
        return 0
    gap = ""
    if coverage.missing:
        gap = f"{coverage.unverified_line()}: no kernel for " + "; ".join(
            f"{gid}: {coverage.missing[gid]}" for gid in list(coverage.missing)[:3])
    if coverage.failed:
        failed = list(coverage.failed.items())
        raise VerificationError(f"{len(failed)} generated kernel(s) failed the CPU check: "
                                + "; ".join(f"{gid}: {error}" for gid, error in failed[:3])
                                + (f"; also {gap}" if gap else ""))
    if gap:
        raise UnverifiedError(f"kernel check incomplete: {gap}")
    return 0


def _is_factory(text: str) -> bool:
    """`module.path:factory` (and no such file): the PyTorch path."""
    return bool(_FACTORY.fullmatch(text)) and not Path(text).exists()


def _dims_text(dims: dict) -> str:
    named = {k: v for k, v in dims.items() if not k.startswith("unk__")}
    return ", ".join(f"{k}={v}" for k, v in named.items()) or "all static"


def _summary(result: FuseResult | FxFuseResult, outdir: Path) -> str:
    r = result.report
    saved = r["kernels_before"] - r["kernels_after"]
    share = f" (-{100 * saved / r['kernels_before']:.1f}%)" if r["kernels_before"] else ""
    lines = [
        f"autofuse {r['input']} (opt-level {r['opt_level']}, target {r['target']}): {r['pass_seconds']:.2f} s",
        f"  nodes    {r['nodes_before']:>7} -> {r['nodes_after']}",
        f"  kernels  {r['kernels_before']:>7} -> {r['kernels_after']}{share}",
        f"  fused groups: {len(r['groups'])}, refused candidates: {len(r['rejected'])}",
    ]
    totals = r.get("totals", {})
    if totals.get("est_time_us_before") is not None and totals.get("est_time_us_after") is not None:
        lines.append(f"  estimated time on {r['target']}: {totals['est_time_us_before']:.1f} us -> "
                     f"{totals['est_time_us_after']:.1f} us (cost model, dims {_dims_text(totals.get('dims', {}))})")
    if r["verification"] is not None:
        lines.append(f"  verify: {'ok' if r['verification']['ok'] else 'MISMATCH'}: {r['verification']['summary']}")
    kernels = getattr(result, "kernels", None)
    if kernels is not None:
        from autofuse.verify.kernels import kernel_summary

        lines.append(f"  kernels: {kernel_summary(kernels, result.kernel_checks)}")
        coverage = result.kernel_coverage
        if coverage.missing:
            lines.append(f"  kernels MISSING: {coverage.missing_line()}")
        if coverage.checked:
            verdict = "FAILED, " if coverage.failed else "INCOMPLETE, " if coverage.unverified else ""
            lines.append(f"  kernel check: {verdict}{coverage.unverified_line()}")
    written = ", kernels/" if kernels and any(k.generated for k in kernels.values()) else ""
    lines.append(f"  wrote {outdir}/{result.model_file}, report.json, report.md, report.html{written}")
    return "\n".join(lines)
