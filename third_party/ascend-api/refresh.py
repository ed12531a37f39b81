#!/usr/bin/env python3
"""Refresh this copy of the ascend-api kit from the upstream repositories (part of autofuse, not
Huawei code).

Every file under headers/<repo>/ is the file of the same path in <repo> at the commit that
LICENSES/NOTICE names. This script re-takes them from local clones of those repositories, so the
kit can move to newer commits (or be checked byte for byte against the ones it names):

    python3 third_party/ascend-api/refresh.py --sources DIR [--commit REPO=SHA ...] [--check]

DIR holds one clone per repository, named as in NOTICE (asc-devkit, asc-tools, metadef, ge,
runtime, libboundscheck); each is checked out at the commit NOTICE names, or at the one given with
--commit (NOTICE is then updated). Clone them on a machine with network access, e.g.
`git clone https://github.com/hicann/metadef DIR/metadef`. Only the files the kit already holds
are taken, plus each repository's LICENSE (and metadef's NOTICE); asc-devkit's tiling-header
generator scripts come along under tools/asc-devkit/. headers/generated/ is asc-devkit's
install output: rerun its impl/adv_api/cmake/scripts/gen_kernel_tiling_data_def.py over
include/adv_api/ as NOTICE says, after a move to a new commit.

--check only compares and reports (exit 1 if anything differs). The dates beside the commits in
NOTICE are updated by hand. A header the checks newly need
(check.sh stops with "No such file or directory") is added by copying it to headers/<repo>/<path>
by hand first; this script then keeps it.
"""
from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parent
NOTICE = KIT / "LICENSES" / "NOTICE"
TOOLS = "tools/asc-devkit/tools/build/asc_op_compile_base/asc_op_compiler"


def notice_commits() -> dict[str, str]:
    """repository -> commit, as LICENSES/NOTICE lists them."""
    commits, repo = {}, None
    for line in NOTICE.read_text().splitlines():
        head = re.match(r"^(\S+)\s+https://github\.com/\S+$", line)
        if head:
            repo = head.group(1)
            continue
        commit = re.match(r"^\s+commit ([0-9a-f]{40})", line)
        if commit and repo:
            commits[repo] = commit.group(1)
            repo = None
    return commits


def files_of(repo: str) -> list[tuple[Path, Path]]:
    """(path in the repository, path in the kit) of every file the kit takes from `repo`."""
    pairs = [(p.relative_to(KIT / "headers" / repo), p) for p in sorted((KIT / "headers" / repo).rglob("*"))
             if p.is_file()]
    for name in ("LICENSE", "NOTICE"):
        if (KIT / "LICENSES" / repo / name).is_file():
            pairs.append((Path(name), KIT / "LICENSES" / repo / name))
    if repo == "asc-devkit":
        pairs += [(p.relative_to(KIT / "tools" / "asc-devkit"), p)
                  for p in sorted((KIT / TOOLS).glob("*.py"))]
    return pairs


def head_of(clone: Path) -> str:
    done = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, required=True, help="folder with one clone per repository")
    parser.add_argument("--commit", action="append", default=[], metavar="REPO=SHA", help="move REPO to SHA")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on any difference")
    args = parser.parse_args(argv)
    commits = notice_commits()
    for item in args.commit:
        repo, _, sha = item.partition("=")
        if repo not in commits or not re.fullmatch(r"[0-9a-f]{40}", sha):
            parser.error(f"--commit {item}: expected one of {', '.join(commits)} = a 40-digit commit")
        commits[repo] = sha
    differ = 0
    for repo, commit in commits.items():
        clone = args.sources / repo
        if head_of(clone) != commit:
            print(f"{repo}: {clone} is not checked out at {commit} (git -C {clone} checkout {commit})",
                  file=sys.stderr)
            return 2
        for upstream, ours in files_of(repo):
            source = clone / upstream
            if not source.is_file():
                print(f"{repo}: {upstream} is gone at {commit[:12]}")
                differ += 1
            elif not filecmp.cmp(source, ours, shallow=False):
                print(f"{repo}: {upstream} changed")
                differ += 1
                if not args.check:
                    shutil.copyfile(source, ours)
    if not args.check:
        text = NOTICE.read_text()
        for repo, commit in commits.items():
            text = re.sub(rf"(^{re.escape(repo)}\s+https://\S+\n\s+commit )[0-9a-f]{{40}}", rf"\g<1>{commit}", text,
                          flags=re.MULTILINE)
        NOTICE.write_text(text)
    print(f"{differ} file(s) {'differ' if args.check else 'updated'}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
