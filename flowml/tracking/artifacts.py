"""Artifacts through one fsspec layer: local disk, ``file://``, ``memory://``, ``s3://``...

`ArtifactRepository` is confined to its root: every artifact path is checked
before it reaches the filesystem, and a path that could escape the root
(``..``, absolute paths, backslashes, percent-encoded dots or slashes) is
refused with `ArtifactPathError`.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowml.exceptions import ArtifactPathError, ResourceNotFound

__all__ = ["ArtifactRepository", "FileInfo", "download_uri", "safe_artifact_path"]

_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of `ArtifactRepository.list_artifacts`: path relative to the run's root."""

    path: str
    is_dir: bool
    file_size: int | None


def safe_artifact_path(path: str | None) -> str:
    """Normalise a relative artifact path, refusing anything that could leave the root.

    Returns:
        The path with ``/`` separators and no leading/trailing slash (``""`` for the root).

    Raises:
        ArtifactPathError: absolute, contains ``..``, a backslash, a NUL, or an encoded
            dot/slash.
    """
    if path is None or path in ("", "."):
        return ""
    if not isinstance(path, str):
        raise ArtifactPathError(f"Artifact path must be a string, got {type(path).__name__}")
    if "\\" in path or "\x00" in path or _ENCODED.search(path):
        raise ArtifactPathError(
            f"Invalid artifact path {path!r}: backslashes, NUL bytes and percent-encoded "
            "dots or slashes are not allowed"
        )
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "://" in path:
        raise ArtifactPathError(f"Invalid artifact path {path!r}: it must be relative to the run")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArtifactPathError(f"Invalid artifact path {path!r}: '..' would leave the run's root")
    return "/".join(parts)


def _url_to_fs(uri: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    return url_to_fs(uri)


class ArtifactRepository:
    """The artifacts under one root URI (a run's ``artifact_uri``).

    Args:
        root_uri: a local path or any fsspec URL (``s3://bucket/prefix``, ``memory://x``).
        storage_options: passed to fsspec (e.g. ``{"client_kwargs": {"endpoint_url": ...}}``).
    """

    def __init__(self, root_uri: str, **storage_options: Any) -> None:
        self.root_uri = root_uri.rstrip("/")
        if storage_options:
            from fsspec.core import url_to_fs

            self.fs, self.root = url_to_fs(self.root_uri, **storage_options)
        else:
            self.fs, self.root = _url_to_fs(self.root_uri)
        self.root = self.root.rstrip("/")
        self._local = _is_local(self.fs)

    def _full(self, artifact_path: str | None) -> str:
        rel = safe_artifact_path(artifact_path)
        return f"{self.root}/{rel}" if rel else self.root

    def uri_for(self, artifact_path: str | None = None) -> str:
        """The URI of an artifact (or of the root)."""
        rel = safe_artifact_path(artifact_path)
        return f"{self.root_uri}/{rel}" if rel else self.root_uri

    def log_artifact(
        self, local_file: str | os.PathLike[str], artifact_path: str | None = None
    ) -> str:
        """Copy one local file under ``artifact_path``; returns its artifact path."""
        local = Path(local_file)
        if not local.is_file():
            raise ResourceNotFound(f"No local file {str(local)!r} to log")
        rel = posixpath.join(safe_artifact_path(artifact_path), local.name).lstrip("/")
        dest = self._full(rel)
        self._makedirs(posixpath.dirname(dest))
        self.fs.put_file(str(local), dest)
        return rel

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> str:
        """Copy a local directory tree under ``artifact_path``."""
        local = Path(local_dir)
        if not local.is_dir():
            raise ResourceNotFound(f"No local directory {str(local)!r} to log")
        base = safe_artifact_path(artifact_path)
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            rel = file.relative_to(local).as_posix()
            dest = self._full(posixpath.join(base, rel) if base else rel)
            self._makedirs(posixpath.dirname(dest))
            self.fs.put_file(str(file), dest)
        return base

    def write_bytes(self, artifact_path: str, data: bytes) -> None:
        dest = self._full(artifact_path)
        if not safe_artifact_path(artifact_path):
            raise ArtifactPathError("An artifact needs a file name")
        self._makedirs(posixpath.dirname(dest))
        with self.fs.open(dest, "wb") as fh:
            fh.write(data)

    def read_bytes(self, artifact_path: str) -> bytes:
        src = self._full(artifact_path)
        try:
            with self.fs.open(src, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            raise ResourceNotFound(f"No artifact {artifact_path!r} under {self.root_uri}") from None

    def exists(self, artifact_path: str | None = None) -> bool:
        return bool(self.fs.exists(self._full(artifact_path)))

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The direct children of ``path`` (the root by default), sorted by path."""
        rel = safe_artifact_path(path)
        full = self._full(rel)
        try:
            entries = self.fs.ls(full, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            name = entry["name"].rstrip("/")
            child = name.rsplit("/", 1)[-1]
            if name == full.rstrip("/"):
                continue  # ls of a file returns the file itself
            is_dir = entry.get("type") == "directory"
            out.append(
                FileInfo(
                    path=f"{rel}/{child}" if rel else child,
                    is_dir=is_dir,
                    file_size=None if is_dir else entry.get("size"),
                )
            )
        return sorted(out, key=lambda f: f.path)

    def download_artifacts(
        self, artifact_path: str | None = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy an artifact file or directory to a local directory; returns the local path."""
        rel = safe_artifact_path(artifact_path)
        src = self._full(rel)
        if not self.fs.exists(src):
            raise ResourceNotFound(f"No artifact {rel or '/'!r} under {self.root_uri}")
        dst_root = (
            Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="flowml-"))
        )
        dst_root.mkdir(parents=True, exist_ok=True)
        target = dst_root / (rel.rsplit("/", 1)[-1] if rel else "")
        if self.fs.isdir(src):
            _copy_tree(self.fs, src, target)
        else:
            self.fs.get_file(src, str(target))
        return str(target.resolve())

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        full = self._full(artifact_path)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def _makedirs(self, path: str) -> None:
        if self._local and path:
            self.fs.makedirs(path, exist_ok=True)


def _copy_tree(fs: Any, src: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    src = src.rstrip("/")
    for name in fs.find(src):
        rel = name[len(src) :].lstrip("/")
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(name, str(dest))


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def download_uri(uri: str, dst_path: str | os.PathLike[str] | None = None) -> str:
    """Make the file or directory at ``uri`` available locally and return its local path.

    Local paths (and ``file://`` URLs) are returned as they are, without copying.
    """
    fs, path = _url_to_fs(uri)
    if _is_local(fs):
        if not fs.exists(path):
            raise ResourceNotFound(f"Nothing at {uri!r}")
        return path
    parent, _, name = path.rstrip("/").rpartition("/")
    repo = ArtifactRepository(uri.rstrip("/").rsplit("/", 1)[0] if parent else uri)
    return repo.download_artifacts(name if parent else "", dst_path)
