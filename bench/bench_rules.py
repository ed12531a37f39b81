"""Rule matching at scale: the shipped library plus generated variants (200 rules in all) on a
synthetic ~50k-node decoder stack. Prints how long matching takes next to the whole pass.

    python bench/bench_rules.py [--rules 200] [--nodes 50000]

Variants are made from library rules under new names (and a lower priority), alternately:
- a copy with other lowerings: same pattern, so it matches wherever its original does (the
  matcher shares the work of identical patterns);
- a mutation: every number in the pattern scaled by 1.5 (or, with no number, a dtype its inputs
  never have), so it is tried everywhere its original is and fails late, after walking most of
  the pattern: the costly case.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402

from autofuse import fuse  # noqa: E402
from autofuse.api import load_rule_set  # noqa: E402
from autofuse.candidates.rules.loader import library_files  # noqa: E402
from autofuse.candidates.rules.matcher import RuleIndex, find_matches  # noqa: E402
from autofuse.frontends.onnx import load_onnx  # noqa: E402


def variants_file(total: int, directory: Path) -> Path:
    """A rule file with `total` minus the library's rule count generated variants."""
    entries = [e for path in library_files() for e in yaml.safe_load(path.read_text())["rules"]]
    wanted = max(total - len(entries), 0)
    generated = []
    for i in range(wanted):
        entry = dict(entries[i % len(entries)])
        entry["name"] = f"{entry['name']}_variant_{i}"
        entry["priority"] = int(entry.get("priority", 0)) - 1
        if i % 2:
            entry["lowering"] = {**entry["lowering"], "cann": f"{entry['lowering'].get('cann', 'Op')}V{i}"}
        else:
            _mutate(entry)
        generated.append(entry)
    path = directory / "variants.yaml"
    path.write_text(yaml.safe_dump({"rules": generated}, sort_keys=False))
    return path


def _mutate(entry: dict) -> None:
    """Make the variant fail late where its original matches."""
    scaled = re.sub(r"(?<![\w.])(\d+\.?\d*(?:[eE][-+]?\d+)?)", lambda m: f"{float(m.group(1)) * 1.5:g}",
                    entry["pattern"])
    if scaled != entry["pattern"]:
        entry["pattern"] = scaled
        entry.pop("examples", None)
        entry["examples"] = {"match": ["g (int8[2] x) => (int8[2] y) { y = Abs (x) }"],
                             "near_miss": ["g (int8[2] x) => (int8[2] y) { y = Neg (x) }"]}
        return
    last = entry["inputs"][-1]
    entry["where"] = {**entry.get("where", {}), last: {"dtype": ["int8"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=50_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        extra = variants_file(args.rules, Path(tmp))
        model = synthetic.make_stack(synthetic.layers_for_nodes(args.nodes))
        start = time.perf_counter()
        rules = load_rule_set([extra])
        load_seconds = time.perf_counter() - start
        graph = load_onnx(model).graph
        start = time.perf_counter()
        matches, _ = find_matches(graph, RuleIndex(rules))
        match_seconds = time.perf_counter() - start
        start = time.perf_counter()
        fuse(model, opt_level=3, rules=[extra])
        pass_seconds = time.perf_counter() - start
        library_only = fuse(model, opt_level=3)
    print(f"{len(rules)} rules: the library and {len(rules) - len(load_rule_set())} variants (half copies, half late-failing mutations)")
    print("| rules | nodes | rule load s | matching s | matches | whole pass s (200 rules) | whole pass s (library) | matching share |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(rules)} | {len(graph.nodes)} | {load_seconds:.2f} | {match_seconds:.2f} | {len(matches)} | "
          f"{pass_seconds:.2f} | {library_only.report['pass_seconds']:.2f} | {match_seconds / pass_seconds:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
