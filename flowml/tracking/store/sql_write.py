"""The SQL store's write path: validate a batch, then write it with a fixed set of statements.

Whatever a batch holds, it costs at most: the run check, one read of the run's params,
one insert of new params, one tag upsert, one insert of packed metric segments and one
``latest_metrics`` upsert — each a single driver-level (executemany) call.
"""

from __future__ import annotations

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
# A batch's metric points grouped by key: key -> (values, timestamps, steps), in batch order.
MetricGroups = dict[str, tuple[list[float], list[int], list[int]]]


def validated_batch(
    run_id: str,
    metric_list: Sequence[Metric],
    param_list: Sequence[Param],
    tag_list: Sequence[RunTag],
) -> tuple[MetricGroups, Rows, Rows]:
    """Check a batch against MLflow's rules; metric points come back grouped by key.

    Raises:
        InvalidParameter: a key, value or size breaks a rule; nothing has been written.
    """
    v.validate_batch_sizes(len(metric_list), len(param_list), len(tag_list))
    # One pass per point: validate, then append to its key's columns (the packed segment
    # and the latest value are both computed per key from these).
    groups: MetricGroups = {}
    low, high = v.INT64_MIN, v.INT64_MAX
    for m in metric_list:
        key, value, timestamp, step = m.key, m.value, m.timestamp, m.step
        group = groups.get(key)
        if group is None:
            group = groups[key] = ([], [], [])
            v.validate_key("Metric", key)
        # The common case inline (a float, int timestamp and step in range): this loop runs
        # once per point, so a function call per point is a measurable share of a batch.
        if not (
            type(value) is float
            and type(timestamp) is int
            and type(step) is int
            and low <= step <= high
            and low <= timestamp <= high
        ):
            value = v.validate_metric(key, value, timestamp, step)
            timestamp, step = int(timestamp), int(step)
        group[0].append(value)
        group[1].append(timestamp)
        group[2].append(step)
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
    return groups, param_rows, tag_rows


def require_active_run(conn: Connection, run_id: str) -> None:
    """Raises `ResourceNotFound` for an unknown run, `InvalidState` for a deleted one."""
    row = sql_fast.run(conn, "run_stage", {"run_uuid": run_id}).fetchone()
    if row is None:
        raise ResourceNotFound(f"No run with id {run_id!r}")
    if row[0] != LifecycleStage.ACTIVE:
        raise InvalidState(f"Run {run_id!r} is deleted; restore it before changing it")


def write_batch(
    conn: Connection, run_id: str, metric_rows: MetricGroups, param_rows: Rows, tag_rows: Rows
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


def latest_rows(run_id: str, groups: MetricGroups) -> Rows:
    """Per key, the point with the highest (step, timestamp), the later one on ties: what
    ``latest_metrics`` keeps (a NaN value is stored as NULL)."""
    rows = []
    for key, (values, timestamps, steps) in groups.items():
        best = 0
        for i in range(1, len(values)):
            if steps[i] > steps[best] or (
                steps[i] == steps[best] and timestamps[i] >= timestamps[best]
            ):
                best = i
        value = values[best]
        rows.append(
            {
                "run_uuid": run_id,
                "key": key,
                "value": None if value != value else value,
                "timestamp": timestamps[best],
                "step": steps[best],
            }
        )
    return rows
