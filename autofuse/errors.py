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


class PlanInvariantError(AutofuseError):
    """A bug: a fusion plan broke one of its own invariants (not a convex partition...)."""

    exit_code = 1
