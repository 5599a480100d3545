"""MLflow 3's trace endpoints on flowml's server over loopback HTTP: what a client may and may
not choose (ids, the spans' location), and errors that leave the store untouched."""

from __future__ import annotations

import httpx
import orjson
import pytest

from flowml.exceptions import InvalidParameter
from flowml.tracing.store import SqlTraceStore

from ._servers import AppServer

TRACE_ID = "tr-0af7651916cd43dd8448eb211c80319c"


def _body(trace_id: str = TRACE_ID, experiment_id: str = "0", **extra) -> dict:
    info = {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": "2026-12-02T12:00:51.241362036Z",
        "execution_duration": "0.090s",
        "state": "OK",
        "trace_metadata": {"mlflow.sourceRun": "r" * 32},
        "tags": {"mlflow.artifactLocation": "/etc", "team": "a"},
        **extra,
    }
    return {"trace": {"trace_info": info}}


@pytest.fixture
def server(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    with AppServer(uri, tmp_path / "artifacts") as srv:
        srv.store_uri = uri
        yield srv


def test_start_and_get_trace_info(server, tmp_path):
    reply = httpx.post(server.url + "/api/3.0/mlflow/traces", json=_body(), timeout=60)
    assert reply.status_code == 200, reply.text
    info = reply.json()["trace"]["trace_info"]
    # The server chooses where spans go, whatever the client sent.
    assert (
        info["tags"]["mlflow.artifactLocation"]
        == f"mlflow-artifacts:/0/traces/{TRACE_ID}/artifacts"
    )
    assert (
        info["execution_duration"] == "0.090s"
        and info["request_time"] == "2026-12-02T12:00:51.241Z"
    )
    got = httpx.get(server.url + f"/api/3.0/mlflow/traces/{TRACE_ID}", timeout=60).json()
    assert got["trace"]["trace_info"]["tags"]["team"] == "a"
    stored = SqlTraceStore(server.store_uri).get_trace_info(TRACE_ID)
    assert stored.run_id == "r" * 32 and stored.execution_duration == 90
    assert stored.tags["mlflow.artifactLocation"] == str(
        tmp_path / "artifacts" / "0" / "traces" / TRACE_ID / "artifacts"
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_body(trace_id="tr-../../etc"), 400),
        (_body(trace_id="../x"), 400),
        (_body(experiment_id="999"), 404),
        (_body(state="DONE"), 400),
        (_body(request_time="yesterday"), 400),
        (_body(execution_duration="soon"), 400),
        (_body(tags={"a": 1}), 400),
        ({"trace": {}}, 400),
    ],
)
def test_bad_start_trace_requests_store_nothing(server, body, status):
    reply = httpx.post(server.url + "/api/3.0/mlflow/traces", json=body, timeout=60)
    assert reply.status_code == status, reply.text
    assert SqlTraceStore(server.store_uri).count_traces() == 0


def test_unknown_and_malformed_ids(server):
    assert (
        httpx.get(server.url + f"/api/3.0/mlflow/traces/{TRACE_ID}", timeout=60).status_code == 404
    )
    assert httpx.get(server.url + "/api/3.0/mlflow/traces/tr-nope", timeout=60).status_code == 400


def test_spans_load_from_the_artifact_location_only_and_the_tag_is_reserved(server, tmp_path):
    httpx.post(server.url + "/api/3.0/mlflow/traces", json=_body(), timeout=60).raise_for_status()
    store = SqlTraceStore(server.store_uri)
    assert store.get_trace(TRACE_ID).data.spans == []  # nothing uploaded yet
    span = {
        "trace_id": "CvdlGRbNQ92ESOshHIAxnA==",
        "span_id": "t61rcWkgMzE=",
        "parent_span_id": None,
        "name": "root",
        "start_time_unix_nano": 1,
        "end_time_unix_nano": 2,
        "events": [],
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": {},
        "links": [],
    }
    folder = tmp_path / "artifacts" / "0" / "traces" / TRACE_ID / "artifacts"
    folder.mkdir(parents=True)
    (folder / "traces.json").write_bytes(orjson.dumps({"spans": [span, {"junk": 1}]}))
    assert [s.name for s in store.get_trace(TRACE_ID).data.spans] == ["root"]
    assert [s.name for s in store.get_trace(TRACE_ID).data.spans] == ["root"]  # stored once
    with pytest.raises(InvalidParameter):
        store.set_trace_tag(TRACE_ID, "mlflow.artifactLocation", "/etc")
