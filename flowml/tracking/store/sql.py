"""The SQLAlchemy tracking store, for ``sqlite:///`` and ``postgresql://`` URIs.

Rows never leave this module: every method returns entities. Writes are one
transaction each; `log_batch` is the only write path for metrics, params and
tags, and it costs a fixed handful of statements whatever the batch holds.
"""

from __future__ import annotations

import collections
import functools
import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from flowml.tracking import validation as v
from flowml.tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from flowml.tracking.lineage import DIRECTIONS, LineageEntry, validate_entries
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import migrate, sql_fast, sql_lineage
from flowml.tracking.store.base import (
    DEFAULT_EXPERIMENT_NAME,
    SEARCH_MAX_RESULTS_DEFAULT,
    AbstractStore,
    NewRun,
)
from flowml.tracking.store.engine import (
    get_engine,
    one_round_trip,
    pipelines,
    write_transaction,
)
from flowml.tracking.store.schema import (
    experiment_tags,
    experiments,
    runs,
)
from flowml.tracking.store.schema import tags as tags_table
from flowml.tracking.store.sql_metrics import read_history, segment_rows
from flowml.tracking.store.sql_write import (
    MetricGroups,
    latest_rows,
    require_active_run,
    validated_batch,
    write_batch,
)
from flowml.tracking.tags import PARENT_RUN_ID, RUN_NAME

__all__ = ["SqlStore"]


class SqlStore(AbstractStore):
    """Tracking metadata in a SQL database.

    Args:
        uri: a SQLAlchemy URI (``sqlite:///path.db``, ``postgresql://user@host/db``).
        default_artifact_root: where new experiments put their artifacts (any fsspec URL).
        search_timeout_seconds: how long one search statement may run before it is
            cancelled with `InvalidParameter` (``0``: no limit).
    """

    def __init__(
        self,
        uri: str,
        default_artifact_root: str,
        *,
        search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
    ) -> None:
        self.uri = uri
        self.engine = get_engine(uri)
        self.search_timeout_seconds = search_timeout_seconds
        self.default_artifact_root = default_artifact_root.rstrip("/")
        migrate.upgrade(self.engine)
        self._ensure_default_experiment()

    # -- experiments -------------------------------------------------------------------------

    def _ensure_default_experiment(self) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(experiments.c.experiment_id).where(experiments.c.experiment_id == 0)
            ).first()
        if found is None:
            try:
                with write_transaction(self.engine) as conn:
                    self._insert_experiment(
                        conn, DEFAULT_EXPERIMENT_NAME, None, {}, experiment_id=0
                    )
            except ResourceAlreadyExists:
                pass  # another process created it first

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        v.validate_experiment_name(name)
        clean_tags = {v.validate_key("Tag", k): v.validate_tag_value(k, val) for k, val in (tags or {}).items()}
        with write_transaction(self.engine) as conn:
            return self._insert_experiment(conn, name, artifact_location, clean_tags)

    def _insert_experiment(
        self,
        conn: Connection,
        name: str,
        artifact_location: str | None,
        tag_values: dict[str, str],
        experiment_id: int | None = None,
    ) -> str:
        now = now_ms()
        values: dict[str, Any] = {
            "name": name,
            "artifact_location": artifact_location or "",
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "creation_time": now,
            "last_update_time": now,
        }
        if experiment_id is not None:
            values["experiment_id"] = experiment_id
        try:
            with conn.begin_nested():
                new_id = conn.execute(
                    insert(experiments).values(**values).returning(experiments.c.experiment_id)
                ).scalar_one()
        except IntegrityError as exc:
            raise ResourceAlreadyExists(
                f"An experiment named {name!r} already exists (it may be deleted: restore it "
                "or choose another name)"
            ) from exc
        if not artifact_location:
            conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == new_id)
                .values(artifact_location=f"{self.default_artifact_root}/{new_id}")
            )
        if tag_values:
            conn.execute(
                insert(experiment_tags),
                [{"experiment_id": new_id, "key": k, "value": val} for k, val in tag_values.items()],
            )
        return str(new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp_id = _experiment_id(experiment_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(experiments).where(experiments.c.experiment_id == exp_id)
            ).first()
            if row is None:
                raise ResourceNotFound(f"No experiment with id {experiment_id!r}")
            return self._experiments_from_rows(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
            return None if row is None else self._experiments_from_rows(conn, [row])[0]

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        from flowml.tracking.store.paging import search_connection
        from flowml.tracking.store.sql_search import select_experiment_page

        with search_connection(self.engine, self.search_timeout_seconds) as conn:
            rows, token = select_experiment_page(
                conn, ViewType.stages(view_type), filter_string, max_results, order_by, page_token
            )
            return PagedList(self._experiments_from_rows(conn, rows), token)

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> None:
        exp_id = _experiment_id(experiment_id)
        values: dict[str, Any] = {"last_update_time": now_ms()}
        if name is not None:
            values["name"] = v.validate_experiment_name(name)
        if lifecycle_stage is not None:
            if lifecycle_stage not in (LifecycleStage.ACTIVE, LifecycleStage.DELETED):
                raise InvalidParameter(f"Unknown lifecycle stage {lifecycle_stage!r}")
            values["lifecycle_stage"] = lifecycle_stage
        with write_transaction(self.engine) as conn:
            current = self._experiment_stage(conn, exp_id, experiment_id)
            if name is not None and current != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            try:
                with conn.begin_nested():
                    conn.execute(
                        update(experiments)
                        .where(experiments.c.experiment_id == exp_id)
                        .values(**values)
                    )
            except IntegrityError as exc:
                raise ResourceAlreadyExists(f"An experiment named {name!r} already exists") from exc
            if lifecycle_stage is not None:
                # Runs follow their experiment into (and out of) the bin, as in MLflow.
                conn.execute(
                    update(runs)
                    .where(runs.c.experiment_id == exp_id)
                    .values(
                        lifecycle_stage=lifecycle_stage,
                        deleted_time=now_ms() if lifecycle_stage == LifecycleStage.DELETED else None,
                    )
                )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        exp_id = _experiment_id(experiment_id)
        v.validate_key("Tag", key)
        value = v.validate_tag_value(key, value)
        with write_transaction(self.engine) as conn:
            if self._experiment_stage(conn, exp_id, experiment_id) != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            _upsert(conn, experiment_tags, [{"experiment_id": exp_id, "key": key, "value": value}],
                    ("experiment_id", "key"), ("value",))

    def _experiment_stage(self, conn: Connection, exp_id: int, raw_id: str) -> str:
        stage = conn.execute(
            select(experiments.c.lifecycle_stage).where(experiments.c.experiment_id == exp_id)
        ).scalar()
        if stage is None:
            raise ResourceNotFound(f"No experiment with id {raw_id!r}")
        return stage

    def _experiments_from_rows(self, conn: Connection, rows: Sequence[Row]) -> list[Experiment]:
        ids = [r.experiment_id for r in rows]
        tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for t in conn.execute(
                select(experiment_tags).where(experiment_tags.c.experiment_id.in_(ids))
            ):
                tag_map[t.experiment_id][t.key] = t.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                tags=tag_map[r.experiment_id],
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
            )
            for r in rows
        ]

    # -- runs --------------------------------------------------------------------------------

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
        values, tag_rows, tag_values = _run_rows(
            experiment_id, user_id, start_time, tags, run_name, run_key, status
        )
        exp_id, run_uuid, run_name = values["experiment_id"], values["run_uuid"], values["name"]
        # One round trip: a get-or-create that checks the experiment itself, and the tags of
        # the run if it was created. Nothing returned: the key exists or the experiment is
        # missing or deleted, which the checked path below tells apart.
        piped = pipelines(self.engine)
        with one_round_trip(self.engine) as conn:
            created = sql_fast.run(conn, "create_run", values)
            sql_fast.run_many(conn, "insert_tags_of_new_run", tag_rows)
            row = None if piped else created.fetchone()
        if piped:
            row = created.fetchone()
        if row is None:
            return self._create_run_checked(exp_id, experiment_id, values, tag_rows)
        values["artifact_uri"] = row[0]
        info = RunInfo(
            run_id=run_uuid,
            experiment_id=str(exp_id),
            run_name=run_name,
            user_id=user_id,
            status=status,
            start_time=values["start_time"],
            end_time=None,
            artifact_uri=values["artifact_uri"],
        )
        return Run(info=info, data=RunData(tags=tag_values))

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
        values, tag_rows, tag_values = _run_rows(
            experiment_id, user_id, None, tags, run_name, run_key, RunStatus.RUNNING
        )
        # The URI `create_run` builds in SQL from the experiment's location, built here.
        uri = f"{artifact_location.rstrip('/')}/{values['run_uuid']}/artifacts"
        info = RunInfo(
            run_id=values["run_uuid"],
            experiment_id=str(values["experiment_id"]),
            run_name=values["name"],
            user_id=user_id,
            status=RunStatus.RUNNING,
            start_time=values["start_time"],
            end_time=None,
            artifact_uri=uri,
        )
        return NewRun(Run(info=info, data=RunData(tags=tag_values)), values, tag_rows)

    def create_runs(self, new_runs: Sequence[NewRun]) -> set[str]:
        if not new_runs:
            return set()
        piped = pipelines(self.engine)
        created: list[Any] = []
        with one_round_trip(self.engine) as conn:
            for new in new_runs:
                cursor = sql_fast.run(conn, "create_run", new.values)
                # Read before the next statement where nothing is pipelined (SQLite).
                created.append(cursor if piped else cursor.fetchone())
            sql_fast.run_many(
                conn, "insert_tags_of_new_run", [r for new in new_runs for r in new.tag_rows]
            )
        if piped:
            created = [cursor.fetchone() for cursor in created]
        pairs = zip(new_runs, created, strict=True)
        return {new.run.info.run_id for new, row in pairs if row is None}

    def _create_run_checked(
        self,
        exp_id: int,
        experiment_id: str,
        values: dict[str, Any],
        tag_rows: list[dict[str, Any]],
    ) -> Run:
        """Get-or-create with a read first: the run of an existing key, or a precise error
        for a missing or deleted experiment (or a new run, after a lost race)."""
        run_key, run_uuid = values["run_key"], values["run_uuid"]
        with write_transaction(self.engine) as conn:
            if run_key is not None:
                existing = conn.execute(_run_of_key(run_key)).scalar()
                if existing is not None:
                    return self._get_run(conn, existing)
            row = sql_fast.run(conn, "experiment_of_run", {"experiment_id": exp_id}).fetchone()
            if row is None:
                raise ResourceNotFound(f"No experiment with id {experiment_id!r}")
            artifact_location, stage = row
            if stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            values = {
                **values,
                "end_time": None,
                "artifact_uri": f"{artifact_location.rstrip('/')}/{run_uuid}/artifacts",
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
            run_uuid = conn.execute(select(runs.c.run_uuid).where(runs.c.run_key == run_key)).scalar()
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
        values: dict[str, Any] = {}
        if status is not None:
            if status not in RunStatus.ALL:
                raise InvalidParameter(f"Unknown run status {status!r}; expected one of {RunStatus.ALL}")
            values["status"] = status
        if end_time is not None:
            values["end_time"] = end_time
        if run_name is not None:
            values["name"] = v.validate_run_name(run_name)
        with write_transaction(self.engine) as conn:
            # One statement in the common case; the precise error only when it matched nothing.
            if run_name is None and status is not None and end_time is not None:
                # Ending a run, the hot case: one driver-level statement.
                row = sql_fast.run(
                    conn,
                    "end_run",
                    {"status": status, "end_time": end_time, "b_run_uuid": run_id,
                     "b_stage": LifecycleStage.ACTIVE},
                ).fetchone()
                row = None if row is None else _RunRow(*row)
            elif values:
                row = conn.execute(
                    update(runs).where(_active_run(run_id)).values(**values).returning(*runs.c)
                ).first()
            else:
                row = conn.execute(select(runs).where(_active_run(run_id))).first()
            if row is None:
                self._require_active_run(conn, run_id)
            if run_name is not None:
                _upsert(conn, tags_table, [{"run_uuid": run_id, "key": RUN_NAME, "value": run_name}],
                        ("run_uuid", "key"), ("value",))
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
        require_active_run(conn, run_id)

    # -- the write path ----------------------------------------------------------------------

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
        with write_transaction(self.engine) as conn:
            require_active_run(conn, run_id)
            write_batch(conn, run_id, metric_rows, param_rows, tag_rows)

    def delete_tag(self, run_id: str, key: str) -> None:
        with write_transaction(self.engine) as conn:
            self._require_active_run(conn, run_id)
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

    # -- lineage -----------------------------------------------------------------------------

    def log_lineage(self, run_id: str, entries: Sequence[LineageEntry]) -> None:
        rows = sql_lineage.lineage_rows(run_id, validate_entries(entries))
        if not rows:
            return
        with write_transaction(self.engine) as conn:
            self._require_active_run(conn, run_id)
            conn.execute(sql_lineage.insert_statement(conn.dialect.name), rows)

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
            self._finish_run_checked(run_id, status, end_time, metric_rows, param_rows,
                                     tag_rows, lineage_rows)
            return
        segments, latest = segment_rows(run_id, metric_rows), latest_rows(run_id, metric_rows)
        piped = pipelines(self.engine)
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            with one_round_trip(self.engine) as conn:
                for new in opens:
                    sql_fast.run(conn, "create_run", new.values)
                sql_fast.run_many(
                    conn, "insert_tags_of_new_run", [r for new in opens for r in new.tag_rows]
                )
                ended = sql_fast.run(
                    conn,
                    "finish_run",
                    {"status": status, "end_time": end_time, "b_run_uuid": run_id},
                )
                if piped:
                    # Nothing can be read before the sync: a missing or deleted run makes
                    # this fail, which rolls back everything sent with it.
                    sql_fast.run(conn, "assert_active_run", {"run_uuid": run_id})
                elif ended.rowcount == 0:
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
            self._finish_run_checked(run_id, status, end_time, metric_rows, param_rows,
                                     tag_rows, lineage_rows)

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
            ended = conn.execute(
                _finish_statement(), {"rid": run_id, "new_status": status, "new_end": end_time}
            ).rowcount
            if not ended:
                self._require_active_run(conn, run_id)  # raises the right error
            write_batch(conn, run_id, metric_rows, param_rows, tag_rows)
            if lineage_rows:
                conn.execute(sql_lineage.insert_statement(conn.dialect.name), lineage_rows)

    def search_lineage(
        self,
        run_ids: Sequence[str] = (),
        uris: Sequence[str] = (),
        direction: str | None = None,
    ) -> list[LineageEntry]:
        if direction is not None and direction not in DIRECTIONS:
            raise InvalidParameter(
                f"Lineage direction must be 'input' or 'output', got {direction!r}"
            )
        run_ids, uris = list(run_ids), list(uris)
        if not run_ids and not uris:
            return []
        with self.engine.connect() as conn:
            return sql_lineage.search(conn, run_ids, uris, direction)

    # -- search ------------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        from flowml.tracking.store.paging import search_connection
        from flowml.tracking.store.sql_search import select_run_page

        ids = [str(_experiment_id(e)) for e in experiment_ids]
        with search_connection(self.engine, self.search_timeout_seconds) as conn:
            rows, token = select_run_page(
                conn, ids, filter_string, ViewType.stages(run_view_type), max_results, order_by, page_token
            )
            return PagedList(self._runs_from_rows(conn, rows), token)

    def _runs_from_rows(self, conn: Connection, rows: Sequence[Row]) -> list[Run]:
        """Attach params, tags and latest metrics with one driver-level query per child table."""
        by_id = {r.run_uuid: Run(info=_run_info(r), data=RunData()) for r in rows}
        if not by_id:
            return []
        nan = math.nan
        for chunk in _chunks(list(by_id), 900):
            for kind, run_uuid, key, text, value, timestamp, step in (
                sql_fast.select_run_children(conn, chunk)
            ):
                data = by_id[run_uuid].data
                if kind == 0:
                    data.params[key] = text
                elif kind == 1:
                    data.tags[key] = text
                else:
                    data.metrics[key] = nan if value is None else value
                    data.metric_points[key] = (timestamp, step)
        return list(by_id.values())

    def close(self) -> None:
        self.engine.dispose()


# -- helpers ---------------------------------------------------------------------------------


def _experiment_id(experiment_id: object) -> int:
    try:
        return int(str(experiment_id))
    except ValueError:
        raise InvalidParameter(f"Invalid experiment id {experiment_id!r}: ids are integers") from None


def _run_rows(
    experiment_id: str,
    user_id: str,
    start_time: int | None,
    tags: Sequence[RunTag],
    run_name: str | None,
    run_key: str | None,
    status: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """A new run's validated row, tag rows and tags (its id chosen here)."""
    exp_id = _experiment_id(experiment_id)
    if status not in RunStatus.ALL:
        raise InvalidParameter(
            f"Unknown run status {status!r}; expected one of {RunStatus.ALL}"
        )
    tag_values = _validated_tags(tags)
    run_name = run_name or tag_values.get(RUN_NAME) or _generate_run_name()
    run_name = v.validate_run_name(run_name)
    tag_values[RUN_NAME] = run_name
    run_uuid = uuid.uuid4().hex
    values = {
        "run_uuid": run_uuid,
        "run_key": run_key,
        "name": run_name,
        "experiment_id": exp_id,
        "user_id": user_id,
        "status": status,
        "start_time": start_time if start_time is not None else now_ms(),
        "parent_run_uuid": tag_values.get(PARENT_RUN_ID),
    }
    tag_rows = [{"run_uuid": run_uuid, "key": k, "value": val} for k, val in tag_values.items()]
    return values, tag_rows, tag_values


def _validated_tags(run_tags: Sequence[RunTag]) -> dict[str, str]:
    if len(run_tags) > v.MAX_BATCH_TAGS:
        raise InvalidParameter(f"A run may be created with at most {v.MAX_BATCH_TAGS} tags")
    return {v.validate_key("Tag", t.key): v.validate_tag_value(t.key, t.value) for t in run_tags}


def _upsert(conn: Connection, table, rows, keys: Sequence[str], columns: Sequence[str]) -> None:
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(keys), tuple(columns)), rows)


# Built once per dialect: constructing and cache-keying an ON CONFLICT statement
# on every call costs more than executing it.
@functools.cache
def _upsert_statement(dialect_name: str, table, keys: tuple[str, ...], columns: tuple[str, ...]):
    ins = sql_fast.dialect_insert(dialect_name)(table)
    return ins.on_conflict_do_update(
        index_elements=list(keys), set_={c: getattr(ins.excluded, c) for c in columns}
    )


def _run_of_key(run_key: str):
    return select(runs.c.run_uuid).where(runs.c.run_key == run_key)


class _Refused(Exception):
    """The one-round-trip path declined a write (SQLite: the run was not active)."""


# A driver-level row of the runs table, readable by column name like a SQLAlchemy Row.
_RunRow = collections.namedtuple("_RunRow", [c.name for c in runs.c])  # type: ignore[misc]


def _active_run(run_id: str):
    return (runs.c.run_uuid == run_id) & (runs.c.lifecycle_stage == LifecycleStage.ACTIVE)


def _run_info(row: Row) -> RunInfo:
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


@functools.cache
def _finish_statement():
    # Ends an active run only: a deleted or missing run matches no row.
    return (
        update(runs)
        .where(
            runs.c.run_uuid == bindparam("rid"),
            runs.c.lifecycle_stage == LifecycleStage.ACTIVE,
        )
        .values(status=bindparam("new_status"), end_time=bindparam("new_end"))
    )


def _chunks(items: list[str], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _generate_run_name() -> str:
    try:
        import coolname

        return f"{coolname.generate_slug(2)}-{uuid.uuid4().int % 1000}"
    except ImportError:  # coolname comes with prefect; stay usable without it
        return f"run-{uuid.uuid4().hex[:8]}"
