"""Many runs' ends in one round trip: what `SqlStore.finish_run` writes for one run, for
a batch of runs (a flow's short tasks, whose ends a `RunCloser` writes behind them).

Each statement is sent once for the whole batch (the driver's executemany), in one atomic
unit (`engine.one_round_trip`): either every end is written or none is. A batch is refused
as a whole for anything `finish_run` would refuse for one of its runs (a changed param, a
missing or ended run, a key already taken by another process): the caller then writes each
end on its own, where the store names the problem of the one that has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.lineage import LineageEntry, validate_entries
from flowml.tracking.store import sql_fast, sql_lineage
from flowml.tracking.store.base import AbstractStore, NewRun
from flowml.tracking.store.engine import one_round_trip, pipelines
from flowml.tracking.store.sql_metrics import segment_rows
from flowml.tracking.store.sql_write import latest_rows, validated_batch
from flowml.tracking.tags import PARENT_RUN_ID, RUN_NAME

__all__ = ["BatchRefused", "RunEnd", "can_batch", "finish_runs"]


@dataclass
class RunEnd:
    """The arguments of one `finish_run`."""

    run_id: str
    status: str
    end_time: int
    metrics: Sequence[Metric] = ()
    params: Sequence[Param] = ()
    tags: Sequence[RunTag] = ()
    lineage: Sequence[LineageEntry] = ()
    opens: Sequence[NewRun] = field(default_factory=list)


class BatchRefused(Exception):
    """The batch was not written (nothing of it): write its ends one by one."""


def can_batch(store: AbstractStore) -> bool:
    """Whether ``store`` writes a batch of ends in one unit (the SQL store)."""
    from flowml.tracking.store.sql import SqlStore

    return isinstance(store, SqlStore)


def finish_runs(store: Any, ends: Sequence[RunEnd]) -> None:
    """Write every end of ``ends`` in one round trip, all or nothing.

    Raises:
        BatchRefused: the store refused one of the ends (nothing was written).
        InvalidParameter: a value breaks a tracking rule (nothing was written).
        StoreError: the store failed (nothing was written).
    """
    if not ends:
        return
    opens: list[NewRun] = []
    ended: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    latest: list[dict[str, Any]] = []
    lineage: list[dict[str, Any]] = []
    for end in ends:
        if end.status not in RunStatus.ALL:
            raise InvalidParameter(f"Unknown run status {end.status!r}")
        metric_rows, param_rows, tag_rows = validated_batch(
            end.run_id, end.metrics, end.params, end.tags
        )
        if any(r["key"] in (RUN_NAME, PARENT_RUN_ID) for r in tag_rows):
            raise BatchRefused("tags mirrored in run columns take the checked path")
        opens.extend(end.opens)
        ended.append(
            {"status": end.status, "end_time": end.end_time, "name": None, "b_run_uuid": end.run_id}
        )
        params += param_rows
        tags += tag_rows
        segments += segment_rows(end.run_id, metric_rows)
        latest += latest_rows(end.run_id, metric_rows)
        lineage += sql_lineage.lineage_rows(end.run_id, validate_entries(end.lineage))
    engine = store.engine
    piped = pipelines(engine)
    dbapi = engine.dialect.loaded_dbapi
    replies: list[sql_fast.Reply] = []
    try:
        with one_round_trip(engine) as conn:
            # Pipelined, the replies are not needed: a run whose key was taken is not
            # created, and `assert_active_run` below then refuses the batch.
            replies = sql_fast.send_creations(conn, opens, later=piped, replies=not piped)
            if piped:
                sql_fast.run_many(conn, "update_run", ended)
                # Fails unless every run exists and is active: the whole batch rolls back.
                sql_fast.run_many(
                    conn, "assert_active_run", [{"run_uuid": e["b_run_uuid"]} for e in ended]
                )
            else:
                for row in ended:
                    if sql_fast.fetch_one(conn, "update_run", row) is None:
                        raise BatchRefused("a run is missing or not active")
                if any(reply.row() is None for reply in replies):
                    raise BatchRefused("a run's key was taken")
            sql_fast.run_many(conn, "insert_params_once", params)
            sql_fast.run_many(conn, "upsert_tags", tags)
            sql_fast.run_many(conn, "insert_segments", segments)
            sql_fast.run_many(conn, "upsert_latest", latest)
            sql_fast.run_many(conn, "insert_lineage", lineage)
    except (dbapi.IntegrityError, dbapi.DataError) as exc:
        raise BatchRefused(str(exc)) from exc
    finally:
        for reply in replies:  # pipelined: rows nobody needs once the batch is written
            reply.close()
