"""Projects run as real Prefect flow runs (one session-wide test harness) against a real
SQLite tracking store under the test's FLOWML_HOME."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from uuid import UUID

import pytest

import flowml.projects
from flowml.exceptions import InvalidParameter
from flowml.projects.errors import EnvironmentUnavailable, ProjectRunFailed
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

from .helpers import alive, commit_all, init_repo, project_summary, write

pytestmark = pytest.mark.usefixtures("prefect_harness")

MLPROJECT = """
name: demo
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: int
      note: {type: string, default: none}
    command: "python train.py --alpha {alpha} --epochs {epochs} --note {note}"
  fail:
    command: "python -c 'import sys; print(\\"about to fail\\"); sys.exit(3)'"
  sleep:
    parameters:
      pidfile: uri
    command: "python sleeper.py {pidfile}"
"""

TRAIN = """
import argparse, json, sys
import flowml

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
parser.add_argument("--epochs", type=int)
parser.add_argument("--note")
args, rest = parser.parse_known_args()
for step in range(args.epochs):
    flowml.log_metric("loss", args.alpha / (step + 1), step=step)
print("trained with", json.dumps(sys.argv[1:]))
"""

SLEEPER = """
import os, sys, time
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("sleeping", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(
        tmp_path / "demo", {"MLproject": MLPROJECT, "train.py": TRAIN, "sleeper.py": SLEEPER}
    )


def prefect_flow_run(flow_run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id))


def prefect_logs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=60)  # logs are sent in background batches
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)])))
    return [log.message for log in logs]


def prefect_flow_runs_named(flow_name: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        return len(
            client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
        )


def test_run_from_directory_tracks_params_metrics_tags_and_logs(project: Path) -> None:
    result = flowml.projects.run(
        str(project), "main", {"epochs": "3", "note": "a b; rm -rf /", "seed": 7}
    )
    assert result.status == "FINISHED" and result.exit_code == 0
    run = TrackingClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == result.experiment_id == DEFAULT_EXPERIMENT_ID
    assert run.data.params == {"alpha": "0.5", "epochs": "3", "note": "a b; rm -rf /", "seed": "7"}
    assert run.data.metrics["loss"] == pytest.approx(0.5 / 3)  # the child's metrics landed here
    assert len(TrackingClient().get_metric_history(result.run_id, "loss")) == 3
    tags = run.data.tags
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(project.resolve())
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags[systags.PREFECT_FLOW_RUN_ID] == result.flow_run_id
    assert "mlflow.source.git.commit" not in tags  # not a git project

    flow_run = prefect_flow_run(result.flow_run_id)
    assert flow_run.name.startswith("main-")  # readable, and one name per run
    assert run.info.run_name == flow_run.name
    assert "flowml.prefect.deployment_id" not in tags  # not a deployment's run
    assert flow_run.state is not None and flow_run.state.is_completed()
    assert flow_run.parameters["epochs"] == 3 and flow_run.parameters["alpha"] == 0.5
    assert flow_run.parameters["extra_parameters"] == {"seed": "7"}
    messages = prefect_logs(result.flow_run_id)
    argv = ["--alpha", "0.5", "--epochs", "3", "--note", "a b; rm -rf /", "--seed", "7"]
    assert f"trained with {json.dumps(argv)}" in messages  # streamed, and passed literally


def test_run_into_a_named_experiment(project: Path) -> None:
    first = flowml.projects.run(str(project), "main", {"epochs": 1}, experiment="iris")
    second = flowml.projects.run(str(project), "main", {"epochs": 1}, experiment="iris")
    client = TrackingClient()
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    assert first.experiment_id == second.experiment_id == experiment.experiment_id


def test_run_from_a_local_git_repository_at_a_commit_and_subdirectory(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    script = "import flowml; flowml.log_metric('version', {v})\n"
    write(
        repo,
        {"models/iris/MLproject": "name: iris\nentry_points: {main: {command: python t.py}}\n"},
    )
    write(repo, {"models/iris/t.py": script.format(v=1)})
    first = commit_all(repo, "one")
    write(repo, {"models/iris/t.py": script.format(v=2)})
    commit_all(repo, "two")

    result = flowml.projects.run(f"{repo}#models/iris", version=first)
    run = TrackingClient().get_run(result.run_id)
    assert run.data.metrics["version"] == 1.0
    assert run.data.tags["mlflow.source.git.commit"] == first
    assert run.data.tags["mlflow.source.git.repoURL"] == repo.resolve().as_uri()
    assert run.data.tags["mlflow.source.name"] == f"{repo.resolve().as_uri()}#models/iris"
    assert prefect_flow_run(result.flow_run_id).name.startswith("main-")

    latest = flowml.projects.run(repo.resolve().as_uri() + "#models/iris")  # a git URL
    assert TrackingClient().get_run(latest.run_id).data.metrics["version"] == 2.0


QUOTING = r"""
name: quoting
entry_points:
  main:
    parameters: {out: uri, bare: string, single: string, double: string, text: string}
    command: "python argv.py {out} {bare} '{single}' \"{double}\" \"say {text} now\" --b={bare}"
"""


def test_no_parameter_value_runs_through_the_runner_in_any_quoting(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    project = write(
        tmp_path / "quoting",
        {
            "MLproject": QUOTING,
            "argv.py": "import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n",
        },
    )
    values = {
        "bare": f"$(touch {marker})",
        "single": f"'; touch {marker}; '",
        "double": f'"; touch {marker}; "',
        "text": f"`touch {marker}`\n$(touch {marker})",
        "extra": f"x\ntouch {marker} #",
    }
    out = tmp_path / "argv.json"
    result = flowml.projects.run(str(project), "main", {"out": str(out), **values})
    assert result.status == "FINISHED"
    assert json.loads(out.read_text()) == [
        values["bare"],
        values["single"],
        values["double"],
        f"say {values['text']} now",
        f"--b={values['bare']}",
        "--extra",
        values["extra"],
    ]
    assert not marker.exists()


def test_failing_command_gives_a_failed_run(project: Path) -> None:
    with pytest.raises(ProjectRunFailed, match="exited with code 3") as info:
        flowml.projects.run(str(project), "fail")
    assert info.value.exit_code == 3
    run = TrackingClient().get_run(info.value.run_id)
    assert run.info.status == "FAILED"
    flow_run_id = run.data.tags[systags.PREFECT_FLOW_RUN_ID]
    state = prefect_flow_run(flow_run_id).state
    assert state is not None and state.is_failed()
    assert "about to fail" in prefect_logs(flow_run_id)
    assert run.data.tags["flowml.error.type"] == "ProjectRunFailed"
    assert run.data.tags["flowml.error.message"] == "Entry point 'fail' exited with code 3"
    # Published like a tracked flow's run: a summary naming the run and its error.
    from flowml.tasks import publisher

    publisher.flush()
    summary = project_summary(flow_run_id)
    assert run.info.run_id in summary.description and "flowml runs show" in summary.description
    assert "FAILED" in summary.data and "exited with code 3" in summary.data


@pytest.mark.parametrize(
    ("entry_point", "parameters", "options", "message"),
    [
        ("main", {}, {}, "needs a value for 'epochs'"),
        ("main", {"epochs": "many"}, {}, "Parameter 'epochs' expects an int"),
        ("nope", {}, {}, "declared entry points are fail, main, sleep"),
        ("main", {"epochs": 1}, {"env_manager": "pipenv"}, "Unknown env_manager 'pipenv'"),
    ],
)
def test_bad_calls_create_nothing(
    project: Path, entry_point: str, parameters: dict, options: dict, message: str
) -> None:
    name = f"bad-calls-{uuid.uuid4().hex[:8]}"
    mlproject = project / "MLproject"
    mlproject.write_text(mlproject.read_text().replace("name: demo", f"name: {name}"))
    with pytest.raises(InvalidParameter, match=message):
        flowml.projects.run(str(project), entry_point, parameters, **options)
    client = TrackingClient()
    assert list(client.search_runs([DEFAULT_EXPERIMENT_ID])) == []
    assert prefect_flow_runs_named(name) == 0


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_project_without_engine_fails_before_anything_is_created(tmp_path: Path) -> None:
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        pytest.skip("a Docker engine is running here")
    name = f"docker-{uuid.uuid4().hex[:8]}"
    project = write(
        tmp_path / "docker",
        {"MLproject": f"name: {name}\ndocker_env: {{image: python:3.11}}\n", "t.py": ""},
    )
    with pytest.raises(EnvironmentUnavailable, match="no Docker engine is reachable"):
        flowml.projects.run(str(project), "t.py")
    assert list(TrackingClient().search_runs([DEFAULT_EXPERIMENT_ID])) == []
    assert prefect_flow_runs_named(name) == 0


def test_interrupting_the_flow_kills_the_command_and_marks_the_run_killed(
    project: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    main_thread = threading.main_thread().ident
    assert main_thread == threading.get_ident()

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 120
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Ctrl-C as the terminal delivers it: SIGINT to the thread running the flow.
        signal.pthread_kill(main_thread, signal.SIGINT)

    helper = threading.Thread(target=interrupt_when_started, daemon=True)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        flowml.projects.run(str(project), "sleep", {"pidfile": str(pidfile)})
    helper.join()
    child = int(pidfile.read_text())
    assert not alive(child)
    client = TrackingClient()
    (run,) = client.search_runs([DEFAULT_EXPERIMENT_ID])
    assert run.info.status == "KILLED"
    assert run.data.params["pidfile"] == str(pidfile)


def test_virtualenv_run_reuses_its_cached_environment(tmp_path: Path) -> None:
    project = write(
        tmp_path / "venv-project",
        {
            "MLproject": """
            name: venv-project
            python_env: python_env.yaml
            entry_points:
              main:
                parameters: {out: uri}
                command: "python write_prefix.py {out}"
            """,
            "python_env.yaml": "build_dependencies: []\ndependencies: []\n",
            "write_prefix.py": "import sys\nopen(sys.argv[1], 'w').write(sys.prefix)\n",
        },
    )
    envs = Path(os.environ["FLOWML_HOME"]) / "envs"
    first = flowml.projects.run(str(project), parameters={"out": str(tmp_path / "1.txt")})
    prefix = Path((tmp_path / "1.txt").read_text())
    assert prefix.parent == envs
    (prefix / "sentinel").write_text("kept")
    second = flowml.projects.run(str(project), parameters={"out": str(tmp_path / "2.txt")})
    assert Path((tmp_path / "2.txt").read_text()) == prefix
    assert (prefix / "sentinel").read_text() == "kept"  # reused, not recreated
    assert any("Reusing environment" in m for m in prefect_logs(second.flow_run_id))
    for result in (first, second):
        assert (
            TrackingClient().get_run(result.run_id).data.tags["mlflow.project.env"] == "virtualenv"
        )


def test_as_flow_has_a_typed_parameter_schema(project: Path) -> None:
    flow = flowml.projects.as_flow(str(project), "main")
    assert flow.name == "demo"
    schema = flow.parameters.model_dump_for_openapi()
    properties = schema["properties"]
    assert properties["alpha"]["type"] == "number" and properties["alpha"]["default"] == 0.5
    assert properties["epochs"]["type"] == "integer"
    assert properties["note"]["type"] == "string"
    assert schema["required"] == ["epochs"]
    assert properties["alpha"]["description"] == "(float)"
    result = flow(epochs=2, alpha=1.0)  # the flow itself, as a user composing it would call it
    assert TrackingClient().get_run(result.run_id).data.metrics["loss"] == 0.5
