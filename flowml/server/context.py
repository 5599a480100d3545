"""What every request handler needs: the stores, the artifact destination and its mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowml.registry.client import RegistryClient
from flowml.registry.store import AbstractRegistryStore
from flowml.server.locations import ArtifactLocations
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.store.base import AbstractStore
from flowml.tracking.store.sql_logged_models import SqlLoggedModelStore

__all__ = ["ServerContext", "ServerRegistryClient"]


class _StoreTracking:
    """What `RegistryClient` needs of a tracking client: ``get_run`` and ``store``."""

    __slots__ = ("store",)

    def __init__(self, store: AbstractStore) -> None:
        self.store = store

    def get_run(self, run_id: str) -> Any:
        return self.store.get_run(run_id)


class ServerRegistryClient(RegistryClient):
    """A `RegistryClient` bound to the server's own stores.

    The library's client opens its stores from settings; the server must use the stores
    it was started with (its backend URI, search timeout and artifact destination), so
    ``runs:/`` sources resolve against the runs this server records.
    """

    def __init__(self, registry: AbstractRegistryStore, tracking: AbstractStore) -> None:
        super().__init__(registry_uri="server:", tracking_uri="server:")
        self._server_registry = registry
        self._server_tracking = _StoreTracking(tracking)

    @property
    def store(self) -> AbstractRegistryStore:
        return self._server_registry

    @property
    def tracking(self) -> Any:
        return self._server_tracking


@dataclass(frozen=True, slots=True)
class ServerContext:
    """The server's collaborators, built once at start-up.

    Attributes:
        store: the tracking store behind the server (SQLite or PostgreSQL).
        locations: translates stored artifact locations to ``mlflow-artifacts:`` and back.
        artifacts: the artifact destination, confined to its root: the proxy endpoints
            read and write only through it.
        registry: the model registry, in the same database as the tracking store.
        logged_models: MLflow 3's logged models, in the same database.
    """

    store: AbstractStore
    locations: ArtifactLocations
    artifacts: ArtifactRepository
    registry: RegistryClient
    logged_models: SqlLoggedModelStore
