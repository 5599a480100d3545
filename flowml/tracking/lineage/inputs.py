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

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.digest import digest_path, digest_remote, digest_value
from flowml.tracking.lineage import (
    INPUT,
    KIND_DATASET,
    KIND_MODEL,
    OUTPUT,
    LineageEntry,
    validate_entries,
)

if TYPE_CHECKING:
    from flowml.tracking.client import TrackingClient

__all__ = ["defer_lineage", "log_input", "record_input", "record_output", "take_deferred"]

INPUTS_TAG = "flowml.inputs"
DATASET_CONTEXT_TAG = "mlflow.data.context"
MAX_CONTEXT_LENGTH = 250
MAX_TAG_VALUE = 8000

_deferred: dict[str, list[LineageEntry]] = {}
_lock = threading.Lock()


def log_input(
    source: Any = None,
    context: str | None = None,
    tags: dict[str, str] | None = None,
    model: Any = None,
    *,
    name: str | None = None,
    digest: str | None = None,
    kind: str = KIND_DATASET,
    dataset: Any = None,
) -> LineageEntry:
    """Record that the active run read a dataset.

    Args:
        source: a local path, a URL any fsspec filesystem reads (``s3://...``), an
            in-memory pandas DataFrame/Series or numpy array, or a dataset from
            ``flowml.data.from_pandas`` / ``from_numpy`` (MLflow's ``log_input(dataset)``).
        name: a short name (default: the dataset's, the file name, or the value's type).
        digest: the content digest; computed when omitted (file content, a remote object's
            checksum, or the in-memory value's content).
        context: how the run used it (``"training"``, ``"eval"``), as MLflow's input tag
            ``mlflow.data.context``.
        tags: further input tags.
        model: a model the run used (a logged model id, or an object with ``model_id``
            such as MLflow's ``LoggedModelInput``), recorded as ``models:/<id>``; alone or
            with a dataset.
        kind: what ``source`` is, ``dataset`` by default.
        dataset: MLflow's keyword for ``source``.

    The positional order (``source, context, tags, model``) is MLflow's
    ``log_input(dataset, context, tags, model)``; ``name``, ``digest`` and ``kind`` are
    keyword-only.

    Returns:
        The recorded `LineageEntry`.

    Raises:
        InvalidParameter: the source is not a path, URL or supported value, a local path
            does not exist (pass ``digest=`` to record a dataset you cannot read from here),
            or bad context or tags.

    Example:
        >>> import pandas as pd
        >>> pd.DataFrame({"alcohol": [12.1, 13.4]}).to_csv("wine.csv", index=False)
        >>> with flowml.start_run() as run:  # or in a `tracked_task`: its run records it
        ...     entry = flowml.log_input("wine.csv", name="raw", context="training")
        >>> entry.kind, entry.name, entry.digest.startswith("blake2b:")
        ('dataset', 'raw', True)
    """
    from flowml.tracking.fluent import _run_id_for_logging

    if dataset is not None:
        if source is not None:
            raise InvalidParameter("Give the dataset as `source` or `dataset`, not both")
        source = dataset
    if source is None and model is None:
        raise InvalidParameter("log_input needs a path, URL, value, dataset or model")
    record = _input_record(context, tags)
    entries = [] if source is None else [_input_entry(source, name, digest, kind)]
    if model is not None:
        entries.append(_model_entry(model))
    run_id, client = _run_id_for_logging()
    _record(client, run_id, entries)
    if record and source is not None:
        _remember_input(client, run_id, entries[0], record)
    return entries[0]


def _model_entry(model: Any) -> LineageEntry:
    model_id = model if isinstance(model, str) else getattr(model, "model_id", None)
    if not isinstance(model_id, str) or not model_id.strip() or "/" in model_id:
        raise InvalidParameter(
            f"model must be a logged model id or have a model_id, got {type(model).__name__}"
        )
    return LineageEntry(INPUT, KIND_MODEL, f"models:/{model_id}", name=model_id)


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
    return _record_one(client, run_id, LineageEntry(OUTPUT, kind, uri, name=name, digest=digest))


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
    return _record_one(client, run_id, LineageEntry(INPUT, kind, uri, name=name, digest=digest))


def _record_one(client: TrackingClient | None, run_id: str, entry: LineageEntry) -> LineageEntry:
    if client is None:
        from flowml.tracking.fluent import get_client

        client = get_client()
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


def _input_record(context: str | None, tags: dict[str, str] | None) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if context is not None:
        if not isinstance(context, str) or not context or len(context) > MAX_CONTEXT_LENGTH:
            raise InvalidParameter(
                f"context must be a string of 1 to {MAX_CONTEXT_LENGTH} characters, got {context!r}"
            )
        record[DATASET_CONTEXT_TAG] = context
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key or len(key) > MAX_CONTEXT_LENGTH:
            raise InvalidParameter(f"Invalid input tag key {key!r}")
        record[key] = str(value)[:MAX_CONTEXT_LENGTH]
    return record


def _remember_input(
    client: TrackingClient, run_id: str, entry: LineageEntry, record: dict[str, Any]
) -> None:
    # Lineage entries hold no tags: an input's context and tags go to the run's
    # `flowml.inputs` tag (a JSON list, newest kept within MLflow's tag size limit).
    existing = client.get_run(run_id).data.tags.get(INPUTS_TAG)
    try:
        listed = json.loads(existing) if existing else []
    except ValueError:
        listed = []
    if not isinstance(listed, list):
        listed = []
    listed.append({"uri": entry.uri, "name": entry.name, "digest": entry.digest, "tags": record})
    value = json.dumps(listed)
    while len(value) > MAX_TAG_VALUE and len(listed) > 1:
        listed.pop(0)
        value = json.dumps(listed)
    if len(value) <= MAX_TAG_VALUE:
        client.set_tag(run_id, INPUTS_TAG, value)


def _input_entry(source: Any, name: str | None, digest: str | None, kind: str) -> LineageEntry:
    from flowml.tracking.datasets import Dataset

    if isinstance(source, Dataset):
        return LineageEntry(
            INPUT, kind, source.uri, name=name or source.name, digest=digest or source.digest
        )
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
