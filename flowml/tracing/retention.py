"""Trace retention: what deleting traces removes besides their rows.

A trace's spans may live in the artifact store: MLflow's client uploads them as
``traces.json``, and flowml's store moves large span payloads there
(`flowml.tracing.span_payloads`). Both sit in the trace's folder, ``<experiment artifact
location>/traces/<trace id>/artifacts`` (its ``mlflow.artifactLocation`` tag, set by the store
or the server, never by a client). Deleting the trace removes that folder too, after the rows
are gone; a location of any other shape is left alone.

Example:
    >>> with write_transaction(engine) as conn:
    ...     folders = trace_folders(conn, ids)
    ...     conn.execute(delete(traces).where(traces.c.trace_id.in_(ids)))
    >>> remove_trace_folders(folders)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Connection, select

from flowml.exceptions import InvalidParameter
from flowml.tracing.artifact_spans import ARTIFACT_LOCATION_TAG
from flowml.tracing.schema import trace_tags

__all__ = ["experiment_ids_int", "remove_trace_folders", "trace_folders"]

_IN_CHUNK = 500
_log = logging.getLogger(__name__)


def experiment_ids_int(experiment_ids: Sequence[str]) -> list[int]:
    """The experiment ids as the traces table holds them.

    Raises:
        InvalidParameter: an id is not a number.
    """
    out = []
    for value in experiment_ids:
        text = str(value)
        if not text.isdigit() or len(text) > 18:
            raise InvalidParameter(f"Invalid experiment id {text!r}: expected digits")
        out.append(int(text))
    return out


def trace_folders(conn: Connection, trace_ids: Sequence[str]) -> dict[str, str]:
    """The artifact location of each trace in ``trace_ids`` that has one, by trace id."""
    tags = trace_tags.c
    found: dict[str, str] = {}
    for i in range(0, len(trace_ids), _IN_CHUNK):
        rows = conn.execute(
            select(tags.trace_id, tags.value).where(
                tags.key == ARTIFACT_LOCATION_TAG,
                tags.trace_id.in_(trace_ids[i : i + _IN_CHUNK]),
            )
        )
        found.update({trace_id: value for trace_id, value in rows if value})
    return found


def remove_trace_folders(folders: dict[str, str]) -> None:
    """Remove each trace's folder ``<...>/traces/<trace id>`` named by its artifact location.
    A folder that cannot be removed is logged, not raised (its rows are already gone)."""
    from flowml.exceptions import FlowMLError
    from flowml.tracking.artifacts import ArtifactRepository

    for trace_id, location in folders.items():
        suffix = f"/traces/{trace_id}/artifacts"
        trimmed = location.rstrip("/")
        if not trimmed.endswith(suffix):
            continue
        parent = trimmed[: -len(f"/{trace_id}/artifacts")]
        try:
            ArtifactRepository(parent).delete_artifacts(trace_id)
        except (FlowMLError, OSError, ValueError) as exc:
            _log.warning("Cannot remove the files of deleted trace %s: %s", trace_id, exc)
