"""The SQL store's write path: validate a batch, then write it with a fixed set of statements.

Whatever a batch holds, it costs at most: the run check, one read of the run's params,
one insert of new params, one tag upsert, one insert of packed metric segments and one
``latest_metrics`` upsert — each a single driver-level (executemany) call. `SqlWrites` is
the part of `SqlStore` that writes values: `log_batch`, and `finish_run`, which sends a run's
end, its last values and lineage (and the creation of runs opened without waiting) in one
round trip, falling back to a checked transaction that names what was refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, select, update

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.lineage import LineageEntry, validate_entries
from flowml.tracking.store import sql_fast, sql_lineage
from flowml.tracking.store.base import NewRun
from flowml.tracking.store.engine import one_round_trip, pipelines, write_transaction
from flowml.tracking.store.schema import runs
from flowml.tracking.store.schema import tags as tags_table
from flowml.tracking.store.sql_fast import require_active_run
from flowml.tracking.store.sql_metrics import read_history, segment_rows
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
    # Points checked when queued (`validation.CheckedMetrics`) are not checked again.
    groups: MetricGroups = {}
    for m in v.validate_metrics(metric_list):
        group = groups.get(m.key)
        if group is None:
            group = groups[m.key] = ([], [], [])
        group[0].append(m.value)
        group[1].append(m.timestamp)
        group[2].append(m.step)
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
    existing = dict(sql_fast.fetch_all(conn, "params_of_run", {"run_uuid": run_id}))
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


class SqlWrites:
    """The write methods of `SqlStore`: a batch of values, a run's end with its last values."""

    engine: Engine

    if TYPE_CHECKING:  # from `SqlRuns`

        def create_runs(self, new_runs: Sequence[NewRun]) -> set[str]: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        metric_rows, param_rows, tag_rows = validated_batch(run_id, metrics, params, tags)
        if not (metric_rows or param_rows or tag_rows):
            return
        if pipelines(self.engine) and not any(
            r["key"] in (RUN_NAME, PARENT_RUN_ID) for r in tag_rows
        ):
            segments, latest = segment_rows(run_id, metric_rows), latest_rows(run_id, metric_rows)
            dbapi = self.engine.dialect.loaded_dbapi
            try:
                # One round trip instead of four (BEGIN, the run check, the writes, COMMIT):
                # a missing or deleted run fails the check, a changed param the primary
                # key, and either rolls back everything sent with it.
                with one_round_trip(self.engine) as conn:
                    sql_fast.run(conn, "assert_active_run", {"run_uuid": run_id})
                    sql_fast.run_many(conn, "insert_params_once", param_rows)
                    sql_fast.run_many(conn, "upsert_tags", tag_rows)
                    sql_fast.run_many(conn, "insert_segments", segments)
                    sql_fast.run_many(conn, "upsert_latest", latest)
                return
            except (dbapi.IntegrityError, dbapi.DataError):
                pass  # nothing written: the checked path below names what was refused
        with write_transaction(self.engine) as conn:
            require_active_run(conn, run_id)
            write_batch(conn, run_id, metric_rows, param_rows, tag_rows)

    def delete_tag(self, run_id: str, key: str) -> None:
        with write_transaction(self.engine) as conn:
            require_active_run(conn, run_id)
            gone = conn.execute(
                delete(tags_table).where(tags_table.c.run_uuid == run_id, tags_table.c.key == key)
            ).rowcount
            if not gone:
                raise ResourceNotFound(f"Run {run_id} has no tag {key!r}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self.engine.connect() as conn:
            if conn.execute(select(runs.c.id).where(runs.c.run_uuid == run_id)).first() is None:
                raise ResourceNotFound(f"No run with id {run_id!r}")
            return read_history(conn, run_id, key)

    def finish_run(
        self,
        run_id: str,
        status: str,
        end_time: int,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        lineage: Sequence[LineageEntry] = (),
        opens: Sequence[NewRun] = (),
    ) -> None:
        # One atomic unit for what `create_runs` (the runs opened without waiting and not
        # written yet), `log_batch`, `log_lineage` and `update_run_info` would each write in
        # their own, sent in one round trip: the end of a tracked task.
        if status not in RunStatus.ALL:
            raise InvalidParameter(
                f"Unknown run status {status!r}; expected one of {RunStatus.ALL}"
            )
        metric_rows, param_rows, tag_rows = validated_batch(run_id, metrics, params, tags)
        lineage_rows = sql_lineage.lineage_rows(run_id, validate_entries(lineage))
        if any(r["key"] in (RUN_NAME, PARENT_RUN_ID) for r in tag_rows):
            # Tags mirrored in run columns: the general path keeps both equal.
            self.create_runs(opens)
            self._finish_run_checked(
                run_id, status, end_time, metric_rows, param_rows, tag_rows, lineage_rows
            )
            return
        segments, latest = segment_rows(run_id, metric_rows), latest_rows(run_id, metric_rows)
        piped = pipelines(self.engine)
        dbapi = self.engine.dialect.loaded_dbapi
        replies: list[sql_fast.Reply] = []
        try:
            with one_round_trip(self.engine) as conn:
                replies = sql_fast.send_creations(conn, opens, later=piped)
                ended = sql_fast.send(
                    conn,
                    "update_run",
                    {"status": status, "end_time": end_time, "name": None, "b_run_uuid": run_id},
                    later=piped,
                )
                replies.append(ended)
                if piped:
                    # Nothing can be read before the sync: a missing or deleted run makes
                    # this fail, which rolls back everything sent with it.
                    sql_fast.run(conn, "assert_active_run", {"run_uuid": run_id})
                elif ended.row() is None:
                    raise _Refused
                sql_fast.run_many(conn, "insert_params_once", param_rows)
                sql_fast.run_many(conn, "upsert_tags", tag_rows)
                sql_fast.run_many(conn, "insert_segments", segments)
                sql_fast.run_many(conn, "upsert_latest", latest)
                sql_fast.run_many(conn, "insert_lineage", lineage_rows)
        except (_Refused, dbapi.IntegrityError, dbapi.DataError):
            # Rolled back, nothing written: a changed param, a missing or deleted run (or
            # one to open whose key was taken). The checked path names the problem (or
            # writes it all, after a lost race).
            self.create_runs(opens)
            self._finish_run_checked(
                run_id, status, end_time, metric_rows, param_rows, tag_rows, lineage_rows
            )
        finally:
            for reply in replies:  # nothing to read: a run not created is found at its end
                reply.close()

    def _finish_run_checked(
        self,
        run_id: str,
        status: str,
        end_time: int,
        metric_rows: MetricGroups,
        param_rows: list[dict[str, Any]],
        tag_rows: list[dict[str, Any]],
        lineage_rows: list[dict[str, Any]],
    ) -> None:
        with write_transaction(self.engine) as conn:
            # The status update doubles as the existence check: one statement fewer.
            if sql_fast.update_run(conn, run_id, status=status, end_time=end_time) is None:
                require_active_run(conn, run_id)  # raises the right error
            write_batch(conn, run_id, metric_rows, param_rows, tag_rows)
            sql_fast.run_many(conn, "insert_lineage", lineage_rows)


class _Refused(Exception):
    """The one-round-trip path declined a write (SQLite: the run was not active)."""
