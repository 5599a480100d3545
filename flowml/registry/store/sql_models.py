"""Registered models in the SQL registry store: create, read, rename, delete, tags, search.

`SqlRegistryStore` (`flowml.registry.store.sql`) is made of this mixin and its siblings
(`sql_versions`, `sql_stages`, `sql_audit`), all built on `sql_rows.RegistryRows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists
from flowml.registry import validation as v
from flowml.registry.audit import AuditAction, AuditInfo
from flowml.registry.entities import ALL_STAGES, ModelVersion, RegisteredModel, canonical_stage
from flowml.registry.schema import registered_model_tags, registered_models
from flowml.registry.store.base import (
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_LIMIT,
)
from flowml.registry.store.sql_audit import audit_info, insert_audit
from flowml.registry.store.sql_rows import (
    RegistryRows,
    latest_versions,
    registered_models_from_rows,
)
from flowml.tracking.entities import PagedList, now_ms
from flowml.tracking.store import sql_fast
from flowml.tracking.store.engine import write_transaction

__all__ = ["SqlRegisteredModels"]

_rm = registered_models.c


class SqlRegisteredModels(RegistryRows):
    """The registered model methods of `SqlRegistryStore`."""

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        *,
        audit: AuditInfo | None = None,
    ) -> RegisteredModel:
        v.validate_model_name(name)
        tag_values = v.validate_tags(tags)
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
                conn, audit_info(audit), model_id, name, AuditAction.MODEL_CREATED, to_value=name
            )
            return registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        v.validate_model_name(name)
        with self.engine.connect() as conn:
            return registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

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
            return registered_models_from_rows(conn, [self._model_row(conn, name)])[0]

    def rename_registered_model(
        self, name: str, new_name: str, *, audit: AuditInfo | None = None
    ) -> RegisteredModel:
        v.validate_model_name(name)
        v.validate_model_name(new_name, what="new name")
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            if new_name == name:
                return registered_models_from_rows(conn, [row])[0]
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
                audit_info(audit),
                row.id,
                new_name,
                AuditAction.MODEL_RENAMED,
                from_value=name,
                to_value=new_name,
            )
            return registered_models_from_rows(conn, [self._model_row(conn, new_name)])[0]

    def delete_registered_model(self, name: str, *, audit: AuditInfo | None = None) -> None:
        v.validate_model_name(name)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(delete(registered_models).where(_rm.id == row.id))
            insert_audit(
                conn,
                audit_info(audit).with_details(last_version=row.last_version),
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
            registered_models_from_rows,
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
            latest = latest_versions(conn, [row.id]).get(row.id, [])
            return [mv for mv in latest if mv.current_stage in wanted]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        v.validate_model_name(name)
        key, value = v.validate_tag(key, value)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            sql_fast.upsert(
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
