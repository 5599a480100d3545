"""Where a model version stands in the SQL registry store: its stage, and the aliases
pointing at it. Every change is audited in its own transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry import validation as v
from flowml.registry.audit import AuditAction, AuditInfo
from flowml.registry.entities import (
    ACTIVE_STAGES,
    STAGE_ARCHIVED,
    ModelVersion,
    canonical_stage,
)
from flowml.registry.schema import model_versions, registered_model_aliases, registered_models
from flowml.registry.store.sql_audit import audit_info, insert_audit
from flowml.registry.store.sql_rows import RegistryRows
from flowml.tracking.entities import now_ms
from flowml.tracking.store import sql_fast
from flowml.tracking.store.engine import write_transaction

__all__ = ["SqlStages"]

_rm = registered_models.c
_mv = model_versions.c
_alias = registered_model_aliases.c


class SqlStages(RegistryRows):
    """The stage and alias methods of `SqlRegistryStore`."""

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
        info = audit_info(audit)
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

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        number = v.validate_version(version)
        info = audit_info(audit)
        with write_transaction(self.engine) as conn:
            row = self._model_row(conn, name, lock=True)
            self._version(conn, row.id, name, number)
            previous = conn.scalar(
                select(_alias.version).where(_alias.model_id == row.id, _alias.alias == alias)
            )
            if previous == number:
                return
            sql_fast.upsert(
                conn,
                registered_model_aliases,
                [{"model_id": row.id, "alias": alias, "version": number}],
                ("model_id", "alias"),
                ("version",),
            )
            _alias_changed(
                conn, info, row.id, name, AuditAction.ALIAS_SET, alias, number, previous, number
            )

    def delete_registered_model_alias(
        self, name: str, alias: str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        info = audit_info(audit)
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
            _alias_changed(
                conn, info, row.id, name, AuditAction.ALIAS_DELETED, alias, previous, previous, None
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


def _alias_changed(
    conn: Connection,
    info: AuditInfo,
    model_id: int,
    name: str,
    action: str,
    alias: str,
    version: int,
    before: int | None,
    after: int | None,
) -> None:
    """An alias set or deleted: the model's update time and the audit entry, in the change's
    transaction."""
    conn.execute(
        update(registered_models).where(_rm.id == model_id).values(last_updated_time=now_ms())
    )
    insert_audit(
        conn,
        info,
        model_id,
        name,
        action,
        version=version,
        from_value=None if before is None else str(before),
        to_value=None if after is None else str(after),
        alias=alias,
    )
