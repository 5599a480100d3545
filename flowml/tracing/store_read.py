"""The trace read path on the driver's cursor: summaries, tags, metadata and spans by id.

A search returns up to a few hundred traces, each with a handful of tags and metadata and
its spans: several hundred rows. Through SQLAlchemy Core each statement's ``IN`` list is
compiled per call and each row wrapped, which costs more than SQLite needs to find them.
These statements are plain SQL over the `schema` tables with the dialect's placeholders,
run on the DBAPI cursor of the caller's connection; rows become entities right here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from flowml.tracing import entities as e

__all__ = ["read_infos", "read_spans"]

_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit
_TRACE_COLUMNS = (
    "trace_id, experiment_id, state, timestamp_ms, execution_time_ms, run_uuid, task_run_id, "
    "request_preview, response_preview"
)


def _rows(conn: Connection, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    out: list[tuple[Any, ...]] = []
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for i in range(0, len(ids), _CHUNK):
            chunk = list(ids[i : i + _CHUNK])
            cursor.execute(sql.format(ids=", ".join([marker] * len(chunk))), chunk)
            out.extend(cursor.fetchall())
    finally:
        cursor.close()
    return out


def read_infos(
    conn: Connection, ids: Sequence[str], *, with_assessments: bool
) -> dict[str, e.TraceInfo]:
    """The summaries of the traces ``ids`` that exist, by id."""
    if not ids:
        return {}
    tags: dict[str, dict[str, str]] = {}
    meta: dict[str, dict[str, str]] = {}
    for kind, trace_id, key, value in _kv_rows(conn, ids):
        (meta if kind else tags).setdefault(trace_id, {})[key] = value
    judged: dict[str, list[e.Assessment]] = {}
    if with_assessments:
        for row in _rows(
            conn,
            "SELECT assessment_id, trace_id, name, kind, value, error, rationale, source_type, "
            "source_id, span_id, metadata, create_time_ms, last_update_time_ms, valid "
            "FROM assessments WHERE trace_id IN ({ids}) ORDER BY create_time_ms, assessment_id",
            ids,
        ):
            judged.setdefault(row[1], []).append(_assessment(row))
    out = {}
    for row in _rows(conn, f"SELECT {_TRACE_COLUMNS} FROM traces WHERE trace_id IN ({{ids}})", ids):
        trace_id = row[0]
        out[trace_id] = e.TraceInfo(
            trace_id=trace_id,
            experiment_id=str(row[1]),
            request_time=row[3],
            state=row[2],
            execution_duration=row[4],
            request_preview=row[7],
            response_preview=row[8],
            run_id=row[5],
            task_run_id=row[6],
            trace_metadata=meta.get(trace_id, {}),
            tags=tags.get(trace_id, {}),
            assessments=judged.get(trace_id, []),
        )
    return out


def _kv_rows(conn: Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    tags = _rows(
        conn, "SELECT 0, trace_id, key, value FROM trace_tags WHERE trace_id IN ({ids})", ids
    )
    meta = _rows(
        conn, "SELECT 1, trace_id, key, value FROM trace_metadata WHERE trace_id IN ({ids})", ids
    )
    return tags + meta


def read_spans(conn: Connection, ids: Sequence[str]) -> dict[str, list[e.Span]]:
    """The spans of each trace in ``ids``: root first, then by start time."""
    out: dict[str, list[e.Span]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = _rows(
        conn,
        "SELECT trace_id, content FROM spans WHERE trace_id IN ({ids}) ORDER BY trace_id, "
        "CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_time_ns, span_id",
        ids,
    )
    loads = orjson.loads
    for trace_id, content in rows:
        out[trace_id].append(e.Span(loads(content)))
    return out


def _assessment(row: tuple[Any, ...]) -> e.Assessment:
    return e.Assessment(
        assessment_id=row[0],
        trace_id=row[1],
        name=row[2],
        kind=row[3],
        value=orjson.loads(row[4]) if row[4] is not None else None,
        error=row[5],
        rationale=row[6],
        source=e.AssessmentSource(row[7], row[8]),
        span_id=row[9],
        metadata=orjson.loads(row[10]) if row[10] else None,
        create_time_ms=row[11],
        last_update_time_ms=row[12],
        valid=bool(row[13]),
    )
