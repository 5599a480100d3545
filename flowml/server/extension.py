"""``/api/2.0/flowml/*``: what flowml's REST store needs beyond MLflow's API.

MLflow's API has no run keys and no lineage, so `flowml.tracking.store.rest.RestStore`
asks these few methods for them (MLflow's clients never call them):

| method | path | what |
|---|---|---|
| POST | ``/runs/create`` | MLflow's create plus ``run_key`` (get-or-create) and ``status`` |
| GET | ``/runs/get-by-key`` | the run created with ``run_key`` |
| POST | ``/lineage/log`` | record a run's lineage entries |
| POST | ``/lineage/search`` | entries by ``run_ids``, ``uris`` and ``direction`` |
| POST | ``/registry/audit/log`` | append a decision to a model's audit trail |
| GET | ``/registry/audit/search`` | audit entries by ``name``, ``max_results``, ``after_id`` |

Who, why and which Prefect run made a registry change travel in the ``X-FlowML-Audit``
header of any request (`flowml.registry.store.rest`).
"""

from __future__ import annotations

from typing import Any

from flowml.exceptions import ResourceNotFound
from flowml.registry.store.base import AUDIT_MAX_RESULTS_DEFAULT
from flowml.server import runs
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import Fields, run_json
from flowml.tracking.entities import RunStatus
from flowml.tracking.lineage import LineageEntry
from flowml.tracking.store.rest_wire import lineage_to_json

__all__ = ["ENDPOINTS"]


def create_run(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    return runs.create(
        ctx,
        fields,
        run_key=fields.string("run_key"),
        status=fields.string("status") or RunStatus.RUNNING,
    )


def get_run_by_key(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    key = fields.required("run_key")
    run = ctx.store.get_run_by_key(key)
    if run is None:
        raise ResourceNotFound(f"No run has the run key {key!r}")
    return {"run": run_json(run, ctx.locations)}


def _entry(fields: Fields) -> LineageEntry:
    return LineageEntry(
        direction=fields.required("direction"),
        kind=fields.required("kind"),
        uri=fields.required("uri"),
        name=fields.string("name"),
        digest=fields.string("digest"),
    )


def log_lineage(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    entries = [_entry(e) for e in fields.messages("entries")]
    ctx.store.log_lineage(fields.required("run_id"), entries)
    return {}


def search_lineage(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    found = ctx.store.search_lineage(
        run_ids=fields.strings("run_ids"),
        uris=fields.strings("uris"),
        direction=fields.string("direction"),
    )
    return {"entries": [lineage_to_json(e) for e in found]}


def log_audit_event(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    entry = ctx.registry.log_audit_event(
        fields.required("name"),
        fields.required("action"),
        version=fields.string("version"),
        from_value=fields.string("from_value"),
        to_value=fields.string("to_value"),
    )
    return {"entry": entry.to_dict()}


def search_audit(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    max_results = fields.int64("max_results")
    entries = ctx.registry.get_audit_log(
        fields.string("name"),
        AUDIT_MAX_RESULTS_DEFAULT if max_results is None else max_results,
        fields.int64("after_id") or 0,
    )
    return {"entries": [e.to_dict() for e in entries]}


ENDPOINTS = (
    Endpoint("/runs/create", "POST", create_run),
    Endpoint("/runs/get-by-key", "GET", get_run_by_key),
    Endpoint("/lineage/log", "POST", log_lineage),
    Endpoint("/lineage/search", "POST", search_lineage),
    Endpoint("/registry/audit/log", "POST", log_audit_event),
    Endpoint("/registry/audit/search", "GET", search_audit),
)
