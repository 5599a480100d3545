"""Where a project comes from: a local directory, a local git repository, or a git URL.

A URI may end in ``#sub/dir`` to run the project in that subdirectory, and a ``version``
(branch, tag or commit) checks a git project out at that point into a temporary clone, which
`fetch_project` removes when its block ends. A plain local directory runs in place.

Nothing the caller gives reaches git as an option: a URL, version or subdirectory starting
with ``-`` is refused, positional arguments follow ``--``, and git itself may only speak the
``file``, ``https``, ``ssh`` and ``git`` transports (never ``ext::``, whose "URL" is a command),
also for submodules.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import EnvironmentUnavailable, ExecutionError

__all__ = [
    "ALLOWED_URL_SCHEMES",
    "ProjectSource",
    "absolute_uri",
    "fetch_project",
    "is_local_uri",
    "split_uri",
]

#: The only git transports a project may be fetched over (plus scp-like ``user@host:repo``).
ALLOWED_URL_SCHEMES = ("file", "https", "ssh", "git")
# Given to every git call, so submodules and redirects obey the same list: git passes ``-c``
# settings on to the git processes it starts.
_PROTOCOL_CONFIG = (
    "-c", "protocol.allow=never",
    *(arg for scheme in ALLOWED_URL_SCHEMES for arg in ("-c", f"protocol.{scheme}.allow=always")),
)  # fmt: skip


@dataclass(frozen=True)
class ProjectSource:
    """A fetched project and what the tracked run records about it.

    Attributes:
        uri: The project URI as given (local paths made absolute).
        work_dir: The directory holding the project (its subdirectory, if one was asked for).
        source_name: The ``mlflow.source.name`` tag: the URI, or ``file://<repo>#<subdir>``
            for a directory inside a local git repository.
        git_commit: The checked-out commit, for git projects.
        git_repo_url: The repository's ``origin`` URL, else ``file://`` and its path.
        git_branch: ``version`` when it names a branch.
    """

    uri: str
    work_dir: Path
    source_name: str
    git_commit: str | None = None
    git_repo_url: str | None = None
    git_branch: str | None = None


def split_uri(uri: str) -> tuple[str, str]:
    """Split ``base#subdirectory`` into its parts.

    Args:
        uri: A project URI, optionally with ``#subdirectory``.

    Returns:
        ``(base, subdirectory)``; the subdirectory is ``""`` when absent.

    Raises:
        InvalidParameter: The subdirectory climbs out with ``..``, starts with ``-`` or holds
            a control character.
    """
    base, _, subdirectory = uri.strip().strip("'\"").partition("#")
    subdirectory = subdirectory.strip("/")
    parts = PurePosixPath(subdirectory).parts if subdirectory else ()
    if ".." in parts or subdirectory.startswith("/"):
        raise InvalidParameter(
            f"Project subdirectory {subdirectory!r} must stay inside the project (no '..')."
        )
    if subdirectory.startswith("-") or _has_control_chars(subdirectory):
        raise InvalidParameter(
            f"Project subdirectory {subdirectory!r} must not start with '-' or contain control "
            "characters."
        )
    return base, subdirectory


def is_local_uri(base: str) -> bool:
    """Whether ``base`` (a URI without ``#subdirectory``) names an existing local directory."""
    return _local_path(base) is not None


def absolute_uri(uri: str) -> str:
    """``uri`` with a local path made absolute, so it names the same project from anywhere.

    Args:
        uri: A project URI, optionally with ``#subdirectory``.

    Returns:
        The URI; URLs and paths that do not exist are returned unchanged.
    """
    base, subdirectory = split_uri(uri)
    if "://" in base or not Path(base).expanduser().exists():
        return uri
    absolute = str(Path(base).expanduser().resolve())
    return f"{absolute}#{subdirectory}" if subdirectory else absolute


@contextlib.contextmanager
def fetch_project(uri: str, version: str | None = None) -> Iterator[ProjectSource]:
    """Make the project at ``uri`` available locally for the duration of the block.

    Args:
        uri: A local directory, a ``file://`` URL, or a git URL (``https://``, ``ssh://``,
            ``git@host:repo``, ``file://``), optionally with ``#subdirectory``.
        version: A branch, tag or commit; only for git projects.

    Yields:
        The fetched project.

    Raises:
        InvalidParameter: A version for a directory outside git, a missing subdirectory, a
            local path that does not exist and is no URL, a URL of another transport than
            ``file``, ``https``, ``ssh`` or ``git``, or a URL or version starting with ``-``.
        ExecutionError: Cloning or checking out failed.
        EnvironmentUnavailable: ``git`` is needed but not installed.
    """
    base, subdirectory = split_uri(uri)
    if version is not None:
        _check_version(version)
    local = _local_path(base)
    if local is not None and version is None:
        yield _in_place(local, subdirectory)
        return
    if local is None:
        _check_url(uri, base)
    with tempfile.TemporaryDirectory(prefix="flowml-project-") as scratch:
        if local is not None:
            toplevel = _git_toplevel(local)
            if toplevel is None:
                raise InvalidParameter(
                    f"A version ({version!r}) needs a git project, and {str(local)!r} is not "
                    "inside a git repository."
                )
            offset = local.relative_to(toplevel).as_posix()
            subdirectory = "/".join(p for p in (offset if offset != "." else "", subdirectory) if p)
            clone_url, repo_url = str(toplevel), _origin_url(toplevel) or toplevel.as_uri()
            clone_dir = Path(scratch) / toplevel.name
        else:
            clone_url, repo_url = base, base
            clone_dir = Path(scratch) / _repo_name(base)
        _clone(clone_url, version, clone_dir)
        work_dir = _subdirectory(clone_dir, subdirectory, uri)
        yield ProjectSource(
            uri=str(local) + (f"#{subdirectory}" if subdirectory else "") if local else uri,
            work_dir=work_dir,
            source_name=uri if local is None else _source_name(local, subdirectory),
            git_commit=_git(clone_dir, "rev-parse", "HEAD"),
            git_repo_url=repo_url,
            git_branch=version if version and _is_branch(clone_dir, version) else None,
        )


def _in_place(root: Path, subdirectory: str) -> ProjectSource:
    work_dir = _subdirectory(root, subdirectory, str(root))
    toplevel = _git_toplevel(work_dir)
    commit = repo_url = None
    if toplevel is not None:
        commit = _git_or_none(toplevel, "rev-parse", "HEAD")
        repo_url = _origin_url(toplevel) or toplevel.as_uri()
    source_name = str(work_dir)
    if toplevel is not None:
        inner = work_dir.relative_to(toplevel).as_posix()
        source_name = toplevel.as_uri() + ("" if inner == "." else f"#{inner}")
    return ProjectSource(
        uri=str(root) + (f"#{subdirectory}" if subdirectory else ""),
        work_dir=work_dir,
        source_name=source_name,
        git_commit=commit,
        git_repo_url=repo_url,
    )


def _source_name(local: Path, subdirectory: str) -> str:
    toplevel = _git_toplevel(local)
    base = toplevel.as_uri() if toplevel is not None else local.as_uri()
    return base + (f"#{subdirectory}" if subdirectory else "")


def _subdirectory(root: Path, subdirectory: str, uri: str) -> Path:
    work_dir = (root / subdirectory).resolve() if subdirectory else root.resolve()
    if not work_dir.is_relative_to(root.resolve()) or not work_dir.is_dir():
        raise InvalidParameter(f"Project {uri!r} has no subdirectory {subdirectory!r}.")
    return work_dir


def _check_version(version: str) -> None:
    if not version or version.startswith("-") or _has_control_chars(version) or " " in version:
        raise InvalidParameter(
            f"Version {version!r} is not a branch, tag or commit: it must be non-empty and must "
            "not start with '-' or contain spaces or control characters."
        )


def _check_url(uri: str, base: str) -> None:
    """Refuse anything but a git URL of an allowed transport whose parts cannot be options."""
    if "://" not in base and not _looks_like_scp(base):
        raise InvalidParameter(
            f"Project {uri!r} is neither an existing directory nor a git URL "
            "(https://..., ssh://..., git://..., file://..., git@host:repo)."
        )
    scheme = base.partition("://")[0].lower() if "://" in base else "ssh"
    if scheme not in ALLOWED_URL_SCHEMES or "::" in base.partition("://")[0]:
        raise InvalidParameter(
            f"Project URL {base!r} uses the transport {scheme!r}; git projects are fetched over "
            f"{', '.join(ALLOWED_URL_SCHEMES)} only."
        )
    # A host or user such as ``-oProxyCommand=...`` would reach ssh as an option.
    authority = base.partition("://")[2] if "://" in base else base.partition(":")[0]
    host_part = authority.split("/", 1)[0]
    if (
        base.startswith("-")
        or any(piece.startswith("-") for piece in host_part.replace("@", " ").split())
        or _has_control_chars(base)
    ):
        raise InvalidParameter(
            f"Project URL {base!r} is refused: its user or host starts with '-' or it holds "
            "control characters."
        )


def _has_control_chars(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def _local_path(base: str) -> Path | None:
    path_text = base
    if base.startswith("file://"):
        parsed = urllib.parse.urlsplit(base)
        path_text = urllib.parse.unquote(parsed.netloc + parsed.path)
    elif "://" in base:
        return None
    path = Path(path_text).expanduser()
    return path.resolve() if path.is_dir() else None


def _looks_like_scp(base: str) -> bool:
    # git's scp-like syntax: user@host:path/repo.git
    head, sep, _ = base.partition(":")
    return bool(sep) and "@" in head and "/" not in head


def _repo_name(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    name = tail[: -len(".git")] if tail.endswith(".git") else tail
    return name or "project"


def _clone(url: str, version: str | None, dest: Path) -> None:
    if version is None:
        _run_git(
            None, "clone", "--quiet", "--depth", "1", "--", url, str(dest), what=f"clone {url}"
        )
    else:
        dest.mkdir(parents=True)
        _run_git(dest, "init", "--quiet", what="git init")
        _run_git(dest, "remote", "add", "--", "origin", url, what="git remote add")
        try:
            # A shallow fetch of just the wanted ref is enough for branches, tags and (on
            # servers that allow it) commits; otherwise fall back to the full history.
            _run_git(
                dest, "fetch", "--quiet", "--depth", "1", "--", "origin", version, what="fetch"
            )
            target = "FETCH_HEAD"
        except ExecutionError:
            _run_git(
                dest,
                "fetch", "--quiet", "--tags", "--", "origin", "+refs/heads/*:refs/remotes/origin/*",
                what=f"fetch {url}",
            )  # fmt: skip
            target = version
        try:
            # The trailing ``--`` makes git read ``target`` as a revision, never as a path.
            _run_git(dest, "checkout", "--quiet", target, "--", what="checkout")
        except ExecutionError as exc:
            raise ExecutionError(
                f"Cannot check out version {version!r} of {url}: is it a branch, tag or commit "
                f"of that repository? ({exc.message})"
            ) from exc
    _run_git(dest, "submodule", "update", "--init", "--recursive", "--quiet", what="submodules")


def _is_branch(repo: Path, version: str) -> bool:
    out = _git_or_none(repo, "ls-remote", "--heads", "--", "origin", f"refs/heads/{version}")
    return bool(out)


def _git_toplevel(path: Path) -> Path | None:
    out = _git_or_none(path, "rev-parse", "--show-toplevel")
    return Path(out).resolve() if out else None


def _origin_url(repo: Path) -> str | None:
    return _git_or_none(repo, "remote", "get-url", "origin")


def _git(repo: Path, *args: str) -> str:
    return _run_git(repo, *args, what=" ".join(args))


def _git_or_none(repo: Path, *args: str) -> str | None:
    try:
        return _run_git(repo, *args, what=" ".join(args)) or None
    except ExecutionError:
        return None


def _run_git(cwd: Path | None, *args: str, what: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise EnvironmentUnavailable("Running a git project needs `git` on PATH; none was found.")
    # Never wait on a credential prompt: a scheduled run has nobody to answer it.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    command = [git, *_PROTOCOL_CONFIG, *(["-C", str(cwd)] if cwd is not None else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ExecutionError(f"git {what} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout.strip()
