"""A trace as the SQL rows it is stored as: one `TraceRows` per trace.

Both ways into the SQL store end here. `pending_rows` builds the rows of a trace recorded
in this process straight from its finished OpenTelemetry spans, on the background
writer's thread, without the `Trace` / `Span` entities in between (each span is read once;
no entity object, property call or second pass per span). `trace_rows` builds the same rows
from a `Trace` entity (traces received over OTLP or REST, or holding payloads that go to the
artifact store first). The two agree column for column; the tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from flowml.tracing import entities as e
from flowml.tracing.convert import attribute_dict, encode_ids, span_dict, token_usage
from flowml.tracing.payload import preview
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from flowml.tracing.provider import PendingTrace

__all__ = ["TraceRows", "pending_rows", "span_row", "trace_rows"]

_STATUS = {0: "OK", 1: "OK", 2: "ERROR"}  # OTel's UNSET, OK, ERROR as the spans row says it
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
        value = e._loads(encoded)
        found = str(value)[:64] if value is not None else None
        if isinstance(encoded, str) and len(_span_types) < 1000:
            _span_types[encoded] = found
    return found


def _kv(trace_id: str, values: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(trace_id, k[:250], str(v)) for k, v in values.items()]


def _rows(
    trace_id: str,
    experiment_id: str,
    run_id: str | None,
    meta: dict[str, str],
    tags: dict[str, str],
    spans: list[tuple[Any, ...]],
    root: tuple[Any, ...] | None,
    root_name: str,
    root_attributes: Mapping[str, Any],
    start_ms: int,
    usage: dict[str, int] | None,
) -> TraceRows:
    """The trace's summary, tags and metadata from its span rows, its root's row, name and
    attributes (MLflow's rules: state, times and previews come from the root)."""
    if usage:
        meta[e.TOKEN_USAGE] = orjson.dumps(usage).decode()
    request = response = duration = None
    state = e.TraceState.IN_PROGRESS
    if root is not None:
        request, response = root_attributes.get(_INPUTS), root_attributes.get(_OUTPUTS)
        if request is not None:
            meta.setdefault(e.TRACE_INPUTS, preview(request) or "")
        if response is not None:
            meta.setdefault(e.TRACE_OUTPUTS, preview(response) or "")
        tags.setdefault(e.TRACE_NAME_TAG, root_name)
        state = e.TraceState.ERROR if root[5] == "ERROR" else e.TraceState.OK
        if root[7] is not None:
            duration = (root[7] - root[6]) // 1_000_000
    name = tags.get(e.TRACE_NAME_TAG)
    summary = (
        int(experiment_id),
        (name or "")[:500] or None,
        state,
        start_ms,
        duration,
        run_id,
        meta.get(e.PREFECT_TASK_RUN_ID),
        preview(request),
        preview(response),
    )
    return TraceRows(
        trace_id,
        str(experiment_id),
        state == e.TraceState.IN_PROGRESS,
        summary,
        spans,
        _kv(trace_id, tags),
        _kv(trace_id, meta),
    )


def pending_rows(pending: PendingTrace) -> TraceRows | None:
    """The rows of a trace recorded here, or ``None`` when one of its inputs or outputs is
    large enough to go to the artifact store (`trace_rows` of its entity handles that)."""
    trace_id = pending.trace_id
    spans: list[ReadableSpan] = pending.spans
    encoded = encode_ids(spans[0], trace_id) if spans else None
    root_id = pending.root_span_id
    root: tuple[Any, ...] | None = None
    root_name = ""
    root_attributes: Mapping[str, Any] = {}
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
            _STATUS.get(span.status.status_code.value, "UNSET"),
            start,
            span.end_time,
            orjson.dumps(span_dict(span, trace_id, encoded)).decode(),
        )
        is_root = context.span_id == root_id
        if is_root:
            root, root_name, root_attributes = row, span.name, attributes
        keyed.append((not is_root, start, row))
    keyed.sort(key=lambda k: (k[0], k[1]))
    metadata = dict(pending.metadata)
    if pending.run_id:
        metadata[e.SOURCE_RUN] = pending.run_id
    return _rows(
        trace_id,
        pending.experiment_id,
        pending.run_id,
        {e.SCHEMA_VERSION: "3", **metadata},
        dict(pending.tags),
        [k[2] for k in keyed],
        root,
        root_name,
        root_attributes,
        min((k[1] for k in keyed), default=0) // 1_000_000,
        usage,
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
