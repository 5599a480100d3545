"""The SQL store's write path: validate a batch, then write it with a fixed set of statements.

Whatever a batch holds, it costs at most: the run check, one read of the run's params,
one insert of new params, one tag upsert, one insert of packed metric segments and one
``latest_metrics`` upsert — each a single driver-level (executemany) call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, update

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.entities import LifecycleStage, Metric, Param, RunTag
from flowml.tracking.store import sql_fast
from flowml.tracking.store.schema import runs
from flowml.tracking.store.sql_metrics import segment_rows
from flowml.tracking.tags import PARENT_RUN_ID, RUN_NAME

Rows = list[dict[str, Any]]
# A metric point as the write path carries it: (key, value or None for NaN, timestamp, step).
MetricRow = tuple[str, "float | None", int, int]


def validated_batch(
    run_id: str,
    metric_list: Sequence[Metric],
    param_list: Sequence[Param],
    tag_list: Sequence[RunTag],
) -> tuple[list[MetricRow], Rows, Rows]:
    """Check a batch against MLflow's rules and turn it into rows (NaN becomes ``None``).

    Raises:
        InvalidParameter: a key, value or size breaks a rule; nothing has been written.
    """
    v.validate_batch_sizes(len(metric_list), len(param_list), len(tag_list))
    metric_rows: list[MetricRow] = []
    append = metric_rows.append
    for m in metric_list:
        value = v.validate_metric(v.validate_key("Metric", m.key), m.value, m.timestamp, m.step)
        append((m.key, None if value != value else value, int(m.timestamp), int(m.step)))
    param_rows = [
        {
            "run_uuid": run_id,
            "key": v.validate_key("Param", p.key),
            "value": v.validate_param_value(p.key, p.value),
        }
        for p in param_list
    ]
    v.validate_unique_params((r["key"], r["value"]) for r in param_rows)
    # Duplicate param keys with equal values collapse; the last of duplicate tag keys wins.
    param_rows = list({r["key"]: r for r in param_rows}.values())
    tag_rows = list(
        {
            t.key: {
                "run_uuid": run_id,
                "key": v.validate_key("Tag", t.key),
                "value": v.validate_tag_value(t.key, t.value),
            }
            for t in tag_list
        }.values()
    )
    return metric_rows, param_rows, tag_rows


def require_active_run(conn: Connection, run_id: str) -> None:
    """Raises `ResourceNotFound` for an unknown run, `InvalidState` for a deleted one."""
    row = sql_fast.run(conn, "run_stage", {"run_uuid": run_id}).fetchone()
    if row is None:
        raise ResourceNotFound(f"No run with id {run_id!r}")
    if row[0] != LifecycleStage.ACTIVE:
        raise InvalidState(f"Run {run_id!r} is deleted; restore it before changing it")


def write_batch(
    conn: Connection, run_id: str, metric_rows: list[MetricRow], param_rows: Rows, tag_rows: Rows
) -> None:
    """Write validated rows inside the caller's transaction (the run is known to be active)."""
    if param_rows:
        _insert_params(conn, run_id, param_rows)
    if tag_rows:
        sql_fast.run_many(conn, "upsert_tags", tag_rows)
        _mirror_tag_columns(conn, run_id, tag_rows)
    if metric_rows:
        sql_fast.run_many(conn, "insert_segments", segment_rows(run_id, metric_rows))
        sql_fast.run_many(conn, "upsert_latest", latest_rows(run_id, metric_rows))


def _insert_params(conn: Connection, run_id: str, rows: Rows) -> None:
    existing = dict(sql_fast.run(conn, "params_of_run", {"run_uuid": run_id}).fetchall())
    new_rows = []
    for r in rows:
        old = existing.get(r["key"])
        if old is None:
            new_rows.append(r)
        elif old != r["value"]:
            raise InvalidParameter(
                f"Param {r['key']!r} of run {run_id} is already {old!r} and cannot be changed "
                f"to {r['value']!r}: params are write-once"
            )
    sql_fast.run_many(conn, "insert_params", new_rows)


def _mirror_tag_columns(conn: Connection, run_id: str, rows: Rows) -> None:
    """The run name and parent live in columns too (for search and nesting): keep them equal."""
    for r in rows:
        if r["key"] == RUN_NAME:
            conn.execute(update(runs).where(runs.c.run_uuid == run_id).values(name=r["value"]))
        elif r["key"] == PARENT_RUN_ID:
            conn.execute(
                update(runs).where(runs.c.run_uuid == run_id).values(parent_run_uuid=r["value"])
            )


def _latest_order(row: MetricRow) -> tuple[int, int, float]:
    return (row[3], row[2], -math.inf if row[1] is None else row[1])


def latest_rows(run_id: str, metric_rows: list[MetricRow]) -> Rows:
    """Per key, the point with the highest (step, timestamp): what ``latest_metrics`` keeps."""
    best: dict[str, MetricRow] = {}
    for row in metric_rows:
        current = best.get(row[0])
        if current is None or _latest_order(row) >= _latest_order(current):
            best[row[0]] = row
    return [
        {"run_uuid": run_id, "key": key, "value": value, "timestamp": ts, "step": step}
        for key, value, ts, step in best.values()
    ]
