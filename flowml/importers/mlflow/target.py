"""Writing imported rows into flowml's SQL store: the importer's one fast path.

flowml's own SQL store opens (and migrates) the database; this module then writes with
the store's tables and helpers (`write_transaction`, packed metric segments, the
``latest_metrics`` rule), in bulk: one ``executemany`` per table per batch of runs, in one
transaction, so a batch lands whole or not at all. Everything here is keyed by the
source's ids, which makes every write skippable on a rerun.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from flowml.exceptions import InvalidParameter
from flowml.importers.mlflow.records import (
    SourceExperiment,
    SourceLoggedModel,
    SourceRegisteredModel,
    SourceRun,
)
from flowml.registry.schema import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    registry_audit,
)
from flowml.tracking.entities import now_ms
from flowml.tracking.store.engine import write_transaction
from flowml.tracking.store.schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    params,
    run_lineage,
    runs,
    tags,
)
from flowml.tracking.store.schema import metrics as metric_segments
from flowml.tracking.store.sql_metrics import segment_rows
from flowml.tracking.store.sql_write import latest_rows
from flowml.tracking.tags import PARENT_RUN_ID

__all__ = ["PlannedRun", "Target", "check_target_uri"]

CHUNK = 500  # ids per IN (...) list: well under every driver's bound-parameter limit


def check_target_uri(uri: str) -> None:
    """Refuse a tracking URI the importer cannot write in bulk (it needs the database).

    Raises:
        InvalidParameter: not a ``sqlite://`` or ``postgresql://`` URI.
    """
    backend = make_url(uri).get_backend_name() if "://" in uri else ""
    if backend not in ("sqlite", "postgresql"):
        raise InvalidParameter(
            f"`flowml import mlflow` writes into flowml's database directly, but the tracking "
            f"URI is {uri!r}; set FLOWML_TRACKING_URI to the sqlite:/// or postgresql:// "
            "database (a flowml server's own database) and run it there."
        )


@dataclass(slots=True)
class PlannedRun:
    """A source run and where it lands: its flowml experiment and artifact URI."""

    run: SourceRun
    experiment_id: int
    artifact_uri: str


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


class Target:
    """flowml's tracking (and registry) database, for the importer.

    Args:
        engine: the tracking database's engine (from an opened `SqlStore`).
        registry_engine: the registry database's (the same engine by default).
    """

    def __init__(self, engine: Engine, registry_engine: Engine | None = None) -> None:
        self.engine = engine
        self.registry_engine = registry_engine or engine
        self.user = _os_user()

    # -- reads ------------------------------------------------------------------------------

    def present(self, column: Any, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        return self.present(runs.c.run_uuid, run_ids)

    def existing_logged_models(self, model_ids: Sequence[str]) -> set[str]:
        return self.present(logged_models.c.model_id, model_ids)

    def experiments(self) -> dict[str, tuple[int, str]]:
        """name -> (experiment id, artifact location) of every flowml experiment."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(experiments.c.name, experiments.c.experiment_id,
                       experiments.c.artifact_location)
            )  # fmt: skip
            return {r.name: (int(r.experiment_id), r.artifact_location) for r in rows}

    # -- writes -----------------------------------------------------------------------------

    def create_experiment(
        self,
        exp: SourceExperiment,
        experiment_id: int | None,
        location: str | None,
        artifact_root: str,
    ) -> tuple[int, str]:
        """Insert ``exp`` (with ``experiment_id`` when given) and its tags; returns its id
        and artifact location (``<artifact_root>/<id>`` when ``location`` is ``None``)."""
        now = now_ms()
        values: dict[str, Any] = {
            "name": exp.name,
            "artifact_location": location or "",
            "lifecycle_stage": exp.lifecycle_stage,
            "creation_time": exp.creation_time or now,
            "last_update_time": exp.last_update_time or exp.creation_time or now,
        }
        if experiment_id is not None:
            values["experiment_id"] = experiment_id
        with write_transaction(self.engine) as conn:
            new_id = int(conn.execute(
                insert(experiments).values(**values).returning(experiments.c.experiment_id)
            ).scalar_one())  # fmt: skip
            if location is None:
                location = f"{artifact_root.rstrip('/')}/{new_id}"
                conn.execute(
                    update(experiments)
                    .where(experiments.c.experiment_id == new_id)
                    .values(artifact_location=location)
                )
            if exp.tags:
                conn.execute(insert(experiment_tags), [
                    {"experiment_id": new_id, "key": k, "value": v} for k, v in exp.tags.items()
                ])  # fmt: skip
            if experiment_id is not None and conn.dialect.name == "postgresql":
                # An explicit id does not move the serial's sequence: move it past the ids
                # in use, or flowml's next create_experiment would collide.
                conn.execute(text(
                    "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                    "GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))"
                ))  # fmt: skip
        return new_id, location

    def add_experiment_tags(self, experiment_id: int, exp_tags: dict[str, str]) -> int:
        """Tags of ``exp_tags`` the experiment lacks (flowml's values win); returns how many."""
        with write_transaction(self.engine) as conn:
            have = set(conn.execute(
                select(experiment_tags.c.key).where(
                    experiment_tags.c.experiment_id == experiment_id)
            ).scalars())  # fmt: skip
            new = [
                {"experiment_id": experiment_id, "key": k, "value": v}
                for k, v in exp_tags.items() if k not in have
            ]  # fmt: skip
            if new:
                conn.execute(insert(experiment_tags), new)
        return len(new)

    def write_runs(self, planned: Sequence[PlannedRun]) -> None:
        """Every row of ``planned`` runs in one transaction: all of them or none."""
        run_rows, segment, latest = [], [], []
        param_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        lineage: list[dict[str, Any]] = []
        now = now_ms()
        for item in planned:
            r = item.run
            run_rows.append({
                "run_uuid": r.run_id, "run_key": None, "name": r.name[:250],
                "experiment_id": item.experiment_id, "user_id": r.user_id,
                "status": r.status, "start_time": r.start_time, "end_time": r.end_time,
                "artifact_uri": item.artifact_uri, "lifecycle_stage": r.lifecycle_stage,
                "deleted_time": r.deleted_time, "parent_run_uuid": r.tags.get(PARENT_RUN_ID),
            })  # fmt: skip
            param_rows.extend(
                {"run_uuid": r.run_id, "key": k, "value": v} for k, v in r.params.items()
            )
            tag_rows.extend({"run_uuid": r.run_id, "key": k, "value": v} for k, v in r.tags.items())
            if r.metrics:
                segment.extend(segment_rows(r.run_id, r.metrics))
                latest.extend(latest_rows(r.run_id, r.metrics))
            lineage.extend({
                "run_uuid": r.run_id, "direction": e.direction, "kind": e.kind, "uri": e.uri,
                "name": e.name, "digest": e.digest, "timestamp": r.start_time or now,
            } for e in r.lineage)  # fmt: skip
        with write_transaction(self.engine) as conn:
            for table, rows in (
                (runs, run_rows), (params, param_rows), (tags, tag_rows),
                (metric_segments, segment), (latest_metrics, latest), (run_lineage, lineage),
            ):  # fmt: skip
                if rows:
                    conn.execute(insert(table), rows)

    def write_logged_model(
        self, model: SourceLoggedModel, experiment_id: int, location: str
    ) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(insert(logged_models).values(
                model_id=model.model_id, experiment_id=experiment_id, run_uuid=model.run_id,
                name=model.name, artifact_location=location, status=model.status,
                status_message=model.status_message, model_type=model.model_type,
                creation_time=model.creation_time, last_updated_time=model.last_updated_time,
            ))  # fmt: skip
            owned = ((logged_model_tags, model.tags), (logged_model_params, model.params))
            for table, pairs in owned:
                if pairs:
                    conn.execute(insert(table), [
                        {"model_id": model.model_id, "key": k, "value": v} for k, v in pairs.items()
                    ])  # fmt: skip

    def write_registered_model(
        self, model: SourceRegisteredModel, locations: dict[int, str], reason: str
    ) -> dict[str, int]:
        """The parts of ``model`` flowml lacks, in one transaction, each change audited.

        Args:
            model: the source's registered model.
            locations: version -> storage location in flowml (remapped artifacts).
            reason: the audit trail's reason (which source it came from).

        Returns:
            How many models, versions, tags and aliases were added.
        """
        added = {"registered models": 0, "model versions": 0, "registry tags": 0, "aliases": 0}
        with write_transaction(self.registry_engine) as conn:
            audit = _Audit(conn, model.name, self.user, reason)
            row = conn.execute(
                select(registered_models.c.id, registered_models.c.last_version)
                .where(registered_models.c.name == model.name)
            ).first()  # fmt: skip
            if row is None:
                model_id = int(conn.execute(insert(registered_models).values(
                    name=model.name, description=model.description,
                    creation_time=model.creation_time, last_updated_time=model.last_updated_time,
                    last_version=0,
                ).returning(registered_models.c.id)).scalar_one())  # fmt: skip
                last_version = 0
                added["registered models"] = 1
                audit.add(model_id, None, "model_created", None, model.name)
            else:
                model_id, last_version = int(row.id), int(row.last_version)
            have_versions = set(conn.execute(
                select(model_versions.c.version).where(model_versions.c.model_id == model_id)
            ).scalars())  # fmt: skip
            for v in model.versions:
                if v.version in have_versions:
                    continue
                location = locations[v.version]
                conn.execute(insert(model_versions).values(
                    model_id=model_id, version=v.version, source=v.source or location,
                    storage_location=location, run_id=v.run_id, run_link=v.run_link,
                    user_id=v.user_id, status=v.status, status_message=v.status_message,
                    current_stage=v.current_stage, description=v.description,
                    creation_time=v.creation_time, last_updated_time=v.last_updated_time,
                ))  # fmt: skip
                added["model versions"] += 1
                audit.add(model_id, v.version, "version_registered", None, v.source or location)
                have_versions.add(v.version)
            added["registry tags"] += _add_pairs(
                conn, registered_model_tags, {"model_id": model_id}, model.tags
            )
            for v in model.versions:
                added["registry tags"] += _add_pairs(
                    conn, model_version_tags, {"model_id": model_id, "version": v.version}, v.tags
                )
            have_aliases = set(conn.execute(
                select(registered_model_aliases.c.alias)
                .where(registered_model_aliases.c.model_id == model_id)
            ).scalars())  # fmt: skip
            for alias, version in model.aliases.items():
                if alias not in have_aliases and version in have_versions:
                    conn.execute(insert(registered_model_aliases).values(
                        model_id=model_id, alias=alias, version=version))  # fmt: skip
                    added["aliases"] += 1
                    audit.add(model_id, version, "alias_set", None, alias)
            top = max((v.version for v in model.versions), default=0)
            if top > last_version:
                # The version counter must never hand out an imported number again.
                conn.execute(update(registered_models).where(registered_models.c.id == model_id)
                             .values(last_version=top))  # fmt: skip
        return added

    # -- verification -----------------------------------------------------------------------

    def counts(
        self,
        experiment_ids: Sequence[int],
        run_ids: Sequence[str],
        model_ids: Sequence[str],
        model_names: Sequence[str],
    ) -> dict[str, int]:
        """How many of the source's entities flowml now holds (by the source's ids)."""
        out: dict[str, int] = {}
        with self.engine.connect() as conn:

            def total(query_for: Any, ids: Sequence[Any]) -> int:
                return sum(int(conn.execute(query_for(chunk)).scalar_one() or 0)
                           for chunk in _chunks(list(ids)))  # fmt: skip

            def count(table: Any, column: Any, ids: Sequence[Any]) -> int:
                return total(lambda c: select(func.count()).select_from(table)
                             .where(column.in_(c)), ids)  # fmt: skip

            out["experiments"] = count(experiments, experiments.c.experiment_id, experiment_ids)
            out["experiment tags"] = count(
                experiment_tags, experiment_tags.c.experiment_id, experiment_ids
            )
            out["runs"] = count(runs, runs.c.run_uuid, run_ids)
            out["params"] = count(params, params.c.run_uuid, run_ids)
            out["tags"] = count(tags, tags.c.run_uuid, run_ids)
            out["metric points"] = total(
                lambda c: select(func.sum(metric_segments.c.n)).where(
                    metric_segments.c.run_uuid.in_(c)), run_ids)  # fmt: skip
            out["inputs/outputs"] = count(run_lineage, run_lineage.c.run_uuid, run_ids)
            out["logged models"] = count(logged_models, logged_models.c.model_id, model_ids)
        with self.registry_engine.connect() as conn:
            ids = list(conn.execute(
                select(registered_models.c.id).where(registered_models.c.name.in_(list(model_names)))
            ).scalars()) if model_names else []  # fmt: skip

            def reg(table: Any) -> int:
                if not ids:
                    return 0
                query = select(func.count()).select_from(table).where(table.c.model_id.in_(ids))
                return int(conn.execute(query).scalar_one())

            out["registered models"] = len(ids)
            out["model versions"] = reg(model_versions)
            out["registry tags"] = reg(registered_model_tags) + reg(model_version_tags)
            out["aliases"] = reg(registered_model_aliases)
        return out


def _add_pairs(conn: Connection, table: Any, key: dict[str, Any], pairs: dict[str, str]) -> int:
    if not pairs:
        return 0
    where = [table.c[name] == value for name, value in key.items()]
    have = set(conn.execute(select(table.c.key).where(*where)).scalars())
    new = [{**key, "key": k, "value": v} for k, v in pairs.items() if k not in have]
    if new:
        conn.execute(insert(table), new)
    return len(new)


class _Audit:
    """Registry audit entries for what the import adds, in its transaction."""

    def __init__(self, conn: Connection, name: str, user: str, reason: str) -> None:
        self.conn, self.name, self.user, self.reason = conn, name, user, reason

    def add(self, model_id: int, version: int | None, action: str, old: Any, new: Any) -> None:
        self.conn.execute(insert(registry_audit).values(
            timestamp=now_ms(), model_id=model_id, name=self.name, version=version,
            action=action, from_value=old, to_value=None if new is None else str(new),
            user_id=self.user, reason=self.reason,
        ))  # fmt: skip


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers: not worth failing
        return "unknown"
