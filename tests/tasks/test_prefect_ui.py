"""What Prefect shows: artifacts per tracked run (read back through the Prefect client),
``flowml.run.*`` events, and progress artifacts."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    ArtifactFilterTaskRunId,
)

import flowml
from flowml.exceptions import InvalidParameter
from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run
from flowml.tasks.prefect_ui import EVENT_FINISHED, EVENT_STARTED, artifact_key, slugify

from .helpers import children, eventually, runs_of, settle

pytestmark = pytest.mark.usefixtures("prefect")


@flowml.tracked_task(task_run_name="score-{name}")
def score(name: str, lr: float) -> dict[str, float]:
    with flowml.progress(total=4, description="epochs", min_interval=0) as bar:
        for _ in range(4):
            bar.advance()
    return {"accuracy": 0.75, "loss": float("nan")}


@flowml.tracked_flow(name="UI Flow: v2", experiment="ui")
def ui_flow(name: str) -> dict[str, float]:
    flowml.log_metric("flow_metric", 3.0)
    return score(name, 0.01)


def _artifacts(**filters) -> list:
    with get_client(sync_client=True) as prefect_client:
        return prefect_client.read_artifacts(artifact_filter=ArtifactFilter(**filters))


def test_each_tracked_run_publishes_a_summary_and_a_flow_run_a_table_too(client):
    name = uuid.uuid4().hex[:8]
    state = ui_flow(name, return_state=True)
    settle(client)
    flow_run_id = state.state_details.flow_run_id
    parent = run_for_flow_run(client, flow_run_id)
    (task_run,) = children(runs_of(client, "ui"), parent)
    task_run_id = task_run.data.tags[ptags.TASK_RUN_ID]

    task_artifacts = {
        a.type: a for a in _artifacts(task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]))
    }
    assert set(task_artifacts) == {"markdown", "progress"}  # one summary per task run
    summary = task_artifacts["markdown"]
    assert summary.key == "flowml-ui-flow-v2-score-0-summary"
    assert task_run.info.run_id in summary.data and "FINISHED" in summary.data
    assert f"score-{name}" in summary.data
    assert f"| param | `name` | {name} |" in summary.data
    assert "| metric | `accuracy` | 0.75 |" in summary.data
    assert "| metric | `loss` | nan |" in summary.data
    assert task_artifacts["progress"].data == 100.0
    assert task_artifacts["progress"].description.startswith("epochs — ")
    assert f"flowml runs show {task_run.info.run_id}" in task_artifacts["progress"].description

    flow_artifacts = {
        a.key: a
        for a in _artifacts(flow_run_id=ArtifactFilterFlowRunId(any_=[str(flow_run_id)]))
        if a.task_run_id is None
    }
    assert set(flow_artifacts) == {"flowml-ui-flow-v2-table", "flowml-ui-flow-v2-summary"}
    flow_summary = flow_artifacts["flowml-ui-flow-v2-summary"].data
    assert "**Task runs**" in flow_summary and f"`score-{name}`" in flow_summary
    assert {"type": "metric", "name": "flow_metric", "value": 3.0} in json.loads(
        flow_artifacts["flowml-ui-flow-v2-table"].data
    )


def test_repeated_runs_form_a_versioned_collection_under_one_key(client):
    for _ in range(2):
        ui_flow(uuid.uuid4().hex[:8])
    settle(client)
    versions = _artifacts(key=ArtifactFilterKey(any_=["flowml-ui-flow-v2-summary"]))
    assert len(versions) >= 2


def test_run_events_carry_the_run_the_experiment_and_the_metrics(client):
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    state = ui_flow(uuid.uuid4().hex[:8], return_state=True)
    settle(client)
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    (task_run,) = children(runs_of(client, "ui"), parent)

    def events_of(run_id: str) -> dict[str, object] | None:
        with get_client(sync_client=True) as prefect_client:
            page = prefect_client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[EVENT_STARTED, EVENT_FINISHED]),
                    resource=EventResourceFilter(id=[f"flowml.run.{run_id}"]),
                ),
                limit=50,  # the server's maximum (the client's default is above it)
            )
        found = {e.event: e for e in page.events}
        return found if len(found) == 2 else None

    for run in (parent, task_run):
        found = eventually(lambda run=run: events_of(run.info.run_id), "flowml.run.* events")
        finished = found[EVENT_FINISHED]
        assert finished.payload["run_id"] == run.info.run_id
        assert finished.payload["experiment_name"] == "ui"
        assert finished.payload["status"] == "FINISHED"
        assert finished.resource["flowml.run.status"] == "FINISHED"
        related = {r.id for r in finished.related}
        assert f"prefect.flow-run.{state.state_details.flow_run_id}" in related
        assert f"flowml.experiment.{run.info.experiment_id}" in related
        assert found[EVENT_STARTED].payload["experiment_id"] == run.info.experiment_id
    task_metrics = events_of(task_run.info.run_id)[EVENT_FINISHED].payload["metrics"]
    assert task_metrics["accuracy"] == 0.75 and task_metrics["loss"] is None


@pytest.mark.parametrize(
    "text, slug",
    [("Train Wine", "train-wine"), ("a__b--c!!", "a-b-c"), ("UI Flow: v2", "ui-flow-v2")],
)
def test_artifact_keys_are_prefect_slugs(text: str, slug: str):
    assert slugify(text) == slug
    key = artifact_key(text, "x" * 200, suffix="summary")
    assert key.startswith(f"flowml-{slug}-") and key.endswith("-summary") and len(key) <= 100
    assert set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_progress_refuses_bad_totals():
    with pytest.raises(InvalidParameter, match="total"):
        flowml.progress(total=0)
    with pytest.raises(InvalidParameter, match="min_interval"):
        flowml.progress(total=3, min_interval=-1)


@flowml.tracked_task(tags=["gpu"])
def evaluate(split: str) -> float:
    return 0.5 if split == "a" else 0.25


@flowml.tracked_flow(name="two evaluations", experiment="ui-keys")
def two_evaluations() -> float:
    return evaluate("a") + evaluate("b")


def test_two_calls_of_a_task_keep_their_own_artifacts_which_name_their_runs(client):
    from prefect import tags

    with tags("nightly"):
        state = two_evaluations(return_state=True)
    settle(client)
    flow_run_id = str(state.state_details.flow_run_id)
    parent = run_for_flow_run(client, flow_run_id)
    kids = {k.data.params["split"]: k for k in children(runs_of(client, "ui-keys"), parent)}
    artifacts = _artifacts(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    by_key = {a.key: a for a in artifacts}
    assert len(by_key) == len(artifacts) == 4  # nothing published twice, nothing overwritten
    first = by_key["flowml-two-evaluations-evaluate-0-summary"]
    second = by_key["flowml-two-evaluations-evaluate-1-summary"]
    assert "| metric | `result` | 0.5 |" in first.data
    assert "| metric | `result` | 0.25 |" in second.data
    assert str(first.task_run_id) == kids["a"].data.tags[ptags.TASK_RUN_ID]
    for artifact in artifacts:
        run_id = (
            parent.info.run_id
            if artifact.task_run_id is None
            else next(
                k.info.run_id
                for k in kids.values()
                if k.data.tags[ptags.TASK_RUN_ID] == str(artifact.task_run_id)
            )
        )
        assert f"flowml runs show {run_id}" in artifact.description
    # Prefect's tags are copied onto the runs (the flow's, and each task run's own).
    assert parent.data.tags[ptags.PREFECT_TAGS] == "nightly"
    assert kids["a"].data.tags[ptags.PREFECT_TAGS] == "gpu,nightly"
