"""OpenTelemetry in and out over real HTTP on loopback: flowml's spans exported to an OTLP
receiver, and OTLP/HTTP (protobuf and JSON) from any SDK stored by ``flowml server``."""

from __future__ import annotations

import gzip
import os

import httpx
import orjson
import pytest

import flowml
from flowml.tracing import provider, writer
from flowml.tracing.store import SqlTraceStore

from ._servers import AppServer, OtlpReceiver


@flowml.trace(span_type="AGENT")
def agent(goal: str) -> str:
    return tool(goal)


@flowml.trace(span_type="TOOL")
def tool(goal: str) -> str:
    return goal + "!"


def test_spans_are_exported_to_the_otlp_endpoint(sqlite_uri, monkeypatch):
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("FLOWML_OTLP_ENDPOINT", receiver.url)
        provider.reset()  # settings are read when the provider is built
        assert agent("go") == "go!"
        provider.reset()  # flushes the batch exporter
        spans = {s.name: s for s in receiver.spans()}
    assert receiver.paths == ["/v1/traces"] * len(receiver.requests)
    assert set(spans) == {"agent", "tool"}
    assert spans["tool"].parent_span_id == spans["agent"].span_id
    attrs = {kv.key: kv.value.string_value for kv in spans["agent"].attributes}
    assert attrs["mlflow.spanType"] == '"AGENT"'
    assert attrs["mlflow.spanInputs"] == '{"goal":"go"}'
    # The same trace went to the tracking store too.
    trace_id = flowml.get_last_active_trace_id()
    assert trace_id == f"tr-{spans['agent'].trace_id.hex()}"
    assert flowml.get_trace(trace_id) is not None


def _sdk_spans(url: str, headers: dict[str, str]) -> str:
    """Spans from a plain OpenTelemetry SDK (not flowml) exported to ``url`` over OTLP."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url, headers=headers)))
    tracer = sdk.get_tracer("other-app")
    with tracer.start_as_current_span("handle", attributes={"http.method": "GET"}) as root:
        with tracer.start_as_current_span("db", attributes={"rows": 3}) as child:
            child.set_status(Status(StatusCode.ERROR, "slow"))
        root.set_status(Status(StatusCode.ERROR, "failed"))
    sdk.shutdown()
    return f"tr-{root.get_span_context().trace_id:032x}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_server_stores_otlp_protobuf_from_any_sdk(backend, tmp_path, request):
    uri = (
        f"sqlite:///{tmp_path / 'server.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    with AppServer(uri, tmp_path / "artifacts") as server:
        client = flowml.TrackingClient(uri)
        experiment_id = client.create_experiment("otlp")
        trace_id = _sdk_spans(server.url + "/v1/traces", {"x-mlflow-experiment-id": experiment_id})
    store = SqlTraceStore(uri)
    trace = store.get_trace(trace_id)
    assert trace.info.experiment_id == experiment_id
    assert trace.info.state == "ERROR" and trace.info.name == "handle"
    assert [s.name for s in trace.data.spans] == ["handle", "db"]
    handle, db = trace.data.spans
    assert db.parent_id == handle.span_id and db.status == "ERROR"
    assert handle.get_attribute("http.method") == "GET" and db.get_attribute("rows") == 3
    found = store.search_traces([experiment_id], "attributes.status = 'ERROR'")
    assert [i.trace_id for i in found] == [trace_id]


def _json_payload(trace_hex: str, root_hex: str, child_hex: str) -> dict:
    def span(span_id: str, parent: str, name: str) -> dict:
        return {
            "traceId": trace_hex,
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000250000000",
            "status": {"code": 1},
            "attributes": [{"key": "mlflow.spanType", "value": {"stringValue": '"LLM"'}}],
        }

    return {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {"spans": [span(child_hex, root_hex, "llm"), span(root_hex, "", "chain")]}
                ]
            }
        ]
    }


def test_the_server_stores_otlp_json_and_gzip(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    trace_hex = "0af7651916cd43dd8448eb211c80319c"
    with AppServer(uri, tmp_path / "artifacts") as server:
        body = orjson.dumps(_json_payload(trace_hex, "b7ad6b7169203331", "00f067aa0ba902b7"))
        reply = httpx.post(
            server.url + "/v1/traces",
            content=gzip.compress(body),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {}
    trace = SqlTraceStore(uri).get_trace(f"tr-{trace_hex}")
    assert trace.info.execution_duration == 250 and trace.info.state == "OK"
    assert [(s.name, s.span_type) for s in trace.data.spans] == [("chain", "LLM"), ("llm", "LLM")]


def test_bad_otlp_requests_are_refused_and_store_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    good = orjson.dumps(
        _json_payload("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "00f067aa0ba902b7")
    )
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    cases = [
        (b"\x0a\xff\xff", {"content-type": "application/x-protobuf"}, 400),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b'{"resourceSpans": 3}', {"content-type": "application/json"}, 400),
        (good, {"content-type": "text/plain"}, 400),
        (good, {"content-type": "application/json", "x-mlflow-experiment-id": "0 OR 1"}, 400),
        (good, {"content-type": "application/json", "x-mlflow-experiment-id": "424242"}, 404),
        (bomb, {"content-type": "application/json", "content-encoding": "gzip"}, 400),
        (good, {"content-type": "application/json", "content-encoding": "br"}, 400),
    ]
    with AppServer(uri, tmp_path / "artifacts") as server:
        for body, headers, status in cases:
            reply = httpx.post(server.url + "/v1/traces", content=body, headers=headers)
            assert reply.status_code == status, (headers, reply.text)
            assert reply.json()["error_code"] in (
                "BAD_REQUEST",
                "INVALID_PARAMETER_VALUE",
                "RESOURCE_DOES_NOT_EXIST",
            )
    assert SqlTraceStore(uri).count_traces() == 0


def test_flowml_traces_reach_a_server_over_otlp(tmp_path, monkeypatch, sqlite_uri):
    server_uri = f"sqlite:///{tmp_path / 'server.db'}"
    with AppServer(server_uri, tmp_path / "artifacts") as server:
        monkeypatch.setenv("FLOWML_OTLP_ENDPOINT", server.url)
        provider.reset()
        agent("remote")
        provider.reset()
    writer.flush()
    trace_id = flowml.get_last_active_trace_id()
    remote = SqlTraceStore(server_uri).get_trace(trace_id)
    assert [s.name for s in remote.data.spans] == ["agent", "tool"]
    assert remote.info.request_preview == '{"goal":"remote"}'
    assert os.environ["FLOWML_OTLP_ENDPOINT"] == server.url
