"""The SQLAlchemy tracking store, for ``sqlite:///`` and ``postgresql://`` URIs.

Rows never leave the store: every method returns entities. Writes are one transaction
each; `log_batch` is the only write path for metrics, params and tags, and it costs a
fixed handful of statements whatever the batch holds.

`SqlStore` is assembled from one mixin per concern, each in its own module:
`sql_experiments` (experiments), `sql_runs` (creating, reading, updating runs),
`sql_write` (batches of values and the end of a run), `sql_lineage` (lineage). The
statements of the hot paths, their driver cursors and rows belong to `sql_fast`.
"""

from __future__ import annotations

from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import migrate
from flowml.tracking.store.base import AbstractStore
from flowml.tracking.store.engine import get_engine
from flowml.tracking.store.sql_experiments import SqlExperiments
from flowml.tracking.store.sql_lineage import SqlLineage
from flowml.tracking.store.sql_runs import SqlRuns
from flowml.tracking.store.sql_write import SqlWrites

__all__ = ["SqlStore"]


class SqlStore(SqlExperiments, SqlRuns, SqlWrites, SqlLineage, AbstractStore):
    """Tracking metadata in a SQL database.

    Args:
        uri: a SQLAlchemy URI (``sqlite:///path.db``, ``postgresql://user@host/db``).
        default_artifact_root: where new experiments put their artifacts (any fsspec URL).
        search_timeout_seconds: how long one search statement may run before it is
            cancelled with `InvalidParameter` (``0``: no limit).
    """

    def __init__(
        self,
        uri: str,
        default_artifact_root: str,
        *,
        search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
    ) -> None:
        self.uri = uri
        self.engine = get_engine(uri)
        self.search_timeout_seconds = search_timeout_seconds
        self.default_artifact_root = default_artifact_root.rstrip("/")
        migrate.upgrade(self.engine)
        self._ensure_default_experiment()

    def close(self) -> None:
        self.engine.dispose()
