"""Experiments in the SQL tracking store: create, read, rename, delete and restore, tags.

`SqlStore` (`flowml.tracking.store.sql`) is made of this mixin and its siblings
(`sql_runs`, `sql_write`, `sql_lineage`); each reads the store's ``engine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from flowml.tracking import validation as v
from flowml.tracking.entities import Experiment, LifecycleStage, PagedList, ViewType, now_ms
from flowml.tracking.store import sql_fast
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_NAME, SEARCH_MAX_RESULTS_DEFAULT
from flowml.tracking.store.engine import write_transaction
from flowml.tracking.store.schema import experiment_tags, experiments, runs

__all__ = ["SqlExperiments", "parse_experiment_id"]


class SqlExperiments:
    """The experiment methods of `SqlStore`."""

    engine: Engine
    default_artifact_root: str
    search_timeout_seconds: float

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
        clean_tags = {
            v.validate_key("Tag", k): v.validate_tag_value(k, val)
            for k, val in (tags or {}).items()
        }
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
                [
                    {"experiment_id": new_id, "key": k, "value": val}
                    for k, val in tag_values.items()
                ],
            )
        return str(new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp_id = parse_experiment_id(experiment_id)
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
        exp_id = parse_experiment_id(experiment_id)
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
                        deleted_time=now_ms()
                        if lifecycle_stage == LifecycleStage.DELETED
                        else None,
                    )
                )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        exp_id = parse_experiment_id(experiment_id)
        v.validate_key("Tag", key)
        value = v.validate_tag_value(key, value)
        with write_transaction(self.engine) as conn:
            if self._experiment_stage(conn, exp_id, experiment_id) != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            sql_fast.upsert(
                conn,
                experiment_tags,
                [{"experiment_id": exp_id, "key": key, "value": value}],
                ("experiment_id", "key"),
                ("value",),
            )

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


def parse_experiment_id(experiment_id: object) -> int:
    try:
        return int(str(experiment_id))
    except ValueError:
        raise InvalidParameter(
            f"Invalid experiment id {experiment_id!r}: ids are integers"
        ) from None
