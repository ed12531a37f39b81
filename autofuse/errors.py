"""Errors autofuse raises, and the exit code each one maps to on the command line."""
from __future__ import annotations


class AutofuseError(Exception):
    """Base class. The message is one line: what is wrong and where."""

    exit_code = 1


class InputError(AutofuseError):
    """The input is bad or unsupported (missing file, broken model, cycle, bad opset...)."""

    exit_code = 2


class VerificationError(AutofuseError):
    """The rewritten model does not reproduce the original's outputs."""

    exit_code = 3


class UnverifiedError(AutofuseError):
    """A fused group that needs a kernel of ours has none (the generator declined it after the
    planner formed it): the kernel projects are incomplete, and with --verify-kernels the run
    could not check every group. Nothing checked was wrong (that is VerificationError), but the
    outputs (written all the same) are not a complete, verified compilation."""

    exit_code = 4


class PlanInvariantError(AutofuseError):
    """A bug: a fusion plan broke one of its own invariants (not a convex partition...)."""

    exit_code = 1


class GeneratorError(AutofuseError):
    """A bug: the kernel generator (or the kernel check) failed on a fused group. Not a group
    the generator declines to lower: that is a legitimate outcome, recorded as `Unsupported`
    with its reason in the report. The message names the group and the exception, on one line."""

    exit_code = 1

    def __init__(self, group_id: str, what: str, exc: BaseException, where: str = "", hint: str = "") -> None:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        place = f" ({where})" if where else ""
        advice = f"; {hint}" if hint else ""
        super().__init__(f"{what} failed on fused group {group_id}{place}: {detail} "
                         f"(a bug, please report it{advice})")
        self.group_id = group_id
