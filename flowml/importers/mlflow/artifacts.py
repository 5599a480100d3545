"""Copying a run's or logged model's artifacts from the source's storage to flowml's.

Both ends go through `ArtifactRepository`, so the confinement rules hold on both: a symlink
leading out of the source directory, or a name that is no valid artifact path, refuses the
copy before anything is written. Files travel through a local temporary directory (any
fsspec filesystem on either side, ``mlflow-artifacts:`` through a server's proxy).

Where a location may point is checked too: a run's artifacts must lie under its
experiment's location, as MLflow always places them, so a crafted database cannot make the
import copy arbitrary files (``/etc``, a home directory) into flowml's artifact store.
"""

from __future__ import annotations

import posixpath
import tempfile
from urllib.parse import unquote, urlsplit

from flowml.exceptions import FlowMLError
from flowml.importers.mlflow.errors import ArtifactImportError, InvalidSourceData
from flowml.tracking.artifacts import ArtifactRepository

__all__ = ["copy_tree", "delete_tree", "require_under"]


def _normal(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return posixpath.normpath(unquote(parts.path) if parts.scheme else uri)
    return f"{parts.scheme}://{parts.netloc}{posixpath.normpath(parts.path or '/')}"


def require_under(location: str, parent: str | None, what: str) -> None:
    """Refuse ``location`` unless it lies inside ``parent`` (its experiment's location).

    Raises:
        InvalidSourceData: ``location`` is outside ``parent`` (or uses ``..`` to leave it).

    Example:
        >>> require_under("/m/1/abc/artifacts", "file:///m/1", "run abc")
    """
    if not parent:
        return
    child, root = _normal(location), _normal(parent).rstrip("/")
    if child != root and not child.startswith(root + "/"):
        raise InvalidSourceData(
            f"The source places the artifacts of {what} at {location!r}, outside its "
            f"experiment's location {parent!r}; nothing of it was imported. MLflow never "
            "does this: the database was changed by hand, or pass --keep-artifact-locations "
            "to leave artifacts where they are."
        )


def copy_tree(
    source_uri: str,
    dest_uri: str,
    what: str,
    *,
    proxy_url: str | None = None,
    dest_path: str | None = None,
) -> bool:
    """Copy everything under ``source_uri`` to ``dest_uri`` (under ``dest_path`` there).

    Returns:
        Whether anything was copied (``False``: the source location holds nothing, as for
        a run that logged no artifacts).

    Raises:
        ArtifactImportError: the source cannot be read (unknown filesystem, permissions,
            an escaping symlink) or the destination cannot be written.
    """
    try:
        source = ArtifactRepository(source_uri, proxy_url=proxy_url)
        if not source.exists():
            return False
        dest = ArtifactRepository(dest_uri)
        with tempfile.TemporaryDirectory(prefix="flowml-import-") as tmp:
            local = source.download_artifacts(None, tmp)
            dest.log_artifacts(local, dest_path)
        return True
    except (FlowMLError, OSError, ValueError, ImportError, RuntimeError) as exc:
        # Any of these from either end means this item's files are not all in place.
        raise ArtifactImportError(
            f"Could not copy the artifacts of {what} from {source_uri!r} to {dest_uri!r}: "
            f"{exc}. Nothing of it was imported; fix access and rerun, or pass "
            "--keep-artifact-locations to leave artifacts where they are."
        ) from exc


def delete_tree(uri: str) -> None:
    """Best-effort removal of a copy whose rows were never written."""
    try:
        ArtifactRepository(uri).delete_artifacts(None)
    except (FlowMLError, OSError, ValueError):  # cleanup only: the import error is what matters
        pass
