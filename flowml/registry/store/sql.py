"""The SQLAlchemy registry store, sharing the tracking database and its migrations.

Rows never leave this module. Each write is one transaction (``BEGIN IMMEDIATE``
on SQLite) that first locks the registered model's row (``SELECT ... FOR UPDATE``
on PostgreSQL), so concurrent changes to one model are serialised; the audit
entries describing a change are inserted in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.registry import validation as v
from flowml.registry.audit import AuditAction, AuditInfo, current_audit_info
from flowml.registry.entities import (
    ACTIVE_STAGES,
    ALL_STAGES,
    STAGE_ARCHIVED,
    STAGE_NONE,
    AuditEntry,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    canonical_stage,
)
from flowml.registry.prompt_tags import check_version_tag_writable
from flowml.registry.schema import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from flowml.registry.store import sql_rows
from flowml.registry.store.base import (
    AUDIT_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_LIMIT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_LIMIT,
    AbstractRegistryStore,
)
from flowml.registry.store.sql_audit import insert_audit, read_audit, read_entry
from flowml.tracking.entities import PagedList, now_ms
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import get_engine, write_transaction

if TYPE_CHECKING:
    from flowml.registry.store.sql_search import RegistryEntity

__all__ = ["SqlRegistryStore"]

T = TypeVar("T")

_rm = registered_models.c
_mv = model_versions.c
_alias = registered_model_aliases.c


class SqlRegistryStore(AbstractRegistryStore):
    """Registry metadata in a SQL database (``sqlite:///...``, ``postgresql://...``).

    Args:
        uri: a SQLAlchemy database URI; usually the tracking URI.
        search_timeout_seconds: how long one search statement may run before it is
            cancelled with `InvalidParameter` (``0``: no limit).
    """

    def __init__(
        self, uri: str, *, search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
    ) -> None:
        # Registering the tables on the shared MetaData happens by importing the schema.
        self.uri = uri
        self.engine = get_engine(uri)
        self.search_timeout_seconds = search_timeout_seconds
        migrate.upgrade(self.engine)

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        *,
        audit: AuditInfo | None = None,
    ) -> RegisteredModel:
        v.validate_model_name(name)
        tag_values = _validated_tags(tags)
        description = v.validate_description(description)
        now = now_ms()
        with write_transaction(self.engine) as conn:
            try:
                with conn.begin_nested():
                    model_id = conn.execute(
                        insert(registered_models)
                        .values(
                            name=name,
                            description=description,
                            creation_time=now,
                            last_updated_time=now,
                            last_version=0,
                        )
                        .returning(_rm.id)
                    ).scalar_one()
            except IntegrityError:
                raise ResourceAlreadyExists(f"Registered model {name!r} already exists") from None
            if tag_values:
                conn.execute(
                    insert(registered_model_tags),
                    [
                        {"model_id": model_id, "key": k, "value": val}
                        for k, val in tag_values.items()
                    ],
                )
            insert_audit(
                conn, _audit(audit), model_id, name, AuditAction.MODEL_CREATED, to_value=name
            )
            return sql_rows.registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        v.validate_model_name(name)
        with self.engine.connect() as conn:
            return sql_rows.registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        v.validate_model_name(name)
        description = v.validate_description(description)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(
                update(registered_models)
                .where(_rm.id == row.id)
                .values(description=description, last_updated_time=now_ms())
            )
            return sql_rows.registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

    def rename_registered_model(
        self, name: str, new_name: str, *, audit: AuditInfo | None = None
    ) -> RegisteredModel:
        v.validate_model_name(name)
        v.validate_model_name(new_name, what="new name")
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            if new_name == name:
                return sql_rows.registered_models_from_rows(conn, [row])[0]
            try:
                with conn.begin_nested():
                    conn.execute(
                        update(registered_models)
                        .where(_rm.id == row.id)
                        .values(name=new_name, last_updated_time=now_ms())
                    )
            except IntegrityError:
                raise ResourceAlreadyExists(
                    f"Cannot rename {name!r}: registered model {new_name!r} already exists"
                ) from None
            insert_audit(
                conn,
                _audit(audit),
                row.id,
                new_name,
                AuditAction.MODEL_RENAMED,
                from_value=name,
                to_value=new_name,
            )
            return sql_rows.registered_models_from_rows(conn, [self._model_row(conn, new_name)])[0]

    def delete_registered_model(self, name: str, *, audit: AuditInfo | None = None) -> None:
        v.validate_model_name(name)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(delete(registered_models).where(_rm.id == row.id))
            insert_audit(
                conn,
                _audit(audit).with_details(last_version=row.last_version),
                row.id,
                name,
                AuditAction.MODEL_DELETED,
                from_value=name,
            )

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        return self._search(
            "registered_models",
            sql_rows.registered_models_from_rows,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_LIMIT,
            filter_string,
            max_results,
            order_by,
            page_token,
        )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        v.validate_model_name(name)
        if stages is not None and (isinstance(stages, str) or not isinstance(stages, Sequence)):
            raise InvalidParameter(f"stages must be a list of stage names, got {stages!r}")
        wanted = {canonical_stage(s) for s in stages} if stages else set(ALL_STAGES)
        with self.engine.connect() as conn:
            row = self._model_row(conn, name)
            latest = sql_rows.latest_versions(conn, [row.id]).get(row.id, [])
            return [mv for mv in latest if mv.current_stage in wanted]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        v.validate_model_name(name)
        key, value = v.validate_tag(key, value)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            sql_rows.upsert(
                conn,
                registered_model_tags,
                [{"model_id": row.id, "key": key, "value": value}],
                ("model_id", "key"),
                ("value",),
            )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        v.validate_model_name(name)
        v.validate_tag(key, "")
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == row.id, registered_model_tags.c.key == key
                )
            )

    # -- model versions ----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        *,
        storage_location: str | None = None,
        audit: AuditInfo | None = None,
    ) -> ModelVersion:
        v.validate_model_name(name)
        v.validate_source(source)
        storage_location = v.validate_source(storage_location or source)
        tag_values = _validated_tags(tags)
        description = v.validate_description(description)
        run_id = _optional_text("run_id", run_id, 32)
        run_link = _optional_text("run_link", run_link, 500)
        info = _audit(audit)
        now = now_ms()
        with write_transaction(self.engine) as conn:
            # One UPDATE both locks the model row and takes the next number.
            counter = conn.execute(
                update(registered_models)
                .where(_rm.name == name)
                .values(last_version=_rm.last_version + 1, last_updated_time=now)
                .returning(_rm.id, _rm.last_version)
            ).first()
            if counter is None:
                raise ResourceNotFound(f"Registered model {name!r} not found")
            model_id, version = counter
            conn.execute(
                insert(model_versions).values(
                    model_id=model_id,
                    version=version,
                    source=source,
                    storage_location=storage_location,
                    run_id=run_id,
                    run_link=run_link,
                    user_id=info.user_id,
                    status=ModelVersionStatus.READY,
                    status_message=None,
                    current_stage=STAGE_NONE,
                    description=description,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            if tag_values:
                conn.execute(
                    insert(model_version_tags),
                    [
                        {"model_id": model_id, "version": version, "key": k, "value": val}
                        for k, val in tag_values.items()
                    ],
                )
            insert_audit(
                conn,
                info.with_details(run_id=run_id) if run_id else info,
                model_id,
                name,
                AuditAction.VERSION_REGISTERED,
                version=version,
                to_value=source,
            )
            return self._version(conn, model_id, name, version)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        v.validate_model_name(name)
        number = v.validate_version(version)
        with self.engine.connect() as conn:
            row = self._model_row(conn, name)
            return self._version(conn, row.id, name, number)

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        v.validate_model_name(name)
        number = v.validate_version(version)
        description = v.validate_description(description)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            self._version(conn, row.id, name, number)
            conn.execute(
                update(model_versions)
                .where(_mv.model_id == row.id, _mv.version == number)
                .values(description=description, last_updated_time=now_ms())
            )
            return self._version(conn, row.id, name, number)

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        audit: AuditInfo | None = None,
    ) -> ModelVersion:
        v.validate_model_name(name)
        number = v.validate_version(version)
        target = canonical_stage(stage)
        if not isinstance(archive_existing_versions, bool):
            raise InvalidParameter(
                f"archive_existing_versions must be a bool, got {archive_existing_versions!r}"
            )
        if archive_existing_versions and target not in ACTIVE_STAGES:
            raise InvalidParameter(
                f"Model version transition cannot archive existing model versions because "
                f"{target!r} is not an active stage; archive_existing_versions works with "
                f"{' and '.join(ACTIVE_STAGES)} only"
            )
        info = _audit(audit)
        now = now_ms()
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            current = self._version(conn, row.id, name, number)
            if archive_existing_versions:
                others = (
                    conn.execute(
                        select(_mv.version)
                        .where(
                            _mv.model_id == row.id,
                            _mv.version != number,
                            _mv.current_stage == target,
                        )
                        .order_by(_mv.version)
                    )
                    .scalars()
                    .all()
                )
                if others:
                    conn.execute(
                        update(model_versions)
                        .where(_mv.model_id == row.id, _mv.version.in_(others))
                        .values(current_stage=STAGE_ARCHIVED, last_updated_time=now)
                    )
                for other in others:
                    insert_audit(
                        conn,
                        info.with_details(archived_by_version=number),
                        row.id,
                        name,
                        AuditAction.STAGE_TRANSITIONED,
                        version=other,
                        from_value=target,
                        to_value=STAGE_ARCHIVED,
                    )
            if current.current_stage != target:
                conn.execute(
                    update(model_versions)
                    .where(_mv.model_id == row.id, _mv.version == number)
                    .values(current_stage=target, last_updated_time=now)
                )
                insert_audit(
                    conn,
                    info,
                    row.id,
                    name,
                    AuditAction.STAGE_TRANSITIONED,
                    version=number,
                    from_value=current.current_stage,
                    to_value=target,
                )
            conn.execute(
                update(registered_models).where(_rm.id == row.id).values(last_updated_time=now)
            )
            return self._version(conn, row.id, name, number)

    def delete_model_version(
        self, name: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        info = _audit(audit)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            current = self._version(conn, row.id, name, number)
            for alias in current.aliases:
                insert_audit(
                    conn,
                    info.with_details(deleted_with_version=True),
                    row.id,
                    name,
                    AuditAction.ALIAS_DELETED,
                    version=number,
                    from_value=str(number),
                    to_value=None,
                    alias=alias,
                )
            conn.execute(
                delete(model_versions).where(_mv.model_id == row.id, _mv.version == number)
            )
            conn.execute(
                update(registered_models).where(_rm.id == row.id).values(last_updated_time=now_ms())
            )
            insert_audit(
                conn,
                info.with_details(source=current.source),
                row.id,
                name,
                AuditAction.VERSION_DELETED,
                version=number,
                from_value=current.current_stage,
            )

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        return self._search(
            "model_versions",
            sql_rows.versions_from_rows,
            SEARCH_MODEL_VERSION_MAX_RESULTS_LIMIT,
            filter_string,
            max_results,
            order_by,
            page_token,
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        key, value = v.validate_tag(key, value)
        check_version_tag_writable(key)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            self._version(conn, row.id, name, number)
            sql_rows.upsert(
                conn,
                model_version_tags,
                [{"model_id": row.id, "version": number, "key": key, "value": value}],
                ("model_id", "version", "key"),
                ("value",),
            )

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        v.validate_tag(key, "")
        check_version_tag_writable(key)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            self._version(conn, row.id, name, number)
            conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == row.id,
                    model_version_tags.c.version == number,
                    model_version_tags.c.key == key,
                )
            )

    # -- aliases -----------------------------------------------------------------------------

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        number = v.validate_version(version)
        info = _audit(audit)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            self._version(conn, row.id, name, number)
            previous = conn.scalar(
                select(_alias.version).where(_alias.model_id == row.id, _alias.alias == alias)
            )
            if previous == number:
                return
            sql_rows.upsert(
                conn,
                registered_model_aliases,
                [{"model_id": row.id, "alias": alias, "version": number}],
                ("model_id", "alias"),
                ("version",),
            )
            conn.execute(
                update(registered_models).where(_rm.id == row.id).values(last_updated_time=now_ms())
            )
            insert_audit(
                conn,
                info,
                row.id,
                name,
                AuditAction.ALIAS_SET,
                version=number,
                from_value=None if previous is None else str(previous),
                to_value=str(number),
                alias=alias,
            )

    def delete_registered_model_alias(
        self, name: str, alias: str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        info = _audit(audit)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            previous = conn.scalar(
                select(_alias.version).where(_alias.model_id == row.id, _alias.alias == alias)
            )
            if previous is None:
                return
            conn.execute(
                delete(registered_model_aliases).where(
                    _alias.model_id == row.id, _alias.alias == alias
                )
            )
            conn.execute(
                update(registered_models).where(_rm.id == row.id).values(last_updated_time=now_ms())
            )
            insert_audit(
                conn,
                info,
                row.id,
                name,
                AuditAction.ALIAS_DELETED,
                version=previous,
                from_value=str(previous),
                to_value=None,
                alias=alias,
            )

    def _get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.engine.connect() as conn:
            row = self._model_row(conn, name)
            number = conn.scalar(
                select(_alias.version).where(_alias.model_id == row.id, _alias.alias == alias)
            )
            if number is None:
                raise ResourceNotFound(f"Registered model {name!r} has no alias {alias!r}")
            return self._version(conn, row.id, name, number)

    # -- audit -------------------------------------------------------------------------------

    def log_audit_event(
        self,
        name: str,
        action: str,
        *,
        version: int | str | None = None,
        from_value: str | None = None,
        to_value: str | None = None,
        audit: AuditInfo | None = None,
    ) -> AuditEntry:
        v.validate_model_name(name)
        if action not in AuditAction.EVENTS:
            raise InvalidParameter(
                f"Cannot append an audit entry with action {action!r}: only decisions "
                f"({', '.join(sorted(AuditAction.EVENTS))}) may be logged; changes are "
                "recorded by the change itself"
            )
        number = None if version is None else v.validate_version(version)
        for label, text in (("from_value", from_value), ("to_value", to_value)):
            if text is not None and not isinstance(text, str):
                raise InvalidParameter(f"Audit {label} must be a string, got {text!r}")
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            if number is not None:
                self._version(conn, row.id, name, number)
            entry_id = insert_audit(
                conn,
                _audit(audit),
                row.id,
                name,
                action,
                version=number,
                from_value=from_value,
                to_value=to_value,
            )
            return read_entry(conn, entry_id)

    def get_audit_log(
        self,
        name: str | None = None,
        max_results: int = AUDIT_MAX_RESULTS_DEFAULT,
        after_id: int = 0,
    ) -> list[AuditEntry]:
        if name is not None:
            v.validate_model_name(name)
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise InvalidParameter(f"max_results must be a positive integer, got {max_results!r}")
        if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
            raise InvalidParameter(f"after_id must be a non-negative integer, got {after_id!r}")
        with self.engine.connect() as conn:
            return read_audit(conn, name, max_results, after_id)

    # -- helpers -----------------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, lock: bool = False) -> Row[Any]:
        statement = select(registered_models).where(_rm.name == name)
        if lock:
            statement = statement.with_for_update()
        row = conn.execute(statement).first()
        if row is None:
            raise ResourceNotFound(f"Registered model {name!r} not found")
        return row

    def _search(
        self,
        entity: RegistryEntity,
        convert: Callable[[Connection, Sequence[Row[Any]]], list[T]],
        limit: int,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[T]:
        # Imported on first search: the filter grammar is not needed to open a store.
        from flowml.registry.store.sql_search import select_registry_page
        from flowml.tracking.store.paging import search_connection

        with search_connection(self.engine, self.search_timeout_seconds) as conn:
            rows, token = select_registry_page(
                conn, entity, filter_string, max_results, order_by, page_token, limit
            )
            return PagedList(convert(conn, rows), token)

    def _version(self, conn: Connection, model_id: int, name: str, number: int) -> ModelVersion:
        row = conn.execute(
            select(model_versions, _rm.name)
            .join(registered_models, _rm.id == _mv.model_id)
            .where(_mv.model_id == model_id, _mv.version == number)
        ).first()
        if row is None:
            raise ResourceNotFound(f"Registered model {name!r} has no version {number}")
        return sql_rows.versions_from_rows(conn, [row])[0]

    def close(self) -> None:
        self.engine.dispose()


def _audit(audit: AuditInfo | None) -> AuditInfo:
    return audit if audit is not None else current_audit_info()


def _validated_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidParameter(f"tags must be a mapping of key to value, got {type(tags).__name__}")
    return dict(v.validate_tag(k, val) for k, val in tags.items())


def _optional_text(label: str, value: object, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidParameter(
            f"{label} must be a string of at most {limit} characters, got {value!r}"
        )
    return value
