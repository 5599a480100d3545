"""The write path's statements, compiled once per dialect and run on the driver's cursor.

Executing a Core statement through SQLAlchemy costs tens of microseconds of Python per
call (cache lookups, execution contexts, result objects) — more than SQLite needs to run
it. The handful of statements on the hot write path (create a run, log a batch, end a
run) are therefore written as Core statements with bound parameters, compiled to the
dialect's SQL text once, and executed on the DBAPI cursor of the SQLAlchemy connection
that holds the transaction. Everything else in the store stays on plain Core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.sql import Executable

from flowml.tracking.store import faults
from flowml.tracking.store.schema import experiments, latest_metrics, runs
from flowml.tracking.store.schema import metrics as metric_segments
from flowml.tracking.store.schema import params as params_table
from flowml.tracking.store.schema import tags as tags_table

_compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}
_lock = threading.Lock()


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's ``insert`` construct (with ``on_conflict_*``): PostgreSQL's or SQLite's."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _statements(dialect_name: str) -> dict[str, Executable]:
    insert = dialect_insert(dialect_name)
    lm = latest_metrics.c
    upsert_latest = insert(latest_metrics)
    newer = (upsert_latest.excluded.step > lm.step) | (
        (upsert_latest.excluded.step == lm.step)
        & (upsert_latest.excluded.timestamp >= lm.timestamp)
    )
    upsert_tag = insert(tags_table)
    return {
        "experiment_of_run": select(
            experiments.c.artifact_location, experiments.c.lifecycle_stage
        ).where(experiments.c.experiment_id == bindparam("experiment_id")),
        "run_stage": select(runs.c.lifecycle_stage).where(runs.c.run_uuid == bindparam("run_uuid")),
        "params_of_run": select(params_table.c.key, params_table.c.value).where(
            params_table.c.run_uuid == bindparam("run_uuid")
        ),
        "insert_run": insert(runs),
        "insert_params": insert(params_table),
        "insert_tags": insert(tags_table),
        "upsert_tags": upsert_tag.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_={"value": upsert_tag.excluded.value}
        ),
        "insert_segments": insert(metric_segments),
        "upsert_latest": upsert_latest.on_conflict_do_update(
            index_elements=["run_uuid", "key"],
            set_={
                "value": upsert_latest.excluded.value,
                "timestamp": upsert_latest.excluded.timestamp,
                "step": upsert_latest.excluded.step,
            },
            where=newer,
        ),
        "end_run": update(runs)
        .where(
            runs.c.run_uuid == bindparam("b_run_uuid"),
            runs.c.lifecycle_stage == bindparam("b_stage"),
        )
        .values(status=bindparam("status"), end_time=bindparam("end_time"))
        .returning(*runs.c),
    }


_COLUMNS = {
    "insert_run": tuple(c.name for c in runs.c if c.name != "id"),
    "insert_params": ("run_uuid", "key", "value"),
    "insert_tags": ("run_uuid", "key", "value"),
    "upsert_tags": ("run_uuid", "key", "value"),
    "insert_segments": ("run_uuid", "key", "n", "step_min", "step_max", "points"),
    "upsert_latest": ("run_uuid", "key", "value", "timestamp", "step"),
}


def _sql(conn: Connection, name: str) -> tuple[str, tuple[str, ...] | None]:
    dialect = conn.dialect
    key = (dialect.name, name)
    found = _compiled.get(key)
    if found is None:
        with _lock:
            stmt = _statements(dialect.name)[name]
            columns = _COLUMNS.get(name)
            compiled = stmt.compile(dialect=dialect, column_keys=list(columns) if columns else None)
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = _compiled[key] = (str(compiled), order)
    return found


def run(conn: Connection, name: str, params: dict[str, Any]) -> Any:
    """Execute one named statement with one parameter set; returns the DBAPI cursor."""
    sql, order = _sql(conn, name)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, tuple(params[n] for n in order) if order is not None else params)
    except Exception as exc:  # a full disk, a read-only file...: as StoreError
        faults.raise_for(conn, exc)
        raise
    return cursor


def run_many(conn: Connection, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """Execute one named statement for many parameter sets (the driver's executemany)."""
    if not rows:
        return
    sql, order = _sql(conn, name)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if order is not None:
            cursor.executemany(sql, [tuple(row[n] for n in order) for row in rows])
        else:
            cursor.executemany(sql, rows)
    except Exception as exc:  # a full disk, a read-only file...: as StoreError
        faults.raise_for(conn, exc)
        raise
    cursor.close()


_CHILD_TABLES = ("params", "tags", "latest_metrics")


def select_children(conn: Connection, table: str, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_uuid, key, value)`` of every row of a child table for some runs (reads a page
    of search results: tens of thousands of rows, where per-row Python cost dominates)."""
    if table not in _CHILD_TABLES:
        raise ValueError(f"not a child table of runs: {table!r}")
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    key = '"key"' if conn.dialect.name == "sqlite" else "key"
    sql = (
        f"SELECT run_uuid, {key}, value FROM {table} "
        f"WHERE run_uuid IN ({', '.join([mark] * len(run_ids))})"
    )
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, tuple(run_ids))
        found = cursor.fetchall()
    except Exception as exc:  # a damaged file, an I/O error...: as StoreError
        faults.raise_for(conn, exc)
        raise
    cursor.close()
    return found
