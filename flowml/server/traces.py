"""``POST /v1/traces``: OTLP/HTTP trace intake (protobuf or JSON), stored as flowml traces.

Any OpenTelemetry SDK's OTLP/HTTP exporter pointed at the server (``endpoint=
http://host:5000/v1/traces``) lands its spans here. The experiment comes from the
``x-mlflow-experiment-id`` header (MLflow's convention), else the Default experiment.
The answer is an empty ``ExportTraceServiceResponse`` in the request's encoding.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import BadRequest, FlowMLError, InvalidParameter
from flowml.server.api import error_response, internal_error, json_response
from flowml.tracing.otlp import MAX_OTLP_BODY_BYTES, decode_request, traces_from_request

__all__ = ["EXPERIMENT_HEADER", "otlp_intake"]

EXPERIMENT_HEADER = "x-mlflow-experiment-id"


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_OTLP_BODY_BYTES:
            raise BadRequest(f"Request body is larger than {MAX_OTLP_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _trace_store(request: Request):  # noqa: ANN202 - SqlTraceStore
    store = getattr(request.app.state, "trace_store", None)
    if store is None:
        from flowml.tracing.store import SqlTraceStore

        ctx = request.app.state.ctx
        store = request.app.state.trace_store = SqlTraceStore(
            ctx.store.uri, search_timeout_seconds=ctx.store.search_timeout_seconds
        )
    return store


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
        await run_in_threadpool(_trace_store(request).write_traces, traces)
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
