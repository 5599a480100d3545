"""Runs in the SQL tracking store: create (get-or-create by key), read, update, delete.

A run is inserted one way: `sql_fast.send_creations` queues the get-or-create statement and the
tags of each new run (one round trip for any number of runs, with the end of a run in
`finish_run` too); a run it did not create (its key was taken, or its experiment is
missing or deleted) goes through `_create_run_checked`, which reads first and names the
problem. Status, end time and name change through one statement (`sql_fast.update_run`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.entities import (
    LifecycleStage,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from flowml.tracking.ids import new_id
from flowml.tracking.store import sql_fast
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_DEFAULT, NewRun
from flowml.tracking.store.engine import one_round_trip, pipelines, write_transaction
from flowml.tracking.store.schema import runs
from flowml.tracking.store.sql_experiments import parse_experiment_id
from flowml.tracking.tags import PARENT_RUN_ID, RUN_NAME

__all__ = ["SqlRuns"]


class SqlRuns:
    """The run methods of `SqlStore`."""

    engine: Engine
    search_timeout_seconds: float

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        run_key: str | None = None,
        status: str = RunStatus.RUNNING,
    ) -> Run:
        new = _new_run(experiment_id, user_id, start_time, tags, run_name, run_key, status)
        # One round trip: a get-or-create that checks the experiment itself, and the tags of
        # the run if it was created. Nothing returned: the key exists or the experiment is
        # missing or deleted, which the checked path below tells apart.
        piped = pipelines(self.engine)
        with one_round_trip(self.engine) as conn:
            (created,) = sql_fast.send_creations(conn, [new], later=piped)
        row = created.row()
        if row is None:
            return self._create_run_checked(experiment_id, new.values, new.tag_rows)
        new.run.info.artifact_uri = row[0]
        return new.run

    supports_deferred_open = True

    def prepare_run(
        self,
        experiment_id: str,
        artifact_location: str,
        user_id: str,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        run_key: str | None = None,
    ) -> NewRun:
        new = _new_run(experiment_id, user_id, None, tags, run_name, run_key, RunStatus.RUNNING)
        # The URI `create_run` builds in SQL from the experiment's location, built here.
        new.run.info.artifact_uri = _artifact_uri(artifact_location, new.run.info.run_id)
        return new

    def create_runs(self, new_runs: Sequence[NewRun]) -> set[str]:
        if not new_runs:
            return set()
        piped = pipelines(self.engine)
        with one_round_trip(self.engine) as conn:
            created = sql_fast.send_creations(conn, new_runs, later=piped)
        pairs = zip(new_runs, created, strict=True)
        return {new.run.info.run_id for new, reply in pairs if reply.row() is None}

    def _create_run_checked(
        self,
        experiment_id: str,
        values: dict[str, Any],
        tag_rows: list[dict[str, Any]],
    ) -> Run:
        """Get-or-create with a read first: the run of an existing key, or a precise error
        for a missing or deleted experiment (or a new run, after a lost race)."""
        exp_id, run_key, run_uuid = values["experiment_id"], values["run_key"], values["run_uuid"]
        with write_transaction(self.engine) as conn:
            if run_key is not None:
                existing = conn.execute(_run_of_key(run_key)).scalar()
                if existing is not None:
                    return self._get_run(conn, existing)
            row = sql_fast.fetch_one(conn, "experiment_of_run", {"experiment_id": exp_id})
            if row is None:
                raise ResourceNotFound(f"No experiment with id {experiment_id!r}")
            artifact_location, stage = row
            if stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            values = {
                **values,
                "end_time": None,
                "artifact_uri": _artifact_uri(artifact_location, run_uuid),
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "deleted_time": None,
            }
            try:
                if run_key is not None and conn.dialect.name == "postgresql":
                    with conn.begin_nested():  # a lost race must not abort the transaction
                        conn.execute(insert(runs), values)
                else:
                    conn.execute(insert(runs), values)
            except IntegrityError:
                if run_key is None:
                    raise
                # Lost a get-or-create race (PostgreSQL): the winner's run is the answer.
                existing = conn.execute(_run_of_key(run_key)).scalar_one()
                return self._get_run(conn, existing)
            sql_fast.run_many(conn, "insert_tags", tag_rows)
            return self._get_run(conn, run_uuid)

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            return self._get_run(conn, run_id)

    def get_run_by_key(self, run_key: str) -> Run | None:
        with self.engine.connect() as conn:
            run_uuid = conn.execute(_run_of_key(run_key)).scalar()
            return None if run_uuid is None else self._get_run(conn, run_uuid)

    def _get_run(self, conn: Connection, run_id: str) -> Run:
        row = conn.execute(select(runs).where(runs.c.run_uuid == run_id)).first()
        if row is None:
            raise ResourceNotFound(f"No run with id {run_id!r}")
        return self._runs_from_rows(conn, [row])[0]

    def update_run_info(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if status is not None:
            _check_status(status)
        if run_name is not None:
            run_name = v.validate_run_name(run_name)
        with write_transaction(self.engine) as conn:
            # One statement; the precise error only when it matched nothing.
            row = sql_fast.update_run(conn, run_id, status=status, end_time=end_time, name=run_name)
            if row is None:
                self._require_active_run(conn, run_id)
                raise AssertionError("update_run matched no active run")  # unreachable
            if run_name is not None:
                sql_fast.run_many(
                    conn, "upsert_tags", [{"run_uuid": run_id, "key": RUN_NAME, "value": run_name}]
                )
        return _run_info(row)

    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        if lifecycle_stage not in (LifecycleStage.ACTIVE, LifecycleStage.DELETED):
            raise InvalidParameter(f"Unknown lifecycle stage {lifecycle_stage!r}")
        with write_transaction(self.engine) as conn:
            found = conn.execute(
                update(runs)
                .where(runs.c.run_uuid == run_id)
                .values(
                    lifecycle_stage=lifecycle_stage,
                    deleted_time=now_ms() if lifecycle_stage == LifecycleStage.DELETED else None,
                )
            ).rowcount
            if not found:
                raise ResourceNotFound(f"No run with id {run_id!r}")

    def _require_active_run(self, conn: Connection, run_id: str) -> None:
        sql_fast.require_active_run(conn, run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        from flowml.tracking.store.search_plans import select_run_page_with_data

        page, token = self._search(
            select_run_page_with_data,
            experiment_ids,
            (filter_string, ViewType.stages(run_view_type), max_results, order_by, page_token),
        )
        return PagedList([Run(info=_run_info(row), data=data) for row, data in page], token)

    def search_runs_json(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[tuple[RunInfo, str | None, str | None, str | None]] | None:
        """`search_runs` for the tracking server: each run's info, and its params, tags and
        latest metrics as the JSON text of MLflow's wire (`sql_fast.RUN_DATA_JSON`; ``None``
        for none), which the server sends without reading it. ``None`` where the database
        cannot write that JSON (only PostgreSQL does)."""
        if self.engine.dialect.name != "postgresql":
            return None
        from flowml.tracking.store.search_plans import select_run_page_json

        page, token = self._search(
            select_run_page_json,
            experiment_ids,
            (filter_string, ViewType.stages(run_view_type), max_results, order_by, page_token),
        )
        return PagedList([(_run_info(row), p, t, m) for row, p, t, m in page], token)

    def _search(
        self,
        select: Callable[..., tuple[list[Any], str | None]],
        experiment_ids: Sequence[str],
        args: tuple[Any, ...],
    ) -> tuple[list[Any], str | None]:
        """``select(conn, experiment ids, *args)`` (a `search_plans` page reader) on a
        search connection (`paging.search_connection`)."""
        from flowml.tracking.store.paging import search_connection

        ids = [str(parse_experiment_id(e)) for e in experiment_ids]
        with search_connection(self.engine, self.search_timeout_seconds) as conn:
            return select(conn, ids, *args)

    def _runs_from_rows(self, conn: Connection, rows: Sequence[Row | sql_fast.RunRow]) -> list[Run]:
        """Attach params, tags and latest metrics: one driver-level query per chunk of runs."""
        data = sql_fast.run_data(conn, [r.run_uuid for r in rows])
        return [Run(info=_run_info(r), data=d) for r, d in zip(rows, data, strict=True)]


def _check_status(status: str) -> None:
    if status not in RunStatus.ALL:
        raise InvalidParameter(f"Unknown run status {status!r}; expected one of {RunStatus.ALL}")


def _new_run(
    experiment_id: str,
    user_id: str,
    start_time: int | None,
    tags: Sequence[RunTag],
    run_name: str | None,
    run_key: str | None,
    status: str,
) -> NewRun:
    """A new run's validated row and tag rows (its id chosen here; its artifact URI left
    for the caller, which knows or asks for the experiment's location)."""
    exp_id = parse_experiment_id(experiment_id)
    _check_status(status)
    tag_values = _validated_tags(tags)
    run_name = run_name or tag_values.get(RUN_NAME) or _generate_run_name()
    run_name = v.validate_run_name(run_name)
    tag_values[RUN_NAME] = run_name
    run_uuid = new_id()
    started = start_time if start_time is not None else now_ms()
    values = {
        "run_uuid": run_uuid,
        "run_key": run_key,
        "name": run_name,
        "experiment_id": exp_id,
        "user_id": user_id,
        "status": status,
        "start_time": started,
        "parent_run_uuid": tag_values.get(PARENT_RUN_ID),
    }
    tag_rows = [{"run_uuid": run_uuid, "key": k, "value": val} for k, val in tag_values.items()]
    info = RunInfo(
        run_id=run_uuid,
        experiment_id=str(exp_id),
        run_name=run_name,
        user_id=user_id,
        status=status,
        start_time=started,
        end_time=None,
        artifact_uri="",
    )
    return NewRun(Run(info=info, data=RunData(tags=tag_values)), values, tag_rows)


def _artifact_uri(artifact_location: str, run_uuid: str) -> str:
    return f"{artifact_location.rstrip('/')}/{run_uuid}/artifacts"


def _validated_tags(run_tags: Sequence[RunTag]) -> dict[str, str]:
    if len(run_tags) > v.MAX_BATCH_TAGS:
        raise InvalidParameter(f"A run may be created with at most {v.MAX_BATCH_TAGS} tags")
    return {v.validate_key("Tag", t.key): v.validate_tag_value(t.key, t.value) for t in run_tags}


def _run_of_key(run_key: str):
    return select(runs.c.run_uuid).where(runs.c.run_key == run_key)


def _run_info(row: Row | sql_fast.RunRow) -> RunInfo:
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
    )


def _generate_run_name() -> str:
    try:
        import coolname

        return f"{coolname.generate_slug(2)}-{uuid.uuid4().int % 1000}"
    except ImportError:  # coolname comes with prefect; stay usable without it
        return f"run-{uuid.uuid4().hex[:8]}"
