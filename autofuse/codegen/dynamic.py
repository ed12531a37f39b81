"""Shape-generic kernels: which generated kernels run at any size of the model's symbolic dims.

A fused group over a symbolic space (batch, sequence) is lowered at the bound sizes (a dim of 1
taken as 2: a dim of 1 drops out of strides, and code lowered there would serve that size only;
the layout must not change for it) and again at one more binding per dim of the model's inputs
(that dim doubled), each priced by the cost model at its own sizes, and all are rendered as
shape-generic sources. Every number that differs
between them must be a product of the dims: a tensor's extent, a count, a stride or an offset
of an index expression is `c * d1^a1 * d2^a2 ...` with `a` read off the doublings (0, 1 or 2)
and `c` from the bound sizes. A further binding (each dim 2n + 2) must then give exactly what
the products predict, every other byte of every file alike. Such a kernel takes its dims at run
time: the tiling function reads them from the inputs' shapes and computes the counts, and the
kernel's size-dependent numbers become those products of `td_.dims[...]`.

The kernel's own dims are the products of model dims its inputs carry on one axis (batch and
seq, or batch*seq where an exporter flattened them, or a dim ONNX shape inference could only
name, unk__N, found to be one of those): everything else must be a product of them.

Otherwise the kernel is generated for the bound shapes, and `static_reason` says why: a size it
depends on is no product of the dims (a row length follows one and so would the UB), an input
kept whole in UB grows with one, or a number follows the dims in some other way.
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from autofuse.codegen.emit import NUMBER, project_files, split_comment
from autofuse.codegen.lower import LowerContext, lower_group
from autofuse.codegen.program import KernelProgram, SymDim, Symbols
from autofuse.cost.model import CostModel, bind_dims, group_scheme
from autofuse.ir.graph import Graph
from autofuse.planner.merge import has_matmul
from autofuse.planner.plan import FusionGroup, group_cost

ShapesAt = Callable[[Mapping[str, int]], Mapping[str, tuple[int, ...]]]
Powers = tuple[int, ...]  # exponent of each model dim

_COMMENT = re.compile(r"//[^\n]*")
_MOST_POWER = 2  # d^2 at most (a [S, S] mask's extent)


def input_dims(graph: Graph) -> tuple[str, ...]:
    """The symbolic dims the model's inputs name (what a caller binds: batch, sequence, ...)."""
    names: dict[str, None] = {}
    for value in graph.inputs:
        for d in graph.type_of(value).shape or ():
            if isinstance(d, str) and not d.startswith("unk__"):
                names[d] = None
    return tuple(names)


@dataclass
class Bindings:
    """The model at the sizes a kernel is generated at and at the other bindings that tell what
    follows the dims: each dim doubled alone, and the check binding. Made once per model, when
    first needed."""

    graph: Graph
    ctx: LowerContext
    dims: dict[str, int]  # the bound sizes (every dim the cost model binds)
    names: tuple[str, ...]  # the model's input dims, those bound
    shapes_at: ShapesAt | None
    _made: dict[str, LowerContext | str] = field(default_factory=dict)

    @classmethod
    def of(cls, graph: Graph, ctx: LowerContext, dims: Mapping[str, int], shapes_at: ShapesAt | None) -> Bindings:
        return cls(graph, ctx, dict(dims), tuple(n for n in input_dims(graph) if n in dims), shapes_at)

    def base(self) -> dict[str, int]:
        """The sizes the generic kernel is lowered at: the bound ones, with a dim of 1 made 2 (a
        dim of 1 drops out of strides and index expressions, so code lowered there would serve
        that size only)."""
        return {n: max(self.dims[n], 2) for n in self.names}

    def doubled(self, name: str) -> dict[str, int]:
        return {n: v * (2 if n == name else 1) for n, v in self.base().items()}

    def check(self) -> dict[str, int]:
        return {n: 2 * v + 2 for n, v in self.base().items()}

    def sizes(self, key: str) -> dict[str, int]:
        return self.base() if key == "base" else self.check() if key == "check" else self.doubled(key)

    def context(self, key: str) -> LowerContext | str:
        """The lowering context at binding `key` ("base"; a dim's name: that dim doubled;
        "check"), or why there is none."""
        if key not in self._made:
            if self.shapes_at is None:
                self._made[key] = "no other binding of the model's dims to check the kernel at"
            else:
                try:
                    dims = bind_dims(self.graph, self.sizes(key))
                    model = CostModel(self.graph, self.ctx.hw, dims, self.shapes_at(dims))
                    self._made[key] = LowerContext(self.graph, self.ctx.hw, model, self.ctx.rules)
                except Exception as exc:  # noqa: BLE001 - a model whose shapes do not follow its dims
                    self._made[key] = f"the model's shapes cannot be evaluated at other sizes ({exc})"
        return self._made[key]


def shape_generic(program: KernelProgram, group: FusionGroup, bindings: Bindings) -> KernelProgram:
    """`program` made shape-generic where everything in it that follows the symbolic dims is a
    product of them, else `program` with the reason it stays specialised to the bound shapes."""
    tile = group.cost.tile if group.cost else None
    if tile is None:
        return program
    if not tile.dynamic:  # static shapes, or rows as long as a symbolic dim (CostModel.generic_space)
        if bindings.ctx.model.symbolic((*group.inputs, *group.outputs)):
            return replace(program, static_reason="a row length follows a symbolic dim (the tile's UB buffers would)")
        return program
    found = _generic(program, group, bindings)
    if isinstance(found, str):
        return replace(program, static_reason=found)
    return found


def _generic(program: KernelProgram, group: FusionGroup, bindings: Bindings) -> KernelProgram | str:
    if not bindings.names:
        return "the model's inputs name no symbolic dim"
    keys = [*bindings.names, "check"]
    if bindings.base() != {n: bindings.dims[n] for n in bindings.names}:
        keys.insert(0, "base")
    others: dict[str, KernelProgram] = {}
    for key in keys:
        ctx = bindings.context(key)
        if isinstance(ctx, str):
            return ctx
        there = _lowered_at(ctx, group)
        if isinstance(there, str):
            return f"at other sizes of {', '.join(bindings.names)}: {there}"
        others[key] = there
    bound = program
    program = others.pop("base", program)
    if [q.buffers for q in program.parts] != [q.buffers for q in bound.parts] or program.tile.rule != bound.tile.rule:
        # the kernel priced at the bound sizes must be the one written (a dim of 1 changes it)
        return "its layout at the bound sizes differs from the one at other sizes (a dim of 1 changes it)"
    if any(p.parts and [q.buffers for q in p.parts] != [q.buffers for q in program.parts] for p in others.values()):
        return _why_buffers(program, others["check"])
    fit = _Fit(bindings, program, others)
    symbols = fit.symbols()
    if isinstance(symbols, str):
        return symbols
    texts = {key: _texts(replace(p, symbols=symbols), bindings) for key, p in others.items()}
    here = _texts(replace(program, symbols=symbols), bindings)
    kernel = f"op_kernel/{program.kernel_name}.cpp"
    for path, text in here.items():
        if path != kernel and any(_COMMENT.sub("", t[path]) != _COMMENT.sub("", text) for t in texts.values()):
            return "its host code follows a symbolic dim (a row length, a chunk, a MatMul's N or K)"
    numbers, why = fit.kernel_numbers(here[kernel], {key: t[kernel] for key, t in texts.items()})
    if numbers is None:
        return why
    return replace(program, symbols=symbols, kernel_numbers=numbers)


class _Fit:
    """The products of model dims the lowerings' numbers follow, and the kernel's dims."""

    def __init__(self, bindings: Bindings, here: KernelProgram, others: Mapping[str, KernelProgram]) -> None:
        self.b = bindings
        self.here = here
        self.others = others
        self.bound = [bindings.base()[n] for n in bindings.names]
        self.check_dims = [bindings.check()[n] for n in bindings.names]
        self.basis: list[Powers] = []  # the kernel's dims, as powers of the model's

    def product(self, here: int, there: Mapping[str, int]) -> tuple[int, Powers] | None:
        """(c, powers) with here = c * prod(bound ** powers), each dim doubled giving `there[dim]`
        and the check binding `there["check"]` (None when no product fits)."""
        powers = []
        for name in self.b.names:
            value = there[name]
            if here == 0:
                if value != 0:
                    return None
                powers.append(0)
                continue
            ratio, rest = divmod(value, here)
            if rest or ratio not in (1, 2, 4):
                return None
            powers.append(ratio.bit_length() - 1)
        scale = math.prod(v ** p for v, p in zip(self.bound, powers))
        coef, rest = divmod(here, scale) if scale else (0, 1)
        if rest or coef * math.prod(v ** p for v, p in zip(self.check_dims, powers)) != there["check"]:
            return None
        return coef, tuple(powers)

    def symbols(self) -> Symbols | str:
        tensors = _tensors(self.here)
        others = {k: _tensors(p) for k, p in self.others.items()}
        if any(len(t) != len(tensors) or [len(a.shape) for a in t] != [len(a.shape) for a in tensors]
               for t in others.values()):
            return "its inputs and outputs differ at other sizes"
        axes: list[list[int | tuple[int, Powers]]] = []
        for i, arg in enumerate(tensors):
            shape = []
            for axis, extent in enumerate(arg.shape):
                there = {k: t[i].shape[axis] for k, t in others.items()}
                if all(v == extent for v in there.values()):
                    shape.append(extent)
                    continue
                fit = self.product(extent, there)
                if fit is None:
                    return f"the extent of '{arg.onnx}' (axis {axis}) is no product of {', '.join(self.b.names)}"
                shape.append(fit)
            axes.append(shape)
        n_in = len(self.here.inputs)
        sources: list[tuple[int, int]] = []
        for i, shape in enumerate(axes[:n_in]):
            for axis, extent in enumerate(shape):
                if isinstance(extent, tuple) and extent[0] == 1 and extent[1] not in self.basis:
                    self.basis.append(extent[1])
                    sources.append((i, axis))
        if not self.basis:
            return "none of its inputs carries a symbolic dim on one axis"
        shapes = []
        for i, shape in enumerate(axes):
            dims = []
            for extent in shape:
                if isinstance(extent, int):
                    dims.append(extent)
                    continue
                sym = self.in_kernel_dims(*extent)
                if sym is None:
                    return f"a size of '{tensors[i].onnx}' follows dims its inputs do not carry"
                dims.append(sym)
            shapes.append(tuple(dims))
        names = tuple(_product_name(p, self.b.names) for p in self.basis)
        space_arg = 0
        if self.here.tile.rule is not None:
            found = [i for i, a in enumerate(tensors) if a.numel == self.here.tile.space
                     and all(_tensors(p)[i].numel == p.tile.space for p in self.others.values())]
            if not found:
                return "no input or output spans the walk's space"
            space_arg = found[0]
        return Symbols(names, tuple(sources), tuple(shapes), space_arg, self.b.names, tuple(self.basis))

    def in_kernel_dims(self, coef: int, powers: Powers) -> SymDim | None:
        """coef * prod(model dims ** powers) as a product of the kernel's dims (fewest factors)."""
        best = None
        for counts in itertools.product(range(_MOST_POWER + 1), repeat=len(self.basis)):
            total = tuple(sum(c * b[j] for c, b in zip(counts, self.basis)) for j in range(len(powers)))
            if total == powers and (best is None or sum(counts) < sum(best)):
                best = counts
        return None if best is None else SymDim(coef, tuple(best))

    def kernel_numbers(self, here: str, there: Mapping[str, str]) -> tuple[tuple | None, str]:
        """(the numbers of the kernel's source that follow the dims, each (line, which number of
        the line's code, its product of `td_.dims[...]`); "") or (None, why that cannot be)."""
        lines = here.split("\n")
        other_lines = {k: t.split("\n") for k, t in there.items()}
        if any(len(t) != len(lines) for t in other_lines.values()):
            return None, "its kernel's code differs at other sizes"
        out = []  # (line, number, C++)
        in_class = False
        for index, line in enumerate(lines):
            code, comment = split_comment(line)
            if code.startswith("class Kernel"):
                in_class = True
            elif code.startswith("};") and in_class:
                in_class = False
            codes = {k: split_comment(t[index])[0] for k, t in other_lines.items()}
            if all(c == code for c in codes.values()):
                continue
            pieces = NUMBER.split(code)
            numbers = NUMBER.findall(code)
            others = {k: (NUMBER.split(c), NUMBER.findall(c)) for k, c in codes.items()}
            if any(p != pieces or len(n) != len(numbers) for p, n in others.values()):
                return None, f"its kernel's code differs at other sizes beyond numbers ({code.strip()[:60]})"
            if not in_class or "InitBuffer" in code:
                return None, "its Unified Buffer or entry code follows a symbolic dim"
            for j, number in enumerate(numbers):
                there_values = {k: int(n[j]) for k, (_, n) in others.items()}
                if all(v == int(number) for v in there_values.values()):
                    continue
                fit = self.product(int(number), there_values)
                sym = None if fit is None else self.in_kernel_dims(*fit)
                if sym is None:
                    return None, ("a number in its kernel follows the dims other than as a product "
                                  f"({code.strip()[:60]})")
                out.append((index, j, f"({sym.cpp(lambda k: f'td_.dims[{k}]')})"))
        return tuple(out), ""


def _product_name(powers: Powers, names: tuple[str, ...]) -> str:
    return "*".join(n if p == 1 else f"{n}^{p}" for n, p in zip(names, powers) if p) or "1"


def _tensors(program: KernelProgram):
    return (*program.inputs, *program.outputs, *(a for a, _ in program.workspace))


def _lowered_at(ctx: LowerContext, group: FusionGroup) -> KernelProgram | str:
    """The group priced and lowered at another binding (or why it cannot be)."""
    graph = ctx.graph
    scheme = group_scheme(group.kind, group.lowering, has_matmul(graph, group.members))
    try:
        estimate = ctx.model.group(frozenset(group.members), group.inputs, group.outputs, scheme)
    except Exception as exc:  # noqa: BLE001 - the cost model refuses it there (a limit, an unknown shape)
        return f"the cost model cannot price it ({exc})"
    priced = replace(group, cost=group_cost(estimate))
    if priced.cost.tile is None:
        return "the cost model gives it no tile"
    ctx.constants_read.clear()
    result = lower_group(ctx, priced)
    if not isinstance(result, KernelProgram):
        return getattr(result, "reason", "the generator declines it")
    return result


def _texts(program: KernelProgram, bindings: Bindings) -> dict[str, str]:
    return project_files(program, bindings.ctx.hw)


def _why_buffers(here: KernelProgram, there: KernelProgram) -> str:
    if any(a.width != b.width for a, b in zip(here.parts, there.parts)):
        return "a row length follows a symbolic dim (the tile's UB buffers would)"
    return "an input kept whole in UB (its size) follows a symbolic dim"
