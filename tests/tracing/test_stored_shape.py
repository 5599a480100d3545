"""What the background writer stores is exactly what the entity path stores: the same traces
written both ways land as the same rows, and read back the same through ``get_trace``,
``search_traces`` and MLflow's trace JSON. Then the stored shape itself, pinned on SQLite and
PostgreSQL: ids, parents, attributes, events, status, inputs/outputs and span types."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

import flowml
from flowml.tracing import writer
from flowml.tracing.convert import pending_to_trace
from flowml.tracing.entities import decode_id
from flowml.tracing.provider import PendingTrace

from .test_span_records import record_varied_traces

TABLES = {
    "traces": "trace_id, experiment_id, name, state, timestamp_ms, execution_time_ms, "
    "run_uuid, task_run_id, request_preview, response_preview",
    "spans": "trace_id, span_id, parent_span_id, name, span_type, status, start_time_ns, "
    "end_time_ns, content",
    "trace_tags": "trace_id, key, value",
    "trace_metadata": "trace_id, key, value",
}


def _rows(uri: str) -> dict[str, list[tuple]]:
    engine = writer.store_for(uri).engine
    with engine.connect() as conn:
        return {
            table: [
                tuple(row)
                for row in conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY {cols}"))
            ]
            for table, cols in TABLES.items()
        }


def test_the_writer_stores_what_the_entity_path_stores(sqlite_uri, tmp_path: Path, monkeypatch):
    captured: list[PendingTrace] = []
    monkeypatch.setattr(writer, "submit", captured.append)
    record_varied_traces()
    monkeypatch.undo()
    assert len(captured) == 6

    writer._write_group(writer.store_for(sqlite_uri), captured)  # rows from the spans
    entity_uri = f"sqlite:///{tmp_path / 'entities.db'}"
    writer.store_for(entity_uri).write_traces([pending_to_trace(p) for p in captured])

    fast, slow = _rows(sqlite_uri), _rows(entity_uri)
    assert fast == slow
    assert len(fast["spans"]) == 9 and len(fast["traces"]) == 6

    fast_store, slow_store = writer.store_for(sqlite_uri), writer.store_for(entity_uri)
    for pending in captured:
        got = fast_store.get_trace(pending.trace_id)
        assert got.to_dict() == slow_store.get_trace(pending.trace_id).to_dict()
        assert got.to_json() == slow_store.get_trace(pending.trace_id).to_json()
    found = [t.to_dict() for t in fast_store.search(["0"], include_spans=True)]
    assert found == [t.to_dict() for t in slow_store.search(["0"], include_spans=True)]
    assert len(found) == 6
    for filter_string in ("trace.status = 'ERROR'", "tags.env = 'dev'", "metadata.session = 's1'"):
        hits = [t.to_dict() for t in fast_store.search(["0"], filter_string)]
        assert hits and hits == [t.to_dict() for t in slow_store.search(["0"], filter_string)]
    writer._stores.pop(entity_uri, None)


def test_the_stored_shape(trace_store_uri):
    record_varied_traces()
    writer.flush()
    by_name = {t.info.tags["mlflow.traceName"]: t for t in flowml.search_traces(return_type="list")}
    assert set(by_name) == {"answer", "fail", "stream", "tool", "manual", "unicode ✓ " + "n" * 600}

    answer = flowml.get_trace(by_name["answer"].info.trace_id)
    info = answer.info
    assert info.state == "OK" and info.experiment_id == "0"
    assert info.request_preview == '{"question":"why?"}'
    assert info.response_preview == '"WHY? WHY?"'
    assert info.tags == {"mlflow.traceName": "answer", "env": "dev", "n": "7"}
    assert info.trace_metadata == {
        "mlflow.trace_schema.version": "3",
        "session": "s1",
        "mlflow.trace.tokenUsage": '{"input_tokens":3,"output_tokens":4,"total_tokens":0}',
        "mlflow.traceInputs": '{"question":"why?"}',
        "mlflow.traceOutputs": '"WHY? WHY?"',
    }
    root, retrieve, llm = answer.data.spans
    hex_trace = info.trace_id.removeprefix("tr-")
    request_id = orjson.dumps(info.trace_id).decode()
    assert [s.name for s in answer.data.spans] == ["answer", "retrieve", "llm-call"]
    assert root.parent_id is None
    assert retrieve.parent_id == root.span_id and llm.parent_id == root.span_id
    for span in answer.data.spans:
        assert decode_id(span.raw["trace_id"]) == hex_trace
        assert len(span.span_id) == 16 and decode_id(span.raw["span_id"]) == span.span_id
        assert span.raw["status"] == {"code": "STATUS_CODE_OK", "message": ""}
        assert span.raw["links"] == []
        assert span.raw["attributes"]["mlflow.traceRequestId"] == request_id
    assert [s.span_type for s in answer.data.spans] == ["UNKNOWN", "RETRIEVER", "LLM"]
    assert list(retrieve.raw["attributes"]) == [
        "mlflow.traceRequestId",
        "mlflow.spanType",
        "mlflow.spanFunctionName",
        "k",
        "nested",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
    ]
    assert retrieve.raw["attributes"]["nested"] == '{"a":[1,2]}'
    assert retrieve.inputs == {"query": "why?", "top": 2}
    assert retrieve.outputs == ["why?", "why?"]
    assert llm.inputs == {"prompt": "why? why?"} and llm.outputs == {"text": "WHY? WHY?"}
    (event,) = llm.events
    assert event["name"] == "chunk" and event["time_unix_nano"] >= llm.start_time_ns
    assert event["attributes"] == {"index": 1, "text": "hi", "ok": True, "obj": '{"x":1}'}
    assert info.execution_duration == (root.end_time_ns - root.start_time_ns) // 1_000_000
    assert info.request_time == root.start_time_ns // 1_000_000

    fail = flowml.get_trace(by_name["fail"].info.trace_id)
    assert fail.info.state == "ERROR"
    (span,) = fail.data.spans
    assert span.raw["status"] == {"code": "STATUS_CODE_ERROR", "message": "ValueError: bad 3"}
    assert [ev["name"] for ev in span.events] == ["exception"]
    assert span.events[0]["attributes"]["exception.type"] == "ValueError"
    assert span.outputs is None and "mlflow.spanOutputs" not in span.raw["attributes"]

    assert flowml.get_trace(by_name["stream"].info.trace_id).data.spans[0].outputs == 6
    tool = flowml.get_trace(by_name["tool"].info.trace_id).data.spans[0]
    assert (tool.span_type, tool.inputs, tool.outputs) == ("TOOL", {"x": 5.0}, 2.5)

    manual = flowml.get_trace(by_name["manual"].info.trace_id)
    assert manual.info.state == "ERROR"
    outer, child = manual.data.spans
    assert outer.raw["status"] == {"code": "STATUS_CODE_ERROR", "message": "told so"}
    assert list(outer.raw["attributes"])[-2:] == ["mlflow.spanInputs", "after"]
    assert outer.get_attribute("after") == ["x"] and outer.get_attribute("a") == "b"
    assert child.parent_id == outer.span_id and child.span_type == "UNKNOWN"
    assert list(child.raw["attributes"])[-1] == "mlflow.spanOutputs"
    assert child.outputs == [1.5, "two", None]

    long_name = flowml.search_traces(
        filter_string="attributes.name LIKE 'unicode%'", return_type="list"
    )
    assert [t.info.tags["mlflow.traceName"] for t in long_name] == ["unicode ✓ " + "n" * 600]


def test_a_large_payload_still_goes_to_the_artifact_store(sqlite_uri):
    with flowml.start_span("big") as span:
        span.set_inputs("x" * 70_000)
    writer.flush()
    trace = flowml.get_trace(flowml.get_last_active_trace_id())
    assert trace.data.spans[0].inputs == "x" * 70_000
    assert "mlflow.artifactLocation" in trace.info.tags


@pytest.mark.parametrize("limit", ["3"])
def test_span_attribute_limits_still_apply(sqlite_uri, monkeypatch, limit):
    """With an OTel attribute limit set, the SDK's own checks run (no direct writes)."""
    from flowml.tracing import provider

    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", limit)
    provider.reset()

    @flowml.trace(attributes={"a": 1, "b": 2})
    def f(x: int) -> int:
        return x

    f(1)
    writer.flush()
    (span,) = flowml.get_trace(flowml.get_last_active_trace_id()).data.spans
    # the SDK dropped the oldest to stay within 3 (plus the request id the store adds)
    assert list(span.raw["attributes"]) == [
        "mlflow.traceRequestId",
        "b",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
    ]


def test_an_attribute_set_after_the_end_is_dropped(sqlite_uri, caplog):
    with flowml.start_span("done") as span:
        span.set_outputs(1)
    span.set_attribute("late", 2)
    span.set_outputs(3)
    writer.flush()
    (stored,) = flowml.get_trace(flowml.get_last_active_trace_id()).data.spans
    assert stored.outputs == 1 and "late" not in stored.raw["attributes"]
    assert "Setting attribute on ended span" in caplog.text
