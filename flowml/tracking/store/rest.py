"""The REST tracking store, for ``http://`` and ``https://`` tracking URIs.

It speaks MLflow's tracking REST API (``/api/2.0/mlflow/...``), so it works against
``flowml server`` and, for MLflow's own methods, against an MLflow tracking server. What
MLflow's API has no method for is asked of flowml's small extension
(``/api/2.0/flowml/...``, served by ``flowml server``): creating a run with a run key
(idempotent get-or-create), finding a run by its key, and recording and reading lineage.
`finish_run` is the base class's: a log-batch, lineage if any, then an update.

Outages are retried with backoff and then raised as `StoreError` (see `rest_http`).
Runs created through a server have ``mlflow-artifacts:/...`` artifact URIs; the tracking
client reads and writes those through the server's artifact proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from flowml.tracking.lineage import LineageEntry, validate_entries
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import rest_wire as w
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_DEFAULT, AbstractStore
from flowml.tracking.store.rest_http import (
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    HttpTransport,
)

__all__ = ["RestStore"]

_MLFLOW = "/api/2.0/mlflow"
_FLOWML = "/api/2.0/flowml"
_VIEW_NAMES = {
    ViewType.ACTIVE_ONLY: "ACTIVE_ONLY",
    ViewType.DELETED_ONLY: "DELETED_ONLY",
    ViewType.ALL: "ALL",
}


def _view(view_type: int) -> str:
    try:
        return _VIEW_NAMES[view_type]
    except KeyError:
        raise InvalidParameter(
            f"Invalid view type {view_type!r}: use ViewType.ACTIVE_ONLY, DELETED_ONLY or ALL"
        ) from None


class RestStore(AbstractStore):
    """Tracking metadata held by a tracking server.

    Args:
        uri: the server's URL (``http://host:port``, optionally with a path prefix).
        default_artifact_root: unused (the server decides where artifacts live).
        search_timeout_seconds: unused (the server applies its own).
        max_retry_seconds: how long an unreachable server (or 429/5xx answers) is retried
            before `StoreError` is raised.
        timeout_seconds: the timeout of one HTTP attempt.
    """

    def __init__(
        self,
        uri: str,
        default_artifact_root: str = "",
        *,
        search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.uri = uri.rstrip("/")
        self.http = HttpTransport(
            self.uri, max_retry_seconds=max_retry_seconds, timeout_seconds=timeout_seconds
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.http.json(method, _MLFLOW + path, body)

    def _ext(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.http.json(method, _FLOWML + path, body)

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        v.validate_experiment_name(name)
        body: dict[str, Any] = {"name": name, "tags": w.pairs(tags or {})}
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self._call("POST", "/experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        reply = self._call("GET", "/experiments/get", {"experiment_id": str(experiment_id)})
        return w.experiment_from_json(reply["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            reply = self._call("GET", "/experiments/get-by-name", {"experiment_name": name})
        except ResourceNotFound:
            return None
        return w.experiment_from_json(reply["experiment"])

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        body = {
            "view_type": _view(view_type),
            "max_results": max_results,
            "filter": filter_string,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        reply = self._call("POST", "/experiments/search", _present(body))
        items = [w.experiment_from_json(e) for e in reply.get("experiments", ())]
        return PagedList(items, reply.get("next_page_token") or None)

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> None:
        if name is not None:
            body = {"experiment_id": str(experiment_id), "new_name": name}
            self._call("POST", "/experiments/update", body)
        if lifecycle_stage is not None:
            action = _lifecycle_action(lifecycle_stage)
            self._call("POST", f"/experiments/{action}", {"experiment_id": str(experiment_id)})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        body = {"experiment_id": str(experiment_id), "key": key, "value": value}
        self._call("POST", "/experiments/set-experiment-tag", body)

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        run_key: str | None = None,
        status: str = RunStatus.RUNNING,
    ) -> Run:
        body = _present(
            {
                "experiment_id": str(experiment_id),
                "user_id": user_id,
                "start_time": start_time,
                "tags": w.pairs(list(tags)),
                "run_name": run_name,
            }
        )
        if run_key is None and status == RunStatus.RUNNING:
            reply = self._call("POST", "/runs/create", body)
        else:
            # MLflow's create has neither a key nor a status: flowml's extension does both.
            reply = self._ext(
                "POST", "/runs/create", {**body, "run_key": run_key, "status": status}
            )
        return w.run_from_json(reply["run"])

    def get_run(self, run_id: str) -> Run:
        return w.run_from_json(self._call("GET", "/runs/get", {"run_id": run_id})["run"])

    def get_run_by_key(self, run_key: str) -> Run | None:
        try:
            reply = self._ext("GET", "/runs/get-by-key", {"run_key": run_key})
        except ResourceNotFound:
            return None
        return w.run_from_json(reply["run"])

    def update_run_info(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {"run_id": run_id, "status": status, "end_time": end_time, "run_name": run_name}
        reply = self._call("POST", "/runs/update", _present(body))
        return w.run_info_from_json(reply["run_info"])

    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        self._call("POST", f"/runs/{_lifecycle_action(lifecycle_stage)}", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        # Checked before sending: a value JSON cannot carry must not half-build a request.
        body = {
            "run_id": run_id,
            "metrics": [w.metric_to_json(m) for m in metrics],
            "params": w.pairs(list(params)),
            "tags": w.pairs(list(tags)),
        }
        self._call("POST", "/runs/log-batch", body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("POST", "/runs/delete-tag", {"run_id": run_id, "key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        history: list[Metric] = []
        token: str | None = None
        while True:
            query = _present({"run_id": run_id, "metric_key": key, "page_token": token})
            reply = self._call("GET", "/metrics/get-history", query)
            history += [w.metric_from_json(m) for m in reply.get("metrics", ())]
            token = reply.get("next_page_token") or None
            if token is None:
                return history

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "run_view_type": _view(run_view_type),
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        reply = self._call("POST", "/runs/search", _present(body))
        runs = [w.run_from_json(r) for r in reply.get("runs", ())]
        return PagedList(runs, reply.get("next_page_token") or None)

    # -- lineage (flowml's extension) --------------------------------------------------------

    def log_lineage(self, run_id: str, entries: Sequence[LineageEntry]) -> None:
        checked = validate_entries(entries)
        body = {"run_id": run_id, "entries": [w.lineage_to_json(e) for e in checked]}
        self._ext("POST", "/lineage/log", body)

    def search_lineage(
        self,
        run_ids: Sequence[str] = (),
        uris: Sequence[str] = (),
        direction: str | None = None,
    ) -> list[LineageEntry]:
        if not run_ids and not uris:
            return []
        body = _present({"run_ids": list(run_ids), "uris": list(uris), "direction": direction})
        reply = self._ext("POST", "/lineage/search", body)
        return [w.lineage_from_json(e) for e in reply.get("entries", ())]

    def close(self) -> None:
        self.http.close()


def _lifecycle_action(stage: str) -> str:
    if stage == LifecycleStage.DELETED:
        return "delete"
    if stage == LifecycleStage.ACTIVE:
        return "restore"
    raise InvalidParameter(f"Invalid lifecycle stage {stage!r}: use 'active' or 'deleted'")


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in body.items() if val is not None and val != []}
