from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cloudpickle
import pytest

import flowml.projects
from flowml.exceptions import InvalidParameter
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

from .helpers import alive, project_summary, write
from .test_runner import MLPROJECT, SLEEPER, TRAIN

pytestmark = pytest.mark.usefixtures("prefect_harness")
T = TypeVar("T")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(
        tmp_path / "demo", {"MLproject": MLPROJECT, "train.py": TRAIN, "sleeper.py": SLEEPER}
    )


def test_deployment_has_schedule_schema_and_defaults(project: Path) -> None:
    deployment = flowml.projects.to_deployment(
        str(project), "main", name="nightly", cron="0 3 * * *", parameters={"epochs": "5"}
    )
    assert deployment.name == "nightly" and deployment.flow_name == "demo"
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 3 * * *"
    assert deployment.parameters == {"epochs": 5}  # converted to the declared type
    schema = deployment._parameter_openapi_schema.model_dump_for_openapi()
    assert schema["required"] == ["epochs"]
    assert schema["properties"]["alpha"] == {
        "default": 0.5, "description": "(float)", "position": 0, "title": "alpha", "type": "number",
    }  # fmt: skip
    assert schema["properties"]["epochs"]["type"] == "integer"
    # The entrypoint is a generated module that rebuilds this flow, so runners can import it.
    path, _, attribute = deployment.entrypoint.rpartition(":")
    assert Path(path).parent == Path(os.environ["FLOWML_HOME"]) / "deployments"
    namespace: dict = {}
    exec(compile(Path(path).read_text(), path, "exec"), namespace)
    assert namespace[attribute].name == "demo"
    assert namespace[attribute].parameters == deployment._parameter_openapi_schema

    every = flowml.projects.to_deployment(
        str(project), "fail", name="hourly", interval=3600, concurrency_limit=2
    )
    assert every.schedules[0].schedule.interval.total_seconds() == 3600
    assert every.parameters == {}
    assert every.concurrency_limit == 2 and deployment.concurrency_limit is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "not a cron"}, "Cannot build deployment"),
        ({"cron": "0 3 * * *", "interval": 60}, "not both"),
        ({"parameters": {"epochs": "many"}}, "expects an int"),
        ({"name": "bad/name"}, "Cannot build deployment"),
        ({"concurrency_limit": 0}, "concurrency_limit must be >= 1"),
    ],
)
def test_invalid_deployments(project: Path, options: dict, message: str) -> None:
    options = {"name": "nightly", **options}
    with pytest.raises(InvalidParameter, match=message):
        flowml.projects.to_deployment(str(project), "main", **options)


def test_flow_survives_the_pickling_serve_uses(project: Path) -> None:
    # `serve` ships the flow object to a spawned subprocess with cloudpickle.
    flow = cloudpickle.loads(cloudpickle.dumps(flowml.projects.as_flow(str(project), "main")))
    result = flow(epochs=1)
    assert TrackingClient().get_run(result.run_id).info.status == "FINISHED"


def wait_for(what: str, probe: Callable[[], T | None], limit: float = 180) -> T:
    """Poll ``probe`` until it returns something (the limit only bounds a broken run)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.slow
def test_served_deployment_runs_and_cancellation_kills_the_command(
    project: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Cancelling

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    argv = [
        sys.executable, "-c", "import sys; from flowml.cli import main; sys.exit(main())",
        "projects", "deploy", str(project), "-e", "sleep", "--name", "sleepy",
        "--cron", "0 3 * * *", "--tag", "nightly", "--concurrency-limit", "1",
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    server = subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        with get_client(sync_client=True) as client:

            def deployment():
                try:
                    return client.read_deployment_by_name("demo/sleepy")
                except Exception:
                    return None

            served = wait_for("the served deployment", deployment)
            assert [s.schedule.cron for s in served.schedules] == ["0 3 * * *"]
            assert served.parameter_openapi_schema["required"] == ["pidfile"]

            pidfile = tmp_path / "served.pid"
            flow_run = run_deployment(served.id, parameters={"pidfile": str(pidfile)}, timeout=0)
            started = wait_for(
                "the command to start", lambda: pidfile.exists() and pidfile.read_text()
            )
            child = int(started)
            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)

            def terminal():
                state = client.read_flow_run(flow_run.id).state
                return state if state is not None and state.is_final() else None

            final = wait_for("the cancelled flow run", terminal)
            name = client.read_flow_run(flow_run.id).name  # given when the run started
        assert final.is_cancelled(), final
        assert not alive(child)
        (run,) = TrackingClient().search_runs([DEFAULT_EXPERIMENT_ID])
        assert run.data.tags[systags.PREFECT_FLOW_RUN_ID] == str(flow_run.id)
        assert run.info.status == "KILLED"
        # Named like its flow run (not after the entry point), with its deployment and tags.
        assert run.info.run_name == name and name.startswith("sleep-")
        assert run.data.tags["flowml.prefect.deployment_id"] == str(served.id)
        assert run.data.tags["flowml.prefect.tags"] == "nightly"
        assert served.global_concurrency_limit.limit == 1  # --concurrency-limit
        summary = wait_for("the run's summary artifact", lambda: project_summary(flow_run.id))
        assert run.info.run_id in summary.description and "KILLED" in summary.data
    except BaseException:
        print(log.read_text())  # the serving process's own account, shown on failure
        raise
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
