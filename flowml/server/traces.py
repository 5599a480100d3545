"""Traces on the server: OTLP/HTTP intake at ``POST /v1/traces``, and MLflow 3's trace API.

``POST /v1/traces`` takes OTLP/HTTP (protobuf or JSON) and stores the spans as flowml traces.

Any OpenTelemetry SDK's OTLP/HTTP exporter pointed at the server (``endpoint=
http://host:5000/v1/traces``) lands its spans here. The experiment comes from the
``x-mlflow-experiment-id`` header (MLflow's convention), else the Default experiment.
The answer is an empty ``ExportTraceServiceResponse`` in the request's encoding.

MLflow 3's client (``mlflow.trace`` with the tracking URI at this server) calls
``POST /api/3.0/mlflow/traces`` (StartTraceV3) with the finished trace's info, then uploads
its spans as ``traces.json`` through the artifact proxy into the location the answer names
(``mlflow.artifactLocation``, chosen here inside the experiment's artifact location).
flowml's store loads such spans from ``traces.json`` the first time the trace is read; the
client reads traces back through `flowml.server.mlflow_traces`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import BadRequest, FlowMLError, InvalidParameter, StoreError
from flowml.server.api import Endpoint, error_response, internal_error, json_response
from flowml.server.context import ServerContext
from flowml.server.wire import Fields
from flowml.tracing import wire
from flowml.tracing.artifact_spans import ARTIFACT_LOCATION_TAG
from flowml.tracing.assessments import make_assessment
from flowml.tracing.entities import SOURCE_RUN, Trace, TraceData, TraceInfo, TraceState
from flowml.tracing.otlp import MAX_OTLP_BODY_BYTES, decode_request, traces_from_request
from flowml.tracing.span_payloads import REFERENCES
from flowml.tracing.store import SqlTraceStore
from flowml.tracking.store.sql import SqlStore

__all__ = [
    "EXPERIMENT_HEADER",
    "FLOWML_ENDPOINTS",
    "V3_ENDPOINTS",
    "otlp_intake",
    "trace_info_json",
]

_trace_stores: dict[str, SqlTraceStore] = {}

EXPERIMENT_HEADER = "x-mlflow-experiment-id"


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_OTLP_BODY_BYTES:
            raise BadRequest(f"Request body is larger than {MAX_OTLP_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def otlp_intake(request: Request) -> Response:
    """Store the spans of one OTLP/HTTP export request."""
    try:
        experiment_id = request.headers.get(EXPERIMENT_HEADER, "0").strip()
        if not experiment_id.isdigit() or len(experiment_id) > 18:
            raise InvalidParameter(
                f"{EXPERIMENT_HEADER} must be an experiment id (digits), got {experiment_id!r}"
            )
        body = await _body(request)
        content_type = request.headers.get("content-type", "")
        message = decode_request(body, content_type, request.headers.get("content-encoding"))
        traces = traces_from_request(message, experiment_id)
        await run_in_threadpool(_store_for(request.app.state.ctx).write_traces, traces)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # answered as a 500 with the details in the server's log only
        return internal_error(exc)
    if content_type.startswith("application/json"):
        return json_response({})
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    return Response(
        ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf"
    )


# -- MLflow 3's trace API (what the genuine mlflow client calls) ----------------------------

_TRACE_ID = re.compile(r"^tr-[0-9a-f]{32}$")
_FRACTION = re.compile(r"\.(\d+)")


def _store_for(ctx: ServerContext) -> SqlTraceStore:
    tracking = ctx.store
    if not isinstance(tracking, SqlStore):  # traces live in the tracking database
        raise StoreError("The trace API needs a SQL tracking store behind the server")
    store = _trace_stores.get(tracking.uri)
    if store is None:
        store = _trace_stores.setdefault(
            tracking.uri,
            SqlTraceStore(tracking.uri, search_timeout_seconds=tracking.search_timeout_seconds),
        )
    return store


def _trace_id(value: str) -> str:
    if not _TRACE_ID.match(value):
        raise InvalidParameter(f"Invalid trace id {value!r}: expected tr- and 32 hex digits")
    return value


def _timestamp_ms(value: str | None) -> int:
    """Milliseconds of an RFC 3339 timestamp (protobuf's JSON for Timestamp)."""
    if not value:
        raise InvalidParameter("A trace needs its request_time")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"))
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"Invalid request_time {value!r}: expected RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _duration_ms(value: str | None) -> int | None:
    """Milliseconds of a protobuf Duration in JSON (``"0.090s"``)."""
    if value is None:
        return None
    try:
        seconds = float(value.removesuffix("s"))
    except ValueError:
        raise InvalidParameter(
            f"Invalid execution_duration {value!r}: expected '<seconds>s'"
        ) from None
    if not 0 <= seconds < 10**9:
        raise InvalidParameter(f"Invalid execution_duration {value!r}")
    return round(seconds * 1000)


def trace_info_json(info: TraceInfo, ctx: ServerContext) -> dict[str, Any]:
    """A TraceInfoV3 message as MLflow's server writes it (artifact location on the wire)."""
    out = info.to_dict()
    duration = out.pop("execution_duration_ms", None)
    if duration is not None:
        out["execution_duration"] = f"{duration / 1000:.3f}s"
    location = info.tags.get(ARTIFACT_LOCATION_TAG)
    if location:
        out["tags"][ARTIFACT_LOCATION_TAG] = ctx.locations.to_wire(location)
    return out


def start_trace_v3(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /api/3.0/mlflow/traces``: store a finished trace's info; its spans follow as
    ``traces.json`` in the artifact location this answer names."""
    sent = fields.messages_one("trace").messages_one("trace_info")
    trace_id = _trace_id(sent.required("trace_id"))
    where = sent.messages_one("trace_location").messages_one("mlflow_experiment")
    experiment = ctx.store.get_experiment(where.required("experiment_id"))
    state = sent.string("state") or TraceState.OK
    if state not in TraceState.ALL:
        raise InvalidParameter(f"Invalid trace state {state!r}; expected one of {TraceState.ALL}")
    metadata = sent.mapping("trace_metadata")
    tags = sent.mapping("tags")
    # The server decides where the spans go, inside the experiment's artifact location.
    tags[ARTIFACT_LOCATION_TAG] = (
        f"{experiment.artifact_location.rstrip('/')}/traces/{trace_id}/artifacts"
    )
    info = TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment.experiment_id,
        request_time=_timestamp_ms(sent.string("request_time")),
        state=state,
        execution_duration=_duration_ms(sent.string("execution_duration")),
        request_preview=sent.string("request_preview"),
        response_preview=sent.string("response_preview"),
        run_id=metadata.get(SOURCE_RUN),
        trace_metadata=metadata,
        tags=tags,
    )
    store = _store_for(ctx)
    store.write_traces([Trace(info, TraceData([]))])
    return {"trace": {"trace_info": trace_info_json(store.get_trace_info(trace_id), ctx)}}


V3_ENDPOINTS = (Endpoint("/traces", "POST", start_trace_v3),)


# -- flowml's REST trace store (``/api/2.0/flowml/traces/*``) --------------------------------
#
# What `flowml.tracing.rest_store.RestTraceStore` calls: flowml's own tracing with the
# tracking URI at this server writes and reads traces here (`flowml.tracing.wire`).

MAX_WRITE_TRACES = 1_000
MAX_ASSESSMENTS = 10_000


def _list(fields: Fields, name: str, limit: int) -> list[Any]:
    value = fields._data.get(name)
    if not isinstance(value, list):
        raise InvalidParameter(f"Field {name!r} must be a list")
    if len(value) > limit:
        raise InvalidParameter(f"Field {name!r} holds {len(value):,} items; at most {limit:,}")
    return value


def _wire_trace(trace: Trace, ctx: ServerContext) -> dict[str, Any]:
    out = wire.trace_to_json(trace)
    _wire_tags(out["info"], ctx)
    return out


def _wire_tags(info: dict[str, Any], ctx: ServerContext) -> dict[str, Any]:
    """The artifact location tag as clients see it (``mlflow-artifacts:/...``)."""
    location = info["tags"].get(ARTIFACT_LOCATION_TAG)
    if location:
        info["tags"] = {**info["tags"], ARTIFACT_LOCATION_TAG: ctx.locations.to_wire(location)}
    return info


def write_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/write``: store (or merge) finished traces with their spans."""
    batch = [wire.trace_from_json(t) for t in _list(fields, "traces", MAX_WRITE_TRACES)]
    for trace in batch:
        _trace_id(trace.info.trace_id)
        if ARTIFACT_LOCATION_TAG in trace.info.tags:
            raise InvalidParameter(f"The tag {ARTIFACT_LOCATION_TAG!r} is set by the server")
        for span in trace.data.spans:  # payload references are the store's to make
            attributes = span.raw.get("attributes") or {}
            if any(key in attributes for key in REFERENCES.values()):
                raise InvalidParameter(
                    f"Span attributes {sorted(REFERENCES.values())} are set by the server"
                )
    _store_for(ctx).write_traces(batch)
    return {}


def get_trace(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/get``: a trace with its spans and assessments."""
    trace = _store_for(ctx).get_trace(_trace_id(fields.required("trace_id")))
    return {"trace": _wire_trace(trace, ctx)}


def get_trace_infos(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/infos``: the summaries (with assessments) of the traces that exist."""
    ids = [str(i) for i in _list(fields, "trace_ids", 10_000)]
    found = _store_for(ctx).get_trace_infos(ids)
    return {"infos": [_wire_tags(wire.info_to_json(i), ctx) for i in found.values()]}


def search_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/search``: a page of traces, optionally with their spans."""
    max_results = fields.int64("max_results")
    page = _store_for(ctx).search(
        fields.strings("experiment_ids"),
        fields.string("filter"),
        fields.strings("order_by"),
        100 if max_results is None else max_results,
        fields.string("page_token"),
        include_spans=fields.boolean("include_spans"),
    )
    out: dict[str, Any] = {"traces": [_wire_trace(t, ctx) for t in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def create_assessments(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/assessments``: store feedback and expectations (all or nothing)."""
    batch = [wire.assessment_from_json(a) for a in _list(fields, "assessments", MAX_ASSESSMENTS)]
    for assessment in batch:
        make_assessment(  # the library's validation, on the server too
            assessment.kind,
            assessment.trace_id,
            assessment.name,
            assessment.value,
            assessment.source,
            rationale=assessment.rationale,
        )
    _store_for(ctx).create_assessments(batch)
    return {}


def set_trace_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    _store_for(ctx).set_trace_tag(
        _trace_id(fields.required("trace_id")), fields.required("key"), fields.string("value") or ""
    )
    return {}


def delete_trace_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    _store_for(ctx).delete_trace_tag(_trace_id(fields.required("trace_id")), fields.required("key"))
    return {}


def delete_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/delete``: retention (``flowml traces gc``): traces that started
    before ``older_than_ms``, in ``experiment_ids`` when named, at most ``max_traces``."""
    deleted = _store_for(ctx).delete_traces(
        older_than_ms=fields.int64("older_than_ms", required=True),
        experiment_ids=fields.strings("experiment_ids") or None,
        max_traces=fields.int64("max_traces"),
    )
    return {"traces_deleted": deleted}


def count_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/count``: how many traces (in ``experiment_ids`` when named)."""
    return {"count": _store_for(ctx).count_traces(fields.strings("experiment_ids") or None)}


FLOWML_ENDPOINTS = (
    Endpoint("/traces/write", "POST", write_traces),
    Endpoint("/traces/get", "POST", get_trace),
    Endpoint("/traces/infos", "POST", get_trace_infos),
    Endpoint("/traces/search", "POST", search_traces),
    Endpoint("/traces/assessments", "POST", create_assessments),
    Endpoint("/traces/tags/set", "POST", set_trace_tag),
    Endpoint("/traces/tags/delete", "POST", delete_trace_tag),
    Endpoint("/traces/delete", "POST", delete_traces),
    Endpoint("/traces/count", "POST", count_traces),
)
