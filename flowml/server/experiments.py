"""``/api/2.0/mlflow/experiments/*``: MLflow's experiment methods over the tracking store."""

from __future__ import annotations

from typing import Any

from flowml.exceptions import ResourceNotFound
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import VIEW_TYPES, Fields, experiment_json, key_values
from flowml.tracking.entities import ViewType
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_DEFAULT

__all__ = ["ENDPOINTS"]


def create(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    name = fields.required("name")
    location = ctx.locations.from_wire(fields.string("artifact_location"))
    tags = dict(key_values(fields.messages("tags"), "experiment tag"))
    return {"experiment_id": ctx.store.create_experiment(name, location, tags or None)}


def get(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    experiment = ctx.store.get_experiment(fields.required("experiment_id"))
    return {"experiment": experiment_json(experiment, ctx.locations)}


def get_by_name(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    name = fields.required("experiment_name")
    experiment = ctx.store.get_experiment_by_name(name)
    if experiment is None:
        raise ResourceNotFound(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_json(experiment, ctx.locations)}


def search(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    max_results = fields.int64("max_results")
    page = ctx.store.search_experiments(
        view_type=fields.enum("view_type", VIEW_TYPES, ViewType.ACTIVE_ONLY),
        max_results=SEARCH_MAX_RESULTS_DEFAULT if max_results is None else max_results,
        filter_string=fields.string("filter") or None,
        order_by=fields.strings("order_by") or None,
        page_token=fields.string("page_token") or None,
    )
    reply: dict[str, Any] = {"experiments": [experiment_json(e, ctx.locations) for e in page]}
    if page.token:
        reply["next_page_token"] = page.token
    return reply


def update(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    experiment_id = fields.required("experiment_id")
    new_name = fields.string("new_name")
    if new_name is not None:
        ctx.store.rename_experiment(experiment_id, new_name)
    return {}


def delete(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.delete_experiment(fields.required("experiment_id"))
    return {}


def restore(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.restore_experiment(fields.required("experiment_id"))
    return {}


def set_experiment_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.store.set_experiment_tag(
        fields.required("experiment_id"), fields.required("key"), fields.required("value")
    )
    return {}


ENDPOINTS = (
    Endpoint("/experiments/create", "POST", create),
    Endpoint("/experiments/get", "GET", get),
    Endpoint("/experiments/get-by-name", "GET", get_by_name),
    Endpoint("/experiments/search", "POST", search),
    # MLflow's UI once searched with GET and query parameters; both are served.
    Endpoint("/experiments/search", "GET", search),
    Endpoint("/experiments/update", "POST", update),
    Endpoint("/experiments/delete", "POST", delete),
    Endpoint("/experiments/restore", "POST", restore),
    Endpoint("/experiments/set-experiment-tag", "POST", set_experiment_tag),
)
