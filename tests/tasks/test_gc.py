"""``flowml runs gc``: RUNNING runs whose Prefect run is over or gone, or whose process died,
are ended; live ones are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Running

from flowml.tasks import tags as ptags
from flowml.tasks.gc import GC_REASON_TAG, collect_orphans
from flowml.tasks.identity import hostname
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import RunStatus

pytestmark = pytest.mark.usefixtures("prefect")


@flow
def finishes(fail: bool = False) -> None:
    if fail:
        raise RuntimeError("this flow run fails")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _orphan(client: TrackingClient, kind: str, pid: int | None = None, **ids: str) -> str:
    tags = {ptags.RUN_KIND: kind, ptags.OWNER: f"{hostname()}:{pid or os.getpid()}"}
    tags.update({ptags.FLOW_RUN_ID: ids["flow_run_id"]} if "flow_run_id" in ids else {})
    tags.update({ptags.TASK_RUN_ID: ids["task_run_id"]} if "task_run_id" in ids else {})
    return client.create_run("0", tags=tags).info.run_id


def test_gc_ends_runs_whose_prefect_run_is_over_or_gone(client):
    completed = finishes(return_state=True).state_details.flow_run_id
    failed = finishes(fail=True, return_state=True).state_details.flow_run_id
    with get_client(sync_client=True) as prefect_client:
        running = prefect_client.create_flow_run(finishes, state=Running()).id
        abandoned = prefect_client.create_flow_run(finishes, state=Running()).id
    runs = {
        "completed": _orphan(client, "flow", flow_run_id=str(completed)),
        "failed": _orphan(client, "flow", flow_run_id=str(failed)),
        "gone": _orphan(client, "flow", flow_run_id=str(uuid.uuid4())),
        "task of ended flow": _orphan(
            client, "task", flow_run_id=str(completed), task_run_id=str(uuid.uuid4())
        ),
        "live": _orphan(client, "flow", flow_run_id=str(running)),
        "live task": _orphan(
            client, "task", flow_run_id=str(running), task_run_id=str(uuid.uuid4())
        ),
        "dead process": _orphan(client, "flow", pid=_dead_pid(), flow_run_id=str(abandoned)),
    }
    plain = client.create_run("0").info.run_id  # not ours: never touched

    preview = {c.run_id: c for c in collect_orphans(client, dry_run=True)}
    assert {client.get_run(r).info.status for r in runs.values()} == {RunStatus.RUNNING}

    collected = {c.run_id: c for c in collect_orphans(client)}
    assert collected.keys() == preview.keys()
    expected = {
        "completed": RunStatus.FINISHED,
        "failed": RunStatus.FAILED,
        "gone": RunStatus.KILLED,
        "task of ended flow": RunStatus.KILLED,
        "live": RunStatus.RUNNING,
        "live task": RunStatus.RUNNING,
        "dead process": RunStatus.KILLED,
    }
    for label, run_id in runs.items():
        run = client.get_run(run_id)
        assert run.info.status == expected[label], label
        if expected[label] != RunStatus.RUNNING:
            assert run.data.tags[GC_REASON_TAG] == collected[run_id].reason
            assert run.info.end_time is not None
    assert "no longer exists" in collected[runs["gone"]].reason
    assert "is gone while Prefect shows it running" in collected[runs["dead process"]].reason
    # Nothing else can end the dead process's flow run: gc crashes it; the live one runs on.
    assert preview[runs["dead process"]].prefect_state is None  # a dry run changes nothing
    assert collected[runs["dead process"]].prefect_state == "CRASHED"
    assert {c.prefect_state for r, c in collected.items() if r != runs["dead process"]} == {None}
    with get_client(sync_client=True) as prefect_client:
        crashed = prefect_client.read_flow_run(abandoned).state
        assert crashed.type.value == "CRASHED"
        assert "process died" in crashed.message
        assert prefect_client.read_flow_run(running).state.type.value == "RUNNING"
    assert client.get_run(plain).info.status == RunStatus.RUNNING
    assert collect_orphans(client) == []  # nothing left to collect


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flowml.cli", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_collects_orphans_and_prints_lineage(client):
    from prefect.settings import PREFECT_API_URL

    from flowml.tracking.lineage import INPUT, LineageEntry

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "FLOWML_TRACKING_URI": client.tracking_uri,
        "FLOWML_ARTIFACT_ROOT": client.artifact_root,
    }
    orphan = _orphan(client, "flow", pid=_dead_pid())
    planned = json.loads(_cli(env, "runs", "gc", "--dry-run", "-o", "json"))
    assert [c["run_id"] for c in planned] == [orphan]
    assert client.get_run(orphan).info.status == RunStatus.RUNNING
    assert "Collected" in _cli(env, "runs", "gc")  # the table, for people
    assert client.get_run(orphan).info.status == RunStatus.KILLED

    client.store.log_lineage(orphan, [LineageEntry(INPUT, "dataset", "s3://b/wine.csv", "wine")])
    graph = json.loads(_cli(env, "runs", "lineage", orphan, "-o", "json"))
    assert graph["root"] == f"run:{orphan}"
    assert {n["kind"] for n in graph["nodes"]} == {"run", "dataset"}
    assert "dataset wine (s3://b/wine.csv) --> [wine] run" in _cli(env, "runs", "lineage", orphan)
