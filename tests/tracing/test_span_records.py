"""The writer's fast path: rows built straight from the finished OTel spans
(`flowml.tracing.rows.pending_rows`) are, column for column, the rows of the `Trace` entity the
entity path builds from the same spans (`trace_rows(pending_to_trace(...))`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import flowml
from flowml.tracing import writer
from flowml.tracing.convert import pending_to_trace
from flowml.tracing.provider import PendingTrace
from flowml.tracing.rows import pending_rows, trace_rows
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS


@pytest.fixture
def captured(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> list[PendingTrace]:
    """Finished traces, kept here instead of being written."""
    found: list[PendingTrace] = []
    monkeypatch.setattr(writer, "submit", found.append)
    return found


def record_varied_traces() -> None:
    """Traces covering what a span can hold: nesting, types, attributes, events, errors,
    generators, async, token usage, trace tags and metadata, odd values."""

    @flowml.trace(span_type="RETRIEVER", attributes={"k": 3, "nested": {"a": [1, 2]}})
    def retrieve(query: str, top: int = 2) -> list[str]:
        return [query] * top

    @flowml.trace(name="llm-call", span_type="LLM")
    def llm(prompt: str) -> dict:
        span = flowml.get_current_active_span()
        span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 3, "output_tokens": 4})
        span.add_event("chunk", {"index": 1, "text": "hi", "ok": True, "obj": {"x": 1}})
        return {"text": prompt.upper()}

    @flowml.trace
    def answer(question: str) -> str:
        flowml.update_current_trace(tags={"env": "dev", "n": 7}, metadata={"session": "s1"})
        docs = retrieve(question)
        return llm(" ".join(docs))["text"]

    @flowml.trace
    def fail(x: int) -> int:
        raise ValueError(f"bad {x}")

    @flowml.trace(output_reducer=lambda items: sum(items))
    def stream(n: int) -> Iterator[int]:
        yield from range(n)

    @flowml.trace(span_type="TOOL")
    async def tool(x: float) -> float:
        return x / 2

    answer("why?")
    with pytest.raises(ValueError):
        fail(3)
    assert list(stream(4)) == [0, 1, 2, 3]
    asyncio.run(tool(5.0))
    with flowml.start_span("manual", span_type="CHAIN", attributes={"a": "b"}) as span:
        span.set_inputs({"when": object})
        span.set_status("ERROR", "told so")
        with flowml.start_span("child") as inner:
            inner.set_outputs(None)
            inner.set_outputs([1.5, "two", None])  # set twice: the last value, moved last
        span.set_attribute("after", ["x"])
    with flowml.start_span("unicode ✓ " + "n" * 600):
        pass


def test_rows_from_spans_equal_the_entity_rows(captured):
    record_varied_traces()
    assert len(captured) == 6
    for pending in captured:
        fast = pending_rows(pending)
        assert fast is not None
        assert fast == trace_rows(pending_to_trace(pending)), pending.trace_id


def test_rows_inside_a_run_name_it(captured):
    with flowml.start_run() as run:
        with flowml.start_span("in-run"):
            pass
    (pending,) = captured
    fast = pending_rows(pending)
    assert fast == trace_rows(pending_to_trace(pending))
    assert fast.summary[5] == run.info.run_id
    assert (pending.trace_id, "mlflow.sourceRun", run.info.run_id) in fast.metadata


def test_a_trace_with_a_large_payload_takes_the_entity_path(captured):
    with flowml.start_span("big") as span:
        span.set_inputs("x" * (ARTIFACT_THRESHOLD_CHARS + 1))
    (pending,) = captured
    assert pending_rows(pending) is None


def test_an_unfinished_trace_is_in_progress(captured):
    with flowml.start_span("root"):
        with flowml.start_span("child"):
            pass
    (pending,) = captured
    pending.spans = [s for s in pending.spans if s.name == "child"]  # the root never came
    fast = pending_rows(pending)
    assert fast == trace_rows(pending_to_trace(pending))
    assert fast.in_progress and fast.summary[2] == "IN_PROGRESS"
