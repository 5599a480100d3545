"""Finished OpenTelemetry spans to flowml's `Trace` entities (MLflow's trace JSON).

Runs on the background writer's thread, off the traced code's path: the encoding of ids,
the trace's previews, token usage totals and state are all worked out here.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.trace import StatusCode

from flowml.tracing import entities as e
from flowml.tracing.payload import preview
from flowml.tracing.provider import PendingTrace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "attribute_dict",
    "encode_ids",
    "pending_to_trace",
    "span_dict",
    "token_usage",
    "trace_from_spans",
]

# OTel's UNSET and OK are MLflow's OK. Compared by identity: an enum's value and hash are
# Python-level calls, on every span written.
_ERROR = StatusCode.ERROR
_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def _b64(value: int, length: int) -> str:
    return b2a_base64(value.to_bytes(length, "big"), newline=False).decode()


def encode_ids(span: ReadableSpan, trace_id: str) -> tuple[str, str]:
    """The trace id of ``span`` in base64 and ``trace_id`` as a JSON string (the same for
    every span of a trace: `span_dict`'s ``encoded``)."""
    return _b64(span.context.trace_id, 16), orjson.dumps(trace_id).decode()


def attribute_dict(span: ReadableSpan) -> Mapping[str, Any]:
    """A finished span's attributes."""
    # Speed trick: the SDK's attribute mapping is a Python `Mapping` (a call per key to
    # read it); its plain dict is read directly when it has one.
    found = getattr(getattr(span, "_attributes", None), "_dict", None)
    return found if isinstance(found, dict) else (span.attributes or {})


def span_dict(
    span: ReadableSpan, trace_id: str, encoded: tuple[str, str] | None = None
) -> dict[str, Any]:
    """One finished SDK span as MLflow's span JSON.

    ``encoded``: the trace's id in base64 and as a JSON string, when the caller has them
    (the same for every span of a trace).
    """
    if encoded is None:
        encoded = encode_ids(span, trace_id)
    status = span.status
    attributes: dict[str, Any] = {e.SpanAttributeKey.REQUEST_ID: encoded[1]}
    attributes.update(attribute_dict(span))
    parent = span.parent
    events = span.events
    return {
        "trace_id": encoded[0],
        "span_id": _b64(span.context.span_id, 8),
        "parent_span_id": _b64(parent.span_id, 8) if parent else None,
        "name": span.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "events": [
            {
                "name": ev.name,
                "time_unix_nano": ev.timestamp,
                "attributes": dict(ev.attributes or {}),
            }
            for ev in events
        ]
        if events
        else [],
        "status": {
            "code": "STATUS_CODE_ERROR" if status.status_code is _ERROR else "STATUS_CODE_OK",
            "message": status.description or "",
        },
        "attributes": attributes,
        "links": [],
    }


def pending_to_trace(pending: PendingTrace) -> e.Trace:
    """The trace a root span's end completed."""
    first = pending.spans[0] if pending.spans else None
    encoded = encode_ids(first, pending.trace_id) if first is not None else None
    spans = []
    for s in pending.spans:
        parent = s.parent
        raw = span_dict(s, pending.trace_id, encoded)
        spans.append(
            e.Span(raw, (f"{s.context.span_id:016x}", f"{parent.span_id:016x}" if parent else None))
        )
    metadata = dict(pending.metadata)
    if pending.run_id:
        metadata[e.SOURCE_RUN] = pending.run_id
    return trace_from_spans(
        pending.trace_id,
        pending.experiment_id,
        spans,
        root_span_id=f"{pending.root_span_id:016x}",
        run_id=pending.run_id,
        metadata=metadata,
        tags=pending.tags,
    )


def trace_from_spans(
    trace_id: str,
    experiment_id: str,
    spans: list[e.Span],
    *,
    root_span_id: str | None = None,
    run_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> e.Trace:
    """A `Trace` from its spans: state, times, previews and token usage from the root.

    Args:
        trace_id: the MLflow trace id (``tr-<hex>``).
        experiment_id: the experiment it belongs to.
        spans: its spans, any order.
        root_span_id: the root's hex id; by default the span without a parent (none: the
            trace is ``IN_PROGRESS`` until its root arrives).
        run_id: the tracked run it happened in.
        metadata: trace metadata (MLflow's ``trace_metadata``).
        tags: trace tags.
    """
    if root_span_id is not None:
        root = next((s for s in spans if s.span_id == root_span_id), None)
    else:  # spans received from elsewhere: the root is the span without a parent
        root = next((s for s in spans if s.parent_id is None), None)
    spans = sorted(spans, key=lambda s: (s is not root, s.start_time_ns))
    meta = {e.SCHEMA_VERSION: "3", **(metadata or {})}
    all_tags = dict(tags or {})
    usage = token_usage(s.raw.get("attributes", {}) for s in spans)
    if usage:
        meta[e.TOKEN_USAGE] = orjson.dumps(usage).decode()
    request = response = None
    state = e.TraceState.IN_PROGRESS
    start_ms = min((s.start_time_ns for s in spans), default=0) // 1_000_000
    duration = None
    if root is not None:
        raw = root.raw.get("attributes", {})
        request, response = raw.get(e.SpanAttributeKey.INPUTS), raw.get(e.SpanAttributeKey.OUTPUTS)
        if request is not None:
            meta.setdefault(e.TRACE_INPUTS, preview(request) or "")
        if response is not None:
            meta.setdefault(e.TRACE_OUTPUTS, preview(response) or "")
        all_tags.setdefault(e.TRACE_NAME_TAG, root.name)
        state = e.TraceState.ERROR if root.status == "ERROR" else e.TraceState.OK
        if root.end_time_ns is not None:
            duration = (root.end_time_ns - root.start_time_ns) // 1_000_000
    info = e.TraceInfo(
        trace_id=trace_id,
        experiment_id=str(experiment_id),
        request_time=start_ms,
        state=state,
        execution_duration=duration,
        request_preview=preview(request),
        response_preview=preview(response),
        run_id=run_id,
        task_run_id=meta.get(e.PREFECT_TASK_RUN_ID),
        trace_metadata=meta,
        tags=all_tags,
    )
    return e.Trace(info, e.TraceData(spans))


def token_usage(
    attribute_maps: Iterable[Mapping[str, Any]], total: dict[str, int] | None = None
) -> dict[str, int] | None:
    """The token counts of spans' ``mlflow.chat.tokenUsage`` attributes, added up (onto
    ``total`` when given); ``None`` when no span has one."""
    found = total is not None
    if total is None:
        total = dict.fromkeys(_USAGE_KEYS, 0)
    for attributes in attribute_maps:
        usage = attributes.get(e.SpanAttributeKey.CHAT_USAGE)
        if not usage:
            continue
        try:
            values = orjson.loads(usage) if isinstance(usage, str) else usage
        except orjson.JSONDecodeError:
            continue
        if isinstance(values, dict):
            found = True
            for key in _USAGE_KEYS:
                value = values.get(key)
                if isinstance(value, int):
                    total[key] += value
    return total if found else None
