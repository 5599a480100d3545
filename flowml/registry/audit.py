"""Who, why and from where: the context attached to every audit entry.

The registry never imports Prefect. The layer that knows the current flow and
task run (``flowml.tasks``) opens an `audit_context`; outside one, the flow run id
falls back to ``PREFECT__FLOW_RUN_ID``, which Prefect sets in the environment of
every deployment run.

Example:
    >>> with audit_context(reason="weekly retrain", flow_run_id="0f1e..."):
    ...     client.set_registered_model_alias("churn", "champion", 7)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.context import current_user

__all__ = [
    "AuditAction",
    "AuditInfo",
    "audit_context",
    "current_audit_info",
]

_FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


class AuditAction:
    """The actions an audit entry records.

    Mutations are written by the store in the same transaction as the change they
    describe. Decisions (gates, approvals, rollbacks) change nothing by themselves and
    are appended with `RegistryClient.log_audit_event`; only those may be appended directly.
    """

    MODEL_CREATED = "model_created"
    MODEL_RENAMED = "model_renamed"
    MODEL_DELETED = "model_deleted"
    VERSION_REGISTERED = "version_registered"
    VERSION_DELETED = "version_deleted"
    STAGE_TRANSITIONED = "stage_transitioned"
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"

    PROMOTION_REFUSED = "promotion_refused"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_REJECTED = "approval_rejected"
    PROMOTION_ROLLED_BACK = "promotion_rolled_back"

    MUTATIONS = frozenset(
        {
            MODEL_CREATED,
            MODEL_RENAMED,
            MODEL_DELETED,
            VERSION_REGISTERED,
            VERSION_DELETED,
            STAGE_TRANSITIONED,
            ALIAS_SET,
            ALIAS_DELETED,
        }
    )
    EVENTS = frozenset(
        {
            PROMOTION_REFUSED,
            APPROVAL_REQUESTED,
            APPROVAL_GRANTED,
            APPROVAL_REJECTED,
            PROMOTION_ROLLED_BACK,
        }
    )


@dataclass(frozen=True, slots=True)
class AuditInfo:
    """The actor and circumstances of a registry change.

    Attributes:
        user_id: who made the change (the OS user by default).
        reason: why, in the user's words.
        flow_run_id: the Prefect flow run making the change, if any.
        task_run_id: the Prefect task run making the change, if any.
        details: extra facts stored with the entry (JSON-serialisable).
    """

    user_id: str
    reason: str | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def with_reason(self, reason: str | None) -> AuditInfo:
        """A copy with ``reason`` (kept unchanged when ``reason`` is ``None``)."""
        return self if reason is None else replace(self, reason=reason)

    def with_details(self, **details: Any) -> AuditInfo:
        """A copy with ``details`` merged in."""
        return replace(self, details={**self.details, **details})


_current: contextvars.ContextVar[AuditInfo | None] = contextvars.ContextVar(
    "flowml_registry_audit", default=None
)


@contextlib.contextmanager
def audit_context(
    *,
    user_id: str | None = None,
    reason: str | None = None,
    flow_run_id: str | None = None,
    task_run_id: str | None = None,
    **details: Any,
) -> Iterator[AuditInfo]:
    """Attach who/why/where to every registry change made inside the block.

    Values not given are inherited from an enclosing block (then the defaults).

    Args:
        user_id: the acting user.
        reason: why the changes are made.
        flow_run_id: the Prefect flow run making them.
        task_run_id: the Prefect task run making them.
        **details: extra facts stored with each entry.

    Yields:
        The effective `AuditInfo`.

    Raises:
        InvalidParameter: a value is not a string.
    """
    for label, value in (
        ("user_id", user_id),
        ("reason", reason),
        ("flow_run_id", flow_run_id),
        ("task_run_id", task_run_id),
    ):
        if value is not None and not isinstance(value, str):
            raise InvalidParameter(f"audit {label} must be a string, got {value!r}")
    outer = current_audit_info()
    info = AuditInfo(
        user_id=user_id or outer.user_id,
        reason=reason if reason is not None else outer.reason,
        flow_run_id=flow_run_id or outer.flow_run_id,
        task_run_id=task_run_id or outer.task_run_id,
        details={**outer.details, **details},
    )
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def current_audit_info(reason: str | None = None) -> AuditInfo:
    """The audit info for a change made now: the innermost `audit_context`, else defaults.

    Args:
        reason: a reason for this one change, overriding the context's.
    """
    info = _current.get()
    if info is None:
        info = AuditInfo(user_id=current_user(), flow_run_id=os.environ.get(_FLOW_RUN_ENV) or None)
    return info.with_reason(reason)
