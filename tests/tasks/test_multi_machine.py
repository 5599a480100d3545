"""Many machines, one endpoint: PostgreSQL behind ``flowml server`` (2 uvicorn workers), a
real ``prefect server`` on PostgreSQL (``benchmarks/_prefect_server.py``) and two Prefect
process workers running deployment runs of a tracked flow concurrently, both logging only
through the flowml server (``FLOWML_TRACKING_URI=http://...``). Nothing is lost: every flow
run's tracked run and its task runs, params, metric histories and tags are in the database,
all FINISHED."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback_server import LoopbackServer
from prefect.client.orchestration import get_client

from flowml.tasks import tags as ptags
from flowml.tracking.entities import RunStatus
from flowml.tracking.store.sql import SqlStore

from .fleet_flows import STEPS
from .helpers import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HERE = Path(__file__).parent
REPO = HERE.parents[1]
FLOW_RUNS = 6
MEMBERS = 3


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[LoopbackServer]:
    root = tmp_path / "server"
    root.mkdir()
    srv = LoopbackServer(root, store_uri=pg_url, workers=2)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def prefect_api() -> Iterator[str]:
    """A ``prefect server`` on its own PostgreSQL database, this test's Prefect API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    spec = importlib.util.spec_from_file_location(
        "_flowml_prefect_server", REPO / "benchmarks" / "_prefect_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with module.prefect_server() as api, temporary_settings({PREFECT_API_URL: api}):
        yield api


@contextlib.contextmanager
def _workers(pool: str, env: dict[str, str], tmp_path: Path) -> Iterator[list[Any]]:
    """Two process workers ("two machines"), stopped by their pids when the block ends."""
    started: list[subprocess.Popen[str]] = []
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    try:
        for n in range(2):
            log = (tmp_path / f"worker-{n}.log").open("w")
            started.append(
                subprocess.Popen(
                    [*command, "--type", "process", "--name", f"machine-{n}"],
                    env=env,
                    cwd=HERE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_two_workers_log_concurrently_through_the_server(
    server: LoopbackServer, prefect_api: str, pg_url: str, tmp_path: Path
) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.objects import StateType
    from prefect.flows import Flow

    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "FLOWML_HOME": str(tmp_path / "home"),
        # The workers know only the server: no database URI, no artifact root.
        "FLOWML_TRACKING_URI": server.url,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    pool = f"fleet-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as prefect_client:
        prefect_client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    flow = Flow.from_source(source=str(HERE), entrypoint="fleet_flows.py:fleet")
    deployment_id = flow.deploy(
        name=pool, work_pool_name=pool, build=False, push=False, print_next_steps=False
    )
    with get_client(sync_client=True) as prefect_client:
        flow_runs = [
            prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"index": i})
            for i in range(FLOW_RUNS)
        ]

    with _workers(pool, env, tmp_path) as workers:

        def all_final() -> list[Any] | None:
            assert all(w.poll() is None for w in workers), "a worker died (see worker-*.log)"
            with get_client(sync_client=True) as prefect_client:
                states = [prefect_client.read_flow_run(r.id) for r in flow_runs]
            return states if all(s.state and s.state.is_final() for s in states) else None

        done = eventually(all_final, "every deployment run to end", deadline_s=600)
    assert [r.state.type for r in done] == [StateType.COMPLETED] * FLOW_RUNS

    # Read straight from PostgreSQL: what the server stored, not what it answers.
    store = SqlStore(pg_url, str(tmp_path / "unused"))
    experiment = store.get_experiment_by_name("fleet")
    assert experiment is not None
    runs = list(store.search_runs([experiment.experiment_id], max_results=1000))
    parents = {
        r.data.tags.get(ptags.FLOW_RUN_ID): r for r in runs if ptags.TASK_NAME not in r.data.tags
    }
    assert set(parents) == {str(r.id) for r in flow_runs}
    tasks = [r for r in runs if ptags.TASK_NAME in r.data.tags]
    assert len(tasks) == FLOW_RUNS * MEMBERS
    assert all(r.info.status == RunStatus.FINISHED for r in runs)
    assert all(r.info.artifact_uri.startswith(server.destination.as_posix()) for r in runs)
    for flow_run in flow_runs:
        parent = parents[str(flow_run.id)]
        index = flow_run.parameters["index"]
        assert parent.data.params["index"] == str(index)
        mine = [t for t in tasks if t.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(t.data.tags["fleet.member"] for t in mine) == ["0", "1", "2"]
        for task in mine:
            lr = 0.1 * (index + 1)
            assert task.data.params["lr_used"] == str(lr)
            history = store.get_metric_history(task.info.run_id, "loss")
            assert [m.step for m in history] == list(range(STEPS))
            assert task.data.metrics["loss"] == pytest.approx(lr / STEPS)
    store.close()
