"""Apply a plan to a live model: wrap the chosen submodules' forward in
`torchair.scope.super_kernel(label, options)`, under the gate `enable and not is_prefill`.

Module granularity: each scope is realised by wrapping the smallest module that holds it (the
plan's `module`). Scopes that share a module become one scope named after the module, and a scope
inside another's module is covered by the outer one; GE then splits the wider scope at the ops
that cut it, which gives the same SuperKernels (the FX pass places `auto` scopes exactly). The
module list of the decoder layers has no forward of its own: each layer in the scope is wrapped,
all with the same label, which GE treats as one scope.

Forwards that something else already wraps are wrapped once more, outside: an instance `forward`
set by accelerate's hooks or by a hub-kernel `kernelize` (transformers' `kernels` integration), a
class forward behind decorators, and a model compiled with `torch.compile` (its modules are found
through the compiled wrapper's `_orig_mod`). The wrapper keeps the wrapped forward's name and
signature (`functools.wraps`: transformers reads forward signatures), and `remove()` puts back
exactly the forward that was there. Wrap after `kernelize`: a later `kernelize` replaces the
instance forward, scope included.

torchair cannot be imported without CANN, so on this machine `apply()` raises
TorchairUnavailable unless `scope_factory` is given (`air_ops.super_kernel` builds the same graph
with local stand-ins of torchair's ops, which is how it is tested here).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autofuse.errors import InputError
from autofuse.superkernel import air_ops
from autofuse.superkernel.plan import Plan


class TorchairUnavailable(InputError):
    """torchair is needed (on an Ascend machine with CANN) and cannot be imported."""


@dataclass(frozen=True)
class ModuleScope:
    """One module to wrap: its path in the model, the scope label and options."""

    path: str
    label: str
    options: str
    layers: tuple[int, ...] = ()  # for the decoder-layer list: the layers to wrap


def module_scopes(plan: Plan) -> tuple[list[ModuleScope], list[str]]:
    """The plan at module granularity (see the module docstring), outermost modules only, and notes
    on what that changes. A scope whose smallest module holds the decoder-layer list (an `auto`
    scope running from the last layer into the final norm) is placed on the decoder layers; one that
    holds no layer op there is left out: wrapping that module would cover the whole model."""
    container = plan.layer_container
    by_path: dict[str, ModuleScope] = {}
    notes: list[str] = []
    for scope in plan.scopes:
        path = scope.module
        if container is not None and (path == "" or container.startswith(path + ".")):
            if not scope.layers:
                notes.append(f"scope {scope.label} lies outside the decoder layers in module '{path or '(root)'}', "
                             "which holds them all: left out here (the FX pass places it)")
                continue
            notes.append(f"scope {scope.label} reaches past the decoder layers: placed on the decoder layers only")
            path = container
        known = by_path.get(path)
        layers = tuple(sorted(set(scope.layers) | set(known.layers if known else ())))
        label = f"layers_{layers[0]}_{layers[-1]}" if path == container else re.sub(r"_part\d+$", "", scope.label)
        by_path[path] = ModuleScope(path, label, scope.options, layers)
    kept = []
    for path, entry in by_path.items():
        outer = [other for other in by_path if other != path and (other == "" or path.startswith(other + "."))]
        if outer:
            notes.append(f"scope {entry.label} ({path}) is inside {by_path[min(outer, key=len)].label}: covered by it")
            continue
        kept.append(entry)
    return kept, notes


def default_is_prefill(args: tuple, kwargs: dict) -> bool:
    """More than one token per sequence in the first tensor argument: token ids [batch, tokens]
    or hidden states [batch, tokens, hidden]."""
    import torch

    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() >= 2:
            tokens = value.shape[-2] if value.is_floating_point() and value.dim() >= 3 else value.shape[-1]
            return tokens > 1
    return False


_MARK = "_autofuse_super_kernel_scope"  # on our wrapper: the label it opens


@dataclass
class Applied:
    """The wrapped modules; `remove()` restores their forward. `notes`: how the plan was placed
    at module granularity (module_scopes)."""

    wrapped: list[tuple[Any, str, str]] = field(default_factory=list)  # (module, path, label)
    notes: list[str] = field(default_factory=list)
    # per wrapped module, the instance forward it had before (None: the class's forward)
    _previous: list[Any] = field(default_factory=list, repr=False)

    def remove(self) -> None:
        """Give each module back the forward it had: an instance forward set by someone else
        (accelerate's hook, a hub kernel) is restored, not dropped."""
        for (module, _, _), previous in reversed(list(zip(self.wrapped, self._previous))):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self.wrapped.clear()
        self._previous.clear()


def apply(model: Any, plan: Plan, *, scope_factory: Callable[[str, str], Any] | None = None,
          enable: bool = True, is_prefill: Callable[[tuple, dict], bool] = default_is_prefill) -> Applied:
    """Wrap the forward of each module of the plan (module_scopes) in a SuperKernel scope.

    scope_factory(label, options) -> context manager; default `torchair.scope.super_kernel`.
    is_prefill(args, kwargs) of the wrapped forward decides the gate.
    """
    factory = scope_factory or _torchair_super_kernel()
    if factory is air_ops.super_kernel:  # the local stand-ins: defined now, as torchair's are at import,
        air_ops.ensure_air_ops()          # not while dynamo traces a wrapped forward
    model = _unwrap_compiled(model)
    scopes, notes = module_scopes(plan)
    applied = Applied(notes=notes)
    targets = []
    for entry in scopes:
        paths = [f"{entry.path}.{i}" for i in entry.layers] if entry.path == plan.layer_container \
            else [entry.path]
        targets += [(_submodule(model, path), path, entry) for path in paths]
    for module, path, _ in targets:  # check all before wrapping any: nothing half-applied
        label = getattr(module.forward, _MARK, None)
        if label is not None:
            raise InputError(f"module '{path}' already has the SuperKernel scope '{label}' from an earlier apply(): "
                             "call remove() on that one first")
    for module, path, entry in targets:
        applied._previous.append(module.__dict__.get("forward"))
        _wrap(module, entry.label, entry.options, factory, enable, is_prefill)
        applied.wrapped.append((module, path, entry.label))
    return applied


def _unwrap_compiled(model: Any) -> Any:
    """The module a `torch.compile(model)` wrapper compiles (its `_orig_mod`); dynamo traces the
    wrapped forwards when the compiled model next runs. Any other model as it is."""
    while type(model).__name__ == "OptimizedModule" and hasattr(model, "_orig_mod"):
        model = model._orig_mod
    return model


def _torchair_super_kernel():
    try:
        import torchair
    except Exception as exc:  # noqa: BLE001 - ImportError, or a missing CANN library (OSError)
        raise TorchairUnavailable(
            f"apply() needs torchair, which cannot be imported here ({type(exc).__name__}: {exc}); it runs on "
            "an Ascend machine with CANN. Elsewhere use the FX pass (autofuse.superkernel.SuperKernelPass), "
            "the source patch (superkernel.patch), or pass scope_factory=") from None
    return torchair.scope.super_kernel


def _submodule(model: Any, path: str):
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        raise InputError(f"the model has no module '{path}' (the plan was made for another model)") from None


def _wrap(module, label: str, options: str, factory, enable: bool, is_prefill) -> None:
    """Set an instance forward that opens the scope around the forward the module has now
    (bound: an instance forward someone else set, or the class's, decorators and all)."""
    original = module.forward

    @functools.wraps(original)
    def forward(*args, **kwargs):
        if enable and not is_prefill(args, kwargs):
            with factory(label, options):
                return original(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(forward, _MARK, label)
    module.forward = forward
