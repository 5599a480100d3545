"""Prefect at production scale, against the session's real Prefect server: every artifact and
event of a large flow is published even when its process exits right after the flow, and a
deployment run cancelled from the API closes its tracked runs (served by ``.serve()`` and by
a process worker), from the process Prefect runs the cancellation hooks in."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run
from flowml.tasks.prefect_ui import EVENT_FINISHED, EVENT_STARTED
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import RunStatus

from .helpers import eventually

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect")]

HERE = Path(__file__).parent
SCRIPT = HERE / "scale_flows.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of the processes a test starts: this session's Prefect server, a
    store of the test's own."""
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "FLOWML_HOME": str(tmp_path / "home"),
        "FLOWML_TRACKING_URI": f"sqlite:///{tmp_path / 'store.db'}",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[TrackingClient]:
    client = TrackingClient(env["FLOWML_TRACKING_URI"])
    yield client
    client.close()


def _artifacts(flow_run_id: str) -> list[Any]:
    found: list[Any] = []
    with get_client(sync_client=True) as prefect_client:
        while True:
            page = prefect_client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                ),
                offset=len(found),
                limit=200,
            )
            found += page
            if len(page) < 200:
                return found


def _event_resources(name: str, flow_run_id: str) -> set[str]:
    """The ``flowml.run.<id>`` resources of the ``name`` events related to a flow run."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    found: set[str] = set()
    with get_client(sync_client=True) as prefect_client:
        page = prefect_client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[name]),
                related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            ),
            limit=50,  # the server's maximum page
        )
        while True:
            found |= {e.resource.id for e in page.events}
            if not page.next_page:
                return found
            page = prefect_client.read_events_page(page.next_page)


def _run_many(env: dict[str, str], tasks: int) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "many", str(tasks)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "can't register atexit" not in done.stderr
    assert "not published" not in done.stderr and "were not sent" not in done.stderr
    return done.stdout.strip().splitlines()[-1], done.stderr


def _check_published(
    store: TrackingClient, flow_run_id: str, tasks: int, artifacts: list[Any]
) -> None:
    keys = [a.key for a in artifacts]
    expected = {f"flowml-many-steps-step-{i}-summary" for i in range(tasks)}
    expected |= {"flowml-many-steps-summary", "flowml-many-steps-table"}
    # One key per task run (nothing overwrites another) and none missing. Delivery is at
    # least once: a request Prefect's client retried may add a second version of a key.
    assert set(keys) == expected, sorted(expected - set(keys))[:10]
    flow_run = run_for_flow_run(store, flow_run_id)
    assert flow_run is not None
    assert all(flow_run.info.run_id in a.description for a in artifacts if a.task_run_id is None)

    expected = {f"flowml.run.{r.info.run_id}" for r in store.search_runs(
        [flow_run.info.experiment_id], max_results=1000
    )}  # fmt: skip
    assert len(expected) == tasks + 1
    for name in (EVENT_STARTED, EVENT_FINISHED):
        eventually(
            lambda name=name: _event_resources(name, flow_run_id) >= expected or None,
            f"{tasks + 1} {name} events",
            deadline_s=180,
        )


def test_a_500_task_flow_leaves_what_is_queued_at_exit_to_the_outbox_and_loses_nothing(env, store):
    """The flow's process exits as soon as the flow returns: what is still queued is written
    to the outbox and published by a detached process (the old atexit flush lost most of it,
    the flush before Prefect's shutdown kept the program alive for seconds)."""
    tasks = 500
    flow_run_id, _ = _run_many(env, tasks)
    outbox = Path(env["FLOWML_HOME"]) / "outbox"
    assert outbox.is_dir()  # something was left to it

    # The outbox process deletes its file once everything in it was sent.
    eventually(lambda: not list(outbox.glob("*.jsonl*")), "an empty outbox", deadline_s=300)
    _check_published(store, flow_run_id, tasks, _artifacts(flow_run_id))


def test_with_publish_at_exit_wait_everything_is_published_before_the_process_exits(env, store):
    tasks = 150
    flow_run_id, _ = _run_many({**env, "FLOWML_PUBLISH_AT_EXIT": "wait"}, tasks)
    assert not (Path(env["FLOWML_HOME"]) / "outbox").exists()
    _check_published(store, flow_run_id, tasks, _artifacts(flow_run_id))


def _wait_for_deployment(name: str, process: subprocess.Popen[str]) -> Any:
    def probe() -> Any:
        assert process.poll() is None, "the runner died (see process.log)"
        with get_client(sync_client=True) as prefect_client:
            try:
                return prefect_client.read_deployment_by_name(name)
            except Exception:  # not registered yet
                return None

    return eventually(probe, f"deployment {name}", deadline_s=180)


def _cancel_and_check(
    deployment: Any, tmp_path: Path, store: TrackingClient, process: subprocess.Popen[str]
) -> None:
    from prefect.states import Cancelling

    release = tmp_path / "release"
    with get_client(sync_client=True) as prefect_client:
        flow_run = prefect_client.create_flow_run_from_deployment(
            deployment.id, parameters={"path": str(release)}
        )

    def started() -> bool:
        assert process.poll() is None, "the runner or worker died"
        return Path(str(release) + ".started").exists()

    eventually(started, "the blocking task to start", deadline_s=300)
    tracked = eventually(lambda: run_for_flow_run(store, flow_run.id), "the flow's tracked run")
    assert tracked.info.status == RunStatus.RUNNING
    with get_client(sync_client=True) as prefect_client:
        prefect_client.set_flow_run_state(flow_run.id, Cancelling(), force=True)

    def closed() -> Any:
        run = store.get_run(tracked.info.run_id)
        return run if run.info.status != RunStatus.RUNNING else None

    closed_run = eventually(closed, "the tracked flow run to close", deadline_s=180)
    assert closed_run.info.status == RunStatus.KILLED
    tasks = {
        r.data.tags[ptags.TASK_NAME]: r
        for r in store.search_runs(
            [tracked.info.experiment_id], f"tags.{ptags.FLOW_RUN_ID} = '{flow_run.id}'"
        )
        if ptags.TASK_NAME in r.data.tags
    }
    assert tasks["step"].info.status == RunStatus.FINISHED
    assert tasks["wait_for"].info.status == RunStatus.KILLED
    assert tasks["wait_for"].info.end_time is not None
    resource = f"flowml.run.{tracked.info.run_id}"
    eventually(
        lambda: resource in _event_resources(EVENT_FINISHED, str(flow_run.id)),
        "the flow run's flowml.run.finished event",
        deadline_s=120,
    )
    release.touch()  # nothing blocks any more, whatever happened


@contextlib.contextmanager
def _started(
    command: list[str], env: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[str]]:
    """A runner or worker process, stopped (by its pid) when the block ends. Its output goes
    to ``process.log`` in the test's directory (a pipe nobody reads could fill up)."""
    with (tmp_path / "process.log").open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def test_cancelling_a_served_deployment_run_closes_its_tracked_runs(env, store, tmp_path):
    name = f"cancel-{uuid.uuid4().hex[:8]}"
    with _started([sys.executable, str(SCRIPT), "serve", name], env, tmp_path) as process:
        deployment = _wait_for_deployment(f"blocking/{name}", process)
        _cancel_and_check(deployment, tmp_path, store, process)


def test_cancelling_a_process_worker_run_closes_its_tracked_runs(env, store, tmp_path):
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.flows import Flow

    pool = f"pool-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as prefect_client:
        prefect_client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    flow = Flow.from_source(source=str(HERE), entrypoint="scale_flows.py:blocking")
    deployment_id = flow.deploy(
        name=pool, work_pool_name=pool, build=False, push=False, print_next_steps=False
    )
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    with _started([*command, "--type", "process"], env, tmp_path) as process:
        with get_client(sync_client=True) as prefect_client:
            deployment = prefect_client.read_deployment(deployment_id)
        _cancel_and_check(deployment, tmp_path, store, process)
