"""Every Prefect option passes through the tracked decorators, user hooks are kept, and the
flowml options (params, results, artifacts) do what they say."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId
from prefect.states import Failed

import flowml
from flowml.tasks import tags as ptags
from flowml.tasks.decorators import TrackedFlow, TrackedTask
from flowml.tasks.identity import run_for_flow_run
from flowml.tracking.entities import RunStatus

from .helpers import children, runs_of, settle

pytestmark = pytest.mark.usefixtures("prefect")

hook_calls: Counter[str] = Counter()


def user_hook(task, task_run, state) -> None:
    hook_calls[f"{task.name}:{state.type.value}"] += 1


def user_flow_hook(flow, flow_run, state) -> None:
    hook_calls[f"flow {flow.name}:{state.type.value}"] += 1


@flowml.tracked_task(on_completion=[user_hook], on_failure=[user_hook], tags=["ml"])
def double(x: int) -> int:
    return 2 * x


@flowml.tracked_flow(experiment="options")
def uses_options(x: int) -> list[int]:
    renamed = double.with_options(name="renamed", on_completion=[user_hook], retries=2)
    first = double.submit(x)
    return [first.result(), renamed(x, wait_for=[first])]


def test_user_hooks_and_with_options_keep_tracking(client):
    hook_calls.clear()
    state = uses_options(4, return_state=True)
    assert state.result() == [8, 8]
    assert hook_calls == {"double:COMPLETED": 1, "renamed:COMPLETED": 1}
    renamed = double.with_options(name="renamed")
    assert isinstance(renamed, TrackedTask) and renamed.flowml_options is double.flowml_options
    assert renamed.retries == 0 and "ml" in renamed.tags
    runs = runs_of(client, "options")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    kids = {k.data.tags[ptags.TASK_NAME]: k for k in children(runs, parent)}
    assert set(kids) == {"double", "renamed"}
    assert {k.info.status for k in kids.values()} == {RunStatus.FINISHED}


def test_flow_with_options_stays_tracked_and_keeps_user_hooks(client):
    hook_calls.clear()
    other = uses_options.with_options(name="other-name", on_completion=[user_flow_hook])
    assert isinstance(other, TrackedFlow)
    state = other(1, return_state=True)
    settle(client)
    assert hook_calls["flow other-name:COMPLETED"] == 1
    run = run_for_flow_run(client, state.state_details.flow_run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.data.tags[ptags.FLOW_NAME] == "other-name"


@flowml.tracked_task(log_params=["lr"], log_result="accuracy", artifacts=False)
def train(frame: pd.DataFrame, lr: float, secret: str) -> float:
    return 0.5


@flowml.tracked_task(exclude_params=["secret"])
def describe(frame: pd.DataFrame, secret: str) -> dict[str, float]:
    return {"rows": float(len(frame)), "note": "not a number"}


@flowml.tracked_flow(experiment="params")
def params_flow() -> None:
    frame = pd.DataFrame({"a": range(10)})
    train(frame, 0.1, "hunter2")
    describe(frame, "hunter2")


def test_params_results_and_artifacts_follow_the_task_options(client):
    state = params_flow(return_state=True)
    settle(client)
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    kids = {k.data.tags[ptags.TASK_NAME]: k for k in children(runs_of(client, "params"), parent)}
    trained, described = kids["train"], kids["describe"]
    assert trained.data.params == {"lr": "0.1"}
    assert trained.data.metrics["accuracy"] == 0.5
    assert set(described.data.params) == {"frame"}
    assert described.data.params["frame"].startswith("DataFrame(shape=(10, 1), digest=")
    assert described.data.metrics["rows"] == 10.0 and "note" not in described.data.metrics
    with get_client(sync_client=True) as prefect_client:
        published = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(
                task_run_id=ArtifactFilterTaskRunId(
                    any_=[
                        trained.data.tags[ptags.TASK_RUN_ID],
                        described.data.tags[ptags.TASK_RUN_ID],
                    ]
                )
            )
        )
    assert {str(a.task_run_id) for a in published} == {described.data.tags[ptags.TASK_RUN_ID]}


@flowml.tracked_task
def gives_up(x: int):
    return Failed(message=f"{x} is not acceptable")


@flowml.tracked_task
def countdown(n: int):
    for i in range(n, 0, -1):
        flowml.log_metric("left", i)
        yield i


@flowml.tracked_flow(experiment="outcomes")
def outcomes() -> list[int]:
    values = list(countdown(3))
    gives_up(1, return_state=True)
    return values


def test_returned_failed_states_and_generator_tasks_get_the_right_status(client):
    state = outcomes(return_state=True)
    assert state.result() == [3, 2, 1]
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    kids = {k.data.tags[ptags.TASK_NAME]: k for k in children(runs_of(client, "outcomes"), parent)}
    assert kids["gives_up"].info.status == RunStatus.FAILED
    assert kids["countdown"].info.status == RunStatus.FINISHED
    history = client.get_metric_history(kids["countdown"].info.run_id, "left")
    assert [m.value for m in history] == [3, 2, 1]
