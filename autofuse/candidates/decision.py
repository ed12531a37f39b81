"""A yes-or-no answer that carries a reason code and the numbers behind a no."""
from __future__ import annotations

from dataclasses import dataclass

# Reason codes, stable: they appear in report.json and users grep for them.
WOULD_CREATE_CYCLE = "would_create_cycle"
GROUP_TOO_LARGE = "group_too_large"
OPAQUE_OP = "opaque_op"
DATA_MOVEMENT_OP = "data_movement_op"
UNKNOWN_SHAPE = "unknown_shape"
SHAPE_MISMATCH = "shape_mismatch"
REDUCTION_MISMATCH = "reduction_axes_mismatch"
MULTI_OUTPUT = "multi_output_needs_opt_level_3"
CONTRACTION_NEEDS_LEVEL_3 = "matmul_epilogue_needs_opt_level_3"
CONTRACTION_PROLOGUE = "matmul_prologue_not_fused"
CONTRACTION_CONFLICT = "contraction_conflict"
NOT_FUSIBLE = "not_fusible_op"
SHAPE_AND_DATA = "shape_and_data_kept_apart"
DISABLED_BY_USER = "disabled_by_user"
NO_BENEFIT = "no_benefit"
UB_OVERFLOW = "ub_overflow"
TOO_MANY_BUFFERS = "too_many_buffers"  # cost/tiling.py QueueLimit
TOO_MANY_ARGUMENTS = "too_many_arguments"  # cost/tiling.py ArgumentLimit
DTYPE_NOT_ON_TARGET = "dtype_not_on_target"  # cost/tiling.py DtypeLimit
NOT_EMITTABLE = "no_kernel_for_group"  # the code generator declines the group (planner/pricing.py)
OVERLAPPING_MATCH = "overlapping_match"
AUTOMATIC_SAVES_MORE = "automatic_grouping_saves_more"


@dataclass(frozen=True)
class Decision:
    """`ok` or a reason code with a human-readable detail."""

    ok: bool
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


YES = Decision(True)


def no(reason: str, detail: str = "") -> Decision:
    return Decision(False, reason, detail)
