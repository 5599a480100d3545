"""The tracking store contract.

A backend implements the abstract primitives; every other operation is derived
here once. `abc.ABC` makes a backend that misses a primitive fail at
construction, not at first use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flowml.tracking.entities import (
    Experiment,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
    now_ms,
)
from flowml.tracking.lineage import LineageEntry


@dataclass
class NewRun:
    """A run whose creation was prepared (validated, id and artifact URI chosen) without
    touching the store, to be written later: see `AbstractStore.prepare_run`."""

    run: Run
    values: dict[str, Any]  # the run's row
    tag_rows: list[dict[str, Any]] = field(default_factory=list)


DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_LIMIT = 50000


class AbstractStore(ABC):
    """What every tracking backend provides."""

    # -- experiments -------------------------------------------------------------------------

    @abstractmethod
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id.

        Raises:
            ResourceAlreadyExists: an experiment (active or deleted) has that name.
            InvalidParameter: the name or a tag is invalid.
        """

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Raises `ResourceNotFound` when no experiment has that id."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with that name, or ``None``."""

    @abstractmethod
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]: ...

    @abstractmethod
    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> None:
        """Rename an experiment and/or move it between lifecycle stages."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs --------------------------------------------------------------------------------

    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        run_key: str | None = None,
        status: str = "RUNNING",
    ) -> Run:
        """Create a run. With ``run_key``, return the existing run holding that key instead
        (idempotent get-or-create, safe under concurrent callers)."""

    # A store that can create runs whose ids the caller chose sets this and implements
    # `prepare_run` and `create_runs`; the client then opens runs without waiting for them.
    supports_deferred_open = False

    def prepare_run(
        self,
        experiment_id: str,
        artifact_location: str,
        user_id: str,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        run_key: str | None = None,
    ) -> NewRun:
        """Validate a RUNNING run and choose its id and artifact URI, writing nothing."""
        raise NotImplementedError

    def create_runs(self, new_runs: Sequence[NewRun]) -> set[str]:
        """Write prepared runs at once; returns the ids of those not created (their key
        was taken, or their experiment is missing or deleted)."""
        raise NotImplementedError

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Raises `ResourceNotFound` when no run has that id."""

    @abstractmethod
    def get_run_by_key(self, run_key: str) -> Run | None:
        """The run created with ``run_key``, or ``None``."""

    @abstractmethod
    def update_run_info(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        """Soft-delete or restore a run."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write metrics, params and tags in one transaction: all of them or none.

        Raises:
            InvalidParameter: a rule is broken, including re-logging a param with a new value.
            ResourceNotFound: the run does not exist.
            InvalidState: the run is deleted.
        """

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point logged for ``key``, ordered by step then timestamp."""

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]: ...

    # -- lineage -----------------------------------------------------------------------------

    @abstractmethod
    def log_lineage(self, run_id: str, entries: Sequence[LineageEntry]) -> None:
        """Record what a run read and produced, in one transaction.

        An entry the run already holds (same direction, kind and URI) is kept as it is, so
        recording the same facts again (a retried task) is a no-op.

        Raises:
            InvalidParameter: an entry breaks a rule (see `flowml.tracking.lineage`).
            ResourceNotFound: the run does not exist.
            InvalidState: the run is deleted.
        """

    @abstractmethod
    def search_lineage(
        self,
        run_ids: Sequence[str] = (),
        uris: Sequence[str] = (),
        direction: str | None = None,
    ) -> list[LineageEntry]:
        """Entries of any of ``run_ids`` or naming any of ``uris`` (optionally one direction),
        with ``run_id`` and ``timestamp`` filled in. Empty when both are empty.

        A run created with a ``run_key`` also stands for that key: it has an implicit output
        entry whose URI is the key (and whose kind is the key's prefix, up to ``:``).
        """

    # -- derived operations ------------------------------------------------------------------

    def delete_experiment(self, experiment_id: str) -> None:
        self.update_experiment(experiment_id, lifecycle_stage="deleted")

    def restore_experiment(self, experiment_id: str) -> None:
        self.update_experiment(experiment_id, lifecycle_stage="active")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.update_experiment(experiment_id, name=new_name)

    def delete_run(self, run_id: str) -> None:
        self.set_run_lifecycle(run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        self.set_run_lifecycle(run_id, "active")

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=[param])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, tags=[tag])

    def finish_run(
        self,
        run_id: str,
        status: str,
        end_time: int,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        lineage: Sequence[LineageEntry] = (),
        opens: Sequence[NewRun] = (),
    ) -> None:
        """Write a run's last values and lineage, then end it with ``status``.

        ``opens`` are prepared runs not written yet (the run itself among them), created
        first, in the same unit where the backend can.

        Derived here from `log_batch`, `log_lineage` and `update_run_info`; a backend may do
        it in one transaction (the SQL store does), which keeps a tracked Prefect task at a
        small, fixed number of round trips.
        """
        if opens:
            self.create_runs(opens)
        if metrics or params or tags:
            self.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if lineage:
            self.log_lineage(run_id, lineage)
        self.update_run_info(run_id, status=status, end_time=end_time)

    def end_run(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        self.update_run_info(run_id, status=status, end_time=end_time or now_ms())

    def close(self) -> None:  # noqa: B027 - an optional hook: stores without connections keep it
        """Release connections. The base store holds none."""
