"""The example project under flows/ runs as documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

import flowml.projects
from flowml.tracking.client import TrackingClient

pytestmark = pytest.mark.usefixtures("prefect_harness")

EXAMPLE = Path(__file__).resolve().parents[2] / "flows" / "example_project"


def test_example_spec() -> None:
    project = flowml.projects.load_project(EXAMPLE)
    assert project.name == "example_project" and project.env_type == "python_env"
    assert sorted(project.entry_points) == ["cross_validate", "train"]
    train = project.entry_points["train"].parameters
    assert {name: spec.type for name, spec in train.items()} == {
        "dataset": "string", "n_estimators": "int", "max_depth": "int",
        "test_size": "float", "seed": "int",
    }  # fmt: skip


def test_train_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # runs from anywhere: the project path is all it needs
    result = flowml.projects.run(
        str(EXAMPLE), "train", {"n_estimators": "20", "dataset": "wine"}, env_manager="local"
    )
    client = TrackingClient()
    run = client.get_run(result.run_id)
    assert run.data.params["n_estimators"] == "20" and run.data.params["dataset"] == "wine"
    assert run.data.metrics["accuracy"] > 0.8
    paths = {info.path for info in client.list_artifacts(result.run_id)}
    assert {"feature_importances.json", "model"} <= paths
    assert run.data.tags["mlflow.source.git.repoURL"]  # the example lives in this repository


def test_cross_validate_entry_point() -> None:
    result = flowml.projects.run(str(EXAMPLE), "cross_validate", {"folds": 3}, env_manager="local")
    client = TrackingClient()
    assert [m.step for m in client.get_metric_history(result.run_id, "fold_accuracy")] == [0, 1, 2]
    assert client.get_run(result.run_id).data.metrics["mean_accuracy"] > 0.9
