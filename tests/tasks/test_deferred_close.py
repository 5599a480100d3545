"""A successful tracked task's end is written behind it: read back at once, retried while
the store fails."""

from __future__ import annotations

import flowml
from flowml.tasks import tags as ptags
from flowml.tracking.entities import RunStatus


@flowml.tracked_task
def quick(i: int) -> str:
    flowml.log_metric("i", i)
    return flowml.active_run().info.run_id


@flowml.tracked_flow(experiment="read-your-ends", log_result=False)
def reads_its_tasks_back() -> list[tuple[str, float]]:
    seen = []
    for i in range(3):
        run = flowml.get_run(quick(i))  # waits for the end written behind the task
        seen.append((run.info.status, run.data.metrics["i"]))
    return seen


def test_a_task_run_read_right_after_its_task_returned_is_finished(client):
    assert reads_its_tasks_back() == [(RunStatus.FINISHED, float(i)) for i in range(3)]
    runs = client.search_runs(
        [client.get_experiment_by_name("read-your-ends").experiment_id],
        f"tags.`{ptags.RUN_KIND}` = 'task'",
    )
    assert len(runs) == 3 and {r.info.status for r in runs} == {RunStatus.FINISHED}


def test_a_deferred_task_end_is_retried_while_the_store_fails(monkeypatch):
    from flowml.exceptions import StoreError
    from flowml.tasks import recorder, task_runs

    monkeypatch.setattr(task_runs, "CLOSE_RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    attempts: list[int] = []

    def close() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreError("connection refused")

    task_runs._close_later(close, "flow-run-1")
    assert len(attempts) == 3
    assert recorder.take_refusals("flow-run-1") == []

    def never() -> None:
        attempts.append(1)
        raise StoreError("connection refused")

    attempts.clear()
    task_runs._close_later(never, "flow-run-2")
    assert len(attempts) == 4  # the first try and three retries
    assert recorder.take_refusals("flow-run-2") == ["connection refused"]
