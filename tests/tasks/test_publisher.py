"""The publisher's queued jobs: they keep only what they need of the context they were
queued from (Prefect's settings and the runs' ids and names), not the context itself,
which in a task run holds the run's engine, result store and transaction."""

from __future__ import annotations

import contextvars
import gc
import weakref
from typing import Any

import pytest
from prefect import flow, task

from flowml.tasks import outbox, publisher

pytestmark = pytest.mark.usefixtures("prefect")


class _Held:
    """Something a task run's context refers to (weakly referenceable)."""


_held: contextvars.ContextVar[_Held] = contextvars.ContextVar("test_publisher_held")


def test_a_queued_job_keeps_the_runs_it_came_from_but_not_their_context():
    from prefect.settings import PREFECT_API_URL

    seen: dict[str, Any] = {}

    def job() -> tuple[Any, Any]:
        return publisher._origin.get(), PREFECT_API_URL.value()

    def queue() -> None:
        held = _Held()
        seen["held"] = weakref.ref(held)
        _held.set(held)  # a value only this context refers to
        seen["queued"] = publisher._Queued.of(job)  # what `submit` puts in the queue

    @task(name="queues-a-job", tags=["t1"])
    def queues() -> str:
        from prefect.context import TaskRunContext

        contextvars.copy_context().run(queue)  # a context of its own, gone once it returns
        return str(TaskRunContext.get().task_run.id)

    @flow(name="publisher-origin")
    def outer() -> tuple[str, Any]:
        return queues(), PREFECT_API_URL.value()

    state = outer(return_state=True)
    task_run_id, api = state.result()
    gc.collect()
    queued = seen["queued"]
    assert seen["held"]() is None  # the queued job keeps nothing of the context alive
    origin, job_api = queued.context().run(queued.job)
    assert job_api == api  # it talks to the same Prefect API
    assert str(origin.task_run_id) == task_run_id
    assert str(origin.flow_run.id) == str(state.state_details.flow_run_id)
    related = {r["prefect.resource.role"]: r for r in outbox.origin_related(origin)}
    assert related["task-run"]["prefect.resource.id"] == f"prefect.task-run.{task_run_id}"
    assert related["flow"]["prefect.resource.name"] == "publisher-origin"
    assert related["tag"]["prefect.resource.id"] == "prefect.tag.t1"


def test_a_job_runs_on_the_publisher_thread_with_its_origin():
    seen: dict[str, Any] = {}

    @task
    def queues() -> None:
        publisher.submit(lambda: seen.setdefault("origin", publisher._origin.get()))

    @flow(name="publisher-thread")
    def outer() -> None:
        queues()

    outer()
    assert publisher.flush(timeout=60)
    assert seen["origin"].flow_name == "publisher-thread"


def test_a_job_queued_outside_any_run_has_no_origin():
    seen: dict[str, Any] = {}
    publisher.submit(lambda: seen.setdefault("origin", publisher._origin.get()))
    assert publisher.flush(timeout=60)
    assert seen == {"origin": None}
