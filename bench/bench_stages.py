"""Where the time of one autofuse run goes, stage by stage, on synthetic stacks.

    python bench/bench_stages.py [--sizes 10000,50000] [--repeats 5]

Runs the stages of the command line's job in this process (load, concrete shapes, plan with its
parts, rewrite, kernel generation, report, writing the outputs) on a synthetic Llama-style stack
of each size, and prints a Markdown table of the best time of each over `--repeats` runs. The
planner's parts are timed by wrapping the functions plan_fusion calls. Imports (paid once per
process by the command line) are timed in a fresh interpreter.
"""
from __future__ import annotations

import argparse
import functools
import gc
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx  # noqa: E402

from bench.synthetic import layers_for_nodes, make_stack  # noqa: E402

# Functions plan_fusion calls, timed as the planner's parts (name in the table, attribute).
_PLAN_PARTS = (("rule matching", "find_matches"), ("automatic grouping", "find_auto_candidates"),
               ("level-3 merges", "merge_around_matmuls"), ("pricing", "price_candidates"))


def _import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import autofuse.cli; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return min(runs)


def _stages(path: Path, outdir: Path) -> dict[str, float]:
    import autofuse.planner.plan as planner
    from autofuse import api
    from autofuse.api import FuseResult, load_rule_set
    from autofuse.codegen import emit
    from autofuse.codegen.gate import EmissionCheck
    from autofuse.codegen.generate import generate_kernels
    from autofuse.cost.hardware import DEFAULT_TARGET, load_profile
    from autofuse.cost.model import bind_dims
    from autofuse.frontends.onnx import concrete_shapes, load_onnx
    from autofuse.report.build import build_report
    from autofuse.rewrite.onnx import rewrite_onnx

    times: dict[str, float] = {}
    originals = {attr: getattr(planner, attr) for _, attr in _PLAN_PARTS}

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    for name, attr in _PLAN_PARTS:
        setattr(planner, attr, timed(f"plan: {name}", originals[attr]))
    # What a fresh process pays once (parsing the rules, loading the templates) is paid every run.
    api._load_cached.cache_clear()
    emit._environment.cache_clear()
    try:
        clock = time.perf_counter()

        def mark(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            times[name] = now - clock
            clock = now

        hardware, rules = load_profile(DEFAULT_TARGET), load_rule_set()
        mark("rules and profile")
        loaded = load_onnx(path)
        mark("load (with ONNX shape inference)")
        dims = bind_dims(loaded.graph)
        static = concrete_shapes(loaded, dims)
        mark("concrete shapes")
        plan = planner.plan_fusion(loaded.graph, 3, rules=rules, hardware=hardware, dims=dims, static_shapes=static,
                                   emittable=EmissionCheck(loaded.graph, hardware, dims, static, rules))
        mark("plan")
        model = rewrite_onnx(loaded, plan)
        mark("rewrite")
        kernels = generate_kernels(loaded.graph, plan, hardware, dims, static, rules,
                                   shapes_at=functools.partial(concrete_shapes, loaded))
        mark("kernel generation")
        report = build_report(loaded.graph, plan, source=str(path), target=hardware.name, pass_seconds=0.0,
                              verification=None, generated=kernels, kernel_checks=None)
        mark("report")
        shutil.rmtree(outdir, ignore_errors=True)
        FuseResult(model, report, plan, loaded, None, kernels, None).save(outdir)
        mark("write outputs")
    finally:
        for _, attr in _PLAN_PARTS:
            setattr(planner, attr, originals[attr])
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")], default=[10_000, 50_000])
    ap.add_argument("--repeats", type=int, default=5, help="best of N in-process runs (default 5)")
    args = ap.parse_args()
    gc.disable()  # as the command line runs the pass (autofuse.api)
    columns: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes:
            path = Path(work) / f"s{size}.onnx"
            onnx.save(make_stack(layers_for_nodes(size)), path)
            best: dict[str, float] = {}
            for _ in range(args.repeats):
                for name, seconds in _stages(path, Path(work) / "out").items():
                    best[name] = min(best.get(name, seconds), seconds)
            print(f"[{size}] done", file=sys.stderr)
            columns.append(best)
    stages = [n for n in columns[0] if not n.startswith("plan: ")]
    at = stages.index("plan") + 1
    names = stages[:at] + [n for n in columns[0] if n.startswith("plan: ")] + stages[at:]
    print("| stage | " + " | ".join(f"{s:,} nodes (s)" for s in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    imports = _import_seconds()
    print("| imports (`import autofuse.cli`, fresh interpreter) | " + " | ".join(f"{imports:.3f}" for _ in args.sizes)
          + " |")
    for name in names:
        print(f"| {name} | " + " | ".join(f"{c.get(name, 0.0):.3f}" for c in columns) + " |")
    total = [imports + sum(v for k, v in c.items() if not k.startswith("plan: ")) for c in columns]
    print("| **total** | " + " | ".join(f"**{t:.3f}**" for t in total) + " |")


if __name__ == "__main__":
    main()
