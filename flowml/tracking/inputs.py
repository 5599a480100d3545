"""Recording lineage: `log_input` (what a run read) and `record_output` (what it produced).

A run managed by an integration (a tracked Prefect task) defers its entries: they are
collected in memory and written in the one lineage write at the end of the run, so a task
costs the same few statements however many datasets it reads. Other runs write at once.

Example:
    >>> import flowml
    >>> with flowml.start_run():
    ...     flowml.log_input("data/wine.csv", name="wine")
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.digest import digest_path, digest_remote, digest_value
from flowml.tracking.lineage import (
    INPUT,
    KIND_DATASET,
    OUTPUT,
    LineageEntry,
    validate_entries,
)

if TYPE_CHECKING:
    from flowml.tracking.client import TrackingClient

__all__ = ["defer_lineage", "log_input", "record_input", "record_output", "take_deferred"]

_deferred: dict[str, list[LineageEntry]] = {}
_lock = threading.Lock()


def log_input(
    source: Any,
    name: str | None = None,
    digest: str | None = None,
    *,
    kind: str = KIND_DATASET,
) -> LineageEntry:
    """Record that the active run read a dataset.

    Args:
        source: a local path, a URL any fsspec filesystem reads (``s3://...``), or an
            in-memory pandas DataFrame/Series or numpy array.
        name: a short name (default: the file name, or the value's type).
        digest: the content digest; computed when omitted (file content, a remote object's
            checksum, or the in-memory value's content).
        kind: what it is, ``dataset`` by default.

    Returns:
        The recorded `LineageEntry`.

    Raises:
        InvalidParameter: the source is not a path, URL or supported value, or a local path
            does not exist (pass ``digest=`` to record a dataset you cannot read from here).

    Example:
        >>> @flowml.tracked_task
        ... def load(path: str):
        ...     flowml.log_input(path, name="raw")
        ...     return pd.read_csv(path)
    """
    from flowml.tracking.fluent import _run_id_for_logging

    entry = _input_entry(source, name, digest, kind)
    run_id, client = _run_id_for_logging()
    _record(client, run_id, [entry])
    return entry


def record_output(
    run_id: str,
    kind: str,
    uri: str,
    *,
    name: str | None = None,
    digest: str | None = None,
    client: TrackingClient | None = None,
) -> LineageEntry:
    """Record that a run produced something (a model version, an artifact, a dataset).

    Args:
        run_id: the producing run.
        kind: ``model``, ``artifact``, ``dataset``...
        uri: what identifies it (``models:/wine/3``, ``runs:/<id>/model``, ``s3://...``).
        name: a short human name.
        digest: its content digest, when known.
        client: the tracking client (default: the fluent API's).

    Returns:
        The recorded `LineageEntry`.

    Raises:
        InvalidParameter: a bad kind, URI, name or digest.
        ResourceNotFound: no run has that id.
    """
    if client is None:
        from flowml.tracking.fluent import get_client

        client = get_client()
    entry = LineageEntry(OUTPUT, kind, uri, name=name, digest=digest)
    _record(client, run_id, [entry])
    return entry


def record_input(
    run_id: str,
    kind: str,
    uri: str,
    *,
    name: str | None = None,
    digest: str | None = None,
    client: TrackingClient | None = None,
) -> LineageEntry:
    """Record that a run read something identified by a URI no filesystem opens
    (``prompts:/qa/3``): the same rules and deferral as `log_input`.

    Raises:
        InvalidParameter: a bad kind, URI, name or digest.
        ResourceNotFound: no run has that id.
    """
    if client is None:
        from flowml.tracking.fluent import get_client

        client = get_client()
    entry = LineageEntry(INPUT, kind, uri, name=name, digest=digest)
    _record(client, run_id, [entry])
    return entry


def defer_lineage(run_id: str) -> None:
    """Collect the run's entries in memory until `take_deferred` (used by tracked tasks)."""
    with _lock:
        _deferred.setdefault(run_id, [])


def take_deferred(run_id: str) -> list[LineageEntry]:
    """Stop deferring the run's entries and return those collected so far."""
    with _lock:
        return _deferred.pop(run_id, [])


def _record(client: TrackingClient, run_id: str, entries: list[LineageEntry]) -> None:
    checked = validate_entries(entries)
    with _lock:
        pending = _deferred.get(run_id)
        if pending is not None:
            pending.extend(checked)
            return
    client.store.log_lineage(run_id, checked)


def _input_entry(source: Any, name: str | None, digest: str | None, kind: str) -> LineageEntry:
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not text:
            raise InvalidParameter("log_input needs a non-empty path or URL")
        if _is_remote(text):
            uri = text
            if digest is None:
                try:
                    digest = digest_remote(text)
                except Exception as exc:  # any filesystem error: the caller can pass digest=
                    raise InvalidParameter(
                        f"Could not read the checksum of {text!r} ({exc}); pass digest= to "
                        "record it without one"
                    ) from exc
        else:
            path = Path(text.removeprefix("file://")).expanduser().resolve()
            uri = str(path)
            if digest is None:
                if not path.exists():
                    raise InvalidParameter(
                        f"Nothing exists at {uri!r}; pass digest= to record a dataset that "
                        "is not readable from here"
                    )
                digest = digest_path(path)
        default_name = uri.rstrip("/").rsplit("/", 1)[-1] or uri
        return LineageEntry(INPUT, kind, uri, name=name or default_name, digest=digest)
    computed = digest if digest is not None else digest_value(source)
    if computed is None:
        raise InvalidParameter(
            f"log_input takes a path, a URL, a pandas object or a numpy array, got "
            f"{type(source).__name__}"
        )
    # In-memory data has no location: its content is its identity, so runs that saw the
    # same data share the URI and are linked.
    return LineageEntry(
        INPUT, kind, f"digest:{computed}", name=name or type(source).__name__, digest=computed
    )


def _is_remote(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme != "file" and len(scheme) > 1
