"""Writing and reading the ``registry_audit`` table.

There is deliberately no update or delete here: the SQL store appends entries in
the transaction of the change they describe, and database triggers refuse any
other statement on the table.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select

from flowml.exceptions import InvalidParameter
from flowml.registry import validation as v
from flowml.registry.audit import AuditAction, AuditInfo, current_audit_info
from flowml.registry.entities import AuditEntry
from flowml.registry.schema import registry_audit
from flowml.registry.store.base import AUDIT_MAX_RESULTS_DEFAULT
from flowml.registry.store.sql_rows import RegistryRows
from flowml.tracking.entities import now_ms
from flowml.tracking.store.engine import write_transaction

__all__ = ["SqlAuditLog", "audit_info", "insert_audit", "read_audit", "read_entry"]

_a = registry_audit.c


class SqlAuditLog(RegistryRows):
    """The audit methods of `SqlRegistryStore` (the entries of a change are written by the
    change itself, in its transaction, with `insert_audit`)."""

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
                audit_info(audit),
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


def audit_info(audit: AuditInfo | None) -> AuditInfo:
    """``audit``, or the audit context set by the caller (`flowml.registry.audit`)."""
    return audit if audit is not None else current_audit_info()


def insert_audit(
    conn: Connection,
    info: AuditInfo,
    model_id: int,
    name: str,
    action: str,
    *,
    version: int | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
    **details: Any,
) -> int:
    """Append one entry; returns its id.

    Args:
        conn: the connection of the transaction making the change.
        info: who, why, and the Prefect run ids.
        model_id: the registered model's internal id (stable across renames).
        name: the model's name now.
        action: an `AuditAction`.
        version: the version concerned, if any.
        from_value: the state before.
        to_value: the state after.
        **details: extra facts, merged over ``info.details``.
    """
    merged = {**info.details, **details}
    return conn.execute(
        insert(registry_audit)
        .values(
            timestamp=now_ms(),
            model_id=model_id,
            name=name,
            version=version,
            action=action,
            from_value=from_value,
            to_value=to_value,
            user_id=info.user_id,
            reason=info.reason,
            flow_run_id=info.flow_run_id,
            task_run_id=info.task_run_id,
            details=json.dumps(merged, sort_keys=True, default=str) if merged else None,
        )
        .returning(_a.id)
    ).scalar_one()


def read_entry(conn: Connection, entry_id: int) -> AuditEntry:
    """The entry with id ``entry_id`` (it must exist)."""
    row = conn.execute(select(registry_audit).where(_a.id == entry_id)).one()
    return _entry(row)


def read_audit(
    conn: Connection, name: str | None, max_results: int, after_id: int
) -> list[AuditEntry]:
    """Entries in id order; for one model name, its whole trail.

    A name's trail is the whole trail of every model that ever had that name: entries
    from before and after a rename, and those of a deleted model or of an earlier model
    with the same name. (Every model has an entry under each of its names: its creation
    and each rename.)
    """
    statement = select(registry_audit).where(_a.id > after_id)
    if name is not None:
        models = select(_a.model_id).where(_a.name == name).distinct()
        statement = statement.where(or_(_a.name == name, _a.model_id.in_(models)))
    rows = conn.execute(statement.order_by(_a.id).limit(max_results)).all()
    return [_entry(row) for row in rows]


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        timestamp=row.timestamp,
        name=row.name,
        version=row.version,
        action=row.action,
        from_value=row.from_value,
        to_value=row.to_value,
        user_id=row.user_id,
        reason=row.reason,
        flow_run_id=row.flow_run_id,
        task_run_id=row.task_run_id,
        details=json.loads(row.details) if row.details else {},
    )
