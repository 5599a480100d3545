"""The tracing verbs end to end: decorated functions of every kind, spans, context across
threads and asyncio tasks, trace updates, errors, and the size cap on payloads."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

import flowml
from flowml.exceptions import InvalidParameter


@flowml.trace(span_type=flowml.SpanType.RETRIEVER, attributes={"index": "docs"})
def retrieve(query: str, k: int = 2) -> list[str]:
    return [f"{query}-{i}" for i in range(k)]


@flowml.trace
def answer(question: str) -> str:
    flowml.update_current_trace(tags={"env": "test"}, metadata={"session": "s1"})
    with flowml.start_span("rerank", span_type="RERANKER") as span:
        span.set_inputs({"n": 2})
        span.set_outputs(["a"])
        span.set_attribute("model", {"name": "r1"})
    return retrieve(question)[0]


def _last():
    trace = flowml.get_trace(flowml.get_last_active_trace_id())
    assert trace is not None
    return trace


def test_nested_spans_are_one_trace_with_inputs_outputs_and_types(sqlite_uri):
    assert answer("why") == "why-0"
    trace = _last()
    assert trace.info.state == "OK"
    assert trace.info.name == "answer"
    assert trace.info.tags["env"] == "test"
    assert trace.info.trace_metadata["session"] == "s1"
    assert trace.info.request_preview == '{"question":"why"}'
    root, *children = trace.data.spans
    assert root.name == "answer" and root.parent_id is None
    assert {c.name: c.parent_id for c in children} == {
        "rerank": root.span_id,
        "retrieve": root.span_id,
    }
    by_name = {s.name: s for s in trace.data.spans}
    assert by_name["retrieve"].span_type == "RETRIEVER"
    assert by_name["retrieve"].inputs == {"query": "why", "k": 2}
    assert by_name["retrieve"].outputs == ["why-0", "why-1"]
    assert by_name["retrieve"].get_attribute("index") == "docs"
    assert by_name["rerank"].get_attribute("model") == {"name": "r1"}
    assert by_name["rerank"].span_type == "RERANKER"
    assert trace.info.execution_duration is not None


def test_an_exception_marks_the_span_and_trace_error_and_propagates(sqlite_uri):
    @flowml.trace(name="boom", span_type="TOOL")
    def boom(x: int) -> None:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 3"):
        boom(3)
    trace = _last()
    assert trace.info.state == "ERROR"
    (span,) = trace.data.spans
    assert span.status == "ERROR"
    assert "ValueError" in span.raw["status"]["message"]
    assert span.events[0]["name"] == "exception"


def test_generators_and_async_functions(sqlite_uri):
    @flowml.trace(span_type="LLM")
    def stream(n: int):
        for i in range(n):
            yield f"tok{i}"

    @flowml.trace(output_reducer="".join)
    def joined(n: int):
        yield from ("a", "b")[:n]

    @flowml.trace
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @flowml.trace
    async def astream(n: int):
        for i in range(n):
            yield i

    assert list(stream(3)) == ["tok0", "tok1", "tok2"]
    assert _last().data.spans[0].outputs == ["tok0", "tok1", "tok2"]
    assert list(joined(2)) == ["a", "b"]
    assert _last().data.spans[0].outputs == "ab"
    assert asyncio.run(fetch(4)) == 8
    assert _last().data.spans[0].outputs == 8

    async def consume() -> list[int]:
        return [i async for i in astream(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    assert _last().data.spans[0].outputs == [0, 1, 2]


def test_a_span_inside_a_generator_step_is_its_child(sqlite_uri):
    @flowml.trace
    def outer():
        for i in range(2):
            with flowml.start_span(f"step{i}"):
                pass
            yield i

    assert list(outer()) == [0, 1]
    root, *steps = _last().data.spans
    assert [s.parent_id for s in steps] == [root.span_id, root.span_id]


def test_context_crosses_asyncio_tasks_and_copied_thread_contexts(sqlite_uri):
    @flowml.trace
    async def leaf(i: int) -> int:
        return i

    @flowml.trace
    async def fan_out() -> list[int]:
        return list(await asyncio.gather(*(leaf(i) for i in range(3))))

    assert asyncio.run(fan_out()) == [0, 1, 2]
    root, *leaves = _last().data.spans
    assert len(leaves) == 3 and {s.parent_id for s in leaves} == {root.span_id}

    @flowml.trace
    def worker(i: int) -> int:
        return i

    @flowml.trace
    def threaded() -> None:
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(worker, i))
            for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    threaded()
    root, *workers = _last().data.spans
    assert [s.name for s in workers] == ["worker", "worker"]
    assert {s.parent_id for s in workers} == {root.span_id}


def test_payloads_past_the_memory_bound_are_capped(sqlite_uri, monkeypatch):
    from flowml.tracing import payload

    monkeypatch.setattr(payload, "MAX_PAYLOAD_CHARS", 100_000)

    @flowml.trace
    def echo(text: str) -> str:
        return text

    echo("x" * 300_000)
    span = _last().data.spans[0]
    assert 100_000 < len(span.raw["attributes"]["mlflow.spanOutputs"]) < 100_100
    assert span.outputs.endswith("chars]")


def _experiment(name, root):
    from flowml.tracking.client import TrackingClient

    client = TrackingClient(flowml.get_tracking_uri())
    experiment_id = client.create_experiment(name, artifact_location=str(root))
    flowml.set_experiment(experiment_id=experiment_id)


def test_large_payloads_go_to_the_artifact_store_and_come_back(sqlite_uri, tmp_path):
    from sqlalchemy import select

    from flowml.tracing.artifact_spans import ARTIFACT_LOCATION_TAG
    from flowml.tracing.schema import spans
    from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS, REFERENCES
    from flowml.tracing.writer import store_for
    from flowml.tracking.artifacts import ArtifactRepository

    _experiment("payloads", tmp_path / "artifacts")
    big_in = "q" * (ARTIFACT_THRESHOLD_CHARS + 10)
    big_out = {"docs": ["d" * 1000] * 200}

    @flowml.trace
    def echo(text: str, small: int = 1) -> dict:
        with flowml.start_span("tiny") as span:
            span.set_inputs({"x": 1})
            span.set_outputs(2)
        return big_out

    echo(big_in)
    trace = _last()
    root = next(s for s in trace.data.spans if s.name == "echo")
    assert root.inputs == {"text": big_in, "small": 1}  # read back whole
    assert root.outputs == big_out
    assert not set(REFERENCES.values()) & set(root.raw["attributes"])
    tiny = next(s for s in trace.data.spans if s.name == "tiny")
    assert tiny.inputs == {"x": 1}
    # Stored: a short preview in the row, the value in the trace's artifact location.
    location = trace.info.tags[ARTIFACT_LOCATION_TAG]
    assert location.startswith(str(tmp_path / "artifacts"))
    with store_for(sqlite_uri).engine.connect() as conn:
        rows = dict(conn.execute(select(spans.c.name, spans.c.content)).all())
    assert len(rows["echo"]) < 5_000
    assert "flowml.spanInputsArtifact" in rows["echo"]
    files = sorted(f.path for f in ArtifactRepository(location).list_artifacts("payloads"))
    assert len(files) == 2 and all(f.endswith((".inputs.json", ".outputs.json")) for f in files)
    # search_traces with spans reads them back too; without spans nothing is read.
    found = flowml.search_traces(return_type="list")
    assert found[0].data.spans[0].outputs == big_out
    assert flowml.search_traces(return_type="list", include_spans=False)[0].data.spans == []


def test_a_missing_payload_file_leaves_the_preview(sqlite_uri, tmp_path, caplog):
    import shutil

    from flowml.tracing.artifact_spans import ARTIFACT_LOCATION_TAG
    from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS

    _experiment("payloads-gone", tmp_path / "gone")

    @flowml.trace
    def echo(text: str) -> str:
        return text

    echo("z" * (ARTIFACT_THRESHOLD_CHARS * 2))
    location = _last().info.tags[ARTIFACT_LOCATION_TAG]
    shutil.rmtree(tmp_path / "gone")
    span = _last().data.spans[0]
    assert span.outputs.startswith('"zzz') and span.outputs.endswith(".outputs.json]")
    assert len(span.outputs) < 2_000
    assert location in caplog.text


def test_unserialisable_values_are_kept_as_text(sqlite_uri):
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    @flowml.trace
    def f(thing: Thing) -> object:
        return {1: thing}

    f(Thing())
    span = _last().data.spans[0]
    assert span.outputs == {"1": "Thing()"}


def test_update_outside_a_trace_does_nothing(sqlite_uri, caplog):
    flowml.update_current_trace(tags={"a": "b"})
    assert "no active trace" in caplog.text
    assert flowml.get_current_active_span() is None


def test_current_span_and_methods_in_a_class(sqlite_uri):
    class Agent:
        @flowml.trace(span_type="AGENT")
        def run(self, goal: str) -> str:
            span = flowml.get_current_active_span()
            assert span is not None and span.name == "run"
            return goal

    Agent().run("win")
    assert _last().data.spans[0].inputs == {"goal": "win"}


def test_traces_inside_a_run_link_to_it(sqlite_uri):
    with flowml.start_run() as run:
        answer("q")
    trace = _last()
    assert trace.info.run_id == run.info.run_id
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    found = flowml.search_traces(run_id=run.info.run_id, return_type="list")
    assert [t.info.trace_id for t in found] == [trace.info.trace_id]


def test_get_trace_of_an_unknown_id_is_none_and_bad_ids_are_refused(sqlite_uri):
    assert flowml.get_trace("tr-0000") is None
    with pytest.raises(InvalidParameter):
        flowml.get_trace("")


def test_search_traces_returns_a_frame_or_a_list(sqlite_uri):
    answer("a")
    time.sleep(0.01)  # distinct start times, so the order asked for is the only order
    answer("b")
    frame = flowml.search_traces()
    assert list(frame["state"]) == ["OK", "OK"]
    assert {"trace_id", "request", "response", "spans", "tags"} <= set(frame.columns)
    listed = flowml.search_traces(
        filter_string="tags.env = 'test'", order_by=["timestamp_ms ASC"], return_type="list"
    )
    assert [t.info.request_preview for t in listed] == ['{"question":"a"}', '{"question":"b"}']
    with pytest.raises(InvalidParameter):
        flowml.search_traces(return_type="csv")


def test_feedback_and_expectations(sqlite_uri):
    answer("q")
    trace_id = flowml.get_last_active_trace_id()
    flowml.log_feedback(
        trace_id,
        name="relevance",
        value=0.5,
        rationale="half on topic",
        source=flowml.AssessmentSource("LLM_JUDGE", "judge-1"),
    )
    flowml.log_expectation(trace_id, name="expected", value={"answer": "q-0"})
    first, second = flowml.get_trace(trace_id).info.assessments
    assert (first.kind, first.name, first.value, first.rationale) == (
        "feedback",
        "relevance",
        0.5,
        "half on topic",
    )
    assert first.source.to_dict() == {"source_type": "LLM_JUDGE", "source_id": "judge-1"}
    assert (second.kind, second.value, second.source.source_type) == (
        "expectation",
        {"answer": "q-0"},
        "HUMAN",
    )
    as_json = flowml.get_trace(trace_id).to_dict()["info"]["assessments"][0]
    assert as_json["feedback"] == {"value": 0.5} and as_json["assessment_name"] == "relevance"


def test_open_traces_are_bounded(sqlite_uri, monkeypatch, caplog):
    from flowml.tracing import provider

    monkeypatch.setattr(provider, "MAX_PENDING_TRACES", 2)
    scopes = [flowml.start_span(f"open{i}") for i in range(3)]
    spans = [s.start() for s in scopes]  # three roots that have not ended
    assert len(provider._pending) == 2
    assert "dropped trace" in caplog.text and spans[0].trace_id in caplog.text
    for span in spans:
        span.end()
    assert flowml.get_trace(spans[0].trace_id) is None  # dropped: never written
    assert flowml.get_trace(spans[2].trace_id) is not None


def test_an_unreachable_server_never_breaks_the_traced_code(caplog):
    from flowml.exceptions import StoreError
    from flowml.tracing import writer
    from flowml.tracing.rest_store import RestTraceStore

    uri = "http://127.0.0.1:9"
    flowml.set_tracking_uri(uri)
    writer._stores[uri] = RestTraceStore(uri, max_retry_seconds=0.2)
    try:

        @flowml.trace
        def f() -> int:
            return 1

        assert f() == 1  # the traced code never fails because of tracing
        with pytest.raises(StoreError, match="did not answer"):
            flowml.search_traces()  # the failed background write surfaces here, once
        assert "could not write 1 trace" in caplog.text
    finally:
        writer._stores.pop(uri, None)


def test_a_tracking_uri_without_a_trace_store_is_refused_clearly():
    from flowml.tracing import writer

    with pytest.raises(InvalidParameter, match="SQL tracking store or a flowml server"):
        writer.store_for("file:///tmp/mlruns")
