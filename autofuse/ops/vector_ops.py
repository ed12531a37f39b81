"""The code generator's op table (codegen_templates/vector_ops.yaml: how each op is written as
Ascend C vector instructions, the steps of the ops written as several, the temporaries each
takes). Data read by the generator, which writes the instructions, and by the cost model, which
prices the buffers they take: one loader for both."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from autofuse.errors import AutofuseError
from autofuse.yamlfile import read_yaml

TABLE = Path(__file__).resolve().parent.parent / "_templates" / "vector_ops.yaml"


@lru_cache(maxsize=1)
def op_table() -> dict:
    """vector_ops.yaml, parsed once."""
    return read_yaml(TABLE, AutofuseError, "code generator op table")
