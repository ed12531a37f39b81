"""Generated kernels -> files under OUTDIR/kernels/<OpName>/ (a CANN custom-operator project each).

Layout of one project (msOpGen's, with the tiling function in its own header so that the CANN
TilingFunc and autofuse's CPU check call the same code):

    <OpName>/op_kernel/<op>.cpp          the Ascend C kernel
    <OpName>/op_kernel/<op>_tiling.h     the tiling data struct (kernel and host)
    <OpName>/op_host/<op>_tiling_func.h  the tiling function (plain C++)
    <OpName>/op_host/<op>.cpp            OpDef, TilingFunc, InferShape, InferDataType
    <OpName>/<op>.json                   the op description msopgen takes
    <OpName>/build.sh, CMakeLists.txt    build skeleton (needs the CANN toolkit)
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from autofuse.codegen.generate import GeneratedKernel


def write_projects(kernels: Mapping[str, GeneratedKernel], outdir: Path) -> list[Path]:
    """Write every generated project under `outdir`; returns the project directories."""
    written = []
    for kernel in kernels.values():
        if not kernel.generated or kernel.same_as:
            continue  # no source, or the files of another group's project
        root = outdir / kernel.directory
        for relative, text in kernel.files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if path.name == "build.sh":
                os.chmod(path, 0o755)
        written.append(root)
    return written
