"""`autofuse rules check|list|explain`: what rule authors run. A thin layer over the rule engine."""
from __future__ import annotations

import argparse
from collections import defaultdict

from autofuse.api import load_rule_set
from autofuse.candidates.rules.examples import check_examples
from autofuse.candidates.rules.loader import load_rules
from autofuse.candidates.rules.matcher import RuleIndex, find_matches
from autofuse.errors import AutofuseError
from autofuse.frontends.onnx import load_onnx


def run(args: argparse.Namespace) -> int:
    return {"check": _check, "list": _list, "explain": _explain}[args.command](args)


def _check(args: argparse.Namespace) -> int:
    rules = load_rules(args.files)
    failures = [problem for rule in rules for problem in check_examples(rule)]
    for problem in failures:
        print(problem)
    if failures:
        raise AutofuseError(f"{len(failures)} example(s) failed in {len(rules)} rule(s)")
    print(f"ok: {len(rules)} rule(s) in {len(args.files)} file(s), every example behaves as declared")
    return 0


def _list(args: argparse.Namespace) -> int:
    rules = load_rule_set(args.rules, use_library=not args.no_library)
    width = max((len(r.name) for r in rules), default=4)
    for rule in rules:
        lowering = ", ".join(f"{k}={v}" for k, v in rule.lowering.items())
        print(f"{rule.name:<{width}}  {rule.kind:<15} {rule.fused_op:<18} {lowering}  ({rule.source})")
    print(f"{len(rules)} rule(s)")
    return 0


def _explain(args: argparse.Namespace) -> int:
    rules = load_rule_set(args.rules, use_library=not args.no_library)
    if args.rule:
        unknown = sorted(set(args.rule) - {r.name for r in rules})
        if unknown:
            raise AutofuseError(f"--rule: no rule named {', '.join(unknown)}")
        rules = [r for r in rules if r.name in args.rule]
    graph = load_onnx(args.input).graph
    matches, misses = find_matches(graph, RuleIndex(rules), trace=True)
    by_rule = defaultdict(list)
    for match in matches:
        by_rule[match.rule.name].append(match)
    missed = defaultdict(list)
    for miss in misses:
        missed[miss.rule].append(miss)
    for rule in rules:
        found = by_rule[rule.name]
        print(f"{rule.name}: {len(found)} match(es), {len(missed[rule.name])} near miss(es)")
        for match in found:
            print(f"  matched at '{graph.nodes[match.root].name}' ({len(match.nodes)} nodes)")
        for miss in sorted(missed[rule.name], key=lambda m: -m.matched_nodes):
            print(f"  near miss at '{miss.anchor}' after {miss.matched_nodes} node(s): in `{miss.step}`: {miss.reason}")
    return 0
