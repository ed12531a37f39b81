"""The sizes a shape-generic kernel is checked at, and its inputs there.

A kernel generated for the bound shapes runs at those. A shape-generic one (codegen/dynamic.py)
is compiled once and the same binary runs at several bindings of the model's symbolic dims:

- the bound sizes (the inputs the group sees when the model runs, as for every kernel);
- every dim 1 (a decode step of one sequence);
- odd sizes (3 for a batch-like dim, 37 for any other: tails that fill no tile or 32-byte block);
- large sizes: the bound ones with the non-batch dims doubled until every shape-generic kernel of
  the model takes more than one tile on every vector core (within LARGEST_ELEMENTS per tensor; a
  kernel whose tiles are too large for that shows it in its `checked_sizes` tile counts).

A size the model's own shapes do not reach (a position table of 128 entries sliced to the
sequence) is not used: every value sized at the bound sizes must be sized there.

At a size other than the bound one a group's inputs are: the model's constants; the small tensors
the shape arithmetic computes there (Reshape targets, position ranges: exact, from the model's
own graph); and every other input the bound run's values laid out to the new shape (repeated as
needed) and, for floats, scaled element by element by a seeded factor in [0.5, 1.5], so that no
two rows are the same and a kernel reading the wrong row cannot match by chance. The GM bytes
predicted at each size are the cost model's at that size.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from autofuse.codegen.dynamic import input_dims
from autofuse.codegen.program import KernelProgram
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel, bind_dims, group_scheme, is_batch_dim
from autofuse.frontends.onnx import LoadedModel, concrete_evaluation
from autofuse.planner.merge import has_matmul
from autofuse.planner.plan import FusionGroup

ODD_BATCH = 3
ODD = 37
# The largest tensor (elements) the large sizes may give any shape-generic kernel of the model.
LARGEST_ELEMENTS = 1 << 22


class SizeUnavailable(Exception):
    """The model cannot be evaluated at a size (its shapes do not follow there)."""


class SizePoints:
    """The bindings of one model's symbolic dims its kernels run at, and their inputs there."""

    def __init__(self, loaded: LoadedModel, hw: Hardware, dims: Mapping[str, int], generic: list[KernelProgram],
                 bound_values: Mapping[str, np.ndarray], seed: int) -> None:
        self.loaded = loaded
        self.hw = hw
        self.bound_values = bound_values
        self.seed = seed
        names = input_dims(loaded.graph)
        self.bound = {n: dims[n] for n in names if n in dims}
        self.points: list[dict[str, int]] = [self.bound]
        self._evaluated: dict[tuple, tuple[object, CostModel] | Exception] = {}
        if generic and self.bound:
            self._sized_at_bound = self._sized_values(self.bound)
            ones = {n: 1 for n in self.bound}
            odd = {n: ODD_BATCH if is_batch_dim(n) else ODD for n in self.bound}
            self.points += [p for p in (ones, odd) if self._sized(p)]
            large = self._large(generic)
            if large is not None:
                self.points.append(large)

    def bindings(self, program: KernelProgram) -> list[dict[str, int]]:
        """The sizes `program` runs at: the bound ones first ({} for a kernel of static shapes)."""
        if not program.symbols:
            return [{}]
        out: list[dict[str, int]] = []
        for point in self.points:
            binding = {n: point[n] for n in program.symbols.used_model_dims}
            if binding not in out:
                out.append(binding)
        return out

    # -- a size -----------------------------------------------------------------------------------

    def _at(self, binding: Mapping[str, int]):
        full = {**self.bound, **binding}
        key = tuple(sorted(full.items()))
        found = self._evaluated.get(key)
        if found is None:
            try:
                graph = self.loaded.graph
                dims = bind_dims(graph, full)
                state = concrete_evaluation(self.loaded, dims)
                found = (state, CostModel(graph, self.hw, dims, state.shapes))
            except Exception as exc:  # noqa: BLE001 - the model's shapes do not follow these dims
                found = exc
            self._evaluated[key] = found
        if isinstance(found, Exception):
            raise SizeUnavailable(f"the model cannot be evaluated there ({found})")
        return found

    def values_at(self, binding: Mapping[str, int], group: FusionGroup) -> dict[str, np.ndarray]:
        """The group's inputs at `binding` (see the module's docstring)."""
        state, _ = self._at(binding)
        graph = self.loaded.graph
        rng = np.random.default_rng([self.seed, *sorted(binding.values())])
        out: dict[str, np.ndarray] = {}
        for value in group.inputs:
            base = self.bound_values.get(value)
            if value in graph.constants and base is not None:
                out[value] = base
                continue
            computed = state.values.get(value)
            shape = state.shapes.get(value)
            if computed is not None and (shape is None or tuple(np.shape(computed)) == tuple(shape)):
                kind = np.asarray(base).dtype if base is not None else None
                out[value] = np.asarray(computed, dtype=kind)
                continue
            if shape is None or base is None:
                raise SizeUnavailable(f"the shape of '{value}' is not known there")
            array = np.resize(np.asarray(base), tuple(shape))
            if array.dtype.kind == "f":
                array = (array * rng.uniform(0.5, 1.5, size=array.shape)).astype(array.dtype)
                if graph.type_of(value).dtype == "bfloat16":  # held as fp32: keep it a bf16 number
                    array = _bf16_rounded(array)
            out[value] = array
        return out

    def predicted_at(self, binding: Mapping[str, int], group: FusionGroup) -> int:
        """The cost model's GM bytes for the group's kernel at `binding`."""
        _, model = self._at(binding)
        graph = self.loaded.graph
        scheme = group_scheme(group.kind, group.lowering, has_matmul(graph, frozenset(group.members)))
        try:
            return model.group(frozenset(group.members), group.inputs, group.outputs, scheme).hbm_bytes
        except Exception as exc:  # noqa: BLE001 - the cost model refuses the group there
            raise SizeUnavailable(f"the cost model cannot price the group there ({exc})") from exc

    def _sized_values(self, binding: Mapping[str, int]) -> set[str] | None:
        try:
            state, _ = self._at(binding)
        except SizeUnavailable:
            return None
        return set(state.shapes)

    def _sized(self, binding: Mapping[str, int]) -> bool:
        """The model's shapes follow to `binding` (everything sized at the bound sizes is sized
        there: a position table of 128 entries cannot be sliced to 200)."""
        found = self._sized_values(binding)
        return found is not None and (self._sized_at_bound or set()) <= found

    # -- the large sizes --------------------------------------------------------------------------

    def _large(self, generic: list[KernelProgram]) -> dict[str, int] | None:
        grow = [n for n in self.bound if not is_batch_dim(n)] or list(self.bound)
        binding = dict(self.bound)
        best = None
        for _ in range(24):
            if any(_largest(p, binding) > LARGEST_ELEMENTS for p in generic) or not self._sized(binding):
                break
            best = dict(binding)
            if all(self._many_tiles(p, binding) for p in generic):
                break
            binding = {n: v * 2 if n in grow else v for n, v in binding.items()}
        return best if best is not None and best not in self.points else None

    def _many_tiles(self, program: KernelProgram, binding: Mapping[str, int]) -> bool:
        """More than one tile on every vector core at `binding` (the kernel's own tile rule)."""
        symbols, rule = program.symbols, program.tile.rule
        if rule is None:
            return True
        space = math.prod(symbols.shape_at(symbols.space_arg, {**self.bound, **binding}))
        _, tiles, cores = rule.counts(space, self.hw.aiv_cores)
        return cores == self.hw.aiv_cores and tiles >= 2 * cores


def _bf16_rounded(array: np.ndarray) -> np.ndarray:
    """fp32 values rounded to the nearest bfloat16 (ties to even), still held as fp32."""
    bits = np.asarray(array, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32)
    return np.where(np.isnan(array), array, rounded.view(np.float32))


def _largest(program: KernelProgram, binding: Mapping[str, int]) -> int:
    symbols = program.symbols
    return max(math.prod(symbols.shape_at(i, binding)) for i in range(len(symbols.shapes)))
