"""Apply a plan to an FX graph: `air.scope_enter` before each scope's first node and
`air.scope_exit` after its last, with the keys torchair reads (`_super_kernel_scope`,
`_super_kernel_options`), correctly paired.

`SuperKernelPass` has the signature torchair expects for `CompilerConfig.post_grad_custom_post_pass`
(`fn(gm, example_inputs, config)`): it plans the graph torchair hands it (the post-AOT ATen graph,
after torchair's own passes) and inserts the scopes, in decode steps only.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from autofuse.errors import InputError
from autofuse.superkernel.air_ops import OPTIONS_KEY, SCOPE_KEY, ensure_air_ops
from autofuse.superkernel.graph import looks_like_prefill
from autofuse.superkernel.options import parse_options
from autofuse.superkernel.plan import Plan
from autofuse.superkernel.planner import DEFAULT_TARGET, STRATEGIES, plan_superkernel

ENTER, EXIT = "air.scope_enter.default", "air.scope_exit.default"


def insert_scopes(gm, plan: Plan):
    """Insert the plan's scopes into `gm` (in place; also returned). The plan must have been made
    for this graph: its scope boundaries are node names of `gm`."""
    import torch

    ensure_air_ops()
    nodes = {n.name: n for n in gm.graph.nodes}
    order = {name: i for i, name in enumerate(nodes)}
    previous_end = -1
    for scope in sorted(plan.scopes, key=lambda s: order.get(s.start, -1)):
        for name in (scope.start, scope.end):
            if name not in nodes:
                raise InputError(f"scope '{scope.label}': node '{name}' is not in this graph "
                                 "(the plan was made for another graph)")
        if not previous_end < order[scope.start] <= order[scope.end]:
            raise InputError(f"scope '{scope.label}': nodes '{scope.start}'..'{scope.end}' overlap another scope")
        previous_end = order[scope.end]
        with gm.graph.inserting_before(nodes[scope.start]):
            enter = gm.graph.call_function(torch.ops.air.scope_enter.default,
                                           ([SCOPE_KEY, OPTIONS_KEY], [scope.label, scope.options]))
        with gm.graph.inserting_after(nodes[scope.end]):
            leave = gm.graph.call_function(torch.ops.air.scope_exit.default, ())
        for marker in (enter, leave):
            marker.meta["autofuse_superkernel"] = scope.label
            if "nn_module_stack" in nodes[scope.start].meta:
                marker.meta["nn_module_stack"] = dict(nodes[scope.start].meta["nn_module_stack"])
    gm.graph.lint()
    gm.recompile()
    scopes_in(gm)  # the pairing check torchair runs after a custom pass
    return gm


def _op_name(target) -> str:
    """The overload name of an op target: dynamo's graphs call the op packet
    (`torch.ops.air.scope_enter`), exported and AOT graphs its `.default` overload."""
    name = str(target)
    return name + ".default" if name in (ENTER[:-len(".default")], EXIT[:-len(".default")]) else name


def scopes_in(gm) -> list[tuple[str, str, list[str]]]:
    """Every SuperKernel scope of `gm` as (label, options, names of the nodes inside), checking
    that each scope_enter has its scope_exit (what torchair's `_valid_graph` checks)."""
    stack: list[tuple[str, str, list[str]]] = []
    found: list[tuple[str, str, list[str]]] = []
    for node in gm.graph.nodes:
        target = _op_name(node.target)
        if target == ENTER:
            attrs = dict(zip(node.args[0], node.args[1]))
            stack.append((attrs.get(SCOPE_KEY), attrs.get(OPTIONS_KEY, ""), []))
        elif target == EXIT:
            if not stack:
                raise InputError(f"node '{node.name}': scope_exit without a scope_enter")
            entry = stack.pop()
            if entry[0] is not None:
                found.append(entry)
        elif node.op == "call_function":
            for entry in stack:
                entry[2].append(node.name)
    if stack:
        raise InputError(f"scope '{stack[-1][0]}' has a scope_enter without a scope_exit")
    return found


class SuperKernelPass:
    """A torchair `post_grad_custom_post_pass`: plans SuperKernel scopes on the graph it is given
    and inserts them, under the gate `enable and not is_prefill`.

        config = torchair.CompilerConfig()
        config.post_grad_custom_post_pass = SuperKernelPass("auto", "stream-fusion=1")

    enable: False turns the pass off (AUTOFUSE_SUPERKERNEL=0 in the environment does too).
    is_prefill: a bool, or a function (gm, example_inputs) -> bool; by default a graph whose token
    input holds more than one token is a prefill step. plan: apply this plan instead of planning
    (it must have been made for the same graph). `last_plan` keeps the plan of the latest call.
    """

    def __init__(self, strategy: str = "auto", options: str = "", *, plan: Plan | None = None,
                 enable: bool = True, is_prefill: bool | Callable[[Any, Any], bool] | None = None,
                 target: str = DEFAULT_TARGET, hccl_aiv: bool = False, optable: str | None = None) -> None:
        if strategy not in STRATEGIES:
            raise InputError(f"unknown strategy '{strategy}'; one of {', '.join(STRATEGIES)}")
        parse_options(options, where="SuperKernelPass options")  # fail when configured, not when compiling
        self.strategy, self.options, self.plan = strategy, options, plan
        self.enable, self.is_prefill = enable, is_prefill
        self.target, self.hccl_aiv, self.optable = target, hccl_aiv, optable
        self.last_plan: Plan | None = None

    def __call__(self, gm, example_inputs=None, config=None):
        if not self.enable or os.environ.get("AUTOFUSE_SUPERKERNEL") == "0" or self._prefill(gm, example_inputs):
            return gm
        plan = self.plan or plan_superkernel(gm, strategy=self.strategy, options=self.options,
                                             example_inputs=example_inputs, target=self.target,
                                             hccl_aiv=self.hccl_aiv, optable=self.optable)
        self.last_plan = plan
        return insert_scopes(gm, plan)

    def _prefill(self, gm, example_inputs) -> bool:
        if callable(self.is_prefill):
            return bool(self.is_prefill(gm, example_inputs))
        return looks_like_prefill(gm) if self.is_prefill is None else bool(self.is_prefill)
