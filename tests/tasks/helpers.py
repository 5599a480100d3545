"""Helpers shared by the Prefect integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Run

T = TypeVar("T")


def settle(client: TrackingClient) -> None:
    """Wait for background publishing and write queued values."""
    from flowml.tasks import publisher

    publisher.flush()
    client.flush()


def runs_of(client: TrackingClient, experiment: str) -> list[Run]:
    settle(client)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return list(client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"]))


def by_name(runs: list[Run]) -> dict[str, Run]:
    return {r.info.run_name: r for r in runs}


def children(runs: list[Run], parent: Run) -> list[Run]:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def eventually(probe: Callable[[], T | None], what: str, deadline_s: float = 60.0) -> T:
    """Poll until ``probe`` returns something truthy (Prefect stores events asynchronously).
    Not a timing assertion: the deadline only bounds a hang."""
    end = time.monotonic() + deadline_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
