"""The SQLAlchemy registry store, sharing the tracking database and its migrations.

Rows never leave the store. Each write is one transaction (``BEGIN IMMEDIATE``
on SQLite) that first locks the registered model's row (``SELECT ... FOR UPDATE``
on PostgreSQL), so concurrent changes to one model are serialised; the audit
entries describing a change are inserted in the same transaction.

`SqlRegistryStore` is assembled from one mixin per concern: `sql_models` (registered
models), `sql_versions` (model versions), `sql_stages` (stages and aliases), `sql_audit`
(the audit trail), all reading through `sql_rows.RegistryRows`.
"""

from __future__ import annotations

from flowml.registry.store.base import AbstractRegistryStore
from flowml.registry.store.sql_audit import SqlAuditLog
from flowml.registry.store.sql_models import SqlRegisteredModels
from flowml.registry.store.sql_stages import SqlStages
from flowml.registry.store.sql_versions import SqlModelVersions
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import get_engine

__all__ = ["SqlRegistryStore"]


class SqlRegistryStore(
    SqlRegisteredModels, SqlModelVersions, SqlStages, SqlAuditLog, AbstractRegistryStore
):
    """Registry metadata in a SQL database (``sqlite:///...``, ``postgresql://...``).

    Args:
        uri: a SQLAlchemy database URI; usually the tracking URI.
        search_timeout_seconds: how long one search statement may run before it is
            cancelled with `InvalidParameter` (``0``: no limit).
    """

    def __init__(
        self, uri: str, *, search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
    ) -> None:
        # Registering the tables on the shared MetaData happens by importing the schema.
        self.uri = uri
        self.engine = get_engine(uri)
        self.search_timeout_seconds = search_timeout_seconds
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
