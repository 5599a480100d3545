"""Tracking entities, field for field as MLflow's tracking protos.

Plain slotted dataclasses: the SQL store converts rows to these at its boundary,
and everything above the store only ever sees them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

__all__ = [
    "Experiment",
    "LifecycleStage",
    "Metric",
    "PagedList",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
    "now_ms",
]

T = TypeVar("T")


def now_ms() -> int:
    """The current time in epoch milliseconds, MLflow's unit for every timestamp."""
    return time.time_ns() // 1_000_000


class RunStatus:
    """Run status names, as MLflow's ``RunStatus``.

    Example:
        >>> with flowml.start_run() as run:
        ...     pass
        >>> flowml.get_run(run.info.run_id).info.status == flowml.RunStatus.FINISHED
        True
        >>> flowml.RunStatus.is_terminated("RUNNING")
        False
    """

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINAL = (FINISHED, FAILED, KILLED)

    @classmethod
    def is_terminated(cls, status: str) -> bool:
        return status in cls.TERMINAL


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """Which lifecycle stages a search sees, as MLflow's ``ViewType``.

    Example:
        >>> with flowml.start_run() as run:
        ...     pass
        >>> flowml.delete_run(run.info.run_id)
        >>> len(flowml.search_runs(search_all_experiments=True))
        0
        >>> deleted = flowml.search_runs(
        ...     search_all_experiments=True, run_view_type=flowml.ViewType.DELETED_ONLY
        ... )
        >>> [r.info.run_id for r in deleted] == [run.info.run_id]
        True
    """

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def stages(cls, view_type: int) -> tuple[str, ...]:
        if view_type == cls.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if view_type == cls.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


@dataclass(slots=True, frozen=True)
class Metric:
    """One metric point. ``value`` may be NaN or ±inf.

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_metric("loss", 0.5, step=2, timestamp=1700000000000)
        >>> flowml.get_metric_history(run.info.run_id, "loss")
        [Metric(key='loss', value=0.5, timestamp=1700000000000, step=2)]
    """

    key: str
    value: float
    timestamp: int
    step: int = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return (
            self.key == other.key
            and same_value
            and self.timestamp == other.timestamp
            and self.step == other.step
        )

    def __hash__(self) -> int:
        return hash((self.key, self.timestamp, self.step))


@dataclass(slots=True, frozen=True)
class Param:
    """One param of a run: write-once, its value stored as a string.

    Example:
        >>> client = flowml.TrackingClient()
        >>> run = client.create_run("0")
        >>> client.log_batch(run.info.run_id, params=[flowml.Param("depth", "3")])
        >>> client.get_run(run.info.run_id).data.params
        {'depth': '3'}
    """

    key: str
    value: str


@dataclass(slots=True, frozen=True)
class RunTag:
    """One tag of a run (tags may be overwritten; ``mlflow.*`` names are MLflow's system tags).

    Example:
        >>> client = flowml.TrackingClient()
        >>> run = client.create_run("0")
        >>> client.log_batch(run.info.run_id, tags=[flowml.RunTag("team", "risk")])
        >>> client.get_run(run.info.run_id).data.tags["team"]
        'risk'
    """

    key: str
    value: str


@dataclass(slots=True)
class Experiment:
    """An experiment: a named group of runs, with its artifact location and tags.

    Example:
        >>> experiment_id = flowml.create_experiment("churn", tags={"team": "risk"})
        >>> experiment = flowml.get_experiment(experiment_id)
        >>> experiment.name, experiment.lifecycle_stage, experiment.tags
        ('churn', 'active', {'team': 'risk'})
    """

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for `run_id`."""
        return self.run_id


@dataclass(slots=True)
class RunData:
    """A run's latest metric values, params and tags, each as a ``key -> value`` dict.

    ``metric_points`` holds the ``(timestamp, step)`` of each latest metric value, when the
    store read them (MLflow's run data carries them on the wire); it takes no part in
    comparisons.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_points: dict[str, tuple[int, int]] = field(
        default_factory=dict, compare=False, repr=False
    )


@dataclass(slots=True)
class Run:
    """A run as stored: ``info`` (`RunInfo`: id, name, status, times, artifact URI) and
    ``data`` (`RunData`: latest metrics, params and tags); MLflow's ``Run``.

    Example:
        >>> with flowml.start_run(run_name="baseline") as active:
        ...     flowml.log_metric("acc", 0.9)
        >>> run = flowml.get_run(active.info.run_id)
        >>> run.info.run_name, run.data.metrics
        ('baseline', {'acc': 0.9})
        >>> run.to_dict()["data"]["metrics"]
        {'acc': 0.9}
    """

    info: RunInfo
    data: RunData

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (NaN and infinities stay floats: encode them as your format allows)."""
        info = self.info
        return {
            "info": {
                "run_id": info.run_id,
                "run_name": info.run_name,
                "experiment_id": info.experiment_id,
                "user_id": info.user_id,
                "status": info.status,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "artifact_uri": info.artifact_uri,
                "lifecycle_stage": info.lifecycle_stage,
            },
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
        }


class PagedList(Sequence[T], Generic[T]):
    """A page of results plus the token for the next page (``None`` on the last page)."""

    __slots__ = ("_items", "token")

    def __init__(self, items: Sequence[T], token: str | None) -> None:
        self._items = list(items)
        self.token = token

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"PagedList({self._items!r}, token={self.token!r})"
