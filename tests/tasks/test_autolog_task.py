"""Autologging inside a tracked Prefect task logs into that task's run."""

from __future__ import annotations

import pytest

import flowml
from flowml.tasks.identity import run_for_flow_run

from .helpers import by_name, children, runs_of


@flowml.tracked_task(task_run_name="train")
def train(C: float) -> float:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    X_holdout, y_holdout = X.iloc[::5], y.iloc[::5]
    model = LogisticRegression(C=C, max_iter=300).fit(X, y)
    return float(model.score(X_holdout, y_holdout))


@flowml.tracked_flow(experiment="autolog-flow")
def pipeline(C: float = 1.0) -> float:
    return train(C)


@pytest.mark.usefixtures("prefect")
def test_fit_in_a_tracked_task_logs_into_the_tasks_run(client):
    flowml.autolog()
    try:
        state = pipeline(C=0.5, return_state=True)
    finally:
        flowml.autolog(disable=True)
    accuracy = state.result()
    runs = runs_of(client, "autolog-flow")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    task_run = by_name(children(runs, parent))["train"]
    assert len(runs) == 2  # the flow's run and the task's: autolog started no run of its own
    data = task_run.data
    assert data.params["C"] == "0.5" and data.params["max_iter"] == "300"
    assert data.tags["estimator_name"] == "LogisticRegression"
    assert "training_accuracy_score" in data.metrics
    assert data.metrics["LogisticRegression_score_X_holdout"] == pytest.approx(accuracy)
    assert task_run.info.status == "FINISHED"
    model = flowml.load_model(f"runs:/{task_run.info.run_id}/model")
    assert model.metadata.signature is not None
    graph = flowml.lineage(task_run.info.run_id)
    assert f"runs:/{task_run.info.run_id}/model" in {n.uri for n in graph.downstream()}
