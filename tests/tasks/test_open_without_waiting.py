"""A tracked task's first attempt opens its run without waiting for the store: no round trip
on the task's path to open it; its creation is written in the background or with its end,
and reads of the run inside the task still find it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pg_round_trips import count_round_trips
from prefect import flow

import flowml
from flowml.tasks import tags as ptags
from flowml.tasks import task_runs
from flowml.tasks.identity import run_for_flow_run
from flowml.tracking import opener as opener_module
from flowml.tracking.entities import RunStatus
from flowml.tracking.store.sql import SqlStore

from .helpers import children, runs_of, settle

pytestmark = pytest.mark.usefixtures("prefect")


@pytest.fixture
def waits_while_opening(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per task run opened, the PostgreSQL round trips its thread waited for while opening
    it (counted as the benchmark counts them: each time psycopg waits for an answer)."""
    watched: dict[int, int] = {}
    counts: list[int] = []

    def tally() -> None:
        watched[threading.get_ident()] += 1

    count_round_trips(monkeypatch, lambda: threading.get_ident() in watched, tally)
    opening = task_runs.open_task_run

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        me = threading.get_ident()
        watched[me] = 0
        try:
            return opening(*args, **kwargs)
        finally:
            counts.append(watched.pop(me))

    monkeypatch.setattr(task_runs, "open_task_run", counting_open)
    return counts


@flowml.tracked_task
def look(x: int) -> float:
    run = flowml.active_run()
    assert run is not None
    # A read of the run it is in, before the run's creation may have been written.
    seen = flowml.get_run(run.info.run_id)
    assert seen.info.status == RunStatus.RUNNING and seen.data.params == {"x": str(x)}
    flowml.log_metric("seen", x)
    return float(x)


@flowml.tracked_flow(experiment="open-later")
def three_looks() -> list[float]:
    return [look(i) for i in range(3)]


def test_a_first_attempt_opens_its_run_with_no_round_trip(
    client, pg_url: str, waits_while_opening: list[int]
):
    flowml.set_tracking_uri(pg_url)
    state = three_looks(return_state=True)
    assert state.is_completed()
    # The first task reads its experiment's artifact location (once per store and process).
    assert len(waits_while_opening) == 3 and waits_while_opening[1:] == [0, 0]
    other = flowml.tracking.fluent.get_client()
    parent = run_for_flow_run(other, state.state_details.flow_run_id)
    kids = children(runs_of(other, "open-later"), parent)
    assert sorted(k.data.metrics["seen"] for k in kids) == [0, 1, 2]
    assert {k.info.status for k in kids} == {RunStatus.FINISHED}


@flowml.tracked_task
def opened_elsewhere(pg_url: str) -> int:
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    assert ctx is not None
    # Another process opened this task run's run first: its key is taken before this
    # attempt's run (queued, not written) reaches the store.
    other = SqlStore(pg_url, "unused")
    experiment = other.get_experiment_by_name("open-later")
    assert experiment is not None
    other.create_run(
        experiment.experiment_id, "elsewhere", run_key=ptags.task_run_key(str(ctx.task_run.id))
    )
    flowml.log_metric("kept", 7)
    return 7


@flow
def taken_key(pg_url: str) -> int:
    return opened_elsewhere(pg_url)


def test_a_first_attempt_whose_key_is_taken_ends_the_run_holding_it(
    client, pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(opener_module, "OPEN_LINGER_S", 3600.0)  # the close writes the open
    flowml.set_tracking_uri(pg_url)
    flowml.set_experiment("open-later")
    state = taken_key(pg_url, return_state=True)
    assert state.is_completed() and state.result() == 7
    other = flowml.tracking.fluent.get_client()
    settle(other)
    runs = runs_of(other, "open-later")
    (run,) = [r for r in runs if r.data.tags.get(ptags.RUN_KIND) != ptags.RUN_KIND_FLOW]
    assert run.info.user_id == "elsewhere" and run.info.status == RunStatus.FINISHED
    assert run.data.metrics["kept"] == 7 and "pg_url" in run.data.params
