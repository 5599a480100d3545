"""Test your tracked flows in a few lines: a temporary store and a Prefect test harness.

Example (pytest):
    >>> import pytest
    >>> from flowml.testing import tracking_harness
    >>>
    >>> @pytest.fixture(scope="session")          # Prefect's harness takes seconds to start
    ... def flowml_env():
    ...     with tracking_harness() as env:
    ...         yield env
    >>>
    >>> def test_training(flowml_env):
    ...     state = train_flow(n_estimators=5, return_state=True)
    ...     run = flowml_env.run_for_flow_run(state.state_details.flow_run_id)
    ...     assert run.info.status == "FINISHED"
    ...     assert run.data.metrics["accuracy"] > 0.8

The store (a SQLite file and an artifact folder) is created in a temporary directory and
removed afterwards; ``FLOWML_TRACKING_URI`` and ``FLOWML_ARTIFACT_ROOT`` point at it while
the harness is open, so task runs in worker processes use it too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Run

__all__ = ["TrackingHarness", "tracking_harness"]


@dataclass
class TrackingHarness:
    """What `tracking_harness` yields: the temporary store and ways to read it back."""

    tracking_uri: str
    artifact_root: str
    client: TrackingClient

    def flush(self) -> None:
        """Write queued values and publish pending Prefect artifacts and events now."""
        from flowml.tasks import publisher
        from flowml.tracking import fluent

        publisher.flush()
        fluent.flush()
        self.client.flush()

    def runs(self, experiment: str | None = None, filter_string: str | None = None) -> list[Run]:
        """Every run of ``experiment`` (default: all experiments), oldest first."""
        self.flush()
        if experiment is None:
            ids = [e.experiment_id for e in self.client.search_experiments()]
        else:
            found = self.client.get_experiment_by_name(experiment)
            ids = [found.experiment_id] if found else []
        if not ids:
            return []
        return list(
            self.client.search_runs(
                ids, filter_string, max_results=50000, order_by=["attributes.start_time ASC"]
            )
        )

    def run_for_flow_run(self, flow_run_id: Any) -> Run | None:
        """The tracked run of a Prefect flow run (``state.state_details.flow_run_id``)."""
        from flowml.tasks.identity import run_for_flow_run

        self.flush()
        return run_for_flow_run(self.client, flow_run_id)

    def run_for_task_run(self, task_run_id: Any) -> Run | None:
        """The tracked run standing for a Prefect task run (``future.task_run_id``)."""
        from flowml.tasks.identity import run_for_task_run

        self.flush()
        return run_for_task_run(self.client, task_run_id)


@contextlib.contextmanager
def tracking_harness(
    path: str | os.PathLike[str] | None = None, *, prefect: bool = True
) -> Iterator[TrackingHarness]:
    """A temporary tracking store and, with ``prefect=True``, Prefect's test harness.

    Args:
        path: where to keep the store (default: a temporary directory removed afterwards).
        prefect: also start ``prefect.testing.utilities.prefect_test_harness`` (a temporary
            Prefect server); pass ``False`` when your tests already run one.

    Yields:
        A `TrackingHarness`.
    """
    from flowml.tracking import fluent

    with contextlib.ExitStack() as stack:
        root = Path(path) if path is not None else Path(stack.enter_context(_tempdir()))
        root.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{root / 'flowml.db'}"
        artifacts = str(root / "artifacts")
        stack.enter_context(_environ(FLOWML_TRACKING_URI=uri, FLOWML_ARTIFACT_ROOT=artifacts))
        previous = fluent.tracking_uri_override()
        fluent.set_tracking_uri(uri)
        stack.callback(fluent.set_tracking_uri, previous)
        if prefect:
            from prefect.testing.utilities import prefect_test_harness

            stack.enter_context(prefect_test_harness())
        harness = TrackingHarness(uri, artifacts, TrackingClient(uri, artifacts))
        # Runs last, while the Prefect server is still up: nothing queued is lost.
        stack.callback(harness.client.close)
        stack.callback(harness.flush)
        yield harness


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="flowml-test-", ignore_cleanup_errors=True) as tmp:
        yield tmp


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
