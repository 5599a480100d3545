"""The trace write path on the driver's cursor: one ``executemany`` per table per batch.

A batch of traces is a few rows per trace in four tables. Through SQLAlchemy Core every
row's parameters are rebuilt by the compiler (~15 µs of Python each), more than SQLite
needs to insert it; these statements are fixed SQL text with the dialect's placeholders,
run inside the caller's transaction. ``ON CONFLICT DO NOTHING`` (SQLite 3.24+ and
PostgreSQL) makes a repeated span, tag or trace a no-op, which is how partial traces merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

__all__ = ["COLUMNS", "insert_ignore"]

#: The columns each table's rows give, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "traces": (
        "trace_id",
        "experiment_id",
        "name",
        "state",
        "timestamp_ms",
        "execution_time_ms",
        "run_uuid",
        "task_run_id",
        "request_preview",
        "response_preview",
    ),
    "spans": (
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "span_type",
        "status",
        "start_time_ns",
        "end_time_ns",
        "content",
    ),
    "trace_tags": ("trace_id", "key", "value"),
    "trace_metadata": ("trace_id", "key", "value"),
}


def insert_ignore(conn: Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in `COLUMNS` order) into ``table``, skipping existing keys."""
    if not rows:
        return
    columns = COLUMNS[table]
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))}) ON CONFLICT DO NOTHING"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()
