"""torchair's scope ops, `air.scope_enter` / `air.scope_exit`, for machines without torchair.

torchair defines them (torchair/scope/_scope.py) as side-effect ops of the `air` library whose
kernels do nothing in a graph; its `super_kernel(scope, options)` context manager calls them with
the keys `_super_kernel_scope` and `_super_kernel_options`, so dynamo records them as FX nodes, and
torchair's converter turns them into attributes on the GE ops in between. torchair cannot be
imported without CANN (superkernel.md 4). `ensure_air_ops()` defines the same two ops, with
torchair's schemas, as no-ops, unless they already exist (torchair imported first), so the graphs
autofuse builds run, export, compile and can be inspected here, and are the graphs torchair expects.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

SCOPE_KEY, OPTIONS_KEY = "_super_kernel_scope", "_super_kernel_options"
# torchair's schemas (torchair/scope/_scope.py, 2026): need_execute makes torchair's converter
# push the attributes while it converts; in a graph the ops do nothing.
ENTER_SCHEMA = "scope_enter(str[] keys, str[] values, bool need_execute=False) -> None"
EXIT_SCHEMA = "scope_exit() -> None"
_LIBRARY = []  # keeps our torch.library.Library alive (a dropped Library unregisters its ops)


@functools.cache
def ensure_air_ops() -> str:
    """Make torch.ops.air.scope_enter/scope_exit available; returns who defined them."""
    import torch
    from torch.fx.node import has_side_effect

    if hasattr(torch.ops.air, "scope_enter") and hasattr(torch.ops.air, "scope_exit"):
        return "already defined (torchair)"
    library = torch.library.Library("air", "FRAGMENT")
    library.define(ENTER_SCHEMA)
    library.define(EXIT_SCHEMA)
    library.impl("scope_enter", _enter, "CompositeExplicitAutograd")
    library.impl("scope_exit", _exit, "CompositeExplicitAutograd")
    has_side_effect(torch.ops.air.scope_enter.default)  # dead-code elimination keeps them
    has_side_effect(torch.ops.air.scope_exit.default)
    _LIBRARY.append(library)
    return "autofuse (no-op stand-ins)"


def _enter(keys: list[str], values: list[str], need_execute: bool = False) -> None:
    return None


def _exit() -> None:
    return None


@contextlib.contextmanager
def super_kernel(scope: str | None, options: str = "") -> Iterator[None]:
    """The same as `torchair.scope.super_kernel(scope, options)`, on the local ops: a SuperKernel
    scope around the ops run (or traced) inside the block. `None` means "do not fuse" (an empty
    scope name, as torchair writes it)."""
    import torch

    if not torch.compiler.is_compiling():  # while dynamo traces, the ops exist already (defined below)
        ensure_air_ops()
    torch.ops.air.scope_enter([SCOPE_KEY, OPTIONS_KEY], ["" if scope is None else scope, options])
    try:
        yield
    finally:
        torch.ops.air.scope_exit()
