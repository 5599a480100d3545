"""The errors an MLflow import raises, each leaving flowml's stores as they were.

    FlowMLError
    ├── InvalidParameter
    │   ├── NotAnMLflowStore          the source is no MLflow store (or cannot be reached)
    │   ├── UnsupportedMLflowSchema   an MLflow schema newer than this importer knows
    │   └── InvalidSourceData         a row the importer refuses to write (an unsafe id)
    └── StoreError
        └── ArtifactImportError       a run's or model's artifacts could not be copied

A run is written with its artifacts already in place, in one transaction with every row it
owns, so an error (or an interruption) never leaves a run half imported: rerunning the
import continues where it stopped.
"""

from __future__ import annotations

from flowml.exceptions import InvalidParameter, StoreError

__all__ = [
    "ArtifactImportError",
    "InvalidSourceData",
    "NotAnMLflowStore",
    "UnsupportedMLflowSchema",
]


class NotAnMLflowStore(InvalidParameter):
    """The source is not an MLflow tracking store (database or server), or is unreachable."""


class UnsupportedMLflowSchema(InvalidParameter):
    """The source database's alembic revision is not one this importer knows (newer MLflow)."""


class InvalidSourceData(InvalidParameter):
    """A value in the source that flowml must not write (e.g. a run id shaped like a path)."""


class ArtifactImportError(StoreError):
    """A run's or logged model's artifacts could not be read from the source or written."""
