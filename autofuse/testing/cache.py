"""Where the locally built test models are cached, and what their cache keys depend on."""
from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path


def cache_root(env: str, name: str) -> Path:
    """`$env` if set; else `.cache/<name>` of the source checkout autofuse runs from; else
    `~/.cache/autofuse/<name>` (an installed package)."""
    chosen = os.environ.get(env)
    if chosen:
        return Path(chosen).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "autofuse").is_dir():
        return repo / ".cache" / name
    return Path.home() / ".cache" / "autofuse" / name


def dist_version(name: str) -> str:
    """The installed version of a distribution ("none" when absent): part of a cache key."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"
