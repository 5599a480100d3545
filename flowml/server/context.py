"""What every request handler needs: the store, the artifact destination and its mapping."""

from __future__ import annotations

from dataclasses import dataclass

from flowml.server.locations import ArtifactLocations
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.store.base import AbstractStore

__all__ = ["ServerContext"]


@dataclass(frozen=True, slots=True)
class ServerContext:
    """The server's collaborators, built once at start-up.

    Attributes:
        store: the tracking store behind the server (SQLite or PostgreSQL).
        locations: translates stored artifact locations to ``mlflow-artifacts:`` and back.
        artifacts: the artifact destination, confined to its root: the proxy endpoints
            read and write only through it.
    """

    store: AbstractStore
    locations: ArtifactLocations
    artifacts: ArtifactRepository
