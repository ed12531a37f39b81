"""Plan -> the generated kernel of every fused group (lowered and rendered, not yet written)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from autofuse.codegen.emit import project_files
from autofuse.codegen.lower import LowerContext, lower_group
from autofuse.codegen.program import CallThrough, HostOnly, KernelProgram, Unsupported
from autofuse.cost.hardware import Hardware
from autofuse.cost.model import CostModel
from autofuse.ir.graph import Graph
from autofuse.planner.plan import Plan

KERNELS_DIR = "kernels"


@dataclass
class GeneratedKernel:
    """One group's outcome: a kernel program and its project files, or a record saying why not.
    Groups whose kernels are the same source (a block repeated in every layer) share one project:
    `same_as` names the group that owns it."""

    group_id: str
    program: KernelProgram | None = None
    record: CallThrough | HostOnly | Unsupported | None = None
    files: dict[str, str] = field(default_factory=dict)  # path inside `directory` -> text
    same_as: str | None = None

    @property
    def directory(self) -> str:
        return f"{KERNELS_DIR}/{self.program.op_name}" if self.program else ""

    @property
    def source(self) -> str | None:
        """The kernel's path under OUTDIR (None when it has no source)."""
        if self.program is None:
            return None
        return f"{self.directory}/op_kernel/{self.program.kernel_name}.cpp"


def generate_kernels(graph: Graph, plan: Plan, hardware: Hardware, dims: Mapping[str, int],
                     static: Mapping[str, tuple[int, ...]], rules: Sequence = ()) -> dict[str, GeneratedKernel]:
    """Every group of `plan` lowered for `hardware`, at the sizes the cost model priced."""
    ctx = LowerContext(graph, hardware, CostModel(graph, hardware, dims, static), {r.name: r for r in rules})
    out: dict[str, GeneratedKernel] = {}
    owners: dict[str, GeneratedKernel] = {}
    for group in plan.groups:
        try:
            result = lower_group(ctx, group)
        except Exception as exc:  # noqa: BLE001 - a generator bug must not cost the user the fused model
            result = Unsupported(group.id, f"generator error (a bug, please report it): {type(exc).__name__}: {exc}")
        if not isinstance(result, KernelProgram):
            out[group.id] = GeneratedKernel(group.id, None, result)
            continue
        files = project_files(result, hardware)
        owner = owners.setdefault(_identity(result, files), GeneratedKernel(group.id, result, None, files))
        if owner.group_id == group.id:
            out[group.id] = owner
        else:  # its own program (its own ONNX values), the owner's op name and files
            shared = replace(result, op_name=owner.program.op_name, kernel_name=owner.program.kernel_name)
            out[group.id] = GeneratedKernel(group.id, shared, None, owner.files, same_as=owner.group_id)
    return out


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
