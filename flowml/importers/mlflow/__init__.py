"""Import an MLflow tracking store (database or tracking server) into flowml.

``flowml import mlflow SOURCE`` on the command line; `import_mlflow` from Python. No MLflow
code runs: the database's schema is read with SQLAlchemy Core (after its alembic revision is
checked against MLflow 3.17's history), a server through its REST API with httpx.

Example:
    >>> from flowml.importers.mlflow import import_mlflow
    >>> report = import_mlflow("sqlite:///mlflow.db", dry_run=True)   # doctest: +SKIP
    >>> report.row("runs").source                                       # doctest: +SKIP
    5000
"""

from __future__ import annotations

from flowml.importers.mlflow.errors import (
    ArtifactImportError,
    InvalidSourceData,
    NotAnMLflowStore,
    UnsupportedMLflowSchema,
)
from flowml.importers.mlflow.importer import DEFAULT_BATCH_SIZE, Progress, import_mlflow
from flowml.importers.mlflow.report import ImportReport, ReportRow

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ArtifactImportError",
    "ImportReport",
    "InvalidSourceData",
    "NotAnMLflowStore",
    "Progress",
    "ReportRow",
    "UnsupportedMLflowSchema",
    "import_mlflow",
]
