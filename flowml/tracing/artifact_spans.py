"""Spans MLflow's client uploaded as ``traces.json`` next to a trace (its artifact location).

MLflow 3's client, logging to a tracking server, creates the trace's info with
``StartTraceV3`` and then uploads the spans as one ``traces.json`` file into the trace's
artifact location (the ``mlflow.artifactLocation`` tag the server chose). flowml's store reads
that file the first time the trace is read without spans, and keeps the spans in its table.

The location is the one the server set (clients cannot choose it: the tag is reserved), the
file is read through `ArtifactRepository` (confined to that location) and bounded in size.
"""

from __future__ import annotations

import logging

import orjson

from flowml.tracing.entities import Span

__all__ = ["ARTIFACT_LOCATION_TAG", "MAX_TRACE_FILE_BYTES", "TRACE_DATA_FILE", "load_spans"]

ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
TRACE_DATA_FILE = "traces.json"
MAX_TRACE_FILE_BYTES = 64 * 1024 * 1024
_log = logging.getLogger(__name__)


def load_spans(location: str) -> list[Span]:
    """The spans in ``<location>/traces.json`` (empty when there is none or it is unreadable)."""
    from flowml.exceptions import FlowMLError
    from flowml.tracking.artifacts import ArtifactRepository

    try:
        repository = ArtifactRepository(location)
        if not repository.exists(TRACE_DATA_FILE):
            return []
        with repository.open_artifact(TRACE_DATA_FILE) as fh:
            data = fh.read(MAX_TRACE_FILE_BYTES + 1)
    except (FlowMLError, OSError, ValueError) as exc:
        _log.warning("Cannot read the spans of a trace at %s: %s", location, exc)
        return []
    if len(data) > MAX_TRACE_FILE_BYTES:
        _log.warning("The spans file at %s is over %d bytes; not read", location, len(data))
        return []
    try:
        spans = orjson.loads(data).get("spans", [])
        return [Span(s) for s in spans if _well_formed(s)]
    except (orjson.JSONDecodeError, AttributeError):
        _log.warning("The spans file at %s is not MLflow trace JSON; not read", location)
        return []


def _well_formed(span: object) -> bool:
    return (
        isinstance(span, dict)
        and isinstance(span.get("span_id"), str)
        and isinstance(span.get("name"), str)
        and isinstance(span.get("start_time_unix_nano"), int)
        and isinstance(span.get("attributes", {}), dict)
    )
