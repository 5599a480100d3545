from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowml.projects
from flowml.cli import main
from flowml.registry.client import RegistryClient
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

from .helpers import write
from .test_runner import MLPROJECT, SLEEPER, TRAIN

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {"MLproject": MLPROJECT, "train.py": TRAIN, "sleeper.py": SLEEPER}
    return write(tmp_path / "demo", files)


def test_flowml_run_mirrors_mlflow_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            str(project),
            "-e",
            "main",
            "-P",
            "epochs=2",
            "-P",
            "seed=9",
            "--experiment-name",
            "cli",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    run_id = out.split("Run ", 1)[1].split()[0]
    run = TrackingClient().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"alpha": "0.5", "epochs": "2", "note": "none", "seed": "9"}
    experiment = TrackingClient().get_experiment_by_name("cli")
    assert experiment is not None and run.info.experiment_id == experiment.experiment_id


def test_flowml_run_failure_and_bad_input_exit_non_zero(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(project), "-e", "main", "-P", "epochs=lots"]) == 1
    assert "Parameter 'epochs' expects an int" in capsys.readouterr().err
    assert list(TrackingClient().search_runs([DEFAULT_EXPERIMENT_ID])) == []  # nothing created
    assert main(["run", str(project), "-e", "main", "-P", "epochs"]) == 1
    assert "key=value" in capsys.readouterr().err
    assert main(["run", str(project), "-e", "fail"]) == 1
    assert "exited with code 3" in capsys.readouterr().err
    (run,) = TrackingClient().search_runs([DEFAULT_EXPERIMENT_ID])
    assert run.info.status == "FAILED"


def test_projects_show(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["projects", "show", str(project), "-o", "json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert sorted(entries) == ["fail", "main", "sleep"]
    params = {p["name"]: p for p in entries["main"]["parameters"]}
    assert params["alpha"] == {
        "name": "alpha",
        "type": "float",
        "default": 0.5,
        "description": None,
    }
    assert params["epochs"]["default"] is None


def test_models_lineage_shows_the_flow_run_behind_a_project_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A project whose entry point logs a model: the registered version's lineage must name
    # the Prefect flow run that ran the project, under the same tag tracked tasks use.
    script = 'import flowml\nflowml.log_text("artifact_path: model\\n", "model/MLmodel")\n'
    mlproject = "name: modeller\nentry_points: {main: {command: 'python fit.py'}}\n"
    project = write(tmp_path / "modeller", {"MLproject": mlproject, "fit.py": script})
    result = flowml.projects.run(str(project), "main")
    run = TrackingClient().get_run(result.run_id)
    assert run.data.tags[systags.PREFECT_FLOW_RUN_ID] == result.flow_run_id
    RegistryClient().register_model(f"runs:/{result.run_id}/model", "churn")

    assert main(["models", "lineage", "churn", "1"]) == 0
    table = capsys.readouterr().out
    assert "flow run" in table and result.flow_run_id in table
    assert main(["models", "lineage", "churn", "1", "-o", "json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["run"]["data"]["tags"][systags.PREFECT_FLOW_RUN_ID] == result.flow_run_id
