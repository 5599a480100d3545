"""OTLP/HTTP trace payloads in: protobuf or JSON ``ExportTraceServiceRequest`` to `Trace` s.

Used by ``flowml server``'s ``/v1/traces`` endpoint, so any OpenTelemetry SDK (and MLflow's
client, which speaks OTLP) can send spans to flowml. Spans are grouped by trace; a trace
whose root span is not in this request is stored ``IN_PROGRESS`` and completed when the
root arrives (the store merges).

Attribute values: strings are kept as they are (MLflow's clients already send JSON text),
other values are stored as JSON text, which is how MLflow's trace JSON holds them.

Limits: the body (after gzip) is at most `MAX_OTLP_BODY_BYTES`; a request with more than
`MAX_SPANS` spans is refused. OTLP/JSON ids are hex (the OTLP spec), not base64.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson

from flowml.exceptions import BadRequest
from flowml.tracing.convert import trace_from_spans
from flowml.tracing.entities import Span, SpanAttributeKey, Trace

__all__ = ["MAX_OTLP_BODY_BYTES", "MAX_SPANS", "decode_request", "traces_from_request"]

MAX_OTLP_BODY_BYTES = 32 * 1024 * 1024
MAX_SPANS = 50_000
_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _gunzip(body: bytes) -> bytes:
    """Decompress without ever holding more than the body limit (a gzip bomb stops early)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_OTLP_BODY_BYTES + 1)
    except zlib.error as exc:
        raise BadRequest(f"The gzip body is corrupt: {exc}") from None
    if len(out) > MAX_OTLP_BODY_BYTES or inflater.unconsumed_tail:
        raise BadRequest(f"The decompressed body is larger than {MAX_OTLP_BODY_BYTES:,} bytes")
    return out


def decode_request(body: bytes, content_type: str, content_encoding: str | None = None) -> Any:
    """The ``ExportTraceServiceRequest`` message of an OTLP/HTTP body.

    Raises:
        BadRequest: a body that does not decode, or an unsupported content type.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if (content_encoding or "").lower() == "gzip":
        body = _gunzip(body)
    elif content_encoding and content_encoding.lower() != "identity":
        raise BadRequest(f"Unsupported Content-Encoding {content_encoding!r}: use gzip or none")
    message = ExportTraceServiceRequest()
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-protobuf":
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"The protobuf body does not decode: {exc}") from None
        return message
    if kind == "application/json":
        try:
            data = orjson.loads(body)
            _hex_ids_to_base64(data)
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        except (orjson.JSONDecodeError, json_format.ParseError, ValueError, TypeError) as exc:
            raise BadRequest(f"The OTLP/JSON body does not decode: {exc}") from None
        return message
    raise BadRequest(
        f"Unsupported Content-Type {content_type!r}: send application/x-protobuf or "
        "application/json"
    )


def _hex_ids_to_base64(data: Any) -> None:
    """OTLP/JSON writes ids in hex; protobuf's JSON mapping reads bytes as base64."""
    if not isinstance(data, dict):
        raise BadRequest("An OTLP/JSON body is an object with resourceSpans")
    for resource in data.get("resourceSpans") or []:
        for scope in (resource or {}).get("scopeSpans") or []:
            for span in (scope or {}).get("spans") or []:
                for item in (span, *(span.get("links") or [])):
                    for field in _ID_FIELDS:
                        value = item.get(field)
                        if isinstance(value, str) and value:
                            item[field] = base64.b64encode(bytes.fromhex(value)).decode()


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode()
    return getattr(any_value, kind)


def _attributes(pairs: Any) -> dict[str, str]:
    out = {}
    for kv in pairs:
        value = _value(kv.value)
        out[kv.key] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out


def _span(span: Any) -> Span:
    return Span(
        {
            "trace_id": base64.b64encode(span.trace_id).decode(),
            "span_id": base64.b64encode(span.span_id).decode(),
            "parent_span_id": base64.b64encode(span.parent_span_id).decode()
            if span.parent_span_id
            else None,
            "name": span.name,
            "start_time_unix_nano": span.start_time_unix_nano,
            "end_time_unix_nano": span.end_time_unix_nano or None,
            "events": [
                {
                    "name": ev.name,
                    "time_unix_nano": ev.time_unix_nano,
                    "attributes": {kv.key: _value(kv.value) for kv in ev.attributes},
                }
                for ev in span.events
            ],
            "status": {
                "code": _STATUS.get(span.status.code, "STATUS_CODE_UNSET"),
                "message": span.status.message,
            },
            "attributes": _attributes(span.attributes),
            "links": [],
        }
    )


def traces_from_request(message: Any, experiment_id: str) -> list[Trace]:
    """Group a request's spans into traces of ``experiment_id``.

    Raises:
        BadRequest: too many spans, or a span with malformed ids.
    """
    grouped: dict[bytes, list[Span]] = {}
    count = 0
    for resource in message.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                count += 1
                if count > MAX_SPANS:
                    raise BadRequest(f"More than {MAX_SPANS:,} spans in one request; send fewer")
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise BadRequest(
                        f"Span {span.name!r} has a malformed id (trace ids are 16 bytes, "
                        "span ids 8)"
                    )
                grouped.setdefault(span.trace_id, []).append(_span(span))
    traces = []
    for raw_id, spans in grouped.items():
        trace_id = f"tr-{raw_id.hex()}"
        named = spans[0].raw["attributes"].get(SpanAttributeKey.REQUEST_ID)
        if named:
            loaded = orjson.loads(named) if named.startswith('"') else named
            if isinstance(loaded, str) and loaded.startswith("tr-") and len(loaded) <= 50:
                trace_id = loaded
        traces.append(trace_from_spans(trace_id, experiment_id, spans))
    return traces
