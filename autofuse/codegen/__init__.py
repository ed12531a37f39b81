"""Ascend C code generation: one custom-operator project per fused group.

`generate_kernels` lowers every group of a plan (lower.py, part.py, vector.py; once per distinct
structure, reuse.py) and renders its files (emit.py);
`write_projects` (project.py) puts them under `OUTDIR/kernels/<OpName>/`. Groups a CANN op already
implements get a call-through record, shape arithmetic runs on the host, and a group the generator
cannot lower says why; all of them appear in the report's per-group `kernel` object.
`EmissionCheck` (gate.py) is the same lowering asked by the planner before it forms a group, so that a
group the generator declines is refused there (`no_kernel_for_group`) rather than formed.
"""
from autofuse.codegen.gate import EmissionCheck
from autofuse.codegen.generate import GeneratedKernel, generate_kernels
from autofuse.codegen.project import write_projects

__all__ = ["EmissionCheck", "GeneratedKernel", "generate_kernels", "write_projects"]
