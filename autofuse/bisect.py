"""`autofuse bisect`: find the fused groups that make a rewritten model fail verification.

Every probe is one `fuse(..., verify=True, disable_fusions=...)` that keeps a chosen subset of the
plan's groups fused and switches the others off; group ids survive switching groups off, so the
subsets of one plan can be compared. The search is the minimizing delta debugging of Zeller and
Hildebrandt: halve the candidates, follow a half that fails on its own, and when neither half does,
the culprits span both halves: minimize one half with the other kept fused, then the other half
with only what the first search kept. The result is 1-minimal: fusing only those groups fails, and
dropping any one of them makes it pass. That costs O(k log n) probes for k culprits among n groups.

Groups that break the model independently of each other are found in rounds: after one culprit set
is found, it is switched off and the rest is checked again (that check is the fix offered to the
user), until the model without the culprits verifies.
"""
from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import onnx

from autofuse.api import fuse
from autofuse.cost.hardware import DEFAULT_TARGET
from autofuse.candidates.auto import DEFAULT_MAX_GROUP_SIZE
from autofuse.errors import VerificationError


@dataclass
class BisectResult:
    """What `bisect` found.

    culprits: the report entries (id, op_type, rule, members, ...) of the responsible groups, in
    plan order; empty when the fused model verifies. probes: how many fuse-and-verify runs it took,
    the first full run included. verified_without: whether the model with every group but the
    culprits fused verifies (True as well when nothing was wrong).
    """

    culprits: list[dict]
    probes: int
    verified_without: bool
    groups: int = 0  # fused groups in the full plan (not counting ones switched off by the caller)
    summary: str = ""  # verification summary of the full run, or of the culprits alone
    disabled: list[str] = field(default_factory=list)  # every group the fix switches off


class _Prober:
    """Runs and caches probes: `fails(kept)` fuses exactly the groups in `kept`."""

    def __init__(self, model, all_ids: list[str], fixed_off: set[str], kwargs: dict, log: Callable[[str], None]):
        self.model = model
        self.all_ids = all_ids
        self.fixed_off = fixed_off
        self.kwargs = kwargs
        self.log = log
        self.count = 1  # the full run that started the bisection
        self.summaries: dict[frozenset[str], str] = {}
        self.cache: dict[frozenset[str], bool] = {}

    def fails(self, kept: frozenset[str] | set[str]) -> bool:
        kept = frozenset(kept)
        if kept not in self.cache:
            off = sorted(self.fixed_off | (set(self.all_ids) - kept), key=_id_key)
            result = fuse(self.model, verify=True, disable_fusions=off, **self.kwargs)
            self.count += 1
            ok = result.verification.ok
            self.cache[kept] = not ok
            self.summaries[kept] = result.verification.summary()
            self.log(f"probe {self.count}: {len(kept)}/{len(self.all_ids)} groups fused: "
                     f"{'ok' if ok else 'mismatch'}")
        return self.cache[kept]

    def minimize(self, candidates: list[str], base: frozenset[str]) -> list[str]:
        """A 1-minimal subset C of `candidates` with fails(base | C), given fails(base | candidates)
        and not fails(base)."""
        if len(candidates) == 1:
            return candidates
        half = len(candidates) // 2
        first, second = candidates[:half], candidates[half:]
        if self.fails(base | set(first)):
            return self.minimize(first, base)
        if self.fails(base | set(second)):
            return self.minimize(second, base)
        # Neither half fails alone: culprits in both. Keep `second` fused while minimizing `first`,
        # then keep only what was found in `first` while minimizing `second`.
        found_first = self.minimize(first, base | set(second))
        found_second = self.minimize(second, base | set(found_first))
        return found_first + found_second


def _id_key(group_id: str):
    digits = group_id[1:]
    return (0, int(digits)) if group_id.startswith("g") and digits.isdigit() else (1, group_id)


def bisect(
    model: onnx.ModelProto | str | os.PathLike,
    *,
    log: Callable[[str], None] | None = None,
    **fuse_kwargs,
) -> BisectResult:
    """Find a smallest set of fused groups that makes `fuse(model, **fuse_kwargs)` fail verification.

    `fuse_kwargs` are those of `fuse` (opt_level, target, seed, rules, ...); `verify` is forced on.
    Groups in `disable_fusions` stay switched off in every probe. `log` receives one line per probe.
    """
    log = log or (lambda line: None)
    kwargs = dict(fuse_kwargs)
    kwargs.pop("verify", None)
    fixed_off = set(kwargs.pop("disable_fusions", ()) or ())
    full = fuse(model, verify=True, disable_fusions=sorted(fixed_off, key=_id_key), **kwargs)
    entries = {g["id"]: g for g in full.report["groups"]}
    all_ids = list(entries)
    summary = full.verification.summary()
    if full.verification.ok:
        return BisectResult([], 1, True, len(all_ids), summary, sorted(fixed_off, key=_id_key))
    log(f"probe 1: {len(all_ids)}/{len(all_ids)} groups fused: mismatch")
    prober = _Prober(model, all_ids, fixed_off, kwargs, log)
    prober.cache[frozenset(all_ids)] = True
    prober.summaries[frozenset(all_ids)] = summary
    if not all_ids or prober.fails(frozenset()):
        # Even the model with nothing fused fails: not a fusion problem (nondeterministic model,
        # onnxruntime cannot run it...). Nothing to blame.
        return BisectResult([], prober.count, False, len(all_ids),
                            prober.summaries.get(frozenset(), summary), sorted(fixed_off, key=_id_key))
    culprits: list[str] = []
    pool = list(all_ids)
    while True:  # invariant: fails(pool), not fails(empty set)
        found = prober.minimize(pool, frozenset())
        culprits.extend(found)
        pool = [g for g in pool if g not in found]
        if not pool or not prober.fails(frozenset(pool)):
            break
    culprits.sort(key=_id_key)
    prober.fails(frozenset(culprits))
    return BisectResult(
        [entries[g] for g in culprits], prober.count, True, len(all_ids),
        prober.summaries[frozenset(culprits)], sorted(fixed_off | set(culprits), key=_id_key),
    )


# --- command line ------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    from autofuse.cli import add_plan_options

    p = argparse.ArgumentParser(
        prog="autofuse bisect",
        description="Find the fused groups that make the rewritten model fail verification, "
                    "and the --disable-fusion options that fix it.",
    )
    p.add_argument("--input", required=True, metavar="PATH.onnx", help="the ONNX model to check")
    add_plan_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    result = bisect(
        args.input, log=print, opt_level=args.opt_level, target=args.target,
        max_group_size=args.max_group_size, seed=args.seed, rules=args.rules,
        disable_rules=args.disable_rule, use_library=not args.no_library,
    )
    if not result.culprits and result.verified_without:
        print(f"ok: the rewritten model verifies ({result.groups} fused groups): nothing to bisect")
        return 0
    if not result.culprits:
        print(f"the model fails verification even with no group fused: {result.summary}")
        print(f"{result.probes} probes")
        raise VerificationError("the mismatch is not caused by a fusion: " + result.summary)
    ids = [c["id"] for c in result.culprits]
    print(f"{len(ids)} of {result.groups} fused groups break verification:")
    for entry in result.culprits:
        print(f"  {entry['id']}  {entry['op_type']}  rule {entry['rule'] or 'automatic'}: "
              f"{', '.join(entry['members'])}")
    print(f"with only {'this group' if len(ids) == 1 else 'these groups'} fused: {result.summary}")
    print("fix (verified): " + _fix_command(args, result.disabled))
    print(f"{result.probes} probes")
    raise VerificationError(f"fused group(s) {', '.join(ids)} break verification")


def _fix_command(args: argparse.Namespace, disabled: Sequence[str]) -> str:
    words = ["autofuse", "--input", args.input, "--verify"]
    if args.opt_level != 3:
        words += ["--opt-level", str(args.opt_level)]
    if args.target != DEFAULT_TARGET:
        words += ["--target", args.target]
    if args.max_group_size != DEFAULT_MAX_GROUP_SIZE:
        words += ["--max-group-size", str(args.max_group_size)]
    if args.seed:
        words += ["--seed", str(args.seed)]
    for f in args.rules:
        words += ["--rules", f]
    if args.no_library:
        words.append("--no-library")
    for name in args.disable_rule:
        words += ["--disable-rule", name]
    for group in disabled:
        words += ["--disable-fusion", group]
    return shlex.join(words)
