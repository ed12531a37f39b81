"""A unified diff of the modeling source that adds the plan's scopes as
`with torchair.scope.super_kernel(...)` blocks, for engineers who keep scopes in code (as the
cann-recipes models do).

Scopes are placed at module granularity, as `apply()` places them (apply.module_scopes): the
statement of the parent's `forward` that calls the scoped module is wrapped in a `with` block. A
decoder layer's child (self_attn, mlp) is wrapped in the layer's forward, with its label computed
from the layer's own index attribute (self.self_attn.layer_idx in transformers); a decoder layer is
wrapped in the model's loop over the layers; all decoder layers wrap the loop itself. A helper
added to each patched file opens the scope only under `enable and not is_prefill`.
"""
from __future__ import annotations

import ast
import difflib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from autofuse.errors import InputError
from autofuse.superkernel.apply import ModuleScope, module_scopes
from autofuse.superkernel.graph import templates
from autofuse.superkernel.plan import Plan

HELPER = "_autofuse_super_kernel"
_HELPER_SOURCE = '''

def {helper}(label, options, hidden_states):
    """SuperKernel scope added by `autofuse superkernel` ({strategy}): opened only under
    `enable and not is_prefill` (AUTOFUSE_SUPERKERNEL=0 disables it; more than one token per
    sequence is a prefill step). No label: no scope."""
    import contextlib
    import os

    enable = os.environ.get("AUTOFUSE_SUPERKERNEL", "1") != "0"
    tokens = hidden_states.shape[-2] if hidden_states.is_floating_point() and hidden_states.dim() >= 3 \\
        else hidden_states.shape[-1]
    is_prefill = tokens > 1
    if label is None or not (enable and not is_prefill):
        return contextlib.nullcontext()
    import torchair

    return torchair.scope.super_kernel(label, options)
'''


@dataclass
class _Site:
    """One call site to wrap: a statement in a class's forward, and the labels per layer."""

    cls: type
    kind: str  # "child" (self.<attr>(...)), "loop_call" (the loop variable called), "loop" (the for)
    attr: str
    options: str
    index_path: tuple[str, ...] | None  # attributes of a decoder layer holding its index
    labels: dict[int | None, str] = field(default_factory=dict)


def make_patch(model: Any, plan: Plan) -> str:
    """The unified diff (paths relative to the directory holding the top-level package, apply with
    `patch -p1` there). A scope that cannot be placed in the source is left out with a note in the
    header; a plan without scopes gives a patch of comments only."""
    scopes, notes = module_scopes(plan)
    diffs = []
    by_file: dict[str, list[_Site]] = {}
    for site in _sites(model, plan, scopes, notes):
        try:
            by_file.setdefault(inspect.getsourcefile(site.cls) or "", []).append(site)
        except TypeError:
            notes.append(f"{_what(site)}: the source of {site.cls.__name__} is not available")
    for path, file_sites in sorted(by_file.items()):
        if not path:
            notes.extend(f"{_what(site)}: the source of {site.cls.__name__} is not available" for site in file_sites)
            continue
        module = inspect.getmodule(file_sites[0].cls)
        relative = module.__name__.replace(".", "/") + ("/__init__.py" if path.endswith("__init__.py") else ".py")
        with open(path, encoding="utf-8") as handle:
            before = handle.read()
        after = _edit(before, file_sites, plan.strategy, notes)
        if after != before:
            diffs.append("".join(difflib.unified_diff(before.splitlines(keepends=True),
                                                      after.splitlines(keepends=True), f"a/{relative}", f"b/{relative}")))
    header = [(f"# autofuse superkernel: strategy {plan.strategy}, {len(plan.scopes)} scope(s), "
               f"gate `{plan.gate}`, options '{plan.options}'"),
              "# Apply in the directory that holds the model's package (site-packages for transformers):",
              "#   patch -p1 < superkernel.patch"] + [f"# note: {note}" for note in notes]
    if not diffs:
        header.append("# nothing to patch")
    return "\n".join(header) + "\n" + "".join(diffs)


def _what(site: _Site) -> str:
    return "scope " + ", ".join(sorted(set(site.labels.values())))


# -- where --------------------------------------------------------------------------------------


def _sites(model: Any, plan: Plan, scopes: list[ModuleScope], notes: list[str]) -> list[_Site]:
    sites: dict[tuple, _Site] = {}
    for scope in scopes:
        if scope.path == "":
            notes.append(f"scope {scope.label} covers the whole model: wrap the call of the model in "
                         "torchair.scope.super_kernel yourself, or use apply() or the FX pass")
            continue
        try:
            _add_site(model, plan.layer_container, scope, sites)
        except InputError as exc:
            notes.append(f"scope {scope.label} left out: {exc}")
    return list(sites.values())


def _add_site(model: Any, container: str | None, scope: ModuleScope, sites: dict[tuple, _Site]) -> None:
    """The call site that runs `scope`'s module, with the scope's label for its layer."""
    parent_path, _, attr = scope.path.rpartition(".")
    if scope.path == container:  # all decoder layers: wrap the loop over them
        cls = _forward_class(_module(model, parent_path))
        sites.setdefault((cls, "loop", attr), _Site(cls, "loop", attr, scope.options, None)).labels[None] = scope.label
    elif container is not None and parent_path == container:  # one decoder layer: wrap its call in the loop
        owner, _, name = container.rpartition(".")
        cls = _forward_class(_module(model, owner))
        site = sites.setdefault((cls, "loop_call", name),
                                _Site(cls, "loop_call", name, scope.options, _index_path(model, container)))
        site.labels[int(attr)] = scope.label
    else:  # a module inside a layer, or outside the layers: wrap its call in the parent's forward
        cls = _forward_class(_module(model, parent_path))
        layer = _layer_of(parent_path, container)
        index = _index_path(model, container) if layer is not None else None
        sites.setdefault((cls, "child", attr), _Site(cls, "child", attr, scope.options, index)).labels[layer] = scope.label


def _module(model: Any, path: str):
    return model.get_submodule(path) if path else model


def _forward_class(module: Any) -> type:
    """The class whose source defines the module's forward."""
    import torch

    for cls in type(module).__mro__:
        if cls is torch.nn.Module:
            break
        if "forward" in cls.__dict__:
            return cls
    raise InputError(f"{type(module).__name__} has no forward of its own to patch")


def _layer_of(path: str, container: str | None) -> int | None:
    match = re.match(rf"^{re.escape(container)}\.(\d+)$", path) if container else None
    return int(match.group(1)) if match else None


def _index_path(model: Any, container: str | None) -> tuple[str, ...] | None:
    """The attributes of a decoder layer that hold its own index (value i in layer i, for every
    layer; names from templates.yaml layer_index_attributes), e.g. ("self_attn", "layer_idx")."""
    if container is None:
        return None
    layers = list(_module(model, container))
    names = templates()["layer_index_attributes"]
    candidates = [(name,) for name in names] + [(child, name) for child, _ in layers[0].named_children() for name in names]
    for path in candidates:
        if all(_attr(layer, path) == i for i, layer in enumerate(layers)):
            return path
    return None


def _attr(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
    return obj


# -- how ----------------------------------------------------------------------------------------


def _edit(source: str, sites: list[_Site], strategy: str, notes: list[str]) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []  # (first line index, last line index, with-statement) of each statement to wrap
    for site in sites:
        try:
            statement, argument, layer = _statement(_forward_of(tree, site.cls), site)
        except InputError as exc:
            notes.append(f"{_what(site)} left out: {exc}")
            continue
        edits.append((statement.lineno - 1, statement.end_lineno - 1, statement.col_offset,
                      f"with {HELPER}({_label_expr(site, layer)}, {site.options!r}, {argument}):\n"))
    if not edits:
        return source
    for first, last, column, opening in sorted(edits, reverse=True):
        body = [(" " * 4 + line) if line.strip() else line for line in lines[first:last + 1]]
        lines[first:last + 1] = [" " * column + opening] + body
    anchor = max(n.end_lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    lines.insert(anchor, _HELPER_SOURCE.format(helper=HELPER, strategy=f"strategy {strategy}"))
    return "".join(lines)


def _forward_of(tree: ast.Module, cls: type) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    return item
    raise InputError(f"cannot find {cls.__name__}.forward in {inspect.getsourcefile(cls)}")


def _statement(function: ast.FunctionDef, site: _Site) -> tuple[ast.stmt, str, str]:
    """The statement to wrap, the expression of the hidden states its call passes, and the name
    holding the decoder layer there (the loop variable, or self)."""
    for loop in ast.walk(function):
        if site.kind != "child" and isinstance(loop, ast.For) and _mentions_self_attr(loop.iter, site.attr):
            if site.kind == "loop":
                return loop, _hidden(_first_call(loop, lambda f: isinstance(f, ast.Name))), ""
            variable = loop.target.id if isinstance(loop.target, ast.Name) else None
            call = _first_call(loop, lambda f, name=variable: isinstance(f, ast.Name) and f.id == name)
            if call is not None:
                return _enclosing(loop.body, call), _hidden(call), variable
    if site.kind == "child":
        call = _first_call(function, lambda f: _is_self_attr(f, site.attr))
        if call is not None:
            return _enclosing(function.body, call), _hidden(call), "self"
    raise InputError(f"cannot find where {site.cls.__name__}.forward calls '{site.attr}' to wrap it")


def _is_self_attr(node: ast.AST, attr: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.value, ast.Name) \
        and node.value.id == "self"


def _mentions_self_attr(node: ast.AST, attr: str) -> bool:
    return any(_is_self_attr(n, attr) for n in ast.walk(node))


def _first_call(node: ast.AST, test) -> ast.Call | None:
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and test(n.func)]
    return min(calls, key=lambda c: (c.lineno, c.col_offset)) if calls else None


def _enclosing(body: list[ast.stmt], call: ast.Call) -> ast.stmt:
    """The statement of `body` (or of a block nested in it) that holds `call` directly."""
    for statement in body:
        if not any(n is call for n in ast.walk(statement)):
            continue
        for block in ("body", "orelse", "finalbody"):
            inner = getattr(statement, block, None)
            if isinstance(inner, list) and any(n is call for s in inner for n in ast.walk(s)):
                return _enclosing(inner, call)
        return statement
    raise InputError("internal: call not found in its function")


def _hidden(call: ast.Call | None) -> str:
    if call is None:
        raise InputError("cannot find the call whose hidden states gate the scope")
    if call.args:
        return ast.unparse(call.args[0])
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    return ast.unparse(keywords.get("hidden_states") or next(iter(keywords.values())))


def _label_expr(site: _Site, layer: str) -> str:
    """The label at the site: a constant, or the plan's label of the layer the code runs in."""
    if None in site.labels:
        return repr(site.labels[None])
    if site.index_path is None:  # no index attribute: one label for all layers (GE splits it)
        return repr(re.sub(r"^layer_\d+", "layers", next(iter(site.labels.values()))))
    labels = dict(sorted(site.labels.items()))
    return f"{labels!r}.get({'.'.join((layer, *site.index_path))})"
