"""Model registry wire shapes: MLflow's ``RegisteredModel`` and ``ModelVersion`` JSON.

Versions are strings on the wire (``"3"``), as in MLflow's protos; a registered model's
aliases are ``[{"alias", "version"}]`` while a version's are bare names. Locations under the
server's artifact destination go out as ``mlflow-artifacts:/...`` (`ArtifactLocations`);
``runs:/`` and ``models:/`` sources are sent as they were registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowml.registry.entities import ModelVersion, RegisteredModel
from flowml.server.locations import ArtifactLocations

__all__ = ["model_version_json", "registered_model_json"]


def _present(payload: dict[str, Any]) -> dict[str, Any]:
    # MLflow's server leaves unset fields out rather than sending null or [].
    return {k: v for k, v in payload.items() if v is not None and v != []}


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def model_version_json(version: ModelVersion, locations: ArtifactLocations) -> dict[str, Any]:
    return _present(
        {
            "name": version.name,
            "version": str(version.version),
            "creation_timestamp": version.creation_timestamp,
            "last_updated_timestamp": version.last_updated_timestamp,
            "user_id": version.user_id or None,
            "current_stage": version.current_stage,
            "description": version.description,
            "source": locations.to_wire(version.source),
            "run_id": version.run_id or None,
            "status": version.status,
            "status_message": version.status_message,
            "tags": _tags(version.tags),
            "run_link": version.run_link or None,
            "aliases": sorted(version.aliases),
        }
    )


def registered_model_json(model: RegisteredModel, locations: ArtifactLocations) -> dict[str, Any]:
    return _present(
        {
            "name": model.name,
            "creation_timestamp": model.creation_timestamp,
            "last_updated_timestamp": model.last_updated_timestamp,
            "description": model.description,
            "latest_versions": [model_version_json(v, locations) for v in model.latest_versions],
            "tags": _tags(model.tags),
            "aliases": [
                {"alias": alias, "version": str(number)}
                for alias, number in sorted(model.aliases.items())
            ],
        }
    )
