"""PostgreSQL: a batch of rows for one hot statement sent as one statement over arrays.

The driver's ``executemany`` sends one execution per row, and psycopg spends tens of
microseconds of Python on each (dumping, preparing, reading its result): a batch of
tracked tasks' ends holds about twenty rows per task (the run's tags, params, metric
segments, latest values), so that per-row cost was most of what writing an end cost. Here
each column of the batch goes as one array parameter and the statement reads the rows
with ``unnest``: one execution per statement, whatever the number of rows. Each array
goes in PostgreSQL's text form (``{"a","b"}``), which the server parses: psycopg's
dumping of a list, element by element in Python, cost more than the rest of the write.

`statement` gives, for a statement name of `sql_fast` and a batch of its rows, the SQL
and the one tuple of array parameters, or ``None`` when the batch must go row by row (a
statement without an array form, or rows whose one-at-a-time order matters: two updates
of one run). Rows are first reduced as executing them one by one would leave them: the
last value of a tag, the newest latest value of a metric, one copy of a repeated param.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["statement"]

Rows = Sequence[dict[str, Any]]

_TEXT, _INT, _BIGINT, _DOUBLE, _BYTES = "text", "integer", "bigint", "float8", "bytea"
_TAG = (("run_uuid", _TEXT), ("key", _TEXT), ("value", _TEXT))
_SEGMENT = (
    ("run_uuid", _TEXT),
    ("key", _TEXT),
    ("n", _INT),
    ("step_min", _BIGINT),
    ("step_max", _BIGINT),
    ("points", _BYTES),
)
_LATEST = (
    ("run_uuid", _TEXT),
    ("key", _TEXT),
    ("value", _DOUBLE),
    ("timestamp", _BIGINT),
    ("step", _BIGINT),
)
_LINEAGE = (
    ("run_uuid", _TEXT),
    ("direction", _TEXT),
    ("kind", _TEXT),
    ("uri", _TEXT),
    ("name", _TEXT),
    ("digest", _TEXT),
    ("timestamp", _BIGINT),
)
_END = (("b_run_uuid", _TEXT), ("status", _TEXT), ("end_time", _BIGINT), ("name", _TEXT))
_NEW_RUN = (
    ("run_uuid", _TEXT),
    ("run_key", _TEXT),
    ("name", _TEXT),
    ("experiment_id", _BIGINT),
    ("user_id", _TEXT),
    ("status", _TEXT),
    ("start_time", _BIGINT),
    ("parent_run_uuid", _TEXT),
)


def _rows_of(columns: tuple[tuple[str, str], ...]) -> str:
    """``unnest(%s::text[], ...) WITH ORDINALITY AS u(col, ..., ord)``: the batch's rows, in
    order. A bytea array goes in binary (``%b``): in text, psycopg escapes each element's
    hex form in Python, which made a 20-segment insert twice as slow."""
    arrays = ", ".join(f"{'%b' if kind == _BYTES else '%s'}::{kind}[]" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({arrays}) WITH ORDINALITY AS u({names}, ord)"


def _insert(table: str, columns: tuple[tuple[str, str], ...], tail: str = "") -> str:
    names = ", ".join(name for name, _ in columns)
    picked = ", ".join(f"u.{name}" for name, _ in columns)
    return f"INSERT INTO {table} ({names}) SELECT {picked} FROM {_rows_of(columns)} {tail}"


def _last_per(key: Callable[[dict[str, Any]], Any], rows: Rows) -> Rows:
    """One row per key, the last one (a later execution overwrites an earlier one)."""
    return list({key(row): row for row in rows}.values())


def _unique(rows: Rows, columns: tuple[tuple[str, str], ...]) -> Rows:
    """Rows repeated whole kept once (the second execution would have been a no-op)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(tuple(row[name] for name, _ in columns), row)
    return list(seen.values())


def _newest_latest(rows: Rows) -> Rows:
    """Per (run, key) the row `upsert_latest` keeps: the highest step, the later of equal
    steps with a timestamp at least as high."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["run_uuid"], row["key"])
        kept = best.get(key)
        if (
            kept is None
            or row["step"] > kept["step"]
            or (row["step"] == kept["step"] and row["timestamp"] >= kept["timestamp"])
        ):
            best[key] = row
    return list(best.values())


_SQL: dict[str, tuple[str, tuple[tuple[str, str], ...], Callable[[Rows], Rows | None]]] = {
    "insert_params": (_insert("params", _TAG, "ORDER BY u.ord"), _TAG, lambda rows: rows),
    "insert_tags": (_insert("tags", _TAG, "ORDER BY u.ord"), _TAG, lambda rows: rows),
    "upsert_tags": (
        _insert(
            "tags",
            _TAG,
            "ORDER BY u.ord ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
        ),
        _TAG,
        lambda rows: _last_per(lambda r: (r["run_uuid"], r["key"]), rows),
    ),
    "insert_tags_of_new_run": (
        _insert(
            "tags",
            _TAG,
            "WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = u.run_uuid) ORDER BY u.ord",
        ),
        _TAG,
        lambda rows: rows,
    ),
    "insert_params_once": (
        _insert(
            "params",
            _TAG,
            "WHERE NOT EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = u.run_uuid "
            "AND p.key = u.key AND p.value = u.value) ORDER BY u.ord",
        ),
        _TAG,
        lambda rows: _unique(rows, _TAG),
    ),
    "insert_segments": (
        _insert("metrics", _SEGMENT, "ORDER BY u.ord"),
        _SEGMENT,
        lambda rows: rows,
    ),
    "upsert_latest": (
        _insert(
            "latest_metrics",
            _LATEST,
            "ORDER BY u.ord ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, "
            "timestamp = excluded.timestamp, step = excluded.step "
            "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
            "AND excluded.timestamp >= latest_metrics.timestamp)",
        ),
        _LATEST,
        _newest_latest,
    ),
    "insert_lineage": (
        _insert(
            "run_lineage",
            _LINEAGE,
            "ORDER BY u.ord ON CONFLICT (run_uuid, direction, kind, uri) DO NOTHING",
        ),
        _LINEAGE,
        lambda rows: rows,
    ),
    # Runs created only if new (by key) in an active experiment, as `create_run` does one
    # by one; no rows come back (the caller checks the batch's runs afterwards).
    "create_run": (
        "INSERT INTO runs (run_uuid, run_key, name, experiment_id, user_id, status, start_time, "
        "end_time, artifact_uri, lifecycle_stage, deleted_time, parent_run_uuid) "
        "SELECT u.run_uuid, u.run_key, u.name, e.experiment_id, u.user_id, u.status, "
        "u.start_time, NULL, rtrim(e.artifact_location, '/') || '/' || u.run_uuid || "
        "'/artifacts', 'active', NULL, u.parent_run_uuid "
        f"FROM {_rows_of(_NEW_RUN)} JOIN experiments e ON e.experiment_id = u.experiment_id "
        "AND e.lifecycle_stage = 'active' ORDER BY u.ord "
        "ON CONFLICT (run_key) WHERE run_key IS NOT NULL DO NOTHING",
        _NEW_RUN,
        lambda rows: rows,
    ),
    "update_run": (
        "UPDATE runs SET status = coalesce(u.status, runs.status), "
        "end_time = coalesce(u.end_time, runs.end_time), name = coalesce(u.name, runs.name) "
        f"FROM {_rows_of(_END)} WHERE runs.run_uuid = u.b_run_uuid "
        "AND runs.lifecycle_stage = 'active'",
        _END,
        # Two updates of one run: their order matters, row by row.
        lambda rows: rows if len({r["b_run_uuid"] for r in rows}) == len(rows) else None,
    ),
}


def statement(name: str, rows: Rows) -> tuple[str, tuple[Any, ...]] | None:
    """The array form of ``rows`` of the statement ``name`` (see the module docstring)."""
    if name == "assert_active_run":
        # Fails (division by zero) unless every named run exists and is active.
        ids = list(dict.fromkeys(row["run_uuid"] for row in rows))
        return (
            "SELECT 1 / (CASE WHEN count(*) = %s THEN 1 ELSE 0 END) FROM runs "
            "WHERE run_uuid = ANY(%s::text[]) AND lifecycle_stage = 'active'",
            (len(ids), _array(ids, _TEXT)),
        )
    found = _SQL.get(name)
    if found is None:
        return None
    sql, columns, reduce = found
    reduced = reduce(rows)
    if reduced is None:
        return None
    return sql, tuple(_array([row[column] for row in reduced], kind) for column, kind in columns)


def _array(values: list[Any], kind: str) -> Any:
    """A column's values as the text form of a PostgreSQL array of ``kind`` (bytea stays a
    list, for the driver to send as binary)."""
    if kind == _BYTES:
        return values
    if kind == _TEXT:
        items = [
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        ]
    elif kind == _DOUBLE:  # repr: exact, and nan / inf / -inf are read as such
        items = ["NULL" if v is None else repr(float(v)) for v in values]
    else:
        items = ["NULL" if v is None else str(int(v)) for v in values]
    return "{" + ",".join(items) + "}"
