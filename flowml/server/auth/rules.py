"""Which permission each endpoint needs, on which resource: one `Rule` per route.

A rule's ``check`` runs before the handler, on the request's fields, and raises
`PermissionDenied`; a search's check may narrow the fields (only readable experiments)
or answer at once (nothing readable). ``after`` runs on the reply: it filters search
results to readable resources, checks a resource found by another key (a run by its run
key), and grants a creator MANAGE on what it created. The table is closed: a route
without a rule is refused (a test walks every route against it).

Search filtering is per page: a page may hold fewer than ``max_results`` entries while
``next_page_token`` still leads on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flowml.exceptions import ResourceNotFound
from flowml.server.auth.access import Access
from flowml.server.auth.permissions import Permission
from flowml.server.wire import Fields
from flowml.tracking.artifacts import safe_artifact_path
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

__all__ = ["RULES", "Rule", "rule_key"]

Check = Callable[[Access, Fields], "Fields | dict[str, Any] | None"]
After = Callable[[Access, Fields, dict[str, Any]], dict[str, Any]]

READ, EDIT, MANAGE = Permission.READ, Permission.EDIT, Permission.MANAGE


@dataclass(frozen=True, slots=True)
class Rule:
    """What one endpoint requires (``check``) and does to its reply (``after``)."""

    check: Check
    after: After | None = None


def rule_key(group: str, path: str, method: str) -> tuple[str, str, str]:
    """The table's key: ``group`` is ``mlflow``, ``flowml`` or ``raw``."""
    return (group, path, method)


# -- checks ----------------------------------------------------------------------------------


def authenticated(access: Access, fields: Fields) -> None:
    """Any authenticated user (the middleware already made sure there is one)."""


def admin(access: Access, fields: Fields) -> None:
    access.require_admin()


def run(level: Permission) -> Check:
    def check(access: Access, fields: Fields) -> None:
        access.require_run(fields.required("run_id", "run_uuid"), level)

    return check


def runs_listed(level: Permission) -> Check:
    """``level`` on every run of the ``run_ids`` list."""

    def check(access: Access, fields: Fields) -> None:
        for run_id in fields.strings("run_ids"):
            access.require_run(run_id, level)

    return check


def experiment(level: Permission) -> Check:
    def check(access: Access, fields: Fields) -> None:
        access.require_experiment(fields.required("experiment_id"), level)

    return check


def model(level: Permission) -> Check:
    def check(access: Access, fields: Fields) -> None:
        access.require_model(fields.required("name"), level)

    return check


def logged_model(level: Permission) -> Check:
    def check(access: Access, fields: Fields) -> None:
        access.require_logged_model(fields.required("model_id"), level)

    return check


def experiment_by_name(access: Access, fields: Fields) -> None:
    found = access.ctx.store.get_experiment_by_name(fields.required("experiment_name"))
    if found is not None:
        access.require_experiment(found.experiment_id, READ)


def run_create(access: Access, fields: Fields) -> Fields:
    # The handler's default experiment when none is named.
    access.require_experiment(fields.string("experiment_id") or DEFAULT_EXPERIMENT_ID, EDIT)
    # The run records who really created it, not the name a client claims.
    return fields.with_values({"user_id": access.user.username})


def readable_experiment_ids(reply_key: str) -> Check:
    """Narrow ``experiment_ids`` to the readable ones; none left: an empty reply."""

    def check(access: Access, fields: Fields) -> Fields | dict[str, Any]:
        access.preload()
        readable = [e for e in fields.strings("experiment_ids") if access.can_read_experiment(e)]
        if not readable:
            return {reply_key: []}
        return fields.with_values({"experiment_ids": readable})

    return check


def version_source(access: Access, fields: Fields) -> None:
    """EDIT on the model, and READ on whatever the new version's files come from."""
    access.require_model(fields.required("name"), EDIT)
    run_id = fields.string("run_id")
    if run_id:
        access.require_run(run_id, READ)
    source = fields.required("source")
    parts = urlsplit(source)
    scheme, path = parts.scheme.lower(), (parts.netloc + parts.path).strip("/")
    first = path.split("/", 1)[0]
    if scheme == "runs" and first:
        access.require_run(first, READ)
    elif scheme == "models" and first.startswith("m-"):
        access.require_logged_model(first, READ)
    elif scheme == "models" and first:
        access.require_model(first.split("@", 1)[0], READ)  # models:/<name>@<alias>
    elif scheme == "mlflow-artifacts":
        proxied_path(READ)(access, Fields({"artifact_path": parts.path.lstrip("/")}))
    elif scheme in ("", "file"):
        # A path on the server's disk (the handler refuses it outside the destination).
        local = source[len("file://") :] if scheme == "file" else source
        rel = access.ctx.locations.relative(local)
        if rel is not None:
            proxied_path(READ)(access, Fields({"artifact_path": rel}))


def lineage_runs(access: Access, fields: Fields) -> None:
    for run_id in fields.strings("run_ids"):
        access.require_run(run_id, READ)


def proxied_path(level: Permission, name: str = "artifact_path") -> Check:
    """The artifact proxy: the experiment a path starts with, when it names one.

    Paths below the destination read ``<experiment id>/<run id>/artifacts/...`` (and
    ``<experiment id>/models/...`` for logged models). Any other path (the destination's
    root, an experiment's custom location) belongs to no experiment this server can name:
    any authenticated user may read there, and only an admin may write.
    """

    def check(access: Access, fields: Fields) -> None:
        rel = safe_artifact_path(fields.string(name))
        first = rel.split("/", 1)[0]
        if first.isdigit():
            try:
                access.ctx.store.get_experiment(first)
            except ResourceNotFound:
                pass
            else:
                access.require_experiment(first, level)
                return
        if level > READ:
            access.require_admin(f"writing {rel!r}, outside any experiment's directory,")

    return check


# -- reply filters ---------------------------------------------------------------------------


def grant_experiment(access: Access, fields: Fields, reply: dict[str, Any]) -> dict[str, Any]:
    access.settings.store.grant("experiment", str(reply["experiment_id"]), access.user.id, MANAGE)
    return reply


def grant_model(access: Access, fields: Fields, reply: dict[str, Any]) -> dict[str, Any]:
    access.settings.store.grant("registered_model", fields.required("name"), access.user.id, MANAGE)
    return reply


def _filtered(key: str, keep: Callable[[Access, dict[str, Any]], bool]) -> After:
    def after(access: Access, fields: Fields, reply: dict[str, Any]) -> dict[str, Any]:
        access.preload()
        return {**reply, key: [item for item in reply.get(key, []) if keep(access, item)]}

    return after


def _run_of(access: Access, fields: Fields, reply: dict[str, Any]) -> dict[str, Any]:
    access.require_experiment(str(reply["run"]["info"]["experiment_id"]), READ)
    return reply


def trace_start(access: Access, fields: Fields) -> None:
    """EDIT on the experiment a new trace (MLflow 3's StartTraceV3) goes to."""
    sent = fields.messages_one("trace").messages_one("trace_info")
    where = sent.messages_one("trace_location").messages_one("mlflow_experiment")
    access.require_experiment(where.required("experiment_id"), EDIT)


def _trace_of(access: Access, fields: Fields, reply: dict[str, Any]) -> dict[str, Any]:
    info = reply["trace"]["trace_info"]
    location = info.get("trace_location", {}).get("mlflow_experiment", {})
    access.require_experiment(str(location.get("experiment_id", info.get("experiment_id"))), READ)
    return reply


def _trace_experiments(access: Access, trace_ids: list[str]) -> dict[str, str]:
    """The experiment of each existing trace in ``trace_ids``."""
    from flowml.server.traces import _store_for

    found = _store_for(access.ctx).get_trace_infos(trace_ids)
    return {trace_id: info.experiment_id for trace_id, info in found.items()}


def trace_level(level: Permission) -> Check:
    """``level`` on the experiment of the trace ``trace_id`` (a missing trace: the handler's
    not-found answer)."""

    def check(access: Access, fields: Fields) -> None:
        trace_id = fields.required("trace_id", "request_id")  # 2.0 paths say request_id
        for experiment_id in _trace_experiments(access, [trace_id]).values():
            access.require_experiment(experiment_id, level)

    return check


def traces_written(access: Access, fields: Fields) -> None:
    """EDIT on every experiment the written traces go to."""
    batch = fields._data.get("traces")
    ids = set()
    for trace in batch if isinstance(batch, list) else []:
        info = trace.get("info") if isinstance(trace, dict) else None
        if isinstance(info, dict):
            ids.add(str(info.get("experiment_id")))
    for experiment_id in sorted(ids):
        access.require_experiment(experiment_id, EDIT)


def assessed_traces(access: Access, fields: Fields) -> None:
    """EDIT on the experiment of every trace assessed."""
    batch = fields._data.get("assessments")
    ids = sorted(
        {str(a.get("trace_id")) for a in batch if isinstance(a, dict)}
        if isinstance(batch, list)
        else set()
    )
    for experiment_id in sorted(set(_trace_experiments(access, ids).values())):
        access.require_experiment(experiment_id, EDIT)


_infos_readable = _filtered("infos", lambda a, i: a.can_read_experiment(str(i["experiment_id"])))


def _info_experiment(info: dict[str, Any]) -> str:
    """The experiment of a TraceInfoV3 message."""
    return str(info.get("trace_location", {}).get("mlflow_experiment", {}).get("experiment_id"))


_v3_infos_readable = _filtered(
    "trace_infos", lambda a, i: a.can_read_experiment(_info_experiment(i))
)
_v3_traces_readable = _filtered(
    "traces", lambda a, t: a.can_read_experiment(_info_experiment(t["trace_info"]))
)


def readable_trace_locations(access: Access, fields: Fields) -> Fields | dict[str, Any]:
    """SearchTracesV3: narrow ``locations`` to readable experiments; none left: no traces."""
    from flowml.server.mlflow_traces import search_experiment_ids

    access.preload()
    readable = [e for e in search_experiment_ids(fields) if access.can_read_experiment(e)]
    if not readable:
        return {"traces": []}
    locations = [
        {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}} for e in readable
    ]
    return fields.with_values({"locations": locations})


def experiments_or_admin(level: Permission) -> Check:
    """``level`` on every experiment of ``experiment_ids``; none named (all of them): admin."""

    def check(access: Access, fields: Fields) -> None:
        ids = fields.strings("experiment_ids")
        if not ids:
            access.require_admin("acting on the traces of every experiment")
        for experiment_id in ids:
            access.require_experiment(experiment_id, level)

    return check


def _entry_readable(access: Access, entry: dict[str, Any]) -> bool:
    try:
        return access.can_read_experiment(access.run_experiment(entry["run_id"]))
    except (KeyError, ResourceNotFound):
        return False


_experiments_readable = _filtered(
    "experiments", lambda a, e: a.can_read_experiment(str(e["experiment_id"]))
)
_models_readable = _filtered("registered_models", lambda a, m: a.can_read_model(m["name"]))
_versions_readable = _filtered("model_versions", lambda a, v: a.can_read_model(v["name"]))
_lineage_readable = _filtered("entries", _entry_readable)

_RM = "/registered-models"
_MV = "/model-versions"
_LM = "/logged-models/{model_id}"

RULES: dict[tuple[str, str, str], Rule] = {
    # experiments
    ("mlflow", "/experiments/create", "POST"): Rule(authenticated, grant_experiment),
    ("mlflow", "/experiments/get", "GET"): Rule(experiment(READ)),
    ("mlflow", "/experiments/get-by-name", "GET"): Rule(experiment_by_name),
    ("mlflow", "/experiments/search", "POST"): Rule(authenticated, _experiments_readable),
    ("mlflow", "/experiments/search", "GET"): Rule(authenticated, _experiments_readable),
    ("mlflow", "/experiments/update", "POST"): Rule(experiment(EDIT)),
    ("mlflow", "/experiments/delete", "POST"): Rule(experiment(MANAGE)),
    ("mlflow", "/experiments/restore", "POST"): Rule(experiment(MANAGE)),
    ("mlflow", "/experiments/set-experiment-tag", "POST"): Rule(experiment(EDIT)),
    # runs
    ("mlflow", "/runs/create", "POST"): Rule(run_create),
    ("mlflow", "/runs/get", "GET"): Rule(run(READ)),
    ("mlflow", "/runs/update", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/delete", "POST"): Rule(run(MANAGE)),
    ("mlflow", "/runs/restore", "POST"): Rule(run(MANAGE)),
    ("mlflow", "/runs/search", "POST"): Rule(readable_experiment_ids("runs")),
    ("mlflow", "/runs/log-metric", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/log-parameter", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/set-tag", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/delete-tag", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/log-batch", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/log-inputs", "POST"): Rule(run(EDIT)),
    ("mlflow", "/runs/outputs", "POST"): Rule(run(EDIT)),
    ("mlflow", "/metrics/get-history", "GET"): Rule(run(READ)),
    ("mlflow", "/artifacts/list", "GET"): Rule(run(READ)),
    # logged models
    ("mlflow", "/logged-models", "POST"): Rule(experiment(EDIT)),
    ("mlflow", "/logged-models/search", "POST"): Rule(readable_experiment_ids("models")),
    ("mlflow", _LM, "GET"): Rule(logged_model(READ)),
    ("mlflow", _LM, "PATCH"): Rule(logged_model(EDIT)),
    ("mlflow", _LM, "DELETE"): Rule(logged_model(MANAGE)),
    ("mlflow", f"{_LM}/tags", "PATCH"): Rule(logged_model(EDIT)),
    ("mlflow", f"{_LM}/tags/{{tag_key:path}}", "DELETE"): Rule(logged_model(EDIT)),
    ("mlflow", f"{_LM}/params", "POST"): Rule(logged_model(EDIT)),
    ("mlflow", f"{_LM}/artifacts/directories", "GET"): Rule(logged_model(READ)),
    # registered models
    ("mlflow", f"{_RM}/create", "POST"): Rule(authenticated, grant_model),
    ("mlflow", f"{_RM}/get", "GET"): Rule(model(READ)),
    ("mlflow", f"{_RM}/rename", "POST"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/update", "PATCH"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/delete", "DELETE"): Rule(model(MANAGE)),
    ("mlflow", f"{_RM}/search", "GET"): Rule(authenticated, _models_readable),
    ("mlflow", f"{_RM}/get-latest-versions", "POST"): Rule(model(READ)),
    ("mlflow", f"{_RM}/get-latest-versions", "GET"): Rule(model(READ)),
    ("mlflow", f"{_RM}/set-tag", "POST"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/delete-tag", "DELETE"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/alias", "POST"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/alias", "DELETE"): Rule(model(EDIT)),
    ("mlflow", f"{_RM}/alias", "GET"): Rule(model(READ)),
    # model versions
    ("mlflow", f"{_MV}/create", "POST"): Rule(version_source),
    ("mlflow", f"{_MV}/get", "GET"): Rule(model(READ)),
    ("mlflow", f"{_MV}/update", "PATCH"): Rule(model(EDIT)),
    ("mlflow", f"{_MV}/delete", "DELETE"): Rule(model(MANAGE)),
    ("mlflow", f"{_MV}/search", "GET"): Rule(authenticated, _versions_readable),
    ("mlflow", f"{_MV}/transition-stage", "POST"): Rule(model(EDIT)),
    ("mlflow", f"{_MV}/set-tag", "POST"): Rule(model(EDIT)),
    ("mlflow", f"{_MV}/delete-tag", "DELETE"): Rule(model(EDIT)),
    ("mlflow", f"{_MV}/get-download-uri", "GET"): Rule(model(READ)),
    # flowml's own methods (its REST store)
    ("flowml", "/runs/create", "POST"): Rule(run_create),
    ("flowml", "/runs/get-by-key", "GET"): Rule(authenticated, _run_of),
    ("flowml", "/lineage/log", "POST"): Rule(run(EDIT)),
    ("flowml", "/lineage/search", "POST"): Rule(lineage_runs, _lineage_readable),
    # traces: MLflow 3's trace API and OTLP intake (experiment from its header)
    ("mlflow", "/traces", "POST"): Rule(trace_start),
    ("mlflow", "/traces/{trace_id}", "GET"): Rule(authenticated, _trace_of),
    ("mlflow", "/traces/search", "POST"): Rule(readable_trace_locations),
    ("mlflow", "/traces/get", "GET"): Rule(trace_level(READ)),
    ("mlflow", "/traces/batchGet", "GET"): Rule(authenticated, _v3_traces_readable),
    ("mlflow", "/traces/batchGetInfos", "POST"): Rule(authenticated, _v3_infos_readable),
    ("mlflow", "/traces/delete-traces", "POST"): Rule(experiment(MANAGE)),
    ("mlflow", "/traces/{trace_id}/tags", "PATCH"): Rule(trace_level(EDIT)),
    ("mlflow", "/traces/{trace_id}/tags", "DELETE"): Rule(trace_level(EDIT)),
    ("mlflow", "/traces/{request_id}/tags", "PATCH"): Rule(trace_level(EDIT)),
    ("mlflow", "/traces/{request_id}/tags", "DELETE"): Rule(trace_level(EDIT)),
    ("raw", "/v1/traces", "POST"): Rule(experiment(EDIT)),
    # traces: flowml's REST trace store
    ("flowml", "/traces/write", "POST"): Rule(traces_written),
    ("flowml", "/traces/get", "POST"): Rule(trace_level(READ)),
    ("flowml", "/traces/infos", "POST"): Rule(authenticated, _infos_readable),
    ("flowml", "/traces/search", "POST"): Rule(readable_experiment_ids("traces")),
    ("flowml", "/traces/assessments", "POST"): Rule(assessed_traces),
    ("flowml", "/traces/tags/set", "POST"): Rule(trace_level(EDIT)),
    ("flowml", "/traces/tags/delete", "POST"): Rule(trace_level(EDIT)),
    ("flowml", "/traces/delete", "POST"): Rule(experiments_or_admin(MANAGE)),
    ("flowml", "/traces/count", "POST"): Rule(experiments_or_admin(READ)),
    ("flowml", "/registry/audit/log", "POST"): Rule(model(EDIT)),
    ("flowml", "/registry/audit/search", "GET"): Rule(model(READ)),
    # flowml's own methods (the web UI)
    ("flowml", "/metrics/history", "POST"): Rule(runs_listed(READ)),
    ("flowml", "/registry/audit", "GET"): Rule(model(READ)),
    ("flowml", "/model-versions/mlmodel", "GET"): Rule(model(READ)),
    ("flowml", "/artifacts/table", "GET"): Rule(run(READ)),
    # streamed routes: the artifact proxy and a logged model's file
    ("raw", "/mlflow-artifacts/artifacts", "GET"): Rule(proxied_path(READ, "path")),
    ("raw", "/mlflow-artifacts/artifacts/{artifact_path:path}", "GET"): Rule(proxied_path(READ)),
    ("raw", "/mlflow-artifacts/artifacts/{artifact_path:path}", "PUT"): Rule(proxied_path(EDIT)),
    ("raw", "/mlflow-artifacts/artifacts/{artifact_path:path}", "DELETE"): Rule(proxied_path(EDIT)),
    ("raw", "/mlflow/logged-models/{model_id}/artifacts/files", "GET"): Rule(logged_model(READ)),
    ("raw", "/mlflow/server-info", "GET"): Rule(authenticated),
    ("raw", "/get-artifact", "GET"): Rule(run(READ)),
    # multipart uploads: EDIT where the file goes; a part needs its upload's secret id,
    # which only the user who created the upload (EDIT checked then) was given
    ("raw", "/mlflow-artifacts/mpu/create/{artifact_path:path}", "POST"): Rule(proxied_path(EDIT)),
    ("raw", "/mlflow-artifacts/mpu/complete/{artifact_path:path}", "POST"): Rule(
        proxied_path(EDIT)
    ),
    ("raw", "/mlflow-artifacts/mpu/abort/{artifact_path:path}", "POST"): Rule(proxied_path(EDIT)),
    ("raw", "/mlflow-artifacts/mpu/part/{upload_id}/{part_number:int}", "PUT"): Rule(authenticated),
    ("raw", "/model-versions/get-artifact", "GET"): Rule(model(READ)),
}
