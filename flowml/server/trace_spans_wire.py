"""Spans on MLflow 3's trace wire: the OpenTelemetry ``Span`` message in protobuf JSON.

MLflow's ``Trace`` message (GetTrace, BatchGetTraces) carries its spans as OTLP spans, which
MLflow's client reads with ``Span.from_otel_proto``. flowml keeps spans as MLflow's span
JSON (`flowml.tracing.entities.Span`): the same fields, but attribute values are
JSON-encoded strings in a mapping. Here each becomes a ``KeyValue`` whose ``AnyValue`` holds
the decoded value (MLflow's client JSON-encodes it back), ids stay base64 (protobuf JSON's
``bytes``) and nanosecond times are decimal strings (``fixed64``).

Example:
    >>> span_json(trace.data.spans[0], trace.info.trace_id)["attributes"][0]
    {'key': 'mlflow.spanType', 'value': {'string_value': 'LLM'}}
"""

from __future__ import annotations

import re
from typing import Any

from flowml.tracing.entities import Span, decode_attribute, encode_id

__all__ = ["any_value", "span_json"]

_TRACE_ID = re.compile(r"^tr-[0-9a-f]{32}$")
_STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")


def any_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue`` in protobuf JSON (``None``: the empty value)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": str(value)}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, list | tuple):
        return {"array_value": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlist_value": {"values": _key_values(value, encoded=False)}}
    return {"string_value": str(value)}


def _key_values(values: dict[str, Any], *, encoded: bool) -> list[dict[str, Any]]:
    return [
        {"key": str(k), "value": any_value(decode_attribute(v) if encoded else v)}
        for k, v in values.items()
    ]


def span_json(span: Span, trace_id: str) -> dict[str, Any]:
    """``span`` as an OTLP ``Span`` message of the trace ``trace_id`` (``tr-<32 hex>``)."""
    raw = span.raw
    out: dict[str, Any] = {
        "trace_id": _otel_trace_id(span, trace_id),
        "span_id": raw.get("span_id") or encode_id(span.span_id),
        "name": span.name,
        "start_time_unix_nano": str(span.start_time_ns),
        "attributes": _key_values(raw.get("attributes") or {}, encoded=True),
        "status": _status(raw.get("status")),
    }
    parent = raw.get("parent_span_id")
    if parent:
        out["parent_span_id"] = parent
    if span.end_time_ns is not None:
        out["end_time_unix_nano"] = str(span.end_time_ns)
    events = [_event(e) for e in span.events if isinstance(e, dict)]
    if events:
        out["events"] = events
    return out


def _status(status: Any) -> dict[str, Any]:
    status = status if isinstance(status, dict) else {}
    code = status.get("code")
    out: dict[str, Any] = {"code": code if code in _STATUS_CODES else "STATUS_CODE_UNSET"}
    if status.get("message"):
        out["message"] = str(status["message"])
    return out


def _event(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": str(event.get("name", ""))}
    if event.get("time_unix_nano") is not None:
        out["time_unix_nano"] = str(int(event["time_unix_nano"]))
    attributes = event.get("attributes")
    if isinstance(attributes, dict):
        out["attributes"] = _key_values(attributes, encoded=False)
    return out


def _otel_trace_id(span: Span, trace_id: str) -> str:
    """MLflow's client names a span's trace after its OTel trace id: the trace's own when
    it has MLflow's form (``tr-<32 hex>``), else the one the span was recorded with."""
    if _TRACE_ID.match(trace_id):
        return encode_id(trace_id.removeprefix("tr-"))
    return str(span.raw.get("trace_id") or "")
