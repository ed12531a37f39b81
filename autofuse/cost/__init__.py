"""Cost model inputs: hardware profiles of the Ascend targets.

`load_profile(name_or_path)` reads a YAML profile (cost/profiles/<target>.yaml, or a user's own file)
into a `Hardware` of plain numbers; every number in a profile carries a source and a confidence
(S/M/W/G), kept in `Hardware.sources` for the report.
"""
from autofuse.cost.hardware import DEFAULT_TARGET, KNOWN_TARGETS, Hardware, load_profile

__all__ = ["DEFAULT_TARGET", "KNOWN_TARGETS", "Hardware", "load_profile"]
