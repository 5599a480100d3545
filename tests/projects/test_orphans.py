"""A ``flowml run`` killed outright (SIGKILL, out of memory) takes its command's whole process
tree with it, and ``flowml runs gc`` ends its run KILLED like any other run of a dead process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from flowml.tasks.gc import GC_REASON_TAG
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import RunStatus
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

from .helpers import alive, write
from .test_deploy import wait_for

pytestmark = pytest.mark.usefixtures("prefect_harness")

MLPROJECT = """
name: looper
entry_points:
  main:
    parameters:
      pids: string
    command: "python worker.py {pids} child"
"""

# Logs into the project run without `flowml.start_run`, so the run stays owned by
# `flowml run`; the child also starts a grandchild doing the same. Each writes its pid first.
WORKER = """
import os, subprocess, sys, time
from flowml.tracking.client import TrackingClient

pids, role = sys.argv[1], sys.argv[2]
if role == "child":
    subprocess.Popen([sys.executable, __file__, pids, "grandchild"])
with open(os.path.join(pids, role + ".tmp"), "w") as fh:
    fh.write(str(os.getpid()))
os.replace(os.path.join(pids, role + ".tmp"), os.path.join(pids, role))
client = TrackingClient()
step = 0
while True:
    client.log_metric(os.environ["FLOWML_RUN_ID"], role, step, step=step)
    step += 1
    time.sleep(0.1)
"""


def _count(client: TrackingClient, run_id: str, key: str) -> int:
    return len(client.get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_killed_flowml_run_takes_its_command_tree_along_and_gc_ends_the_run(
    tmp_path: Path,
) -> None:
    from prefect.settings import PREFECT_API_URL

    project = write(tmp_path / "looper", {"MLproject": MLPROJECT, "worker.py": WORKER})
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    client = TrackingClient()
    # A live run of a live process (this one): gc must leave it alone.
    bystander = client.create_run(DEFAULT_EXPERIMENT_ID).info.run_id
    argv = [
        sys.executable, "-m", "flowml.cli", "run", str(project), "-P", f"pids={pids}",
        "--env-manager", "local",
    ]  # fmt: skip
    log = tmp_path / "flowml-run.log"
    runner = subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    started: list[int] = []
    try:
        for role in ("child", "grandchild"):
            pid = wait_for(f"the {role} to start", lambda r=role: _read_pid(pids / r))
            started.append(pid)

        def project_run() -> str | None:
            for run in client.search_runs([DEFAULT_EXPERIMENT_ID]):
                if run.info.run_id != bystander:
                    return run.info.run_id
            return None

        run_id = wait_for("the project run", project_run)
        for role in ("child", "grandchild"):
            wait_for(f"metrics of the {role}", lambda r=role: _count(client, run_id, r) > 0)
        assert client.get_run(run_id).data.tags[systags.OWNER].split(":")[1] == str(runner.pid)

        runner.send_signal(signal.SIGKILL)
        runner.wait()
        for pid in started:
            wait_for(f"process {pid} to end", lambda p=pid: not alive(p), limit=60)
        counts = {role: _count(client, run_id, role) for role in ("child", "grandchild")}

        done = subprocess.run(
            [sys.executable, "-m", "flowml.cli", "runs", "gc", "-o", "json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        collected = json.loads(done.stdout)
        assert [c["run_id"] for c in collected] == [run_id]
        run = client.get_run(run_id)
        assert run.info.status == RunStatus.KILLED
        assert f"its process {runner.pid} is gone" in run.data.tags[GC_REASON_TAG]
        # Its Prefect flow run, which nothing else can end now, is CRASHED.
        assert collected[0]["prefect_state"] == "CRASHED"
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as prefect_client:
            flow_run = prefect_client.read_flow_run(run.data.tags[systags.PREFECT_FLOW_RUN_ID])
            assert flow_run.state.type.value == "CRASHED"
        assert client.get_run(bystander).info.status == RunStatus.RUNNING
        # Nothing is left to log into the run.
        assert {role: _count(client, run_id, role) for role in counts} == counts
    except BaseException:
        print(log.read_text())  # the runner's own account, shown on failure
        raise
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in started:  # never leave a stray process on a failure
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    return int(path.read_text()) if path.exists() else None


def test_a_resumed_project_run_is_owned_by_the_resuming_process(tmp_path: Path) -> None:
    # A retried flow run resumes its tracked run (same run key): the dead process that
    # started it must not stay its owner, or `flowml runs gc` would end the live retry.
    from prefect.client.schemas.objects import FlowRun

    from flowml.projects.runner import _start_run
    from flowml.projects.sources import fetch_project
    from flowml.projects.spec import load_project
    from flowml.tracking.owner import current_owner, hostname

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = TrackingClient()
    flow_run_id = "8c1d9e36-6a53-4a8e-9b4e-0a0b5f0f9d11"
    flow_run = FlowRun(id=flow_run_id, name="main-retried", flow_id=uuid.uuid4())
    first = client.create_run(
        DEFAULT_EXPERIMENT_ID,
        tags={systags.OWNER: f"{hostname()}:{dead.pid}"},
        run_key=f"flowml.project:{flow_run_id}",
    ).info.run_id
    project = write(tmp_path / "looper", {"MLproject": MLPROJECT, "worker.py": WORKER})
    with fetch_project(str(project), None) as source:
        entry = load_project(source.work_dir).get_entry_point("main")
        resumed = _start_run(client, DEFAULT_EXPERIMENT_ID, source, entry, "local", flow_run)
    assert resumed == first
    assert client.get_run(first).data.tags[systags.OWNER] == current_owner()
