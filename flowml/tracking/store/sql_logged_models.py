"""MLflow 3's logged models in flowml's SQL database.

A logged model is a model with its own id (``m-<32 hex>``) and its own artifact location,
``<experiment's artifact location>/models/<id>/artifacts``, produced (optionally) by a
source run. It is created ``PENDING``, its files are uploaded, and it is finalized
``READY`` (or ``FAILED``). Tags can change; params are set once (the same value again is
a no-op, another value is refused, as MLflow's store does). Deleting removes the record;
the files stay where they are, as with a deleted run's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.entities import LifecycleStage, now_ms
from flowml.tracking.store.engine import write_transaction
from flowml.tracking.store.schema import (
    experiments,
    logged_model_params,
    logged_model_tags,
    logged_models,
    runs,
)

__all__ = [
    "LOGGED_MODEL_STATUSES",
    "LoggedModel",
    "SqlLoggedModelStore",
]

LOGGED_MODEL_STATUSES = ("PENDING", "READY", "FAILED")
_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
# A name becomes part of ``runs:/<run>/<name>`` URIs: no path or quoting characters.
_NAME_RE = re.compile(r"^[^/\\:%'\"\x00-\x1f]{1,500}$")
_FILTER_FIELDS = {
    "name": logged_models.c.name,
    "source_run_id": logged_models.c.run_uuid,
    "status": logged_models.c.status,
    "model_type": logged_models.c.model_type,
    "model_id": logged_models.c.model_id,
}
_CLAUSE = r"(\w+)\s*(!=|=)\s*'([^']*)'"
_CLAUSE_RE = re.compile(_CLAUSE)
# Split only between clauses, so a quoted value may itself contain " and ".
_FILTER_RE = re.compile(rf"\s*{_CLAUSE}(?:\s+and\s+{_CLAUSE})*\s*", re.IGNORECASE)
_MAX_RESULTS_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """One logged model (times in epoch milliseconds; ``status`` one of PENDING/READY/FAILED)."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    status: str
    creation_timestamp: int
    last_updated_timestamp: int
    source_run_id: str | None = None
    model_type: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def _check_id(model_id: object) -> str:
    if not isinstance(model_id, str) or not _ID_RE.match(model_id):
        raise ResourceNotFound(f"No logged model with id {model_id!r} (ids look like m-<32 hex>)")
    return model_id


def _pairs(kind: str, values: Mapping[str, str] | None) -> dict[str, str]:
    checked = {}
    for key, value in (values or {}).items():
        checked[v.validate_key(kind, key)] = v.validate_tag_value(key, value)
    return checked


def parse_filter(filter_string: str | None) -> list[ColumnElement[bool]]:
    """``name = 'x' AND source_run_id = 'y'``-style filters as SQL conditions.

    Raises:
        InvalidParameter: any other form (it names what is supported).
    """
    if not filter_string or not filter_string.strip():
        return []
    unsupported = InvalidParameter(
        f"Unsupported logged model filter {filter_string!r}: use <field> = '<value>' (or !=) "
        f"joined by AND, with field one of {', '.join(sorted(_FILTER_FIELDS))}"
    )
    if _FILTER_RE.fullmatch(filter_string) is None:
        raise unsupported
    conditions: list[ColumnElement[bool]] = []
    for match in _CLAUSE_RE.finditer(filter_string):
        if match.group(1) not in _FILTER_FIELDS:
            raise unsupported
        column = _FILTER_FIELDS[match.group(1)]
        value = match.group(3)
        conditions.append(column == value if match.group(2) == "=" else column != value)
    return conditions


class SqlLoggedModelStore:
    """Logged models in the tracking database ``engine`` (already migrated by `SqlStore`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new ``PENDING`` model in an active experiment.

        Raises:
            InvalidParameter: a bad name, key or value.
            ResourceNotFound: the experiment or the source run does not exist.
            InvalidState: the experiment is deleted.
        """
        model_id = "m-" + uuid.uuid4().hex
        name = name or f"model-{model_id[2:10]}"
        if not _NAME_RE.match(name):
            raise InvalidParameter(
                f"Invalid logged model name {name!r}: up to 500 characters, without "
                "'/', '\\\\', ':', '%', quotes or control characters"
            )
        clean_tags = _pairs("Tag", tags)
        clean_params = {
            v.validate_key("Param", k): v.validate_param_value(k, val)
            for k, val in (params or {}).items()
        }
        try:
            exp_id = int(experiment_id)
        except (TypeError, ValueError):
            raise ResourceNotFound(f"No experiment with id {experiment_id!r}") from None
        now = now_ms()
        with write_transaction(self.engine) as conn:
            experiment = conn.execute(
                select(experiments.c.artifact_location, experiments.c.lifecycle_stage).where(
                    experiments.c.experiment_id == exp_id
                )
            ).first()
            if experiment is None:
                raise ResourceNotFound(f"No experiment with id {experiment_id!r}")
            if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            if source_run_id:
                found = conn.execute(
                    select(runs.c.run_uuid).where(runs.c.run_uuid == source_run_id)
                ).first()
                if found is None:
                    raise ResourceNotFound(f"No run with id {source_run_id!r}")
            location = f"{experiment.artifact_location.rstrip('/')}/models/{model_id}/artifacts"
            conn.execute(
                insert(logged_models).values(
                    model_id=model_id,
                    experiment_id=exp_id,
                    run_uuid=source_run_id or None,
                    name=name,
                    artifact_location=location,
                    status="PENDING",
                    model_type=model_type or None,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            self._write_pairs(conn, logged_model_tags, model_id, clean_tags)
            self._write_pairs(conn, logged_model_params, model_id, clean_params)
            return self._load(conn, model_id)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Raises: ResourceNotFound: no such model."""
        with self.engine.connect() as conn:
            return self._load(conn, _check_id(model_id))

    def finalize_logged_model(
        self, model_id: str, status: str, status_message: str | None = None
    ) -> LoggedModel:
        """Set the model's status (``READY`` or ``FAILED``)."""
        if status not in LOGGED_MODEL_STATUSES:
            raise InvalidParameter(
                f"Invalid logged model status {status!r}; use one of "
                f"{', '.join(LOGGED_MODEL_STATUSES)}"
            )
        with write_transaction(self.engine) as conn:
            self._touch(conn, _check_id(model_id), status=status, status_message=status_message)
            return self._load(conn, model_id)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        clean = _pairs("Tag", tags)
        with write_transaction(self.engine) as conn:
            self._touch(conn, _check_id(model_id))
            keys = list(clean)
            if keys:
                conn.execute(
                    delete(logged_model_tags).where(
                        and_(
                            logged_model_tags.c.model_id == model_id,
                            logged_model_tags.c.key.in_(keys),
                        )
                    )
                )
            self._write_pairs(conn, logged_model_tags, model_id, clean)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Raises: ResourceNotFound: no such model or tag."""
        with write_transaction(self.engine) as conn:
            self._touch(conn, _check_id(model_id))
            gone = conn.execute(
                delete(logged_model_tags).where(
                    and_(logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key)
                )
            ).rowcount
            if not gone:
                raise ResourceNotFound(f"Logged model {model_id!r} has no tag {key!r}")

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Add params; a key already set must keep its value.

        Raises:
            InvalidParameter: a key already set to another value (nothing is written).
        """
        clean = {
            v.validate_key("Param", k): v.validate_param_value(k, val) for k, val in params.items()
        }
        with write_transaction(self.engine) as conn:
            self._touch(conn, _check_id(model_id))
            existing = dict(
                conn.execute(
                    select(logged_model_params.c.key, logged_model_params.c.value).where(
                        logged_model_params.c.model_id == model_id
                    )
                ).all()
            )
            for key, value in clean.items():
                if key in existing and existing[key] != value:
                    raise InvalidParameter(
                        f"Param {key!r} of logged model {model_id!r} is already "
                        f"{existing[key]!r}; params cannot change"
                    )
            new = {k: val for k, val in clean.items() if k not in existing}
            self._write_pairs(conn, logged_model_params, model_id, new)

    def delete_logged_model(self, model_id: str) -> None:
        """Remove the model's record (its files stay). Raises: ResourceNotFound."""
        with write_transaction(self.engine) as conn:
            gone = conn.execute(
                delete(logged_models).where(logged_models.c.model_id == _check_id(model_id))
            ).rowcount
            if not gone:
                raise ResourceNotFound(f"No logged model with id {model_id!r}")
            # SQLite enforces cascades only with foreign keys on; be explicit either way.
            for table in (logged_model_tags, logged_model_params):
                conn.execute(delete(table).where(table.c.model_id == model_id))

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> tuple[list[LoggedModel], bool]:
        """Models of ``experiment_ids`` matching the filter, newest first; and whether more follow.

        Raises:
            InvalidParameter: an unsupported filter or a bad ``max_results``.
        """
        if not 1 <= max_results <= _MAX_RESULTS_LIMIT:
            raise InvalidParameter(
                f"max_results must be between 1 and {_MAX_RESULTS_LIMIT}, got {max_results}"
            )
        ids = []
        for experiment_id in experiment_ids:
            try:
                ids.append(int(experiment_id))
            except (TypeError, ValueError):
                raise InvalidParameter(f"Invalid experiment id {experiment_id!r}") from None
        query = (
            select(logged_models.c.model_id)
            .where(logged_models.c.experiment_id.in_(ids), *parse_filter(filter_string))
            .order_by(logged_models.c.creation_time.desc(), logged_models.c.model_id)
            .offset(offset)
            .limit(max_results + 1)
        )
        with self.engine.connect() as conn:
            found = list(conn.execute(query).scalars())
            return [self._load(conn, m) for m in found[:max_results]], len(found) > max_results

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _write_pairs(
        conn: Connection, table: Table, model_id: str, pairs: Mapping[str, str]
    ) -> None:
        if pairs:
            conn.execute(
                insert(table),
                [{"model_id": model_id, "key": k, "value": val} for k, val in pairs.items()],
            )

    @staticmethod
    def _touch(conn: Connection, model_id: str, **values: object) -> None:
        done = conn.execute(
            update(logged_models)
            .where(logged_models.c.model_id == model_id)
            .values(last_updated_time=now_ms(), **values)
        ).rowcount
        if not done:
            raise ResourceNotFound(f"No logged model with id {model_id!r}")

    @staticmethod
    def _load(conn: Connection, model_id: str) -> LoggedModel:
        row = conn.execute(
            select(logged_models).where(logged_models.c.model_id == model_id)
        ).first()
        if row is None:
            raise ResourceNotFound(f"No logged model with id {model_id!r}")
        return _entity(conn, row)


def _entity(conn: Connection, row: Row) -> LoggedModel:
    def pairs(table: Table) -> dict[str, str]:
        rows = conn.execute(
            select(table.c.key, table.c.value).where(table.c.model_id == row.model_id)
        )
        return {key: value for key, value in rows}

    return LoggedModel(
        model_id=row.model_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        status=row.status,
        creation_timestamp=row.creation_time,
        last_updated_timestamp=row.last_updated_time,
        source_run_id=row.run_uuid,
        model_type=row.model_type,
        status_message=row.status_message,
        tags=pairs(logged_model_tags),
        params=pairs(logged_model_params),
    )
