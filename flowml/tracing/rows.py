"""A trace as the SQL rows it is stored as: one `TraceRows` per trace.

Both ways into the SQL store end here. `pending_rows` builds the rows of a trace recorded
in this process straight from its finished OpenTelemetry spans, on the background
writer's thread, without the `Trace` / `Span` entities in between (no entity objects, no
decoding of what was just encoded, one pass over the spans). `trace_rows` builds the same rows
from a `Trace` entity (traces received over OTLP or REST, or holding payloads that go to the
artifact store first). The two agree column for column; the tests hold them to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.trace import StatusCode

from flowml.tracing import entities as e
from flowml.tracing.convert import attribute_dict, encode_ids, span_dict, token_usage
from flowml.tracing.payload import preview
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from flowml.tracing.provider import PendingTrace

__all__ = ["TraceRows", "pending_rows", "span_row", "trace_rows"]

_ERROR = StatusCode.ERROR  # OTel's UNSET and OK are MLflow's OK
_INPUTS, _OUTPUTS = e.SpanAttributeKey.INPUTS, e.SpanAttributeKey.OUTPUTS
_SPAN_TYPE, _USAGE = e.SpanAttributeKey.SPAN_TYPE, e.SpanAttributeKey.CHAT_USAGE
# Encoded span type -> its column value: a handful of distinct values per process.
_span_types: dict[str, str | None] = {}


@dataclass(slots=True)
class TraceRows:
    """One trace's rows, each a tuple in `flowml.tracing.store_write.COLUMNS` order.

    ``summary`` is the ``traces`` row without its ``trace_id``; ``in_progress`` says
    whether the trace's root is missing (an existing row is then left as it is).
    """

    trace_id: str
    experiment_id: str
    in_progress: bool
    summary: tuple[Any, ...]
    spans: list[tuple[Any, ...]]
    tags: list[tuple[str, str, str]]
    metadata: list[tuple[str, str, str]]


def _span_type(encoded: Any) -> str | None:
    if encoded is None:
        return None
    found = _span_types.get(encoded) if isinstance(encoded, str) else None
    if found is None:
        value = e.decode_attribute(encoded)
        found = str(value)[:64] if value is not None else None
        if isinstance(encoded, str) and len(_span_types) < 1000:
            _span_types[encoded] = found
    return found


def _kv(trace_id: str, values: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(trace_id, k[:250], str(v)) for k, v in values.items()]


def _span_rows(
    pending: PendingTrace,
) -> tuple[list[tuple[Any, ...]], ReadableSpan | None, dict[str, int] | None] | None:
    """The trace's span rows (root first, then by start time), its root span and token
    usage; ``None`` when a payload is over the artifact store's threshold."""
    trace_id, spans = pending.trace_id, pending.spans
    encoded = encode_ids(spans[0], trace_id) if spans else None
    root: ReadableSpan | None = None
    usage: dict[str, int] | None = None
    keyed: list[tuple[bool, int, tuple[Any, ...]]] = []
    for span in spans:
        attributes = attribute_dict(span)
        for key in (_INPUTS, _OUTPUTS):
            value = attributes.get(key)
            if isinstance(value, str) and len(value) > ARTIFACT_THRESHOLD_CHARS:
                return None
        if _USAGE in attributes:
            usage = token_usage([attributes], usage)
        context, parent = span.context, span.parent
        start = span.start_time or 0
        row = (
            trace_id,
            f"{context.span_id:016x}",
            f"{parent.span_id:016x}" if parent else None,
            span.name[:500],
            _span_type(attributes.get(_SPAN_TYPE)),
            "ERROR" if span.status.status_code is _ERROR else "OK",
            start,
            span.end_time,
            orjson.dumps(span_dict(span, trace_id, encoded)).decode(),
        )
        is_root = context.span_id == pending.root_span_id
        if is_root:
            root = span
        keyed.append((not is_root, start, row))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [k[2] for k in keyed], root, usage


def pending_rows(pending: PendingTrace) -> TraceRows | None:
    """The rows of a trace recorded here, or ``None`` when one of its inputs or outputs is
    large enough to go to the artifact store (`trace_rows` of its entity handles that).

    MLflow's rules, as `flowml.tracing.convert.trace_from_spans` applies them: state,
    duration, previews and name come from the root; the start from the earliest span.
    """
    found = _span_rows(pending)
    if found is None:
        return None
    spans, root, usage = found
    trace_id = pending.trace_id
    metadata = dict(pending.metadata)
    if pending.run_id:
        metadata[e.SOURCE_RUN] = pending.run_id
    meta = {e.SCHEMA_VERSION: "3", **metadata}
    tags = dict(pending.tags)
    if usage:
        meta[e.TOKEN_USAGE] = orjson.dumps(usage).decode()
    request = response = duration = None
    state = e.TraceState.IN_PROGRESS
    if root is not None:
        attributes = attribute_dict(root)
        request, response = attributes.get(_INPUTS), attributes.get(_OUTPUTS)
        if request is not None:
            meta.setdefault(e.TRACE_INPUTS, preview(request) or "")
        if response is not None:
            meta.setdefault(e.TRACE_OUTPUTS, preview(response) or "")
        tags.setdefault(e.TRACE_NAME_TAG, root.name)
        state = e.TraceState.ERROR if root.status.status_code is _ERROR else e.TraceState.OK
        if root.end_time is not None:
            duration = (root.end_time - (root.start_time or 0)) // 1_000_000
    name = tags.get(e.TRACE_NAME_TAG)
    summary = (
        int(pending.experiment_id),
        (name or "")[:500] or None,
        state,
        min((row[6] for row in spans), default=0) // 1_000_000,
        duration,
        pending.run_id,
        meta.get(e.PREFECT_TASK_RUN_ID),
        preview(request),
        preview(response),
    )
    return TraceRows(
        trace_id,
        str(pending.experiment_id),
        state == e.TraceState.IN_PROGRESS,
        summary,
        spans,
        _kv(trace_id, tags),
        _kv(trace_id, meta),
    )


def trace_rows(trace: e.Trace) -> TraceRows:
    """The rows of a `Trace` entity, as `flowml.tracing.convert.trace_from_spans` made it."""
    info = trace.info
    spans = [span_row(info.trace_id, span) for span in trace.data.spans]
    summary = (
        int(info.experiment_id),
        (info.name or "")[:500] or None,
        info.state,
        info.request_time,
        info.execution_duration,
        info.run_id,
        info.task_run_id,
        info.request_preview,
        info.response_preview,
    )
    return TraceRows(
        info.trace_id,
        str(info.experiment_id),
        info.state == e.TraceState.IN_PROGRESS,
        summary,
        spans,
        _kv(info.trace_id, info.tags),
        _kv(info.trace_id, info.trace_metadata),
    )


def span_row(trace_id: str, span: e.Span) -> tuple[Any, ...]:
    """The ``spans`` row of a `Span` entity."""
    span_type = span.span_type
    return (
        trace_id,
        span.span_id,
        span.parent_id,
        span.name[:500],
        str(span_type)[:64] if span_type is not None else None,
        span.status,
        span.start_time_ns,
        span.end_time_ns,
        orjson.dumps(span.raw).decode(),
    )
