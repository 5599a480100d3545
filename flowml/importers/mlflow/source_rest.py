"""Reading an MLflow tracking server through its REST API (httpx), paging every search.

Only read endpoints are called: ``experiments/search``, ``runs/search`` (which carries each
run's params, tags and dataset inputs), ``metrics/get-history`` (one call per run and key,
paged), ``logged-models/search``, ``registered-models/search``, ``model-versions/search``
and ``model-versions/get-download-uri``. Artifacts are read by the importer with the
server's artifact proxy (``mlflow-artifacts:`` URIs) or straight from their storage.
A server cannot say how many metric points it holds without reading every history, so the
count table shows ``?`` there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flowml.importers.mlflow.errors import NotAnMLflowStore
from flowml.importers.mlflow.records import (
    SourceExperiment,
    SourceLoggedModel,
    SourceModelVersion,
    SourceRegisteredModel,
    SourceRun,
    checked_id,
)
from flowml.importers.mlflow.source import Counts, MlflowSource, redact
from flowml.importers.mlflow.source_lineage import dataset_entry
from flowml.tracking.lineage import INPUT, KIND_MODEL, OUTPUT, LineageEntry

__all__ = ["RestSource"]

_API = "/api/2.0/mlflow"
_PAGE = 1000  # MLflow's cap for registered models; plenty for the other searches
_HISTORY_PAGE = 25000  # MLflow's cap for get-history
_LOGGED_STATUS = {
    "LOGGED_MODEL_PENDING": "PENDING", "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED", "LOGGED_MODEL_STATUS_UNSPECIFIED": "PENDING",
}  # fmt: skip


def _pairs(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in items or []}


def _int(value: Any, default: int = 0) -> int:
    return default if value in (None, "") else int(value)  # int64 may come as a string


def _float(value: Any) -> float:
    return math.nan if value in ("NaN", None) else float(value)


class RestSource(MlflowSource):
    """An MLflow tracking server, read through its REST API.

    Args:
        url: ``http(s)://host:port`` (``user:password@`` for basic auth).
        timeout: seconds per request.

    Raises:
        NotAnMLflowStore: the server cannot be reached or does not answer MLflow's API.
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        import httpx

        parts = urlsplit(url)
        auth = (parts.username or "", parts.password or "") if parts.username else None
        host = parts.hostname or ""
        base = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
        self.proxy_url = base.geturl().rstrip("/")
        self.where = f"The MLflow server {redact(url)}"
        self.http = httpx.Client(base_url=self.proxy_url, auth=auth, timeout=timeout)
        self._runs: dict[str, dict[str, Any]] = {}
        try:
            self._experiments = list(self._pages(
                "POST", "/experiments/search", "experiments", {"view_type": "ALL"}
            ))  # fmt: skip
        except BaseException:
            self.http.close()
            raise

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            if method == "GET":
                reply = self.http.get(_API + path, params=body)
            else:
                reply = self.http.post(_API + path, json=body)
        except httpx.HTTPError as exc:
            raise NotAnMLflowStore(
                f"{self.where} could not be reached ({exc.__class__.__name__}: {exc}); "
                "nothing was imported."
            ) from None
        try:
            payload = reply.json()
        except ValueError:
            payload = None
        if reply.status_code != 200 or not isinstance(payload, dict):
            detail = payload.get("message") if isinstance(payload, dict) else reply.text[:200]
            raise NotAnMLflowStore(
                f"{self.where} did not answer MLflow's API on {path} (HTTP "
                f"{reply.status_code}: {detail}); nothing was imported."
            )
        return payload

    def _pages(self, method: str, path: str, key: str, body: dict[str, Any]) -> Any:
        token = None
        while True:
            page = self._call(
                method,
                path,
                {**body, "max_results": _PAGE, **({"page_token": token} if token else {})},
            )
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    # -- experiments and runs ---------------------------------------------------------------

    def experiments(self) -> list[SourceExperiment]:
        found = [
            SourceExperiment(
                experiment_id=checked_id("experiment", e["experiment_id"]), name=e["name"],
                artifact_location=e.get("artifact_location"),
                lifecycle_stage=e.get("lifecycle_stage", "active"),
                creation_time=_int(e.get("creation_time"), None),  # type: ignore[arg-type]
                last_update_time=_int(e.get("last_update_time"), None),  # type: ignore[arg-type]
                tags=_pairs(e.get("tags")),
            )
            for e in self._experiments
        ]  # fmt: skip
        return sorted(found, key=lambda e: int(e.experiment_id))

    def _all_runs(self) -> dict[str, dict[str, Any]]:
        if not self._runs:
            ids = [e["experiment_id"] for e in self._experiments]
            for start in range(0, len(ids), 100):
                for run in self._pages("POST", "/runs/search", "runs", {
                    "experiment_ids": ids[start : start + 100], "run_view_type": "ALL",
                }):  # fmt: skip
                    self._runs[checked_id("run", run["info"]["run_id"])] = run
        return self._runs

    def run_index(self) -> list[tuple[str, str, str | None]]:
        runs = sorted(
            self._all_runs().values(),
            key=lambda r: (_int(r["info"].get("start_time")), r["info"]["run_id"]),
        )
        return [(r["info"]["run_id"], str(r["info"]["experiment_id"]),
                 r["info"].get("artifact_uri")) for r in runs]  # fmt: skip

    def read_runs(self, run_ids: Sequence[str]) -> list[SourceRun]:
        return [self._run(self._all_runs()[run_id]) for run_id in run_ids]

    def _run(self, raw: dict[str, Any]) -> SourceRun:
        info, data = raw["info"], raw.get("data", {})
        run = SourceRun(
            run_id=info["run_id"], experiment_id=str(info["experiment_id"]),
            name=info.get("run_name", ""), user_id=info.get("user_id", ""),
            status=info.get("status", "FINISHED"), start_time=_int(info.get("start_time")),
            end_time=_int(info.get("end_time"), None),  # type: ignore[arg-type]
            artifact_uri=info.get("artifact_uri"),
            lifecycle_stage=info.get("lifecycle_stage", "active"), deleted_time=None,
            params=_pairs(data.get("params")), tags=_pairs(data.get("tags")),
        )  # fmt: skip
        for metric in data.get("metrics", []):
            run.metrics[metric["key"]] = self._history(run.run_id, metric["key"])
        seen: dict[LineageEntry, None] = {}
        for item in raw.get("inputs", {}).get("dataset_inputs", []):
            d = item.get("dataset", {})
            seen[dataset_entry(d.get("name", ""), d.get("digest"), d.get("source"))] = None
        for item in raw.get("inputs", {}).get("model_inputs", []):
            seen[LineageEntry(INPUT, KIND_MODEL, f"models:/{item['model_id']}",
                              name=item["model_id"])] = None  # fmt: skip
        for item in raw.get("outputs", {}).get("model_outputs", []):
            seen[LineageEntry(OUTPUT, KIND_MODEL, f"models:/{item['model_id']}",
                              name=item["model_id"])] = None  # fmt: skip
        run.lineage = list(seen)
        return run

    def _history(self, run_id: str, key: str) -> tuple[list[float], list[int], list[int]]:
        points = []
        token = None
        while True:
            body = {"run_id": run_id, "metric_key": key, "max_results": _HISTORY_PAGE}
            page = self._call("GET", "/metrics/get-history", {
                **body, **({"page_token": token} if token else {})})  # fmt: skip
            points.extend(page.get("metrics", []))
            token = page.get("next_page_token")
            if not token:
                break
        points.sort(key=lambda m: (_int(m.get("step")), _int(m.get("timestamp"))))
        return ([_float(m.get("value")) for m in points],
                [_int(m.get("timestamp")) for m in points],
                [_int(m.get("step")) for m in points])  # fmt: skip

    # -- models -----------------------------------------------------------------------------

    def logged_models(self) -> list[SourceLoggedModel]:
        ids = [e["experiment_id"] for e in self._experiments]
        found = []
        for model in self._pages("POST", "/logged-models/search", "models",
                                 {"experiment_ids": ids}):  # fmt: skip
            info, data = model["info"], model.get("data", {})
            found.append(SourceLoggedModel(
                model_id=checked_id("logged model", info["model_id"]),
                experiment_id=str(info["experiment_id"]), run_id=info.get("source_run_id"),
                name=info.get("name", ""), artifact_location=info.get("artifact_uri", ""),
                status=_LOGGED_STATUS.get(info.get("status", ""), "READY"),
                status_message=info.get("status_message"), model_type=info.get("model_type"),
                creation_time=_int(info.get("creation_timestamp_ms")),
                last_updated_time=_int(info.get("last_updated_timestamp_ms")),
                tags=_pairs(info.get("tags")), params=_pairs(data.get("params")),
            ))  # fmt: skip
        return sorted(found, key=lambda m: (m.creation_time, m.model_id))

    def registered_models(self) -> list[SourceRegisteredModel]:
        found = []
        for raw in self._pages("GET", "/registered-models/search", "registered_models", {}):
            model = SourceRegisteredModel(
                name=raw["name"], description=raw.get("description"),
                creation_time=_int(raw.get("creation_timestamp")),
                last_updated_time=_int(raw.get("last_updated_timestamp")),
                tags=_pairs(raw.get("tags")),
                aliases={a["alias"]: int(a["version"]) for a in raw.get("aliases", [])},
            )  # fmt: skip
            quoted = model.name.replace("'", "\\'")
            for v in self._pages("GET", "/model-versions/search", "model_versions",
                                 {"filter": f"name='{quoted}'"}):  # fmt: skip
                uri = self._call("GET", "/model-versions/get-download-uri",
                                 {"name": model.name, "version": v["version"]})  # fmt: skip
                model.versions.append(SourceModelVersion(
                    version=int(v["version"]), source=v.get("source"),
                    storage_location=uri.get("artifact_uri"), run_id=v.get("run_id") or None,
                    run_link=v.get("run_link") or None, user_id=v.get("user_id") or None,
                    status=v.get("status", "READY"), status_message=v.get("status_message"),
                    current_stage=v.get("current_stage", "None"),
                    description=v.get("description"),
                    creation_time=_int(v.get("creation_timestamp")),
                    last_updated_time=_int(v.get("last_updated_timestamp")),
                    tags=_pairs(v.get("tags")),
                ))  # fmt: skip
            model.versions.sort(key=lambda v: v.version)
            found.append(model)
        return sorted(found, key=lambda m: (m.creation_time, m.name))

    def counts(self) -> Counts:
        runs = self._all_runs().values()
        models = self.registered_models()
        lineage = 0
        for raw in runs:
            inputs, outputs = raw.get("inputs", {}), raw.get("outputs", {})
            lineage += len({(d.get("dataset", {}).get("name"), d.get("dataset", {}).get("digest"),
                             d.get("dataset", {}).get("source"))
                            for d in inputs.get("dataset_inputs", [])})  # fmt: skip
            lineage += len({m["model_id"] for m in inputs.get("model_inputs", [])})
            lineage += len({m["model_id"] for m in outputs.get("model_outputs", [])})
        return {
            "experiments": len(self._experiments),
            "experiment tags": sum(len(e.get("tags", [])) for e in self._experiments),
            "runs": len(runs),
            "params": sum(len(r.get("data", {}).get("params", [])) for r in runs),
            "tags": sum(len(r.get("data", {}).get("tags", [])) for r in runs),
            "metric points": None,
            "inputs/outputs": lineage,
            "logged models": len(self.logged_models()),
            "registered models": len(models),
            "model versions": sum(len(m.versions) for m in models),
            "registry tags": sum(
                len(m.tags) + sum(len(v.tags) for v in m.versions) for m in models
            ),
            "aliases": sum(len(m.aliases) for m in models),
        }
