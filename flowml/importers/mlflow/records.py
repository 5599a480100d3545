"""What an MLflow source yields, independent of how it was read (database or REST).

Plain slotted dataclasses; times are epoch milliseconds, ids strings, as in MLflow's API.
A run carries everything it owns (params, tags, its full metric history grouped by key,
its inputs and outputs), because a run is written whole or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flowml.importers.mlflow.errors import InvalidSourceData
from flowml.tracking.lineage import LineageEntry

__all__ = [
    "MetricSeries",
    "SourceExperiment",
    "SourceLoggedModel",
    "SourceModelVersion",
    "SourceRegisteredModel",
    "SourceRun",
    "checked_id",
]

#: One metric key's history: (values, timestamps, steps), in the source's order.
MetricSeries = tuple[list[float], list[int], list[int]]

# Ids become path segments of artifact locations: nothing that could leave a directory.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


def checked_id(kind: str, value: object) -> str:
    """``value`` as a string id, refused when it could not safely name a directory.

    Raises:
        InvalidSourceData: empty, too long, or holding anything but letters, digits,
            ``_`` and ``-`` (``../x`` in a crafted database must not become a path).

    Example:
        >>> checked_id("run", "5f0c9d2e")
        '5f0c9d2e'
    """
    text = str(value)
    if not _SAFE_ID.match(text):
        raise InvalidSourceData(
            f"The source holds a {kind} id {text[:80]!r} that is not a plain id "
            "(letters, digits, '_' and '-'); nothing of it was imported."
        )
    return text


@dataclass(slots=True)
class SourceExperiment:
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    creation_time: int | None
    last_update_time: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SourceRun:
    run_id: str
    experiment_id: str
    name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str | None
    lifecycle_stage: str
    deleted_time: int | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    lineage: list[LineageEntry] = field(default_factory=list)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get("mlflow.parentRunId")

    def metric_points(self) -> int:
        return sum(len(series[0]) for series in self.metrics.values())


@dataclass(slots=True)
class SourceLoggedModel:
    model_id: str
    experiment_id: str
    run_id: str | None
    name: str
    artifact_location: str
    status: str
    status_message: str | None
    model_type: str | None
    creation_time: int
    last_updated_time: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SourceModelVersion:
    version: int
    source: str | None
    storage_location: str | None
    run_id: str | None
    run_link: str | None
    user_id: str | None
    status: str
    status_message: str | None
    current_stage: str
    description: str | None
    creation_time: int
    last_updated_time: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SourceRegisteredModel:
    name: str
    description: str | None
    creation_time: int
    last_updated_time: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    versions: list[SourceModelVersion] = field(default_factory=list)
