"""``/api/2.0/mlflow/runs/*`` and ``metrics/get-history``: MLflow's run methods.

Every write goes straight to the store in the request (no buffering on the server: when
the reply says 200, the values are committed). MLflow's clients send both ``run_id`` and
its older name ``run_uuid``; either is accepted.
"""

from __future__ import annotations

from typing import Any

import orjson

from flowml.exceptions import InvalidParameter
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import VIEW_TYPES, Fields, key_values, metric_json, run_info_json, run_json
from flowml.tracking.entities import Metric, Param, RunInfo, RunStatus, RunTag, ViewType
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID, SEARCH_MAX_RESULTS_DEFAULT
from flowml.tracking.validation import INT64_MAX, INT64_MIN

__all__ = ["ENDPOINTS"]

_STATUSES = {name: number for number, name in enumerate(RunStatus.ALL, start=1)}
# MLflow's RunStatus numbers (RUNNING=1, SCHEDULED=2, FINISHED=3, FAILED=4, KILLED=5).
_STATUS_NAMES = {number: name for name, number in _STATUSES.items()}


def _run_id(fields: Fields) -> str:
    return fields.required("run_id", "run_uuid")


def _metric(fields: Fields) -> Metric:
    step = fields.int64("step")
    return Metric(
        key=fields.required("key"),
        value=fields.double("value"),
        timestamp=fields.int64("timestamp", required=True) or 0,
        step=0 if step is None else step,
    )


def create(
    ctx: ServerContext,
    fields: Fields,
    run_key: str | None = None,
    status: str = RunStatus.RUNNING,
) -> dict[str, Any]:
    """``runs/create``; flowml's extension adds a run key (get-or-create) and a status."""
    tags = [RunTag(k, v) for k, v in key_values(fields.messages("tags"), "run tag")]
    run = ctx.store.create_run(
        fields.string("experiment_id") or DEFAULT_EXPERIMENT_ID,
        user_id=fields.string("user_id") or "",
        start_time=fields.int64("start_time"),
        tags=tags,
        run_name=fields.string("run_name") or None,
        run_key=run_key,
        status=status,
    )
    return {"run": run_json(run, ctx.locations)}


def get(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    return {"run": run_json(ctx.store.get_run(_run_id(fields)), ctx.locations)}


def update(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    status = _STATUS_NAMES[fields.enum("status", _STATUSES, 0)] if fields.has("status") else None
    info = ctx.store.update_run_info(
        _run_id(fields),
        status=status,
        end_time=fields.int64("end_time"),
        run_name=fields.string("run_name") or None,
    )
    return {"run_info": run_info_json(info, ctx.locations)}


def delete(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.delete_run(_run_id(fields))
    return {}


def restore(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.restore_run(_run_id(fields))
    return {}


def search(ctx: ServerContext, fields: Fields) -> dict[str, Any] | bytes:
    max_results = fields.int64("max_results")
    args: dict[str, Any] = {
        "filter_string": fields.string("filter") or None,
        "run_view_type": fields.enum("run_view_type", VIEW_TYPES, ViewType.ACTIVE_ONLY),
        "max_results": SEARCH_MAX_RESULTS_DEFAULT if max_results is None else max_results,
        "order_by": fields.strings("order_by") or None,
        "page_token": fields.string("page_token") or None,
    }
    experiment_ids = fields.strings("experiment_ids")
    as_json = getattr(ctx.store, "search_runs_json", None)
    found = as_json(experiment_ids, **args) if as_json is not None else None
    if found is not None:
        return _runs_reply(found, found.token, ctx)
    page = ctx.store.search_runs(experiment_ids, **args)
    reply: dict[str, Any] = {"runs": [run_json(r, ctx.locations) for r in page]}
    if page.token:
        reply["next_page_token"] = page.token
    return reply


def _runs_reply(
    page: list[tuple[RunInfo, str | None, str | None, str | None]],
    token: str | None,
    ctx: ServerContext,
) -> bytes:
    """A search reply (`run_json`'s shape) around the runs' values as the database wrote
    them in MLflow's wire JSON (`SqlStore.search_runs_json`), which is not parsed here."""
    dumps, parts = orjson.dumps, []
    for info, params, tags, metrics in page:
        data = []
        if metrics is not None:
            data.append(b'"metrics":' + metrics.encode())
        if params is not None:
            data.append(b'"params":' + params.encode())
        if tags is not None:
            data.append(b'"tags":' + tags.encode())
        info_json = dumps(run_info_json(info, ctx.locations))
        parts.append(b'{"info":' + info_json + b',"data":{' + b",".join(data) + b'},"inputs":{}}')
    reply = b'{"runs":[' + b",".join(parts) + b"]"
    if token:
        reply += b',"next_page_token":' + dumps(token)
    return reply + b"}"


def log_metric(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.log_metric(_run_id(fields), _metric(fields))
    return {}


def log_param(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.log_param(_run_id(fields), Param(fields.required("key"), fields.required("value")))
    return {}


def set_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.set_tag(_run_id(fields), RunTag(fields.required("key"), fields.required("value")))
    return {}


def delete_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.delete_tag(_run_id(fields), fields.required("key"))
    return {}


def _metrics(fields: Fields) -> list[Metric]:
    """A batch's metrics: the common shape (a number, integer timestamp and step) read
    straight from the decoded JSON, anything else through `Fields`' checks."""
    raw = fields.raw("metrics")
    if not isinstance(raw, list):
        return [_metric(m) for m in fields.messages("metrics")]
    out = []
    low, high = INT64_MIN, INT64_MAX
    for item in raw:
        if type(item) is dict:
            key, value = item.get("key"), item.get("value")
            timestamp, step = item.get("timestamp"), item.get("step", 0)
            if (
                type(key) is str
                and (type(value) is float or type(value) is int)
                and type(timestamp) is int
                and type(step) is int
                and low <= timestamp <= high
                and low <= step <= high
            ):
                out.append(Metric(key, float(value), timestamp, step))
                continue
        if not isinstance(item, dict):
            raise InvalidParameter(
                "Invalid value for parameter 'metrics': expected a list of objects"
            )
        out.append(_metric(Fields(item)))
    return out


def log_batch(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.log_batch(
        _run_id(fields),
        metrics=_metrics(fields),
        params=[Param(k, v) for k, v in key_values(fields.messages("params"), "param")],
        tags=[RunTag(k, v) for k, v in key_values(fields.messages("tags"), "run tag")],
    )
    return {}


def get_metric_history(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    history = ctx.store.get_metric_history(_run_id(fields), fields.required("metric_key"))
    max_results = fields.int64("max_results")
    token = fields.string("page_token")
    start = 0
    if token:
        # An offset into the history: MLflow's client pages it only when asked to.
        if not token.isdigit():
            raise InvalidParameter(f"Invalid page_token {token!r}")
        start = int(token)
    if max_results is not None and max_results < 1:
        raise InvalidParameter(f"max_results must be positive, got {max_results}")
    end = len(history) if max_results is None else start + max_results
    reply: dict[str, Any] = {"metrics": [metric_json(m) for m in history[start:end]]}
    if end < len(history):
        reply["next_page_token"] = str(end)
    return reply


ENDPOINTS = (
    Endpoint("/runs/create", "POST", create),
    Endpoint("/runs/get", "GET", get),
    Endpoint("/runs/update", "POST", update),
    Endpoint("/runs/delete", "POST", delete),
    Endpoint("/runs/restore", "POST", restore),
    Endpoint("/runs/search", "POST", search),
    Endpoint("/runs/log-metric", "POST", log_metric),
    Endpoint("/runs/log-parameter", "POST", log_param),
    Endpoint("/runs/set-tag", "POST", set_tag),
    Endpoint("/runs/delete-tag", "POST", delete_tag),
    Endpoint("/runs/log-batch", "POST", log_batch),
    Endpoint("/metrics/get-history", "GET", get_metric_history),
)
