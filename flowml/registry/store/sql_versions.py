"""Model versions in the SQL registry store: register, read, describe, delete, tags, search.

A version's number comes from its model's counter, taken by the same ``UPDATE`` that locks
the model row, so concurrent registrations never collide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, insert, update

from flowml.exceptions import ResourceNotFound
from flowml.registry import validation as v
from flowml.registry.audit import AuditAction, AuditInfo
from flowml.registry.entities import STAGE_NONE, ModelVersion, ModelVersionStatus
from flowml.registry.prompt_tags import check_version_tag_writable
from flowml.registry.schema import model_version_tags, model_versions, registered_models
from flowml.registry.store.base import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_LIMIT,
)
from flowml.registry.store.sql_audit import audit_info, insert_audit
from flowml.registry.store.sql_rows import RegistryRows, versions_from_rows
from flowml.tracking.entities import PagedList, now_ms
from flowml.tracking.store import sql_fast
from flowml.tracking.store.engine import write_transaction

__all__ = ["SqlModelVersions"]

_rm = registered_models.c
_mv = model_versions.c


class SqlModelVersions(RegistryRows):
    """The model version methods of `SqlRegistryStore`."""

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
        tag_values = v.validate_tags(tags)
        description = v.validate_description(description)
        run_id = v.validate_optional_text("run_id", run_id, 32)
        run_link = v.validate_optional_text("run_link", run_link, 500)
        info = audit_info(audit)
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

    def delete_model_version(
        self, name: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        info = audit_info(audit)
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
            versions_from_rows,
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
            sql_fast.upsert(
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
