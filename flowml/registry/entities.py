"""Registry entities, field for field as MLflow's model registry protos.

Plain dataclasses: the SQL store converts rows to these at its boundary. Versions
are integers here (MLflow's REST API spells them as strings; the client accepts both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameter

__all__ = [
    "ACTIVE_STAGES",
    "ALL_STAGES",
    "STAGE_ARCHIVED",
    "STAGE_NONE",
    "STAGE_PRODUCTION",
    "STAGE_STAGING",
    "AuditEntry",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
    "canonical_stage",
    "is_stage",
]

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"

#: Every stage a version can be in, in MLflow's order.
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
#: The stages `archive_existing_versions` may be used with.
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
_CANONICAL = {stage.lower(): stage for stage in ALL_STAGES}


def canonical_stage(stage: object) -> str:
    """The canonical spelling of a stage name, matched case-insensitively.

    Args:
        stage: a stage name such as ``"production"``.

    Returns:
        ``"None"``, ``"Staging"``, ``"Production"`` or ``"Archived"``.

    Raises:
        InvalidParameter: ``stage`` is not one of them.

    Example:
        >>> canonical_stage("PRODUCTION")
        'Production'
    """
    if isinstance(stage, str):
        found = _CANONICAL.get(stage.lower())
        if found is not None:
            return found
    raise InvalidParameter(
        f"Invalid model version stage {stage!r}: it must be one of {', '.join(ALL_STAGES)} "
        "(any case)"
    )


def is_stage(name: str) -> bool:
    """Whether ``name`` spells a stage (any case)."""
    return name.lower() in _CANONICAL


class ModelVersionStatus:
    """A version's registration status, as MLflow's ``ModelVersionStatus``."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"

    ALL = (PENDING_REGISTRATION, FAILED_REGISTRATION, READY)


@dataclass(slots=True)
class ModelVersion:
    """One version of a registered model.

    Attributes:
        name: the registered model's name.
        version: the version number, 1 for the first version of a model.
        source: where the model files are, as given at registration (``runs:/`` URIs are
            resolved to the run's artifact location, as MLflow does).
        storage_location: the resolved location the files are read from (differs from
            ``source`` when a version was registered from a ``models:/`` URI).
        run_id: the run that produced the model, when known.
        current_stage: ``None``, ``Staging``, ``Production`` or ``Archived``.
        aliases: the aliases pointing at this version, sorted.
    """

    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    storage_location: str
    run_id: str | None = None
    run_link: str | None = None
    user_id: str | None = None
    current_stage: str = STAGE_NONE
    description: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with MLflow's field names (``version`` a string, as in REST)."""
        return {
            "name": self.name,
            "version": str(self.version),
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "user_id": self.user_id,
            "current_stage": self.current_stage,
            "description": self.description,
            "source": self.source,
            "storage_location": self.storage_location,
            "run_id": self.run_id,
            "run_link": self.run_link,
            "status": self.status,
            "status_message": self.status_message,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
        }


@dataclass(slots=True)
class RegisteredModel:
    """A named model with versions.

    Attributes:
        name: unique name (no ``/`` or ``:``).
        latest_versions: the newest version in each stage (MLflow's ``latest_versions``).
        aliases: alias -> version number.
    """

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with MLflow's field names."""
        return {
            "name": self.name,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "description": self.description,
            "latest_versions": [mv.to_dict() for mv in self.latest_versions],
            "tags": dict(self.tags),
            "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(self.aliases.items())],
        }


@dataclass(slots=True, frozen=True)
class AuditEntry:
    """One line of a registered model's audit trail. Entries are never changed or removed.

    Attributes:
        id: insertion sequence, increasing.
        timestamp: epoch milliseconds.
        name: the model's name when the entry was written.
        version: the version concerned, if any.
        action: what happened (see `flowml.registry.audit.AuditAction`).
        from_value: the state before (a stage, a version number, a name...), if any.
        to_value: the state after, if any.
        user_id: who did it.
        reason: the reason given, if any.
        flow_run_id: the Prefect flow run that did it, when inside one.
        task_run_id: the Prefect task run that did it, when inside one.
        details: extra structured facts (gate results, approval comment...).
    """

    id: int
    timestamp: int
    name: str
    version: int | None
    action: str
    from_value: str | None
    to_value: str | None
    user_id: str
    reason: str | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "name": self.name,
            "version": self.version,
            "action": self.action,
            "from": self.from_value,
            "to": self.to_value,
            "user_id": self.user_id,
            "reason": self.reason,
            "flow_run_id": self.flow_run_id,
            "task_run_id": self.task_run_id,
            "details": dict(self.details),
        }
