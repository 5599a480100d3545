"""Run identity comes from Prefect: one run per flow run, one child run per task run, across
task runners, mapping, subflows, async code, plain flows and direct calls."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

import flowml
from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run, run_for_task_run
from flowml.tracking.entities import RunStatus
from flowml.tracking.owner import parse_owner
from flowml.tracking.tags import PARENT_RUN_ID

from .helpers import by_name, children, runs_of, settle

pytestmark = pytest.mark.usefixtures("prefect")


@flowml.tracked_task
def square(x: int) -> dict[str, float]:
    flowml.log_metric("seen", x)
    return {"square": x * x}


@flowml.tracked_flow(experiment="identity", task_runner=ThreadPoolTaskRunner(max_workers=4))
def fan_out(n: int = 5) -> list[dict[str, float]]:
    futures = [square.submit(i) for i in range(n)]
    return [f.result() for f in futures]


def test_a_flow_run_is_one_run_and_each_task_run_a_child(client):
    state = fan_out(5, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    runs = runs_of(client, "identity")

    parent = run_for_flow_run(client, flow_run_id)
    assert parent is not None and parent.info.status == RunStatus.FINISHED
    assert parent.data.tags[ptags.FLOW_RUN_ID] == str(flow_run_id)
    assert parent.data.tags[ptags.FLOW_NAME] == "fan-out"
    assert parent.data.params == {"n": "5"}
    kids = children(runs, parent)
    assert len(kids) == 5 and len(runs) == 6
    assert sorted(float(k.data.params["x"]) for k in kids) == [0, 1, 2, 3, 4]
    for kid in kids:
        assert kid.info.status == RunStatus.FINISHED
        assert kid.data.tags[ptags.FLOW_RUN_ID] == str(flow_run_id)
        assert kid.data.tags[ptags.TASK_NAME] == "square"
        x = float(kid.data.params["x"])
        assert kid.data.metrics["square"] == x * x and kid.data.metrics["seen"] == x
        assert kid.data.metrics[ptags.METRIC_ATTEMPTS] == 1
        # The run found by the Prefect task run id is the same run.
        found = run_for_task_run(client, kid.data.tags[ptags.TASK_RUN_ID])
        assert found is not None and found.info.run_id == kid.info.run_id
        assert kid.info.run_name == f"square-{kid.info.run_name.split('-')[-1]}"
        assert kid.data.tags[ptags.FLOW_RUN_NAME] == parent.info.run_name


@flowml.tracked_flow(experiment="mapped")
def mapped(values: list[int]) -> list[dict[str, float]]:
    return square.map(values).result()


def test_map_over_twenty_inputs_gives_twenty_child_runs(client):
    state = mapped(list(range(20)), return_state=True)
    assert [r["square"] for r in state.result()] == [i * i for i in range(20)]
    runs = runs_of(client, "mapped")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    kids = children(runs, parent)
    assert len(kids) == 20 and len({k.data.tags[ptags.TASK_RUN_ID] for k in kids}) == 20
    assert sorted(int(k.data.params["x"]) for k in kids) == list(range(20))
    assert {k.info.status for k in kids} == {RunStatus.FINISHED}


@flowml.tracked_task
def where_am_i(x: int) -> int:
    flowml.log_metric("pid", os.getpid())
    return os.getpid()


@flowml.tracked_flow(experiment="processes", task_runner=ProcessPoolTaskRunner(max_workers=2))
def in_processes(n: int = 4) -> list[int]:
    return where_am_i.map(range(n)).result()


@pytest.mark.slow
def test_process_pool_tasks_find_their_parent_and_store_without_configuration(
    client, tmp_path: Path
):
    # The store is chosen in the parent process only, not through the environment: the
    # workers must still write there, under the right parent run.
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    flowml.set_tracking_uri(uri)
    state = in_processes(4, return_state=True)
    worker_pids = set(state.result())
    assert os.getpid() not in worker_pids

    other = flowml.tracking.fluent.get_client()
    assert other.tracking_uri == uri
    runs = runs_of(other, "processes")
    parent = run_for_flow_run(other, state.state_details.flow_run_id)
    kids = children(runs, parent)
    assert len(kids) == 4
    owners = [parse_owner(k.data.tags[ptags.OWNER]) for k in kids]
    assert {owner.pid for owner in owners if owner} == worker_pids
    assert {k.info.status for k in kids} == {RunStatus.FINISHED}
    assert {int(k.data.metrics["pid"]) for k in kids} == worker_pids
    assert parent.info.status == RunStatus.FINISHED
    # Nothing went to the default store.
    assert client.get_experiment_by_name("processes") is None


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def plain_in_processes(n: int = 2) -> list[int]:
    return where_am_i.map(range(n)).result()


@pytest.mark.slow
def test_process_pool_tasks_of_a_plain_flow_share_its_parent_run(client):
    state = plain_in_processes(2, return_state=True)
    assert len(state.result()) == 2
    settle(client)
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    # Opened in this process when the tasks were mapped, closed by the flow's own hooks.
    assert parent is not None and parent.info.status == RunStatus.FINISHED
    kids = children(runs_of(client, "plain-in-processes"), parent)
    assert len(kids) == 2 and {k.info.status for k in kids} == {RunStatus.FINISHED}


def test_threads_on_postgresql(client, pg_url: str):
    flowml.set_tracking_uri(pg_url)
    state = fan_out(8, return_state=True)
    other = flowml.tracking.fluent.get_client()
    parent = run_for_flow_run(other, state.state_details.flow_run_id)
    kids = children(runs_of(other, "identity"), parent)
    assert len(kids) == 8 and {k.info.status for k in kids} == {RunStatus.FINISHED}
    assert parent.info.status == RunStatus.FINISHED


@flowml.tracked_task
def add(a: int, b: int) -> int:
    return a + b


@flow
def plain_flow(fail: bool = False) -> int:
    total = add(1, 2)
    if fail:
        raise RuntimeError("the plain flow fails after its task")
    return total


def test_a_tracked_task_in_a_plain_flow_still_gets_a_parent_run_closed_with_the_flow(client):
    state = plain_flow(return_state=True)
    assert state.result() == 3
    settle(client)
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    assert parent is not None and parent.info.status == RunStatus.FINISHED
    runs = runs_of(client, "plain-flow")  # named after the flow
    (kid,) = children(runs, parent)
    assert kid.data.metrics["result"] == 3 and kid.info.status == RunStatus.FINISHED

    failed = plain_flow(fail=True, return_state=True)
    assert failed.is_failed()
    settle(client)
    parent = run_for_flow_run(client, failed.state_details.flow_run_id)
    assert parent.info.status == RunStatus.FAILED
    (kid,) = children(runs_of(client, "plain-flow"), parent)
    assert kid.info.status == RunStatus.FINISHED


def test_a_tracked_task_outside_any_flow_is_a_top_level_run(client):
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    # Prefect itself warns when a task run logs outside a flow run; that is not ours to test.
    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
        assert add(2, 3) == 5
    settle(client)
    (run,) = client.search_runs(["0"], "params.a = '2'")
    assert run.info.status == RunStatus.FINISHED
    assert PARENT_RUN_ID not in run.data.tags
    assert run.data.metrics["result"] == 5


def test_calling_the_function_outside_prefect_tracks_nothing(client):
    assert add.fn(1, 1) == 2
    assert len(client.search_runs(["0"])) == 0


@flowml.tracked_flow
def child_flow(k: int) -> int:
    return add(k, k)


@flowml.tracked_flow(experiment="subflows")
def parent_flow(k: int = 2) -> int:
    return child_flow(k) + add(k, 1)


def test_subflow_runs_nest_under_their_parent_flow_run(client):
    state = parent_flow(2, return_state=True)
    assert state.result() == 7
    runs = runs_of(client, "subflows")  # the subflow inherits the parent's experiment
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    kids = children(runs, parent)
    assert {k.data.tags[ptags.RUN_KIND] for k in kids} == {"flow", "task"}
    (sub,) = [k for k in kids if k.data.tags[ptags.RUN_KIND] == "flow"]
    assert sub.data.tags[ptags.FLOW_NAME] == "child-flow"
    (grandchild,) = children(runs, sub)
    assert grandchild.data.params == {"a": "2", "b": "2"}
    assert {r.info.status for r in runs} == {RunStatus.FINISHED}


@flowml.tracked_task
async def slow_double(x: int) -> float:
    await asyncio.sleep(0.01)
    flowml.log_metric("x", x)
    return 2.0 * x


@flowml.tracked_flow(experiment="async")
async def async_flow(n: int = 3) -> float:
    values = await asyncio.gather(*(slow_double(i) for i in range(n)))
    return sum(values)


def test_async_flows_and_tasks_are_tracked(client):
    assert asyncio.iscoroutinefunction(slow_double.fn)
    assert slow_double.isasync and async_flow.isasync
    state = asyncio.run(async_flow(3, return_state=True))
    assert state.result() == 6.0
    runs = runs_of(client, "async")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    assert parent.data.metrics["result"] == 6.0
    kids = children(runs, parent)
    assert sorted(k.data.metrics["result"] for k in kids) == [0.0, 2.0, 4.0]
    assert all(k.data.metrics["x"] * 2 == k.data.metrics["result"] for k in kids)


def test_decorated_objects_keep_prefect_signature_and_identity():
    assert add.name == "add" and child_flow.name == "child-flow"
    assert list(parent_flow.parameters.properties) == ["k"]
    assert parent_flow.parameters.properties["k"]["default"] == 2
    # Task keys and cache keys come from the user's code, not the shared wrapper.
    assert add.task_key.startswith("add-") and square.task_key.startswith("square-")
    assert add.task_key.split("-")[1] != square.task_key.split("-")[1]
    assert parent_flow._entrypoint.endswith("test_identity:parent_flow")


def test_runs_are_named_after_prefect_runs(client):
    state = fan_out(1, return_state=True)
    settle(client)
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    assert parent.info.run_name == parent.data.tags[ptags.FLOW_RUN_NAME]
    assert by_name(runs_of(client, "identity"))[parent.info.run_name] is not None


def test_a_run_resumed_by_another_process_becomes_its_own(client):
    """A retry on another worker resumes the run the first (dead) process opened: `runs gc`
    must judge it by the process running it now, not close it for the dead one."""
    from flowml.tasks.identity import resume
    from flowml.tracking.owner import current_owner

    experiment_id = client.create_experiment("resumed")
    run = client.create_run(
        experiment_id, tags={ptags.OWNER: "elsewhere:1:1"}, run_key=ptags.task_run_key("t-1")
    )
    client.set_terminated(run.info.run_id, RunStatus.FAILED)
    resume(client, client.get_run(run.info.run_id))
    resumed = client.get_run(run.info.run_id)
    assert resumed.data.tags[ptags.OWNER] == current_owner()
    assert resumed.info.status == RunStatus.RUNNING
