"""``/api/2.0/mlflow/logged-models/*`` and ``runs/outputs``: MLflow 3's logged models.

``mlflow.<flavor>.log_model`` creates a logged model (``PENDING``), uploads its files
through the artifact proxy to the model's own location (``mlflow-artifacts:/<experiment>/
models/<id>/artifacts`` on the wire, ``<destination>/<experiment>/models/<id>/artifacts``
in the store), records it as an output of its run (kept as a lineage entry on
``models:/<id>``), and finalizes it ``READY``. ``runs:/<run>/<name>`` then resolves by
searching the run's experiment for models of that name.

A model's files are served (listed, downloaded) only through the destination's
`ArtifactRepository`, so a client's path cannot leave the model's directory.
"""

from __future__ import annotations

import posixpath
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import BadRequest, FlowMLError, InvalidParameter
from flowml.server.api import Endpoint, error_response, internal_error
from flowml.server.artifacts import _file_json, file_response
from flowml.server.context import ServerContext
from flowml.server.wire import Fields, key_values
from flowml.tracking.artifacts import safe_artifact_path
from flowml.tracking.lineage import KIND_MODEL, OUTPUT, LineageEntry
from flowml.tracking.store.sql_logged_models import LoggedModel

__all__ = ["ENDPOINTS", "download_file", "logged_model_json"]

# Protobuf's LoggedModelStatus names, and flowml's.
_STATUS_TO_WIRE = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_WIRE_STATUSES = {name: number for number, name in enumerate(_STATUS_TO_WIRE.values(), start=1)}
_STATUS_FROM_NUMBER = dict(enumerate(_STATUS_TO_WIRE, start=1))
_DEFAULT_MAX_RESULTS = 100


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": val} for k, val in values.items()]


def logged_model_json(model: LoggedModel, ctx: ServerContext) -> dict[str, Any]:
    """A ``LoggedModel`` message, the way MLflow's server writes it."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": ctx.locations.to_wire(model.artifact_location),
        "status": _STATUS_TO_WIRE[model.status],
        "tags": _pairs(model.tags),
    }
    for key, value in (
        ("model_type", model.model_type),
        ("source_run_id", model.source_run_id),
        ("status_message", model.status_message),
    ):
        if value:
            info[key] = value
    return {"info": info, "data": {"params": _pairs(model.params), "metrics": []}}


def _reply(ctx: ServerContext, model: LoggedModel) -> dict[str, Any]:
    return {"model": logged_model_json(model, ctx)}


def create(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    model = ctx.logged_models.create_logged_model(
        fields.required("experiment_id"),
        name=fields.string("name") or None,
        source_run_id=fields.string("source_run_id") or None,
        model_type=fields.string("model_type") or None,
        params=dict(key_values(fields.messages("params"), "logged model param")),
        tags=dict(key_values(fields.messages("tags"), "logged model tag")),
    )
    return _reply(ctx, model)


def get(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    return _reply(ctx, ctx.logged_models.get_logged_model(fields.required("model_id")))


def finalize(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    number = fields.enum("status", _WIRE_STATUSES, 0)
    if number not in _STATUS_FROM_NUMBER:
        raise InvalidParameter(
            f"Finalizing a logged model needs a status: one of {', '.join(_WIRE_STATUSES)}"
        )
    model = ctx.logged_models.finalize_logged_model(
        fields.required("model_id"), _STATUS_FROM_NUMBER[number]
    )
    return _reply(ctx, model)


def delete(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.logged_models.delete_logged_model(fields.required("model_id"))
    return {}


def set_tags(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    tags = dict(key_values(fields.messages("tags"), "logged model tag"))
    ctx.logged_models.set_logged_model_tags(fields.required("model_id"), tags)
    return {}


def delete_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.logged_models.delete_logged_model_tag(
        fields.required("model_id"), fields.required("tag_key")
    )
    return {}


def log_params(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    params = dict(key_values(fields.messages("params"), "logged model param"))
    ctx.logged_models.log_logged_model_params(fields.required("model_id"), params)
    return {}


def search(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    experiment_ids = fields.strings("experiment_ids")
    for experiment_id in experiment_ids:
        ctx.store.get_experiment(experiment_id)  # ResourceNotFound, as MLflow answers
    if fields.messages("datasets") or fields.messages("order_by"):
        raise InvalidParameter(
            "This server searches logged models by filter only (newest first): "
            "'datasets' and 'order_by' are not supported yet"
        )
    token = fields.string("page_token") or "0"
    if not token.isdigit():
        raise InvalidParameter(f"Invalid page_token {token!r}")
    max_results = fields.int64("max_results") or _DEFAULT_MAX_RESULTS
    models, more = ctx.logged_models.search_logged_models(
        experiment_ids,
        fields.string("filter") or None,
        max_results=max_results,
        offset=int(token),
    )
    reply: dict[str, Any] = {"models": [logged_model_json(m, ctx) for m in models]}
    if more:
        reply["next_page_token"] = str(int(token) + len(models))
    return reply


def _model_root(ctx: ServerContext, model_id: str) -> tuple[LoggedModel, str]:
    """The model and its directory below the destination.

    Raises:
        InvalidParameter: the model's files live outside this server's destination.
    """
    model = ctx.logged_models.get_logged_model(model_id)
    root = ctx.locations.relative(model.artifact_location)
    if root is None:
        raise InvalidParameter(
            f"The files of logged model {model_id!r} live at {model.artifact_location!r}, "
            "outside this server's artifact destination: read them from there directly"
        )
    return model, root


def list_artifacts(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    model, root = _model_root(ctx, fields.required("model_id"))
    rel = safe_artifact_path(fields.string("artifact_directory_path"))
    listed = ctx.artifacts.list_artifacts(posixpath.join(root, rel) if rel else root)
    prefix = root + "/" if root else ""
    return {
        "root_uri": ctx.locations.to_wire(model.artifact_location),
        "files": [_file_json(f, f.path[len(prefix) :]) for f in listed],
    }


def log_outputs(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    run_id = fields.required("run_id")
    entries = []
    for item in fields.messages("models"):
        model_id = ctx.logged_models.get_logged_model(item.required("model_id")).model_id
        entries.append(LineageEntry(OUTPUT, KIND_MODEL, f"models:/{model_id}", name=model_id))
    if entries:
        ctx.store.log_lineage(run_id, entries)
    return {}


async def download_file(request: Request) -> Response:
    """``GET .../logged-models/<id>/artifacts/files?artifact_file_path=<path>``: one file."""
    ctx: ServerContext = request.app.state.ctx
    try:
        wanted = request.query_params.get("artifact_file_path")
        if not wanted:
            raise BadRequest("The artifact_file_path query parameter is required")
        rel = safe_artifact_path(wanted)
        if not rel:
            raise BadRequest("artifact_file_path must name a file inside the model")
        _, root = await run_in_threadpool(_model_root, ctx, request.path_params["model_id"])
        handle = await run_in_threadpool(ctx.artifacts.open_artifact, posixpath.join(root, rel))
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return file_response(handle, rel)


_MODEL = "/logged-models/{model_id}"
ENDPOINTS = (
    Endpoint("/logged-models", "POST", create),
    Endpoint("/logged-models/search", "POST", search),
    Endpoint(_MODEL, "GET", get),
    Endpoint(_MODEL, "PATCH", finalize),
    Endpoint(_MODEL, "DELETE", delete),
    Endpoint(f"{_MODEL}/tags", "PATCH", set_tags),
    Endpoint(f"{_MODEL}/tags/{{tag_key:path}}", "DELETE", delete_tag),
    Endpoint(f"{_MODEL}/params", "POST", log_params),
    Endpoint(f"{_MODEL}/artifacts/directories", "GET", list_artifacts),
    Endpoint("/runs/outputs", "POST", log_outputs),
)
