"""flowml's tracing with the tracking URI at a flowml server (real HTTP on loopback): spans
are written through the server and read back (get_trace, search_traces, assessments, tags),
large payloads land in the server's artifact store, bad requests get typed errors."""

from __future__ import annotations

import json

import httpx
import pytest

import flowml
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracing import writer
from flowml.tracing.rest_store import RestTraceStore
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS
from flowml.tracing.store import SqlTraceStore

from ._servers import AppServer


@pytest.fixture
def server(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    with AppServer(uri, tmp_path / "artifacts") as srv:
        srv.store_uri = uri
        flowml.set_tracking_uri(srv.url)
        yield srv
        writer.flush(raise_error=False)
        writer._stores.pop(srv.url, None)


@flowml.trace(span_type="RETRIEVER")
def retrieve(query: str) -> list[str]:
    return [query + "-doc"]


@flowml.trace
def answer(question: str, n: int = 0) -> str:
    flowml.update_current_trace(tags={"bucket": str(n % 2)}, metadata={"session": "s1"})
    return retrieve(question)[0]


def test_traces_go_through_the_server_and_read_back(server):
    assert isinstance(writer.store_for(server.url), RestTraceStore)
    flowml.set_experiment("rest-traces")
    for n in range(5):
        answer(f"q{n}", n)
    trace_id = flowml.get_last_active_trace_id()
    trace = flowml.get_trace(trace_id)
    assert trace is not None
    root, child = trace.data.spans
    assert root.inputs == {"question": "q4", "n": 4} and root.outputs == "q4-doc"
    assert child.parent_id == root.span_id and child.span_type == "RETRIEVER"
    assert trace.info.tags["bucket"] == "0" and trace.info.trace_metadata["session"] == "s1"
    # Stored by the server in its own database.
    assert SqlTraceStore(server.store_uri).count_traces() == 5

    found = flowml.search_traces(filter_string="tags.bucket = '1'", return_type="list")
    assert sorted(json.loads(t.info.request_preview)["question"] for t in found) == ["q1", "q3"]
    assert all(len(t.data.spans) == 2 for t in found)
    bare = flowml.search_traces(max_results=2, return_type="list", include_spans=False)
    assert len(bare) == 2 and all(t.data.spans == [] for t in bare)
    frame = flowml.search_traces(filter_string="trace.status = 'OK'")
    assert len(frame) == 5

    flowml.log_feedback(trace_id, name="relevance", value=0.5, rationale="meh")
    flowml.log_expectation(trace_id, name="expected_response", value="q4-doc")
    flowml.set_trace_tag(trace_id, "reviewed", "yes")
    info = flowml.get_trace(trace_id).info
    kinds = {(a.kind, a.name): a for a in info.assessments}
    assert kinds[("feedback", "relevance")].value == 0.5
    assert kinds[("feedback", "relevance")].rationale == "meh"
    assert kinds[("expectation", "expected_response")].value == "q4-doc"
    assert info.tags["reviewed"] == "yes"
    flowml.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in flowml.get_trace(trace_id).info.tags


def test_errors_through_the_server_are_typed_and_write_nothing(server):
    answer("q")
    trace_id = flowml.get_last_active_trace_id()
    assert flowml.get_trace("tr-" + "0" * 32) is None
    with pytest.raises(ResourceNotFound):
        flowml.log_feedback("tr-" + "0" * 32, name="x", value=1)
    with pytest.raises(InvalidParameter):
        flowml.search_traces(filter_string="tags.bucket ~ 'x'")
    with pytest.raises(InvalidParameter):
        flowml.search_traces(max_results=-1)
    with pytest.raises(ResourceNotFound):
        flowml.delete_trace_tag(trace_id, "never-set")
    store = SqlTraceStore(server.store_uri)
    assert store.get_trace_info(trace_id).assessments == []
    # Malformed bodies are 400s, nothing stored.
    base = server.url + "/api/2.0/flowml/traces"
    for body in (
        {"traces": "nope"},
        {"traces": [{"info": {"trace_id": "tr-" + "1" * 32}, "spans": []}]},
        {
            "traces": [
                {
                    "info": {
                        "trace_id": "bad",
                        "experiment_id": "0",
                        "state": "OK",
                        "request_time": 1,
                    },
                    "spans": [],
                }
            ]
        },
        {
            "traces": [
                {
                    "info": {
                        "trace_id": "tr-" + "2" * 32,
                        "experiment_id": "0",
                        "state": "OK",
                        "request_time": 1,
                        "tags": {"mlflow.artifactLocation": "/etc"},
                    },
                    "spans": [],
                }
            ]
        },
        {"traces": [_crafted_reference()]},
    ):
        reply = httpx.post(base + "/write", json=body, timeout=60)
        assert reply.status_code == 400, reply.text
    reply = httpx.post(
        base + "/assessments", json={"assessments": [{"kind": "opinion"}]}, timeout=60
    )
    assert reply.status_code == 400
    assert store.count_traces() == 1


def _crafted_reference() -> dict:
    span = {
        "span_id": "AAAAAAAAAAE=",
        "name": "s",
        "start_time_unix_nano": 1,
        "attributes": {"flowml.spanOutputsArtifact": '"../../../etc/passwd"'},
    }
    info = {"trace_id": "tr-" + "3" * 32, "experiment_id": "0", "state": "OK", "request_time": 1}
    return {"info": info, "spans": [span]}


def test_large_payloads_go_to_the_server_artifact_store(server, tmp_path):
    big = "w" * (ARTIFACT_THRESHOLD_CHARS + 1)

    @flowml.trace
    def echo(text: str) -> str:
        return text

    echo(big)
    trace_id = flowml.get_last_active_trace_id()
    trace = flowml.get_trace(trace_id)
    assert trace is not None and trace.data.spans[0].outputs == big
    assert trace.data.spans[0].inputs == {"text": big}
    # On the server: the files under its artifact destination, a preview in the row.
    files = list((tmp_path / "artifacts").rglob(f"*{trace_id}*/**/*.json"))
    assert len(files) == 2
    stored = SqlTraceStore(server.store_uri).get_spans([trace_id])[trace_id][0]
    assert len(stored.raw["attributes"]["mlflow.spanOutputs"]) < 2_000
    assert flowml.search_traces(return_type="list")[0].data.spans[0].outputs == big
