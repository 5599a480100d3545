"""``flowml.testing``: a temporary store (and Prefect harness) for users' own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import flowml
from flowml.testing import tracking_harness
from flowml.tracking.entities import RunStatus


@flowml.tracked_task
def half(x: float) -> float:
    return x / 2


@flowml.tracked_flow(experiment="user-tests")
def users_flow(x: float = 3.0) -> float:
    return half(x)


@pytest.mark.usefixtures("prefect")
def test_the_harness_gives_a_temporary_store_and_reads_runs_back(client, tmp_path: Path):
    before = flowml.get_tracking_uri()
    with tracking_harness(tmp_path / "store", prefect=False) as env:
        assert flowml.get_tracking_uri() == env.tracking_uri
        assert os.environ["FLOWML_TRACKING_URI"] == env.tracking_uri
        state = users_flow(4.0, return_state=True)
        run = env.run_for_flow_run(state.state_details.flow_run_id)
        assert run.info.status == RunStatus.FINISHED and run.data.metrics["result"] == 2.0
        runs = env.runs("user-tests")
        assert [r.data.tags["flowml.prefect.kind"] for r in runs] == ["flow", "task"]
        assert env.runs("nope") == [] and len(env.runs()) == 2
        (task_run,) = env.runs("user-tests", "tags.flowml.prefect.kind = 'task'")
        assert env.run_for_task_run(task_run.data.tags["flowml.prefect.task_run_id"]) == task_run
    assert flowml.get_tracking_uri() == before
    assert "FLOWML_TRACKING_URI" not in os.environ
    assert (tmp_path / "store" / "flowml.db").exists()
    assert client.get_experiment_by_name("user-tests") is None  # nothing leaked out
