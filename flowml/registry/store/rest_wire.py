"""MLflow's registry JSON back to flowml's registry entities, for the REST registry store.

The inverse of ``flowml.server.registry_wire``: versions travel as strings, a registered
model's aliases as ``[{"alias", "version"}]``, unset fields are left out. MLflow's wire has
no storage location: it is the source, except for ``runs:/`` and ``models:/`` sources,
which the server resolved at registration (the store asks it with ``get-download-uri``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flowml.registry.entities import (
    STAGE_NONE,
    AuditEntry,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)

__all__ = [
    "audit_entry_from_json",
    "model_version_from_json",
    "registered_model_from_json",
    "resolved_elsewhere",
]


def resolved_elsewhere(source: str) -> bool:
    """Whether a source names another registry object rather than a location."""
    return urlsplit(source).scheme.lower() in ("runs", "models")


def _tags(items: Any) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in items or ()}


def model_version_from_json(data: dict[str, Any], storage_location: str | None) -> ModelVersion:
    """A `ModelVersion` from MLflow's JSON; ``storage_location`` defaults to the source."""
    source = str(data.get("source", ""))
    return ModelVersion(
        name=str(data["name"]),
        version=int(data["version"]),
        creation_timestamp=int(data.get("creation_timestamp", 0)),
        last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
        source=source,
        storage_location=storage_location or source,
        run_id=data.get("run_id") or None,
        run_link=data.get("run_link") or None,
        user_id=data.get("user_id") or None,
        current_stage=data.get("current_stage") or STAGE_NONE,
        description=data.get("description"),
        status=data.get("status") or ModelVersionStatus.READY,
        status_message=data.get("status_message"),
        tags=_tags(data.get("tags")),
        aliases=sorted(str(a) for a in data.get("aliases", ())),
    )


def registered_model_from_json(
    data: dict[str, Any], version: Callable[[dict[str, Any]], ModelVersion]
) -> RegisteredModel:
    """A `RegisteredModel`; ``version`` converts each of its latest versions."""
    return RegisteredModel(
        name=str(data["name"]),
        creation_timestamp=int(data.get("creation_timestamp", 0)),
        last_updated_timestamp=int(data.get("last_updated_timestamp", 0)),
        description=data.get("description"),
        latest_versions=[version(mv) for mv in data.get("latest_versions", ())],
        tags=_tags(data.get("tags")),
        aliases={str(a["alias"]): int(a["version"]) for a in data.get("aliases", ())},
    )


def audit_entry_from_json(data: dict[str, Any]) -> AuditEntry:
    """An `AuditEntry` from its ``to_dict()`` form (``from``/``to`` for the values)."""
    version = data.get("version")
    return AuditEntry(
        id=int(data["id"]),
        timestamp=int(data["timestamp"]),
        name=str(data["name"]),
        version=None if version is None else int(version),
        action=str(data["action"]),
        from_value=data.get("from"),
        to_value=data.get("to"),
        user_id=str(data.get("user_id", "")),
        reason=data.get("reason"),
        flow_run_id=data.get("flow_run_id"),
        task_run_id=data.get("task_run_id"),
        details=dict(data.get("details") or {}),
    )
