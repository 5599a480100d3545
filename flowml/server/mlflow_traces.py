"""MLflow 3's trace reads and management: what the genuine client calls after logging.

| method | path (below ``/api/3.0/mlflow``) | MLflow's RPC |
|---|---|---|
| GET | ``/traces/{trace_id}`` | GetTraceInfoV3 |
| GET | ``/traces/get`` | GetTrace (info and spans) |
| GET | ``/traces/batchGet`` | BatchGetTraces |
| POST | ``/traces/batchGetInfos`` | BatchGetTraceInfos |
| POST | ``/traces/search`` | SearchTracesV3 (infos only) |
| PATCH, DELETE | ``/traces/{trace_id}/tags`` | SetTraceTagV3, DeleteTraceTagV3 |
| POST | ``/traces/delete-traces`` | DeleteTracesV3 |

The client's tag calls and ``delete_traces`` go to the 2.0 forms (`V2_ENDPOINTS`:
``/api/2.0/mlflow/traces/{request_id}/tags``, ``.../traces/delete-traces``).

Where the client reads spans: a trace info tagged ``mlflow.trace.spansLocation =
TRACKING_STORE`` makes ``mlflow.get_trace`` ask GetTrace and ``mlflow.search_traces``
ask BatchGetTraces, instead of downloading ``traces.json`` from the artifact store. Every
info read here carries that tag, since flowml's store serves the spans of every trace
(those MLflow's client uploaded as ``traces.json`` are read into it on first access). The
answer to StartTraceV3 (`flowml.server.traces`) does not carry it: there the client must
still upload its spans.
"""

from __future__ import annotations

from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.trace_spans_wire import span_json
from flowml.server.traces import _store_for, _trace_id, trace_info_json
from flowml.server.wire import Fields
from flowml.tracing.entities import SPANS_LOCATION_TAG, Trace, TraceInfo
from flowml.tracing.retention import experiment_ids_int

__all__ = ["MAX_BATCH_TRACES", "MAX_DELETE_TRACES", "V2_ENDPOINTS", "V3_ENDPOINTS"]

TRACKING_STORE = "TRACKING_STORE"
#: Trace ids one BatchGetTraces / BatchGetTraceInfos call may name.
MAX_BATCH_TRACES = 1_000
#: Trace ids one DeleteTraces call may name.
MAX_DELETE_TRACES = 10_000
_EXPERIMENT_LOCATION = "MLFLOW_EXPERIMENT"


def read_info_json(info: TraceInfo, ctx: ServerContext) -> dict[str, Any]:
    """A TraceInfoV3 message for a read: spans are fetched from this server."""
    out = trace_info_json(info, ctx)
    out["tags"][SPANS_LOCATION_TAG] = TRACKING_STORE
    return out


def trace_json(trace: Trace, ctx: ServerContext) -> dict[str, Any]:
    """A ``Trace`` message: the info and the spans as OTLP spans."""
    trace_id = trace.info.trace_id
    return {
        "trace_info": read_info_json(trace.info, ctx),
        "spans": [span_json(span, trace_id) for span in trace.data.spans],
    }


def _trace_ids(fields: Fields, name: str, limit: int) -> list[str]:
    ids = fields.strings(name)
    if len(ids) > limit:
        raise InvalidParameter(f"Field {name!r} holds {len(ids):,} trace ids; at most {limit:,}")
    return list(dict.fromkeys(ids))


def _in_scope(info: TraceInfo, fields: Fields) -> bool:
    """Whether a trace is in the request's ``experiment_ids`` (none named: every one)."""
    scope = fields.strings("experiment_ids")
    return not scope or info.experiment_id in scope


def get_trace_info_v3(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``GET /traces/{trace_id}``: the info, with assessments."""
    info = _store_for(ctx).get_trace_info(_trace_id(fields.required("trace_id")))
    return {"trace": {"trace_info": read_info_json(info, ctx)}}


def get_trace(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``GET /traces/get``: the info and spans (``allow_partial`` is accepted; a trace in
    progress answers with the spans stored so far)."""
    fields.boolean("allow_partial")
    trace = _store_for(ctx).get_trace(_trace_id(fields.required("trace_id")))
    return {"trace": trace_json(trace, ctx)}


def batch_get_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``GET /traces/batchGet``: the traces of ``trace_ids`` that exist (in
    ``experiment_ids`` when named), with spans, in the order asked."""
    ids = _trace_ids(fields, "trace_ids", MAX_BATCH_TRACES)
    store = _store_for(ctx)
    infos = store.get_trace_infos(ids)
    wanted = [i for i in ids if i in infos and _in_scope(infos[i], fields)]
    out = []
    for trace_id in wanted:
        out.append(trace_json(store.get_trace(trace_id), ctx))  # reads traces.json if needed
    return {"traces": out}


def batch_get_trace_infos(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/batchGetInfos``: the infos of ``trace_ids`` that exist."""
    ids = _trace_ids(fields, "trace_ids", MAX_BATCH_TRACES)
    infos = _store_for(ctx).get_trace_infos(ids)
    return {
        "trace_infos": [
            read_info_json(infos[i], ctx) for i in ids if i in infos and _in_scope(infos[i], fields)
        ]
    }


def search_experiment_ids(fields: Fields) -> list[str]:
    """The experiments a SearchTracesV3 request's ``locations`` name.

    Raises:
        InvalidParameter: none named, or a location that is not an experiment.
    """
    ids = []
    for location in fields.messages("locations"):
        kind = location.string("type") or _EXPERIMENT_LOCATION
        if kind != _EXPERIMENT_LOCATION:
            raise InvalidParameter(
                f"Trace location type {kind!r} is not supported; expected {_EXPERIMENT_LOCATION}"
            )
        ids.append(location.messages_one("mlflow_experiment").required("experiment_id"))
    if not ids:
        raise InvalidParameter("SearchTraces needs at least one location (an experiment)")
    experiment_ids_int(ids)
    return ids


def search_traces_v3(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/search``: a page of trace infos, newest first unless ``order_by``."""
    max_results = fields.int64("max_results")
    page = _store_for(ctx).search_traces(
        search_experiment_ids(fields),
        fields.string("filter"),
        fields.strings("order_by"),
        100 if max_results is None else max_results,
        fields.string("page_token") or None,
    )
    out: dict[str, Any] = {"traces": [read_info_json(i, ctx) for i in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def _tagged_trace(fields: Fields) -> str:
    return _trace_id(fields.required("trace_id", "request_id"))


def set_trace_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``PATCH /traces/{trace_id}/tags`` (2.0: ``{request_id}``): set one tag."""
    key = fields.required("key")
    if key == SPANS_LOCATION_TAG:
        raise InvalidParameter(f"The tag {key!r} is set by the tracking server")
    _store_for(ctx).set_trace_tag(_tagged_trace(fields), key, fields.string("value") or "")
    return {}


def delete_trace_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``DELETE /traces/{trace_id}/tags``: remove one tag (a missing tag: not found)."""
    _store_for(ctx).delete_trace_tag(_tagged_trace(fields), fields.required("key"))
    return {}


def delete_traces(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``POST /traces/delete-traces``: delete traces of one experiment, either those named
    (``request_ids``) or those that started at or before ``max_timestamp_millis``, oldest
    first and at most ``max_traces``. MLflow's rules: exactly one of the two criteria, and
    ``max_traces`` (positive) only with the timestamp."""
    experiment_id = fields.required("experiment_id")
    experiment_ids_int([experiment_id])
    max_timestamp = fields.int64("max_timestamp_millis")
    max_traces = fields.int64("max_traces")
    ids = _trace_ids(fields, "request_ids", MAX_DELETE_TRACES)
    if max_timestamp is None and not ids:
        raise InvalidParameter("Either `max_timestamp_millis` or `trace_ids` must be specified.")
    if max_timestamp is not None and ids:
        raise InvalidParameter(
            "Only one of `max_timestamp_millis` and `trace_ids` can be specified."
        )
    if ids and max_traces is not None:
        raise InvalidParameter("`max_traces` can't be specified if `trace_ids` is specified.")
    if max_traces is not None and max_traces <= 0:
        raise InvalidParameter(f"`max_traces` must be a positive integer, received {max_traces}.")
    ctx.store.get_experiment(experiment_id)  # an unknown experiment: not found
    deleted = _store_for(ctx).delete_traces(
        older_than_ms=None if max_timestamp is None else max_timestamp + 1,
        experiment_ids=[experiment_id],
        max_traces=max_traces,
        trace_ids=ids or None,
    )
    return {"traces_deleted": deleted}


# Static paths before ``/traces/{trace_id}``, which would take ``get`` for an id.
V3_ENDPOINTS = (
    Endpoint("/traces/search", "POST", search_traces_v3),
    Endpoint("/traces/get", "GET", get_trace),
    Endpoint("/traces/batchGet", "GET", batch_get_traces),
    Endpoint("/traces/batchGetInfos", "POST", batch_get_trace_infos),
    Endpoint("/traces/delete-traces", "POST", delete_traces),
    Endpoint("/traces/{trace_id}", "GET", get_trace_info_v3),
    Endpoint("/traces/{trace_id}/tags", "PATCH", set_trace_tag),
    Endpoint("/traces/{trace_id}/tags", "DELETE", delete_trace_tag),
)

V2_ENDPOINTS = (
    Endpoint("/traces/delete-traces", "POST", delete_traces),
    Endpoint("/traces/{request_id}/tags", "PATCH", set_trace_tag),
    Endpoint("/traces/{request_id}/tags", "DELETE", delete_trace_tag),
)
