"""The hot paths' statements, compiled once per dialect and run on the driver's cursor.

Executing a Core statement through SQLAlchemy costs tens of microseconds of Python per
call (cache lookups, execution contexts, result objects) — more than SQLite needs to run
it. The handful of statements on the hot write path (create a run, log a batch, end a
run) are therefore written as Core statements with bound parameters, compiled to the
dialect's SQL text once, and executed on the DBAPI cursor of the SQLAlchemy connection
that holds the transaction. Everything else in the store stays on plain Core.

This module is the only one that touches a driver cursor: callers name a statement and
get rows back (`fetch_one`, `fetch_all`), a `Reply` to read after a pipelined round
trip (`send`), or nothing (`run`, `run_many`); every cursor is closed here. Runs come
back as `RunRow`, readable by column name like a SQLAlchemy ``Row``. `upsert` is the one
``INSERT ... ON CONFLICT DO UPDATE`` builder of the tracking and registry stores.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnClause,
    Connection,
    String,
    Table,
    bindparam,
    exists,
    func,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from flowml.exceptions import InvalidState, ResourceNotFound
from flowml.tracking.entities import LifecycleStage, RunData
from flowml.tracking.store import faults, pg_arrays
from flowml.tracking.store.base import NewRun
from flowml.tracking.store.schema import experiments, latest_metrics, run_lineage, runs
from flowml.tracking.store.schema import metrics as metric_segments
from flowml.tracking.store.schema import params as params_table
from flowml.tracking.store.schema import tags as tags_table

_compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}
_lock = threading.Lock()


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's ``insert`` construct (with ``on_conflict_*``): PostgreSQL's or SQLite's."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def _statements(dialect_name: str) -> dict[str, ClauseElement]:
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
    }


def _bound(column: Any, name: str | None = None) -> Any:
    return bindparam(name or column.name, type_=column.type)


def _checked_statements(insert: Callable[..., Any]) -> dict[str, ClauseElement]:
    """Statements that check their own preconditions, so a group of them can be sent in
    one round trip without reading anything first (see `engine.one_round_trip`)."""
    r, p = runs.c, params_table.c
    run_uuid = _bound(r.run_uuid)
    # Constants inlined in the SQL, so every bound parameter is one the caller names.
    active: ColumnClause[str] = literal_column(f"'{LifecycleStage.ACTIVE}'")
    slash: ColumnClause[str] = literal_column("'/'")
    suffix: ColumnClause[str] = literal_column("'/artifacts'")
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
        # The one statement that changes a run's status, end or name: a value left None
        # keeps the stored one. Only an active run matches (no row back otherwise).
        "update_run": update(runs)
        .where(r.run_uuid == bindparam("b_run_uuid"), r.lifecycle_stage == active)
        .values(
            status=func.coalesce(_bound(r.status), r.status),
            end_time=func.coalesce(_bound(r.end_time), r.end_time),
            name=func.coalesce(_bound(r.name), r.name),
        )
        .returning(*r),
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
            assert isinstance(compiled, SQLCompiler)  # every statement here is DML or a SELECT
            positions = compiled.positiontup  # set only for a positional paramstyle
            order = tuple(positions) if positions is not None else None
            found = _compiled[key] = (str(compiled), order)
    return found


def _cursor(conn: Connection) -> DBAPICursor:
    """A cursor of the driver's own connection, past SQLAlchemy's statement pipeline."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # an open Connection always holds its driver connection
    return dbapi.cursor()


def _execute(conn: Connection, name: str, params: dict[str, Any]) -> Any:
    """A new cursor that ran one named statement (the caller closes it)."""
    sql, order = _sql(conn, name)
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, tuple(params[n] for n in order) if order is not None else params)
    except Exception as exc:  # a full disk, a read-only file...: as StoreError
        cursor.close()
        faults.raise_for(conn, exc)
        raise
    return cursor


def run(conn: Connection, name: str, params: dict[str, Any]) -> None:
    """Execute one named statement whose rows nobody reads."""
    _execute(conn, name, params).close()


def fetch_one(conn: Connection, name: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Execute one named statement; its first row (``None``: no row)."""
    cursor = _execute(conn, name, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def fetch_all(conn: Connection, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Execute one named statement; all its rows."""
    cursor = _execute(conn, name, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def fetch_text(
    conn: Connection,
    sql: str,
    order: Sequence[str] | None,
    params: dict[str, Any] | tuple[Any, ...],
) -> list[tuple[Any, ...]]:
    """Execute SQL text compiled elsewhere for this dialect (``order``: its positional
    parameters' names, ``None`` for named ones or a tuple given in order); all its rows."""
    if order is not None:
        assert isinstance(params, dict)  # named parameters, sent in the SQL's order
        params = tuple(params[n] for n in order)
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    except Exception as exc:  # a damaged file, an I/O error...: as StoreError
        faults.raise_for(conn, exc)
        raise
    finally:
        cursor.close()


class Reply:
    """The first row of a statement sent with `send`, read once with `row`.

    Pipelined (PostgreSQL through `engine.one_round_trip`), rows exist only after the
    round trip, so the cursor is kept open until `row` reads it; otherwise the row is
    read at once, before the next statement (SQLite finishes a statement by reading it).
    """

    __slots__ = ("_cursor", "_row")

    def __init__(self, cursor: Any, later: bool) -> None:
        self._cursor, self._row = cursor, None
        if not later:
            self.row()

    def row(self) -> tuple[Any, ...] | None:
        cursor = self._cursor
        if cursor is not None:
            self._cursor = None
            try:
                self._row = cursor.fetchone()
            finally:
                cursor.close()
        return self._row

    def close(self) -> None:
        """Close the cursor unread (its round trip failed, or nobody needs the row)."""
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            cursor.close()


def send(conn: Connection, name: str, params: dict[str, Any], *, later: bool) -> Reply:
    """Execute one named statement; its first row is read now, or after the round trip
    when ``later`` (the connection pipelines: see `engine.pipelines`)."""
    return Reply(_execute(conn, name, params), later)


def run_many(conn: Connection, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """Execute one named statement for many parameter sets: the driver's executemany, or
    on PostgreSQL one execution over arrays (`pg_arrays`)."""
    if not rows:
        return
    sql, order = _sql(conn, name)
    arrays = (
        pg_arrays.statement(name, rows)
        if len(rows) > 1 and conn.dialect.name == "postgresql"
        else None
    )
    cursor = _cursor(conn)
    try:
        if arrays is not None:  # one execution for the whole batch
            cursor.execute(*arrays)
        elif order is not None:
            cursor.executemany(sql, [tuple(row[n] for n in order) for row in rows])
        else:
            cursor.executemany(sql, rows)
    except Exception as exc:  # a full disk, a read-only file...: as StoreError
        faults.raise_for(conn, exc)
        raise
    finally:
        cursor.close()


def send_creations(
    conn: Connection, new_runs: Sequence[NewRun], *, later: bool, replies: bool = True
) -> list[Reply]:
    """Queue the get-or-create of each run and the tags of those it creates; each reply's
    row is the new run's artifact URI, or ``None`` when that run was not created. Without
    ``replies`` (the caller checks the runs otherwise) PostgreSQL creates them all in one
    execution (`pg_arrays`) and nothing comes back."""
    if not replies and len(new_runs) > 1 and conn.dialect.name == "postgresql":
        run_many(conn, "create_run", [new.values for new in new_runs])
        created: list[Reply] = []
    else:
        created = [send(conn, "create_run", new.values, later=later) for new in new_runs]
    run_many(conn, "insert_tags_of_new_run", [r for new in new_runs for r in new.tag_rows])
    return created


class RunRow(NamedTuple):
    """A row of the runs table read on the driver's cursor, by column name like a ``Row``."""

    id: int
    run_uuid: str
    run_key: str | None
    name: str
    experiment_id: int
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str
    deleted_time: int | None
    parent_run_uuid: str | None


def require_active_run(conn: Connection, run_id: str) -> None:
    """Raises `ResourceNotFound` for an unknown run, `InvalidState` for a deleted one."""
    row = fetch_one(conn, "run_stage", {"run_uuid": run_id})
    if row is None:
        raise ResourceNotFound(f"No run with id {run_id!r}")
    if row[0] != LifecycleStage.ACTIVE:
        raise InvalidState(f"Run {run_id!r} is deleted; restore it before changing it")


def update_run(
    conn: Connection,
    run_id: str,
    *,
    status: str | None = None,
    end_time: int | None = None,
    name: str | None = None,
) -> RunRow | None:
    """Set the given fields of an active run; its row after the change (``None``: the run
    is missing or not active, and nothing changed)."""
    row = fetch_one(
        conn,
        "update_run",
        {"status": status, "end_time": end_time, "name": name, "b_run_uuid": run_id},
    )
    return None if row is None else RunRow(*row)


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    columns: Sequence[str],
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET columns``, on SQLite and PostgreSQL."""
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(keys), tuple(columns)), rows)


# Built once per dialect: constructing and cache-keying an ON CONFLICT statement
# on every call costs more than executing it.
@functools.cache
def _upsert_statement(
    dialect_name: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Executable:
    ins = dialect_insert(dialect_name)(table)
    return ins.on_conflict_do_update(
        index_elements=list(keys), set_={c: getattr(ins.excluded, c) for c in columns}
    )


# Up to this many runs, their children are read by probing each table's primary key once
# per run; beyond it, by one pass over each table (the planner's choice, usually a hash join).
_PROBE_RUNS_MAX = 200


def select_run_children(conn: Connection, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every param, tag and latest metric of some runs in one statement (one round trip
    instead of three): rows ``(kind, run_uuid, key, text value, metric value, timestamp,
    step)`` with kind 0 for a param, 1 for a tag, 2 for a latest metric (whose text value
    is NULL; the others have NULL metric columns)."""
    if conn.dialect.name == "postgresql":
        sql, args = _postgres_children(run_ids)
    else:
        key = '"key"' if conn.dialect.name == "sqlite" else "key"
        ts = '"timestamp"' if conn.dialect.name == "sqlite" else "timestamp"
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
    return fetch_text(conn, sql, None, args)


def run_data(conn: Connection, run_ids: Sequence[str]) -> list[RunData]:
    """The params, tags and latest metrics of each run, in the order of ``run_ids``: one
    statement per chunk of runs (`select_run_children`)."""
    by_id = {run_id: RunData() for run_id in run_ids}
    nan = math.nan
    ids = list(by_id)
    for start in range(0, len(ids), 900):
        for kind, run_uuid, key, text, value, timestamp, step in select_run_children(
            conn, ids[start : start + 900]
        ):
            data = by_id[run_uuid]
            if kind == 0:
                data.params[key] = text
            elif kind == 1:
                data.tags[key] = text
            else:
                data.metrics[key] = nan if value is None else value
                data.metric_points[key] = (timestamp, step)
    return [by_id[run_id] for run_id in run_ids]


# PostgreSQL: a run's params, tags and latest metrics as three JSON arrays in MLflow's wire
# shape (``[{"key": ..., "value": ...}]``; a metric also has its timestamp and step, and a
# non-finite value is the string "NaN", "Infinity" or "-Infinity"), columns that a
# statement reading runs as ``page`` adds. The tracking server sends them as they are;
# `run_data_from_json` reads them. A run's own rows are read through each table's primary
# key, whatever the statement. Sent as text: orjson reads it faster than the driver's
# JSON loader. (A NaN latest value is stored as NULL.)
RUN_DATA_JSON = ", ".join(
    f"(SELECT CAST(json_agg(json_build_object({fields})) AS TEXT) FROM {table} AS c "
    f"WHERE c.run_uuid = page.run_uuid)"
    for table, fields in (
        ("params", "'key', c.key, 'value', c.value"),
        ("tags", "'key', c.key, 'value', c.value"),
        (
            "latest_metrics",
            "'key', c.key, 'value', COALESCE(to_json(c.value), to_json(CAST('NaN' AS TEXT))), "
            "'timestamp', c.timestamp, 'step', c.step",
        ),
    )
)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def run_data_from_json(params: str | None, tags: str | None, metrics: str | None) -> RunData:
    """`RUN_DATA_JSON`'s columns of one run as its `RunData`."""
    data = RunData()
    if params is not None:
        data.params = {item["key"]: item["value"] for item in orjson.loads(params)}
    if tags is not None:
        data.tags = {item["key"]: item["value"] for item in orjson.loads(tags)}
    if metrics is not None:
        values, points = data.metrics, data.metric_points
        for item in orjson.loads(metrics):
            key, value = item["key"], item["value"]
            if type(value) is str:
                value = _NON_FINITE[value]
            elif type(value) is int:  # a whole number may be written without a point
                value = float(value)
            values[key] = value
            points[key] = (item["timestamp"], item["step"])
    return data


def _postgres_children(run_ids: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """`select_run_children`'s statement on PostgreSQL and its one parameter.

    The run ids travel as one comma-joined string (cheaper to send than an array, and the
    SQL text stays the same whatever the page size). A page of runs is a small part of
    the tables: each run's rows are read through the primary key (a LATERAL subquery that
    ``OFFSET 0`` keeps from being flattened, since the planner, which sees small tables
    as a few pages, would rather scan them whole and hash, several times slower). A large
    page is left to the planner.
    """
    ids: str | list[str]
    if any("," in run_id for run_id in run_ids):
        source, ids = "unnest(CAST(%s AS TEXT[]))", list(run_ids)
    else:
        source, ids = "unnest(string_to_array(%s, ','))", ",".join(run_ids)
    none = "CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"
    branches = (
        ("0", "params", "c.value", none),
        ("1", "tags", "c.value", none),
        ("2", "latest_metrics", "CAST(NULL AS TEXT)", "c.value, c.timestamp, c.step"),
    )
    probe = len(run_ids) <= _PROBE_RUNS_MAX
    selects = []
    for kind, table, text, numbers in branches:
        if probe:
            rows = (
                f"CROSS JOIN LATERAL (SELECT * FROM {table} "
                f"WHERE {table}.run_uuid = page.run_uuid OFFSET 0) AS c"
            )
        else:
            rows = f"JOIN {table} AS c ON c.run_uuid = page.run_uuid"
        selects.append(f"SELECT {kind}, page.run_uuid, c.key, {text}, {numbers} FROM page {rows}")
    sql = f"WITH page(run_uuid) AS (SELECT {source}) " + " UNION ALL ".join(selects)
    return sql, (ids,)
