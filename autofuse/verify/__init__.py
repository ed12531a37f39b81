"""Verification: the rewritten model against the original, numerically."""
from autofuse.verify.onnx_runtime import OutputCheck, Verification, make_inputs, run_model, verify_models

__all__ = ["OutputCheck", "Verification", "make_inputs", "run_model", "verify_models"]
