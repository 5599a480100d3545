"""Local-disk artifact primitives: confinement by resolved path, atomic writes.

`safe_artifact_path` checks names, but on disk a name can lead elsewhere through a
symlink: one planted inside a run's artifact root, or one inside a directory being
logged. Everything here is checked against where paths really lead:

* `write_file` walks from the root one directory at a time with ``O_NOFOLLOW``, so a
  symlinked directory inside the root is refused whatever it points to, with no window
  between check and use; the data goes to a temporary name in the final directory and
  is renamed into place, so a failed write (full disk, error mid-copy) leaves nothing.
  (POSIX: relies on ``dir_fd``.)
* `check_inside` refuses a path whose resolved form leaves the resolved root (reads).
* `list_files` lists a directory tree, refusing a symlink that leads out of a given
  boundary before the caller copies anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable
from typing import BinaryIO

from flowml.exceptions import ArtifactPathError, FlowMLError, StoreError

__all__ = ["check_inside", "is_inside", "is_partial", "list_files", "write_error", "write_file"]

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_TMP_PREFIX = ".flowml-tmp-"
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def is_inside(path: str, root: str) -> bool:
    """Whether resolved ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_inside(path: str, root: str, shown: str) -> str:
    """``path`` resolved, if it stays under resolved ``root``.

    Raises:
        ArtifactPathError: a symlink on the way leads out of the root.
    """
    real = os.path.realpath(path)
    if not is_inside(real, os.path.realpath(root)):
        raise ArtifactPathError(
            f"Artifact {shown or '/'!r} leads outside the run's artifact root through a "
            "symlink; flowml does not follow it"
        )
    return real


def is_partial(name: str) -> bool:
    """Whether ``name`` is a write in progress (or left by a killed process): never listed."""
    return name.startswith(_TMP_PREFIX)


def list_files(
    top: str, boundary: str, shown: Callable[[str], str], *, artifacts: bool = False
) -> list[tuple[str, str]]:
    """Every regular file under ``top`` as ``(resolved path, relative posix path)``, sorted.

    Symlinks are followed only while they stay under ``boundary``; a symlink back up the
    tree is skipped (its files are listed once already) and a dangling one holds nothing.
    With ``artifacts``, partial writes (`is_partial`) are left out.

    Raises:
        ArtifactPathError: a symlink leads out of ``boundary``; ``shown(rel)`` names it.
    """
    bound = os.path.realpath(boundary)
    out: list[tuple[str, str]] = []

    def visit(real_dir: str, rel_dir: str, ancestors: frozenset[str]) -> None:
        with os.scandir(real_dir) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            if artifacts and is_partial(entry.name):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            real = entry.path  # ``real_dir`` is resolved: only a symlink can lead elsewhere
            if entry.is_symlink():
                real = os.path.realpath(real)
                if not os.path.exists(real):
                    continue
                if not is_inside(real, bound):
                    raise ArtifactPathError(
                        f"{shown(rel)} is a symlink leading outside {shown('')}; nothing was "
                        "copied. Replace the link by the file itself, or remove it"
                    )
            if os.path.isdir(real):
                if real not in ancestors:
                    visit(real, rel, ancestors | {real})
            elif os.path.isfile(real):
                out.append((real, rel))

    top_real = os.path.realpath(top)
    visit(top_real, "", frozenset({top_real}))
    return out


def write_file(root: str, rel: str, fill: Callable[[BinaryIO], object]) -> None:
    """Create or replace the file ``rel`` (a checked, non-empty path) under ``root``.

    ``fill`` writes the content into an open file; on any failure the temporary file
    is removed and the previous artifact, if any, is unchanged.

    Raises:
        ArtifactPathError: a directory on the way is a symlink or a file.
        StoreError: the disk is full or the root is not writable.
    """
    *dirs, name = rel.split("/")
    try:
        os.makedirs(root, exist_ok=True)  # the configured root may itself sit behind symlinks
        dir_fd = _open_dirs(root, dirs)
        try:
            _write_in(dir_fd, name, fill)
        finally:
            os.close(dir_fd)
    except IsADirectoryError:
        raise ArtifactPathError(f"Artifact {rel!r} already exists as a directory") from None
    except OSError as exc:
        raise write_error(exc, rel, root) from exc


def write_error(exc: OSError, rel: str, root: str) -> FlowMLError:
    """The typed error for an `OSError` raised while writing artifact ``rel``."""
    if exc.errno == errno.ENAMETOOLONG:
        return ArtifactPathError(f"Artifact path {rel!r} is too long for the artifact store")
    if exc.errno in _NO_SPACE:
        return StoreError(
            f"No space left to write artifact {rel!r} under {root} ({exc.strerror}); nothing "
            "was written. Free some space and log it again"
        )
    if exc.errno in _NOT_WRITABLE:
        return StoreError(
            f"The artifact root {root} is not writable ({exc.strerror}); nothing was written. "
            "Give this process write access or use another artifact root"
        )
    return StoreError(f"Could not write artifact {rel!r} under {root}: {exc}")


def _open_dirs(root: str, dirs: list[str]) -> int:
    fd = os.open(root, _DIR_FLAGS)
    for i, part in enumerate(dirs):
        try:
            try:
                child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # a concurrent writer made it
                    os.mkdir(part, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ArtifactPathError(
                    f"{'/'.join(dirs[: i + 1])!r} in the run's artifact root is a symlink or a "
                    "file, not a directory; flowml does not write through symlinks"
                ) from None
            raise
        os.close(fd)
        fd = child
    return fd


def _write_in(dir_fd: int, name: str, fill: Callable[[BinaryIO], object]) -> None:
    tmp = f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
        # The rename replaces a planted symlink itself, never the file it points to.
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
