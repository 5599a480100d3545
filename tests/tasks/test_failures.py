"""Final statuses follow Prefect's verdict: failed flows and tasks, flow retries, crashes, and
a parent run that stays open until its flow run (not its first task) ends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

import flowml
from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run
from flowml.tracking import tags as systags
from flowml.tracking.entities import Param, RunStatus

from .helpers import children, runs_of

pytestmark = pytest.mark.usefixtures("prefect")


@flowml.tracked_task
def fine(x: int) -> int:
    return x


@flowml.tracked_task
def broken(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


@flowml.tracked_flow(experiment="failures")
def failing_task_flow() -> int:
    return fine(1) + broken(2)


def test_a_failing_task_fails_its_flow_and_each_run_gets_its_own_status(client):
    state = failing_task_flow(return_state=True)
    assert state.is_failed()
    runs = runs_of(client, "failures")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    assert parent.info.status == RunStatus.FAILED and parent.info.end_time is not None
    assert parent.data.tags[ptags.STATE] == "Failed"
    kids = {k.data.tags[ptags.TASK_NAME]: k for k in children(runs, parent)}
    assert kids["fine"].info.status == RunStatus.FINISHED
    assert kids["broken"].info.status == RunStatus.FAILED
    assert kids["broken"].data.tags[ptags.STATE] == "Failed"
    assert all(k.info.end_time is not None for k in kids.values())
    # Why it failed is on the run, not only in Prefect's logs.
    assert kids["broken"].data.tags[systags.ERROR_TYPE] == "ValueError"
    assert kids["broken"].data.tags[systags.ERROR_MESSAGE] == "cannot handle 2"
    assert systags.ERROR_TYPE not in kids["fine"].data.tags


@flowml.tracked_flow(experiment="failures")
def failing_body_flow() -> None:
    fine(1)
    raise RuntimeError("the flow body fails")


def test_a_flow_failing_after_its_tasks_is_failed_and_its_tasks_finished(client):
    state = failing_body_flow(return_state=True)
    assert state.is_failed()
    runs = runs_of(client, "failures")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    assert parent.info.status == RunStatus.FAILED
    assert [k.info.status for k in children(runs, parent)] == [RunStatus.FINISHED]
    assert parent.data.tags[systags.ERROR_TYPE] == "RuntimeError"
    assert parent.data.tags[systags.ERROR_MESSAGE] == "the flow body fails"


_flow_calls: Counter[str] = Counter()


@flowml.tracked_flow(experiment="flow-retries", retries=1)
def flaky_flow(key: str) -> float:
    _flow_calls[key] += 1
    flowml.log_metric("tries", 1)
    if _flow_calls[key] == 1:
        raise RuntimeError("first attempt of the flow fails")
    return 1.5


def test_a_retried_flow_run_keeps_one_run_and_records_the_attempts(client):
    key = uuid.uuid4().hex
    state = flaky_flow(key, return_state=True)
    assert state.result() == 1.5 and _flow_calls[key] == 2
    runs = runs_of(client, "flow-retries")
    (run,) = runs
    assert run.info.status == RunStatus.FINISHED
    assert run.data.tags[ptags.ATTEMPT] == "2"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "flowml.attempts")] == [2]
    assert run.data.metrics["result"] == 1.5


@flowml.tracked_task
def report_parent_status() -> str:
    parent_id = flowml.active_run().data.tags["mlflow.parentRunId"]
    return flowml.get_run(parent_id).info.status


@flowml.tracked_flow(experiment="open-parent")
def two_steps() -> str:
    fine(1)  # a finished task must not close the flow's run
    return report_parent_status()


def test_the_parent_run_stays_running_until_the_flow_run_ends(client):
    state = two_steps(return_state=True)
    assert state.result() == RunStatus.RUNNING
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    runs_of(client, "open-parent")
    assert client.get_run(parent.info.run_id).info.status == RunStatus.FINISHED


CRASHING_SCRIPT = """
import signal
import flowml
from prefect.exceptions import TerminationSignal

@flowml.tracked_task
def interrupted():
    raise TerminationSignal(signal.SIGTERM)

@flowml.tracked_flow(experiment="crash")
def crashing():
    interrupted()

crashing()
"""


@pytest.mark.slow
def test_a_crash_marks_the_task_and_flow_runs_killed(client, tmp_path: Path):
    # Prefect answers a termination signal by terminating its process: run it in one.
    from prefect.settings import PREFECT_API_URL

    script = tmp_path / "crashing.py"
    script.write_text(CRASHING_SCRIPT)
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "FLOWML_TRACKING_URI": client.tracking_uri,
        "FLOWML_ARTIFACT_ROOT": client.artifact_root,
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0, done.stderr
    runs = runs_of(client, "crash")
    (parent,) = [r for r in runs if r.data.tags[ptags.RUN_KIND] == "flow"]
    (task_run,) = children(runs, parent)
    assert task_run.info.status == RunStatus.KILLED
    assert task_run.data.tags[ptags.STATE] == "Crashed"
    assert parent.info.status == RunStatus.KILLED
    assert parent.data.tags[ptags.STATE] == "Crashed"


@flowml.tracked_flow(experiment="deleted-experiment")
def into_deleted() -> None:
    fine(1)


def test_a_flow_tracking_into_a_deleted_experiment_fails_clearly(client):
    from flowml.exceptions import InvalidState

    client.delete_experiment(client.create_experiment("deleted-experiment"))
    state = into_deleted(return_state=True)
    assert state.is_failed()
    with pytest.raises(InvalidState, match="is deleted"):
        state.result()
    experiment = client.get_experiment_by_name("deleted-experiment")
    assert experiment.lifecycle_stage == "deleted"
    assert len(client.search_runs([experiment.experiment_id], run_view_type=3)) == 0


@flowml.tracked_task
def relogs(lr: float) -> float:
    flowml.flush()  # the argument's param is written now
    run_id = flowml.active_run().info.run_id
    # Another writer sets a param this process never saw: the conflict shows only when the
    # run is closed (a conflict with this process's own values fails at the call site).
    flowml.tracking.fluent.get_client().store.log_batch(run_id, params=[Param("seed", "1")])
    flowml.log_param("seed", 2)
    flowml.log_metric("kept", 1.0)
    return lr


@flowml.tracked_flow(experiment="tracking-error")
def conflicting() -> float:
    return relogs(0.1)


def test_refused_values_end_the_task_run_failed_and_are_named_on_the_flow_run(client, caplog):
    # A successful task's end is written after it returned (off its path): a refusal there
    # cannot fail the task, so its run ends FAILED with the reason, the refusal is logged,
    # and the flow run's run names it.
    state = conflicting(return_state=True)
    assert state.is_completed()
    runs = runs_of(client, "tracking-error")
    (task_run,) = [r for r in runs if r.data.tags[ptags.RUN_KIND] == "task"]
    (flow_run,) = [r for r in runs if r.data.tags[ptags.RUN_KIND] == "flow"]
    assert task_run.info.status == RunStatus.FAILED
    assert task_run.data.tags[ptags.STATE] == "TrackingError"
    assert "write-once" in task_run.data.tags["flowml.tracking_error"]
    assert task_run.data.params == {"lr": "0.1", "seed": "1"}
    assert task_run.data.metrics["kept"] == 1.0  # only the refused value was dropped
    assert flow_run.info.status == RunStatus.FINISHED
    assert "1 task run end(s) refused" in flow_run.data.tags["flowml.tracking_error"]
    assert "write-once" in flow_run.data.tags["flowml.tracking_error"]
    assert any("end was refused" in r.getMessage() for r in caplog.records)


@flowml.tracked_task
def relogs_then_fails(lr: float) -> float:
    flowml.flush()
    run_id = flowml.active_run().info.run_id
    flowml.tracking.fluent.get_client().store.log_batch(run_id, params=[Param("seed", "1")])
    flowml.log_param("seed", 2)
    raise RuntimeError("boom")


@flowml.tracked_flow(experiment="tracking-error-sync")
def conflicting_and_failing() -> float:
    return relogs_then_fails(0.1)


def test_a_failed_task_run_ends_before_its_state_is_final_refusal_included(client):
    # A failed task's run is ended by its state hook, synchronously: read right away from
    # another client (no flow-end wait involved), it is FAILED with the refusal named.
    state = conflicting_and_failing(return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="boom"):
        state.result()
    (task_run,) = [
        r for r in runs_of(client, "tracking-error-sync") if r.data.tags[ptags.RUN_KIND] == "task"
    ]
    assert task_run.info.status == RunStatus.FAILED
    assert "write-once" in task_run.data.tags["flowml.tracking_error"]
