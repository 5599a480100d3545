"""Artifacts through one fsspec layer: local disk, ``file://``, ``memory://``, ``s3://``...

`ArtifactRepository` is confined to its root: every artifact path is checked
before it reaches the filesystem, and a path that could escape the root
(``..``, absolute paths, backslashes, percent-encoded dots or slashes) is
refused with `ArtifactPathError`. On local disk, paths are also confined by where
they really lead (symlinks included) and files are written atomically; see
`flowml.tracking.artifacts_local`.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowml.exceptions import ArtifactPathError, InvalidParameter, ResourceNotFound
from flowml.tracking import artifacts_local as local_fs

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
        root_uri: a local path or any fsspec URL (``s3://bucket/prefix``, ``memory://x``),
            or ``mlflow-artifacts:/<path>`` with ``proxy_url``.
        proxy_url: the tracking server whose artifact proxy serves ``mlflow-artifacts:``
            URIs (its ``http(s)://`` tracking URI).
        storage_options: passed to fsspec (e.g. ``{"client_kwargs": {"endpoint_url": ...}}``).
    """

    def __init__(
        self, root_uri: str, *, proxy_url: str | None = None, **storage_options: Any
    ) -> None:
        self.root_uri = root_uri.rstrip("/")
        if self.root_uri.lower().startswith("mlflow-artifacts:"):
            self.fs, self.root = _proxy_fs(self.root_uri, proxy_url)
        elif storage_options:
            from fsspec.core import url_to_fs

            self.fs, self.root = url_to_fs(self.root_uri, **storage_options)
        else:
            self.fs, self.root = _url_to_fs(self.root_uri)
        self.root = self.root.rstrip("/")
        self._local = _is_local(self.fs)

    @property
    def is_local(self) -> bool:
        """Whether the artifacts live on this machine's disk (not an object store)."""
        return self._local

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
        rel = safe_artifact_path(posixpath.join(safe_artifact_path(artifact_path), local.name))
        self._put(str(local), rel)
        return rel

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> str:
        """Copy a local directory tree under ``artifact_path``.

        Every file is checked before any is copied: a name that is not a valid artifact
        path, or a symlink leading out of ``local_dir``, refuses the whole call.

        Raises:
            ArtifactPathError: naming the offending file; nothing was copied.
        """
        local = Path(local_dir)
        if not local.is_dir():
            raise ResourceNotFound(f"No local directory {str(local)!r} to log")
        base = safe_artifact_path(artifact_path)
        files = local_fs.list_files(str(local), str(local), lambda rel: repr(str(local / rel)))
        plan = [(src, safe_artifact_path(posixpath.join(base, rel))) for src, rel in files]
        for src, rel in plan:
            self._put(src, rel)
        return base

    def write_bytes(self, artifact_path: str, data: bytes) -> None:
        rel = safe_artifact_path(artifact_path)
        if not rel:
            raise ArtifactPathError("An artifact needs a file name")
        if self._local:
            local_fs.write_file(self.root, rel, lambda fh: fh.write(data))
        else:
            # One PUT: an object store shows the old object or the whole new one.
            self.fs.pipe_file(self._full(rel), data)

    def write_stream(self, artifact_path: str, fill: Any) -> bool:
        """Write a file by calling ``fill(binary_file)``, on local disk only (atomically).

        Returns:
            ``False`` (nothing written) when the root is not local: the caller then
            spools the content and uses `log_artifact`.
        """
        rel = safe_artifact_path(artifact_path)
        if not rel:
            raise ArtifactPathError("An artifact needs a file name")
        if not self._local:
            return False
        local_fs.write_file(self.root, rel, fill)
        return True

    def read_bytes(self, artifact_path: str) -> bytes:
        src = self._full(artifact_path)
        if self._local:
            src = local_fs.check_inside(src, self.root, safe_artifact_path(artifact_path))
        try:
            with self.fs.open(src, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            raise ResourceNotFound(f"No artifact {artifact_path!r} under {self.root_uri}") from None

    def open_artifact(self, artifact_path: str) -> Any:
        """A binary file object reading one artifact, confined like `read_bytes` (for
        streaming it without holding it in memory; the caller closes it).

        Raises:
            ResourceNotFound: no file at ``artifact_path`` (or it is a directory).
            ArtifactPathError: the path could leave the root.
        """
        rel = safe_artifact_path(artifact_path)
        src = self._full(rel)
        if self._local:
            src = local_fs.check_inside(src, self.root, rel)
        try:
            if not rel or self.fs.isdir(src):
                raise IsADirectoryError(src)
            return self.fs.open(src, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ResourceNotFound(f"No artifact {rel or '/'!r} under {self.root_uri}") from None

    def exists(self, artifact_path: str | None = None) -> bool:
        full = self._full(artifact_path)
        if self._local:
            full = local_fs.check_inside(full, self.root, safe_artifact_path(artifact_path))
        return bool(self.fs.exists(full))

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The direct children of ``path`` (the root by default), sorted by path."""
        rel = safe_artifact_path(path)
        full = self._full(rel)
        if self._local:
            full = local_fs.check_inside(full, self.root, rel)
        try:
            entries = self.fs.ls(full, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            name = entry["name"].rstrip("/")
            child = name.rsplit("/", 1)[-1]
            if name == full.rstrip("/") or (self._local and local_fs.is_partial(child)):
                continue  # ls of a file returns the file itself; partial writes are not artifacts
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
        """Copy an artifact file or directory to a local directory; returns the local path.

        Raises:
            ResourceNotFound: nothing at ``artifact_path``.
            ArtifactPathError: on local disk, a symlink under it leads out of the root
                (checked before anything is copied).
        """
        rel = safe_artifact_path(artifact_path)
        src = self._full(rel)
        if self._local:
            src = local_fs.check_inside(src, self.root, rel)
        if not self.fs.exists(src):
            raise ResourceNotFound(f"No artifact {rel or '/'!r} under {self.root_uri}")
        local_files = None
        if self._local and os.path.isdir(src):
            local_files = local_fs.list_files(
                src, self.root, lambda sub: repr(posixpath.join(rel, sub)), artifacts=True
            )
        dst_root = (
            Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="flowml-"))
        )
        dst_root.mkdir(parents=True, exist_ok=True)
        target = dst_root / (rel.rsplit("/", 1)[-1] if rel else "")
        if local_files is not None:
            target.mkdir(parents=True, exist_ok=True)
            for file, sub in local_files:
                (target / sub).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target / sub)
        elif self.fs.isdir(src):
            _copy_tree(self.fs, src, target)
        else:
            self.fs.get_file(src, str(target))
        return str(target.resolve())

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        rel = safe_artifact_path(artifact_path)
        full = self._full(rel)
        if self._local and rel:
            # The entry itself may be a symlink (then the link goes, not its target); the
            # directories leading to it must stay inside the root.
            local_fs.check_inside(posixpath.dirname(full), self.root, posixpath.dirname(rel))
            if os.path.islink(full):
                os.unlink(full)
                return
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def _put(self, local_file: str, rel: str) -> None:
        if self._local:
            # Opened first, so an unreadable source is reported as such, not as a store fault.
            with open(local_file, "rb") as src:
                local_fs.write_file(self.root, rel, lambda fh: shutil.copyfileobj(src, fh))
        else:
            # Atomic on object stores: s3fs sends one PUT, or a multipart upload that is
            # completed only once every part arrived (and aborted on failure).
            self.fs.put_file(local_file, self._full(rel))


def _proxy_fs(root_uri: str, proxy_url: str | None) -> tuple[Any, str]:
    from flowml.tracking.artifacts_proxy import proxy_filesystem, proxy_root

    if not proxy_url or not proxy_url.lower().startswith(("http://", "https://")):
        raise InvalidParameter(
            f"Artifact URI {root_uri!r} is served by a tracking server's artifact proxy: "
            "use an http(s):// tracking URI pointing at that server"
        )
    return proxy_filesystem(proxy_url.rstrip("/")), proxy_root(root_uri)


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


def download_uri(
    uri: str, dst_path: str | os.PathLike[str] | None = None, *, proxy_url: str | None = None
) -> str:
    """Make the file or directory at ``uri`` available locally and return its local path.

    Local paths (and ``file://`` URLs) are returned as they are, without copying.
    ``mlflow-artifacts:/`` URIs are read through the artifact proxy of the tracking server
    at ``proxy_url``.
    """
    if uri.lower().startswith("mlflow-artifacts:"):
        parent, _, name = uri.rstrip("/").rpartition("/")
        if parent.endswith(":"):  # mlflow-artifacts:/<name>: the destination's root
            parent, name = uri.rstrip("/"), ""
        repo = ArtifactRepository(parent, proxy_url=proxy_url)
        return repo.download_artifacts(name, dst_path)
    fs, path = _url_to_fs(uri)
    if _is_local(fs):
        if not fs.exists(path):
            raise ResourceNotFound(f"Nothing at {uri!r}")
        return path
    parent, _, name = path.rstrip("/").rpartition("/")
    repo = ArtifactRepository(uri.rstrip("/").rsplit("/", 1)[0] if parent else uri)
    return repo.download_artifacts(name if parent else "", dst_path)
