"""All-or-nothing output directories: every command writes into a staging directory beside
OUTDIR and moves the files in only when all of them were written."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from autofuse.errors import InputError


@contextlib.contextmanager
def staged_outdir(outdir: Path) -> Iterator[Path]:
    """Yield an empty directory to write into; when the block ends without an error its entries
    move into `outdir` (created if missing, other files in it left alone). On an error nothing
    of the block's output reaches `outdir`."""
    outdir = outdir.resolve()
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a directory")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; it may become OUTDIR itself
    try:
        yield staging
        if not outdir.exists():
            staging.rename(outdir)
            return
        for item in staging.iterdir():
            target = outdir / item.name
            if target.is_dir() and not target.is_symlink() and item.is_dir():
                shutil.rmtree(target)  # a directory output (kernels/) replaces the old one whole
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
