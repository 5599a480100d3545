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

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.sql import Executable

from flowml.tracking.entities import LifecycleStage
from flowml.tracking.store import faults
from flowml.tracking.store.schema import experiments, latest_metrics, run_lineage, runs
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
        **_checked_statements(insert),
        "experiment_of_run": select(
            experiments.c.artifact_location, experiments.c.lifecycle_stage
        ).where(experiments.c.experiment_id == bindparam("experiment_id")),
        "run_stage": select(runs.c.lifecycle_stage).where(runs.c.run_uuid == bindparam("run_uuid")),
        "params_of_run": select(params_table.c.key, params_table.c.value).where(
            params_table.c.run_uuid == bindparam("run_uuid")
        ),
        "insert_params": insert(params_table),
        "insert_tags": insert(tags_table),
        "upsert_tags": upsert_tag.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_={"value": upsert_tag.excluded.value}
        ),
        "insert_segments": insert(metric_segments),
        "insert_lineage": insert(run_lineage).on_conflict_do_nothing(
            index_elements=["run_uuid", "direction", "kind", "uri"]
        ),
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


def _bound(column: Any, name: str | None = None) -> Any:
    return bindparam(name or column.name, type_=column.type)


def _checked_statements(insert: Callable[..., Any]) -> dict[str, Executable]:
    """Statements that check their own preconditions, so a group of them can be sent in
    one round trip without reading anything first (see `engine.one_round_trip`)."""
    r, p = runs.c, params_table.c
    run_uuid = _bound(r.run_uuid)
    # Constants inlined in the SQL, so every bound parameter is one the caller names.
    active = literal_column(f"'{LifecycleStage.ACTIVE}'")
    slash, suffix = literal_column("'/'"), literal_column("'/artifacts'")
    # Get-or-create in one statement: inserts nothing (and returns no row) when the run
    # key exists already or the experiment is missing or deleted; the caller then reads.
    create_run = (
        insert(runs)
        .from_select(
            list(_RUN_COLUMNS),
            select(
                run_uuid,
                _bound(r.run_key),
                _bound(r.name),
                experiments.c.experiment_id,
                _bound(r.user_id),
                _bound(r.status),
                _bound(r.start_time),
                null(),
                func.rtrim(experiments.c.artifact_location, slash, type_=String)
                + slash
                + run_uuid
                + suffix,
                active,
                null(),
                _bound(r.parent_run_uuid),
            ).where(
                experiments.c.experiment_id == _bound(experiments.c.experiment_id),
                experiments.c.lifecycle_stage == active,
            ),
        )
        .on_conflict_do_nothing(index_elements=["run_key"], index_where=r.run_key.is_not(None))
        .returning(r.artifact_uri)
    )
    t = tags_table.c
    tag_values = (_bound(t.run_uuid), _bound(t.key), _bound(t.value))
    return {
        "create_run": create_run,
        # The tags of a run `create_run` just inserted (none when it inserted nothing).
        "insert_tags_of_new_run": insert(tags_table).from_select(
            ["run_uuid", "key", "value"],
            select(*tag_values).where(exists().where(r.run_uuid == _bound(r.run_uuid))),
        ),
        "finish_run": update(runs)
        .where(r.run_uuid == bindparam("b_run_uuid"), r.lifecycle_stage == active)
        .values(status=bindparam("status"), end_time=bindparam("end_time")),
        # Fails (division by zero: PostgreSQL only) unless the run exists and is active, so
        # that the statements sent with it are rolled back without a read first.
        "assert_active_run": select(literal_column("1") / func.count()).where(
            r.run_uuid == _bound(r.run_uuid), r.lifecycle_stage == active
        ),
        # Write-once params without a read: a key already holding another value breaks the
        # primary key, an equal value is skipped.
        "insert_params_once": insert(params_table).from_select(
            ["run_uuid", "key", "value"],
            select(_bound(p.run_uuid), _bound(p.key), _bound(p.value)).where(
                ~exists().where(
                    p.run_uuid == _bound(p.run_uuid),
                    p.key == _bound(p.key),
                    p.value == _bound(p.value),
                )
            ),
        ),
    }


_RUN_COLUMNS = tuple(c.name for c in runs.c if c.name != "id")
_COLUMNS = {
    "insert_params": ("run_uuid", "key", "value"),
    "insert_tags": ("run_uuid", "key", "value"),
    "upsert_tags": ("run_uuid", "key", "value"),
    "insert_segments": ("run_uuid", "key", "n", "step_min", "step_max", "points"),
    "insert_lineage": ("run_uuid", "direction", "kind", "uri", "name", "digest", "timestamp"),
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


def select_run_children(conn: Connection, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every param, tag and latest metric of some runs in one statement (one round trip
    instead of three): rows ``(kind, run_uuid, key, text value, metric value, timestamp,
    step)`` with kind 0 for a param, 1 for a tag, 2 for a latest metric (whose text value
    is NULL; the others have NULL metric columns)."""
    key = '"key"' if conn.dialect.name == "sqlite" else "key"
    ts = '"timestamp"' if conn.dialect.name == "sqlite" else "timestamp"
    if conn.dialect.name == "postgresql":
        # One parameter per branch: the SQL text stays the same whatever the page size, so
        # the driver parses it once (a thousand placeholders are re-parsed on every call).
        # Run ids travel as one comma-joined string, cheaper to send than an array.
        if any("," in run_id for run_id in run_ids):
            where, one = "run_uuid = ANY(%s)", list(run_ids)
        else:
            where, one = "run_uuid = ANY(string_to_array(%s, ','))", ",".join(run_ids)
        args: tuple[Any, ...] = (one, one, one)
    else:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        where = f"run_uuid IN ({', '.join([mark] * len(run_ids))})"
        args = tuple(run_ids) * 3
    # Typed NULLs: PostgreSQL settles a UNION's column types branch by branch.
    none = "CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"
    sql = (
        f"SELECT 0, run_uuid, {key}, value, {none} FROM params WHERE {where} "
        f"UNION ALL SELECT 1, run_uuid, {key}, value, {none} FROM tags WHERE {where} "
        f"UNION ALL SELECT 2, run_uuid, {key}, CAST(NULL AS TEXT), value, {ts}, step "
        f"FROM latest_metrics WHERE {where}"
    )
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, args)
        found = cursor.fetchall()
    except Exception as exc:  # a damaged file, an I/O error...: as StoreError
        faults.raise_for(conn, exc)
        raise
    cursor.close()
    return found
