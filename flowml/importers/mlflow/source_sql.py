"""Reading an MLflow tracking database (SQLite or PostgreSQL) with SQLAlchemy Core.

No MLflow code: the tables are reflected from the database after its alembic revision was
checked against the schemas this importer knows (`revisions`). The database is opened
read-only (SQLite in ``mode=ro``, PostgreSQL sessions in read-only transactions), so an
import can never change it. Runs are read a batch at a time, each table once per batch,
metric histories in one ordered scan of MLflow's ``(run_uuid, key, step)`` index.
"""

from __future__ import annotations

import itertools
import math
import operator
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from flowml.importers.mlflow.errors import NotAnMLflowStore
from flowml.importers.mlflow.records import (
    SourceExperiment,
    SourceLoggedModel,
    SourceModelVersion,
    SourceRegisteredModel,
    SourceRun,
    checked_id,
)
from flowml.importers.mlflow.revisions import check_revision
from flowml.importers.mlflow.source import Counts, MlflowSource, redact
from flowml.importers.mlflow.source_lineage import input_entries
from flowml.tracking.store.engine import normalize_uri

__all__ = ["SqlSource"]

_REQUIRED = ("experiments", "runs", "params", "tags", "metrics")
_OPTIONAL = (
    "experiment_tags", "datasets", "inputs", "logged_models", "logged_model_tags",
    "logged_model_params", "registered_models", "registered_model_tags", "model_versions",
    "model_version_tags", "registered_model_aliases",
)  # fmt: skip
# MLflow marks a deleted model version with this stage before removing it.
_DELETED_STAGE = "Deleted_Internal"
# MLflow's LoggedModelStatus enum values -> flowml's names.
_LOGGED_MODEL_STATUS = {0: "PENDING", 1: "PENDING", 2: "READY", 3: "FAILED"}


def _engine(uri: str) -> Engine:
    url = make_url(normalize_uri(uri))
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or not path.is_file():
            raise NotAnMLflowStore(
                f"No SQLite database at {str(path)!r}; nothing was imported. Pass the file "
                "MLflow's tracking URI points at (sqlite:///path/to/mlflow.db)."
            )
        resolved = path.resolve().as_uri()  # file:///..., quoted

        def connect() -> sqlite3.Connection:
            # Read-only at the driver: an import never writes its source.
            return sqlite3.connect(f"{resolved}?mode=ro", uri=True, check_same_thread=False)

        return create_engine("sqlite://", creator=connect)
    # Read-only transactions: an import never writes its source. Options the URI already
    # carries (a search_path) are kept.
    options = f"{url.query.get('options', '')} -c default_transaction_read_only=on".strip()
    url = url.difference_update_query(["options"])
    return create_engine(url, connect_args={"options": options}, pool_pre_ping=True)


class SqlSource(MlflowSource):
    """An MLflow tracking database, read-only.

    Args:
        uri: ``sqlite:///path/mlflow.db`` or ``postgresql://user@host/db``.

    Raises:
        NotAnMLflowStore: missing file, unreachable database, or no MLflow tables.
        UnsupportedMLflowSchema: a schema newer than MLflow 3.17's.
    """

    def __init__(self, uri: str) -> None:
        self.where = f"The database {redact(uri)}"
        self.engine = _engine(uri)
        try:
            with self.engine.connect() as conn:
                names = set(inspect(conn).get_table_names())
                revision = None
                if "alembic_version" in names:
                    revision = conn.exec_driver_sql(
                        "SELECT version_num FROM alembic_version"
                    ).scalar()
                check_revision(revision, self.where)
                missing = [t for t in _REQUIRED if t not in names]
                if missing:
                    raise NotAnMLflowStore(
                        f"{self.where} has an MLflow schema version but lacks the tables "
                        f"{', '.join(missing)}; nothing was imported."
                    )
                meta = MetaData()
                self.t: dict[str, Table] = {
                    name: Table(name, meta, autoload_with=conn)
                    for name in (*_REQUIRED, *_OPTIONAL)
                    if name in names
                }
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise NotAnMLflowStore(
                f"{self.where} could not be read as an MLflow store: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:300]}"
            ) from None
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, table: str, *where: Any) -> list[Any]:
        if table not in self.t:
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(select(self.t[table]).where(*where)))

    # -- experiments and runs ---------------------------------------------------------------

    def experiments(self) -> list[SourceExperiment]:
        tags: dict[str, dict[str, str]] = {}
        for row in self._rows("experiment_tags"):
            tags.setdefault(str(row.experiment_id), {})[row.key] = row.value or ""
        t = self.t["experiments"]
        found = []
        for row in self._rows("experiments", t.c.experiment_id.is_not(None)):
            exp_id = checked_id("experiment", row.experiment_id)
            found.append(
                SourceExperiment(
                    experiment_id=exp_id,
                    name=row.name,
                    artifact_location=row.artifact_location,
                    lifecycle_stage=row.lifecycle_stage or "active",
                    creation_time=getattr(row, "creation_time", None),
                    last_update_time=getattr(row, "last_update_time", None),
                    tags=tags.get(exp_id, {}),
                )
            )
        return sorted(found, key=lambda e: int(e.experiment_id))

    def run_index(self) -> list[tuple[str, str, str | None]]:
        t = self.t["runs"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.run_uuid, t.c.experiment_id, t.c.artifact_uri).order_by(
                    t.c.start_time, t.c.run_uuid
                )
            )
            return [(checked_id("run", r[0]), str(r[1]), r[2]) for r in rows]

    def read_runs(self, run_ids: Sequence[str]) -> list[SourceRun]:
        ids = list(run_ids)
        with self.engine.connect() as conn:
            found = {row.run_uuid: _run(row) for row in conn.execute(
                select(self.t["runs"]).where(self.t["runs"].c.run_uuid.in_(ids))
            )}  # fmt: skip
            for table, attr in (("params", "params"), ("tags", "tags")):
                t = self.t[table]
                for key, value, run_id in conn.execute(
                    select(t.c.key, t.c.value, t.c.run_uuid).where(t.c.run_uuid.in_(ids))
                ):
                    getattr(found[run_id], attr)[key] = value if value is not None else ""
            self._read_metrics(conn, ids, found)
            for run_id, entries in input_entries(conn, self.t, ids).items():
                if run_id in found:
                    found[run_id].lineage.extend(entries)
        return [found[i] for i in ids if i in found]

    def _read_metrics(self, conn: Connection, ids: list[str], found: dict[str, SourceRun]) -> None:
        t = self.t["metrics"]
        query = (
            select(t.c.run_uuid, t.c.key, t.c.value, t.c.timestamp, t.c.step, t.c.is_nan)
            .where(t.c.run_uuid.in_(ids))
            .order_by(t.c.run_uuid, t.c.key, t.c.step, t.c.timestamp)
        )
        # The hot path of an import (millions of points): the driver's own cursor and tuples,
        # grouped and transposed in C (itertools.groupby, zip), skip SQLAlchemy's Row objects,
        # which cost more than SQLite's scan itself.
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params: Any = compiled.params
        if compiled.positiontup is not None:
            params = tuple(compiled.params[name] for name in compiled.positiontup)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(str(compiled), params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        for (run_id, key), group in itertools.groupby(rows, key=operator.itemgetter(0, 1)):
            _, _, column, stamps, steps, nans = zip(*group, strict=True)
            values = list(column)
            if any(nans):
                values = [math.nan if nan else v for v, nan in zip(values, nans, strict=True)]
            found[run_id].metrics[key] = (values, list(stamps), list(steps))

    # -- models -----------------------------------------------------------------------------

    def logged_models(self) -> list[SourceLoggedModel]:
        if "logged_models" not in self.t:
            return []
        pairs = {
            "tags": _pairs(self._rows("logged_model_tags"), "tag_key", "tag_value"),
            "params": _pairs(self._rows("logged_model_params"), "param_key", "param_value"),
        }
        t = self.t["logged_models"]
        found = []
        for row in self._rows("logged_models", t.c.lifecycle_stage != "deleted"):
            model_id = checked_id("logged model", row.model_id)
            found.append(
                SourceLoggedModel(
                    model_id=model_id,
                    experiment_id=str(row.experiment_id),
                    run_id=row.source_run_id,
                    name=row.name,
                    artifact_location=row.artifact_location,
                    status=_LOGGED_MODEL_STATUS.get(row.status, "READY"),
                    status_message=row.status_message,
                    model_type=row.model_type,
                    creation_time=row.creation_timestamp_ms,
                    last_updated_time=row.last_updated_timestamp_ms,
                    tags=pairs["tags"].get(model_id, {}),
                    params=pairs["params"].get(model_id, {}),
                )
            )
        return sorted(found, key=lambda m: (m.creation_time, m.model_id))

    def registered_models(self) -> list[SourceRegisteredModel]:
        if "registered_models" not in self.t:
            return []
        models = {
            row.name: SourceRegisteredModel(
                name=row.name,
                description=row.description,
                creation_time=row.creation_time or 0,
                last_updated_time=row.last_updated_time or row.creation_time or 0,
            )
            for row in self._rows("registered_models")
        }
        for row in self._rows("registered_model_tags"):
            models[row.name].tags[row.key] = row.value or ""
        for row in self._rows("registered_model_aliases"):
            models[row.name].aliases[row.alias] = int(row.version)
        versions: dict[tuple[str, int], SourceModelVersion] = {}
        t = self.t.get("model_versions")
        live_versions = (
            [] if t is None else self._rows("model_versions", t.c.current_stage != _DELETED_STAGE)
        )
        for row in live_versions:
            version = SourceModelVersion(
                version=int(row.version), source=row.source,
                storage_location=row.storage_location, run_id=row.run_id,
                run_link=row.run_link, user_id=row.user_id, status=row.status or "READY",
                status_message=row.status_message, current_stage=row.current_stage or "None",
                description=row.description, creation_time=row.creation_time or 0,
                last_updated_time=row.last_updated_time or row.creation_time or 0,
            )  # fmt: skip
            versions[(row.name, version.version)] = version
            models[row.name].versions.append(version)
        for row in self._rows("model_version_tags"):
            found = versions.get((row.name, int(row.version)))
            if found is not None:
                found.tags[row.key] = row.value or ""
        for model in models.values():
            model.versions.sort(key=lambda v: v.version)
            # An alias of a deleted version is dropped by MLflow too.
            live = {v.version for v in model.versions}
            model.aliases = {a: n for a, n in model.aliases.items() if n in live}
        return sorted(models.values(), key=lambda m: (m.creation_time, m.name))

    # -- counts -----------------------------------------------------------------------------

    def counts(self) -> Counts:
        models = self.registered_models()
        logged = len(self.logged_models())
        with self.engine.connect() as conn:

            def count(table: str) -> int:
                if table not in self.t:
                    return 0
                query = select(func.count()).select_from(self.t[table])
                return int(conn.execute(query).scalar_one())

            lineage = sum(len(e) for e in input_entries(conn, self.t, None).values())
            return {
                "experiments": count("experiments"),
                "experiment tags": count("experiment_tags"),
                "runs": count("runs"),
                "params": count("params"),
                "tags": count("tags"),
                "metric points": count("metrics"),
                "inputs/outputs": lineage,
                "logged models": logged,
                "registered models": len(models),
                "model versions": sum(len(m.versions) for m in models),
                "registry tags": sum(
                    len(m.tags) + sum(len(v.tags) for v in m.versions) for m in models
                ),
                "aliases": sum(len(m.aliases) for m in models),
            }


def _run(row: Any) -> SourceRun:
    return SourceRun(
        run_id=checked_id("run", row.run_uuid),
        experiment_id=str(row.experiment_id),
        name=row.name or "",
        user_id=row.user_id or "",
        status=row.status or "FINISHED",
        start_time=row.start_time or 0,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage or "active",
        deleted_time=getattr(row, "deleted_time", None),
    )


def _pairs(rows: list[Any], key: str, value: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        out.setdefault(row.model_id, {})[getattr(row, key)] = getattr(row, value) or ""
    return out
