from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowml.cli import main
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
