"""Plan -> the generated kernel of every fused group (lowered and rendered, not yet written)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from autofuse.codegen import reuse
from autofuse.codegen.dynamic import Bindings, ShapesAt, shape_generic
from autofuse.codegen.emit import onnx_plugin, project_files
from autofuse.codegen.lower import LowerContext, lower_group
from autofuse.codegen.program import CallThrough, HostOnly, KernelProgram, Unsupported
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel
from autofuse.errors import GeneratorError
from autofuse.ir.graph import Graph
from autofuse.planner.plan import FUSED_DOMAIN, FUSED_OPSET_VERSION, Plan

KERNELS_DIR = "kernels"


@dataclass
class GeneratedKernel:
    """One group's outcome: a kernel program and its project files, or a record saying why not.
    Groups whose kernels are the same source (a block repeated in every layer) share one project:
    `same_as` names the group that owns it. A repeat's own program (the owner's, renamed to the
    repeat's ONNX values) is made when first read: most runs only need its name."""

    group_id: str
    built: KernelProgram | None = None
    record: CallThrough | HostOnly | Unsupported | None = None
    files: dict[str, str] = field(default_factory=dict)  # path inside `directory` -> text
    same_as: str | None = None
    pending: Callable[[], KernelProgram] | None = field(default=None, repr=False, compare=False)
    op_name: str = ""  # CANN op type of the project (the owner's, for a repeat)
    kernel_name: str = ""
    family: str = ""
    # shape-generic: the kernel's symbolic dims (empty: generated for the bound shapes, and why)
    symbolic_dims: tuple[str, ...] = ()
    static_reason: str = ""

    def __post_init__(self) -> None:
        if self.built is not None:
            self.op_name, self.kernel_name = self.built.op_name, self.built.kernel_name
            self.family = self.built.family
            self.symbolic_dims = self.built.symbols.names if self.built.symbols else ()
            self.static_reason = self.built.static_reason

    @property
    def generic(self) -> bool:
        """Shape-generic: runs at any size of the model's symbolic dims."""
        return bool(self.symbolic_dims)

    @property
    def generated(self) -> bool:
        return self.built is not None or self.pending is not None

    @property
    def program(self) -> KernelProgram | None:
        if self.pending is not None:
            try:
                self.built, self.pending = self.pending(), None
            except Exception as exc:  # a bug in renaming an earlier group's program
                raise GeneratorError(self.group_id, "the kernel generator", exc, f"a repeat of {self.same_as}") from exc
        return self.built

    @property
    def directory(self) -> str:
        return f"{KERNELS_DIR}/{self.op_name}" if self.generated else ""

    @property
    def source(self) -> str | None:
        """The kernel's path under OUTDIR (None when it has no source)."""
        if not self.generated:
            return None
        return f"{self.directory}/op_kernel/{self.kernel_name}.cpp"


def generate_kernels(graph: Graph, plan: Plan, hardware: Hardware, dims: Mapping[str, int],
                     static: Mapping[str, tuple[int, ...]], rules: Sequence = (), *,
                     reuse_lowering: bool = True, shapes_at: ShapesAt | None = None) -> dict[str, GeneratedKernel]:
    """Every group of `plan` lowered for `hardware`, at the sizes the cost model priced.

    A group with the same structure as an earlier one (the same block in another layer, see
    reuse.py) takes the earlier group's lowering, renamed, and shares its files; rendering
    happens once per distinct kernel. `reuse_lowering=False` lowers every group itself.
    `shapes_at` (the static shapes of every value at other sizes of the dims) lets a kernel over
    symbolic dims be shape-generic where its code does not follow them (codegen/dynamic.py);
    without it every kernel is generated for the bound shapes."""
    ctx = LowerContext(graph, hardware, CostModel(graph, hardware, dims, static), {r.name: r for r in rules})
    bindings = Bindings.of(graph, ctx, dims, shapes_at)
    out: dict[str, GeneratedKernel] = {}
    owners: dict[str, GeneratedKernel] = {}
    seen: dict[object, list[reuse.Lowered]] = {}  # signature key -> lowerings kept for reuse
    for group in plan.groups:
        try:
            _generate_one(ctx, bindings, group, hardware, reuse_lowering, out, owners, seen)
        except Exception as exc:  # a bug, never a decision: those are Unsupported records
            raise GeneratorError(group.id, "the kernel generator", exc, _members(ctx.graph, group),
                                 f"--disable-fusion {group.id} or --emit none avoids it") from exc
    _add_onnx_plugins(plan, out)
    return out


def _add_onnx_plugins(plan: Plan, out: dict[str, GeneratedKernel]) -> None:
    """Each project gets ATC's ONNX parser plugin, naming the fused op types of every group it
    serves (a repeated layer's groups share the project)."""
    served: dict[str, list[str]] = {}
    for group in plan.groups:
        kernel = out.get(group.id)
        if kernel is not None and kernel.generated:
            origin = f"{FUSED_DOMAIN}::{FUSED_OPSET_VERSION}::{group.op_type}"
            served.setdefault(kernel.same_as or group.id, []).append(origin)
    for owner, origins in served.items():
        kernel = out[owner]
        kernel.files.update(onnx_plugin(kernel.op_name, kernel.kernel_name, origins))


def _generate_one(ctx: LowerContext, bindings: Bindings, group, hardware: Hardware, reuse_lowering: bool,
                  out: dict[str, GeneratedKernel], owners: dict[str, GeneratedKernel],
                  seen: dict[object, list[reuse.Lowered]]) -> None:
    """Lower and render one group into `out` (or reuse an earlier group's lowering)."""
    shape = reuse.signature(ctx, group) if reuse_lowering else None
    if shape is not None:
        earlier = next((e for e in seen.get(shape.key, ()) if e.matches(ctx, shape)), None)
        if earlier is not None and isinstance(earlier.result, KernelProgram):
            out[group.id] = _lazy_repeat(group, shape, earlier)
            return
        result = reuse.repeat(earlier.result, earlier.shape, group, shape) if earlier else None
        if result is not None:
            out[group.id] = GeneratedKernel(group.id, None, result)
            return
    ctx.constants_read.clear()
    # lower_group returns a record for what it declines (Unsupported, with the reason); anything
    # it raises is a bug and reaches generate_kernels.
    result = lower_group(ctx, group)
    if isinstance(result, KernelProgram):
        read = set(ctx.constants_read)
        result = shape_generic(result, group, bindings)
        ctx.constants_read.clear()
        ctx.constants_read.update(read)
    if not isinstance(result, KernelProgram):
        out[group.id] = GeneratedKernel(group.id, None, result)
    else:
        files = project_files(result, hardware)
        owner = owners.setdefault(_identity(result, files), GeneratedKernel(group.id, result, None, files))
        out[group.id] = owner if owner.group_id == group.id else _repeat_of(group.id, result, owner)
    kept = reuse.lowered(ctx, shape, result, out[group.id]) if shape is not None else None
    if kept is not None:
        seen.setdefault(shape.key, []).append(kept)


def _members(graph: Graph, group) -> str:
    """The group's op type and its first member nodes, for an error message."""
    names = [graph.nodes[m].name or graph.nodes[m].op_type for m in group.members]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{group.op_type}: {shown}"


def _lazy_repeat(group, shape: reuse.Shape, earlier: reuse.Lowered) -> GeneratedKernel:
    """A repeat of an earlier group's kernel: the owner's files, its program renamed when read."""
    owner: GeneratedKernel = earlier.kernel

    def program() -> KernelProgram:
        renamed = reuse.repeat(earlier.result, earlier.shape, group, shape)
        return replace(renamed, op_name=owner.op_name, kernel_name=owner.kernel_name)

    return GeneratedKernel(group.id, None, None, owner.files, same_as=owner.same_as or owner.group_id,
                           pending=program, op_name=owner.op_name, kernel_name=owner.kernel_name,
                           family=owner.family, symbolic_dims=owner.symbolic_dims,
                           static_reason=owner.static_reason)


def _repeat_of(group_id: str, program: KernelProgram, kernel: GeneratedKernel) -> GeneratedKernel:
    """`group_id`'s own program under the name, and with the files, of the identical kernel that owns them."""
    shared = replace(program, op_name=kernel.op_name, kernel_name=kernel.kernel_name)
    return GeneratedKernel(group_id, shared, None, kernel.files, same_as=kernel.same_as or kernel.group_id)


_COMMENT = re.compile(r"//[^\n]*")


def _identity(program: KernelProgram, files: dict[str, str]) -> str:
    """What makes two kernels the same: their files without comments and op names."""
    digest = hashlib.sha256()
    for path in sorted(files):
        text = _COMMENT.sub("", files[path])
        for name in (program.op_name, program.kernel_name, program.kernel_name.upper()):
            text = text.replace(name, "@")
        digest.update(text.encode())
    return digest.hexdigest()
