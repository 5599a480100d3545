"""An unchanged MLflow script, run by ``flowml run`` against a flowml server, logs into
the project's run: the runner points ``MLFLOW_TRACKING_URI``/``MLFLOW_RUN_ID`` at it.

The script runs under MLflow 3.17's own interpreter (its virtual environment), as a
project whose command names that interpreter; the server is a real ``flowml server`` on a
loopback port, and the project is a real Prefect flow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import flowml.projects
from flowml.projects.runner import mlflow_env
from flowml.tracking.client import TrackingClient

from .helpers import write

SCRIPT = """
import sys
import mlflow

run = mlflow.start_run()  # resumes MLFLOW_RUN_ID, as under `mlflow run`
mlflow.log_param("optimizer", "adam")
mlflow.log_params({"layers": 3, "dropout": 0.1})
for step in range(5):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
mlflow.log_metrics({"accuracy": 0.9, "f1": 0.8})
mlflow.set_tag("framework", "mlflow")
mlflow.log_text("hello from mlflow", "notes/hello.txt")
print("MLFLOW RUN", run.info.run_id, flush=True)
mlflow.end_run()
"""


def test_the_mlflow_variables_are_set_for_servers_only() -> None:
    assert mlflow_env("sqlite:///x.db", "r", "1") == {}
    assert mlflow_env("postgresql://h/db", "r", "1") == {}
    assert mlflow_env("HTTPS://flowml.example", "r", "1") == {
        "MLFLOW_TRACKING_URI": "HTTPS://flowml.example",
        "MLFLOW_RUN_ID": "r",
        "MLFLOW_EXPERIMENT_ID": "1",
    }


@pytest.mark.mlflow
@pytest.mark.usefixtures("prefect_harness")
def test_mlflow_logging_lands_in_the_project_run(
    rest_server: Any,
    mlflow_python: tuple[Path, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    python, env = mlflow_python
    for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("PYTHONPATH", raising=False)  # flowml's path has no place in MLflow's venv
    project = write(
        tmp_path / "mlflow-project",
        {
            "MLproject": f"""
                name: mlflow-script
                entry_points:
                  main:
                    command: "{python} train.py"
            """,
            "train.py": SCRIPT,
        },
    )

    result = flowml.projects.run(
        str(project), "main", env_manager="local", tracking_uri=rest_server.url
    )

    assert result.status == "FINISHED" and result.exit_code == 0
    client = TrackingClient(rest_server.url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"optimizer": "adam", "layers": "3", "dropout": "0.1"}
    assert run.data.metrics == {"loss": 0.2, "accuracy": 0.9, "f1": 0.8}
    assert [m.step for m in client.get_metric_history(result.run_id, "loss")] == list(range(5))
    assert run.data.tags["framework"] == "mlflow"
    assert run.data.tags["mlflow.project.entryPoint"] == "main"  # the runner's tags stay
    local = client.download_artifacts(result.run_id, "notes", str(tmp_path / "down"))
    assert Path(local, "hello.txt").read_text(encoding="utf-8") == "hello from mlflow"
    # No second run: MLflow resumed the project's.
    found = client.search_runs([result.experiment_id], f"attributes.run_id = '{result.run_id}'")
    assert len(found) == 1
    others = client.search_runs([result.experiment_id], "tags.framework = 'mlflow'")
    assert [r.info.run_id for r in others] == [result.run_id]
