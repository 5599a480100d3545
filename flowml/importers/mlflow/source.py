"""The MLflow source contract, and `open_source`, which picks a reader by URI scheme.

A source is read-only: the database reader opens SQLite files read-only and PostgreSQL
sessions with read-only transactions, the REST reader only calls search and get endpoints.

Example:
    >>> source = open_source("sqlite:///mlflow.db")   # doctest: +SKIP
    >>> [e.name for e in source.experiments()]         # doctest: +SKIP
    ['Default', 'wine']
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from urllib.parse import urlsplit

from flowml.importers.mlflow.errors import NotAnMLflowStore
from flowml.importers.mlflow.records import (
    SourceExperiment,
    SourceLoggedModel,
    SourceRegisteredModel,
    SourceRun,
)

__all__ = ["COUNTED", "Counts", "MlflowSource", "open_source", "redact"]

#: What the final table counts, in its order.
COUNTED = (
    "experiments",
    "experiment tags",
    "runs",
    "params",
    "tags",
    "metric points",
    "inputs/outputs",
    "logged models",
    "registered models",
    "model versions",
    "registry tags",
    "aliases",
)
#: Entity -> how many the source holds (``None``: not known without reading everything).
Counts = dict[str, "int | None"]


class MlflowSource(abc.ABC):
    """An MLflow tracking store being read (a database, or a server's REST API)."""

    #: The source, for messages (never a password).
    where: str
    #: The tracking server that serves ``mlflow-artifacts:`` URIs, when known.
    proxy_url: str | None = None

    @abc.abstractmethod
    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included, with its tags."""

    @abc.abstractmethod
    def run_index(self) -> list[tuple[str, str, str | None]]:
        """``(run_id, experiment_id, artifact_uri)`` of every run, in a stable order."""

    @abc.abstractmethod
    def read_runs(self, run_ids: Sequence[str]) -> list[SourceRun]:
        """The runs with everything they own (full metric histories included)."""

    @abc.abstractmethod
    def logged_models(self) -> list[SourceLoggedModel]:
        """MLflow 3's logged models that are not deleted, with tags and params."""

    @abc.abstractmethod
    def registered_models(self) -> list[SourceRegisteredModel]:
        """Registered models with their tags, aliases and (not deleted) versions."""

    @abc.abstractmethod
    def counts(self) -> Counts:
        """How many of each `COUNTED` entity the source holds."""

    def close(self) -> None:  # noqa: B027 - optional hook: most sources hold nothing
        """Release connections."""


def redact(uri: str) -> str:
    """``uri`` without its password, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def open_source(uri: str, *, timeout: float = 60.0) -> MlflowSource:
    """The reader for an MLflow database URI or tracking server URL.

    Args:
        uri: ``sqlite:///mlflow.db``, ``postgresql://user@host/db`` (any SQLAlchemy driver
            suffix), or ``http(s)://host:port`` of an MLflow tracking server.
        timeout: seconds one HTTP request to a server may take.

    Returns:
        An open `MlflowSource` (close it when done).

    Raises:
        NotAnMLflowStore: another kind of URI (a ``file:`` store, a bare path), a missing
            SQLite file, an unreachable server, or a database or server that is no MLflow
            store.
        UnsupportedMLflowSchema: a database written by a newer MLflow.
    """
    scheme = urlsplit(uri).scheme.lower().split("+", 1)[0]
    if scheme in ("sqlite", "postgresql", "postgres"):
        from flowml.importers.mlflow.source_sql import SqlSource

        return SqlSource(uri)
    if scheme in ("http", "https"):
        from flowml.importers.mlflow.source_rest import RestSource

        return RestSource(uri, timeout=timeout)
    hint = ""
    if scheme in ("", "file"):
        hint = (
            " MLflow's file store (./mlruns) is not read directly: move it into a database "
            "first with MLflow's `mlflow migrate-filestore`, then import that database."
        )
    raise NotAnMLflowStore(
        f"Cannot import from {redact(uri)!r}: give an MLflow database URI (sqlite:///mlflow.db, "
        f"postgresql://...) or an MLflow tracking server URL (http://host:5000).{hint}"
    )
