"""The committed lock is the test environment: every package pinned, every requirement of
pyproject.toml's core and [test]/[bench] extras inside its range, torch at the local CPU wheel, and
the README's commands install from it."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"


def _lock() -> dict[str, Version]:
    pins = {}
    for number, line in enumerate(LOCK.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"{LOCK.name}:{number}: not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{LOCK.name}:{number}: {name} pinned twice"
        pins[name] = Version(match.group(2))
    return pins


def _requirements() -> list[tuple[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [("dependencies", Requirement(text)) for text in project["dependencies"]]
    for extra in ("test", "bench"):
        found += [(extra, Requirement(text)) for text in project["optional-dependencies"][extra]]
    return found


def test_every_requirement_is_pinned_in_the_lock_within_its_range():
    pins = _lock()
    for where, requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"pyproject.toml {where}: {requirement} is not in {LOCK.name} (run make lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"{LOCK.name} pins {name}=={pins[name]}, outside pyproject.toml {where}: {requirement}"


def test_torch_is_the_cpu_wheel_everywhere():
    assert _lock()[canonicalize_name("torch")] == Version("2.13.0")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert all(not text.startswith("torch") for text in project["dependencies"]), "torch stays out of the core install"
    torch_pins = [Requirement(text) for extra in project["optional-dependencies"].values()
                  for text in extra if Requirement(text).name == "torch"]
    assert torch_pins and all(str(r.specifier) == "==2.13.0" for r in torch_pins)


def test_the_readme_commands_install_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    setup = makefile[makefile.index("$(STAMP): pyproject.toml $(LOCK)"):makefile.index("\nsetup:")]
    assert "pip install $(PIP_FLAGS) -r $(LOCK)" in setup and "--no-deps" in setup
    for target in ("demo", "test", "bench"):
        assert re.search(rf"^{target}: \$\(STAMP\)$", makefile, re.MULTILINE), f"make {target} does not use the lock"
    assert "make test" in (ROOT / ".ci" / "run").read_text()
