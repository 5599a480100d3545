"""Trace reads, tags and deletes under ``flowml server --auth token``, over real HTTP: READ
to read, EDIT to tag, MANAGE to delete, searches narrowed to readable experiments, and the
genuine MLflow client refused with MLflow's code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.server.test_auth_http import Team, _experiment, _team
from tests.server.wire_helpers import error, ok

V3 = "/api/3.0/mlflow/traces"
V2 = "/api/2.0/mlflow/traces"
FLOWML = "/api/2.0/flowml/traces"


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Default permission NO_PERMISSIONS: users see only what they created or were granted."""
    team = _team(tmp_path_factory.mktemp("traces"), "--default-permission", "NO_PERMISSIONS")
    yield team
    team.server.stop()


def _start(client: httpx.Client, experiment_id: str) -> str:
    trace_id = "tr-" + uuid.uuid4().hex
    info = {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": "2026-12-02T10:00:00Z",
        "state": "OK",
        "tags": {"owner": "x"},
    }
    ok(client.post(V3, json={"trace": {"trace_info": info}}))
    return trace_id


def _location(experiment_id: str) -> dict:
    return {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}


def _grant(owner: httpx.Client, experiment_id: str, level: str) -> None:
    body = {"experiment_id": experiment_id, "username": "alice", "permission": level}
    reply = owner.post("/api/2.0/mlflow/experiments/permissions/create", json=body)
    if reply.status_code != 200:  # already granted: update it
        reply = owner.patch("/api/2.0/mlflow/experiments/permissions/update", json=body)
    ok(reply)


def test_trace_reads_tags_and_deletes_follow_experiment_permissions(private: Team):
    with (
        private.client("alice") as alice,
        private.client("bob") as bob,
        private.client("admin") as admin,
        private.client(None) as nobody,
    ):
        mine, theirs = _experiment(alice), _experiment(bob)
        t_mine, t_theirs = _start(alice, mine), _start(bob, theirs)
        assert nobody.get(V3 + "/get", params={"trace_id": t_mine}).status_code == 401

        # reads: READ on the trace's experiment; searches and batches narrowed
        search = {"locations": [_location(mine), _location(theirs)]}
        found = ok(alice.post(V3 + "/search", json=search))["traces"]
        assert [t["trace_id"] for t in found] == [t_mine]
        assert ok(alice.post(V3 + "/search", json={"locations": [_location(theirs)]})) == {
            "traces": []
        }
        ok(alice.get(V3 + "/get", params={"trace_id": t_mine}))
        error(alice.get(V3 + "/get", params={"trace_id": t_theirs}), 403, "PERMISSION_DENIED")
        error(alice.get(f"{V3}/{t_theirs}"), 403, "PERMISSION_DENIED")
        both = {"trace_ids": [t_mine, t_theirs]}
        got = ok(alice.get(V3 + "/batchGet", params=both))["traces"]
        assert [t["trace_info"]["trace_id"] for t in got] == [t_mine]
        infos = ok(alice.post(V3 + "/batchGetInfos", json=both))["trace_infos"]
        assert [i["trace_id"] for i in infos] == [t_mine]

        # tags: EDIT; deletes: MANAGE; bob's trace is untouched by every refusal
        tag = {"key": "seen", "value": "alice"}
        for path in (f"{V2}/{t_theirs}/tags", f"{V3}/{t_theirs}/tags"):
            error(alice.patch(path, json=tag), 403, "PERMISSION_DENIED")
            error(alice.request("DELETE", path, json={"key": "owner"}), 403, "PERMISSION_DENIED")
        by_ids = {"experiment_id": theirs, "request_ids": [t_theirs]}
        error(alice.post(V2 + "/delete-traces", json=by_ids), 403, "PERMISSION_DENIED")
        # Her own experiment as the scope deletes nothing of bob's.
        scoped = {"experiment_id": mine, "request_ids": [t_theirs]}
        assert ok(alice.post(V3 + "/delete-traces", json=scoped)) == {"traces_deleted": 0}

        _grant(bob, theirs, "READ")
        ok(alice.get(V3 + "/get", params={"trace_id": t_theirs}))
        error(alice.patch(f"{V2}/{t_theirs}/tags", json=tag), 403, "PERMISSION_DENIED")
        _grant(bob, theirs, "EDIT")
        ok(alice.patch(f"{V2}/{t_theirs}/tags", json=tag))
        error(alice.post(V2 + "/delete-traces", json=by_ids), 403, "PERMISSION_DENIED")
        tags = ok(bob.get(f"{V3}/{t_theirs}"))["trace"]["trace_info"]["tags"]
        assert tags["owner"] == "x" and tags["seen"] == "alice"

        # flowml's retention endpoints: MANAGE on the experiments named; all of them: admin
        assert ok(alice.post(FLOWML + "/count", json={"experiment_ids": [mine]})) == {"count": 1}
        error(alice.post(FLOWML + "/count", json={}), 403, "PERMISSION_DENIED")
        cutoff = {"older_than_ms": 2**53, "experiment_ids": [theirs]}
        error(alice.post(FLOWML + "/delete", json=cutoff), 403, "PERMISSION_DENIED")
        everything = {"older_than_ms": 2**53}
        error(alice.post(FLOWML + "/delete", json=everything), 403, "PERMISSION_DENIED")
        assert ok(admin.post(FLOWML + "/count", json={}))["count"] == 2
        ok(bob.get(V3 + "/get", params={"trace_id": t_theirs}))  # still there
        assert ok(bob.post(V2 + "/delete-traces", json=by_ids)) == {"traces_deleted": 1}
        assert ok(alice.post(V3 + "/delete-traces", json={**scoped, "request_ids": [t_mine]})) == {
            "traces_deleted": 1
        }


MLFLOW_SCRIPT = r"""
import os
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

trace_id, experiment_id, token = sys.argv[1:]
os.environ["MLFLOW_TRACKING_TOKEN"] = token
client = MlflowClient()
codes = []
for call in (
    lambda: client.get_trace(trace_id),
    lambda: client.set_trace_tag(trace_id, "k", "v"),
    lambda: client.delete_traces(experiment_id, trace_ids=[trace_id]),
):
    try:
        call()
    except MlflowException as exc:
        codes.append(exc.error_code)
print(" ".join(codes), len(client.search_traces(locations=[experiment_id])))
"""


@pytest.mark.mlflow
def test_the_mlflow_client_is_refused_with_mlflows_code(private: Team, run_mlflow_against):
    with private.client("bob") as bob:
        experiment_id = _experiment(bob)
        trace_id = _start(bob, experiment_id)
    out = run_mlflow_against(
        private.server.url, MLFLOW_SCRIPT, trace_id, experiment_id, private.tokens["alice"]
    )
    assert out.strip().splitlines()[-1] == "PERMISSION_DENIED " * 3 + "0"
    with private.client("bob") as bob:
        tags = ok(bob.get(f"{V3}/{trace_id}"))["trace"]["trace_info"]["tags"]
    assert "k" not in tags
