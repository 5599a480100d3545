"""System tags describing where a run comes from: user, source, git commit.

Git is read straight from the ``.git`` directory (no subprocess), once per
process, so starting a run stays cheap.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
from pathlib import Path

from flowml.tracking import tags as t


@functools.lru_cache(maxsize=1)
def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


@functools.lru_cache(maxsize=64)
def git_info(start: str) -> dict[str, str]:
    """``{commit, branch}`` of the work tree holding ``start`` (empty outside git)."""
    git_dir = _git_dir(Path(start).resolve())
    if git_dir is None:
        return {}
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return {}
    if not head.startswith("ref:"):
        return {"commit": head}
    ref = head.split(":", 1)[1].strip()
    info = {"branch": ref.removeprefix("refs/heads/")}
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        ref_file = base / ref
        if ref_file.is_file():
            info["commit"] = ref_file.read_text().strip()
            return info
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                info["commit"] = line.split(" ", 1)[0]
    return info


def source_name() -> str:
    main = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
    return os.path.abspath(main) if main not in ("-c", "-m", "<interactive>") else main


def system_tags() -> dict[str, str]:
    """The tags every new run gets, as MLflow sets them."""
    source = source_name()
    out = {
        t.USER: current_user(),
        t.SOURCE_NAME: source,
        t.SOURCE_TYPE: t.SOURCE_TYPE_LOCAL,
    }
    start = os.path.dirname(source) if os.path.isabs(source) else os.getcwd()
    git = git_info(start)
    if "commit" in git:
        out[t.GIT_COMMIT] = git["commit"]
    if "branch" in git:
        out[t.GIT_BRANCH] = git["branch"]
    return out
