"""The REST registry store, for ``http://`` and ``https://`` registry URIs.

It speaks MLflow's model registry REST API (``/api/2.0/mlflow/registered-models/*`` and
``model-versions/*``), so `RegistryClient`, ``register_model``, aliases, stages, tags,
search and ``models:/`` URIs work against ``flowml server`` exactly as against a database.
The audit trail, which MLflow's API does not have, is read and appended through flowml's
extension (``/api/2.0/flowml/registry/audit/*``); who, why and which Prefect run made a
change travel with every request in the ``X-FlowML-Audit`` header, so the server writes
the audit entry in the same transaction as the change.

Arguments are validated here with the SQL store's rules before anything is sent (a
value JSON would coerce, such as ``True`` for a version, must fail as it does locally);
the server checks everything again. Outages are retried as for the tracking store
(`flowml.tracking.store.rest_http`).

Example:
    >>> client = RegistryClient(registry_uri="http://127.0.0.1:5000")
    >>> client.get_model_version_by_alias("churn", "champion").version
    3
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.registry import validation as v
from flowml.registry.audit import AuditInfo, current_audit_info
from flowml.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from flowml.registry.store.base import (
    AUDIT_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    AbstractRegistryStore,
)
from flowml.registry.store.rest_wire import (
    audit_entry_from_json,
    model_version_from_json,
    registered_model_from_json,
    resolved_elsewhere,
)
from flowml.tracking.entities import PagedList
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.rest_http import (
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    HttpTransport,
)

__all__ = ["AUDIT_HEADER", "RestRegistryStore", "audit_from_header", "audit_header"]

AUDIT_HEADER = "X-FlowML-Audit"
_MLFLOW = "/api/2.0/mlflow"
_FLOWML = "/api/2.0/flowml"
_RM = "/registered-models"
_MV = "/model-versions"


def audit_header(info: AuditInfo) -> dict[str, str]:
    """The header carrying ``info`` to the server (ASCII JSON, as headers must be)."""
    payload = {
        "user_id": info.user_id,
        "reason": info.reason,
        "flow_run_id": info.flow_run_id,
        "task_run_id": info.task_run_id,
        "details": info.details,
    }
    return {AUDIT_HEADER: json.dumps(payload, ensure_ascii=True, default=str)}


def audit_from_header(value: str | None) -> AuditInfo | None:
    """The `AuditInfo` a request carried, or ``None`` without (or with a malformed) header."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user_id"), str):
        return None
    texts = {k: data.get(k) for k in ("reason", "flow_run_id", "task_run_id")}
    details = data.get("details")
    return AuditInfo(
        user_id=data["user_id"][:255] or "unknown",
        **{k: t if isinstance(t, str) else None for k, t in texts.items()},
        details=details if isinstance(details, dict) else {},
    )


def _max_results(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"max_results must be an integer, got {value!r}")
    return value


def _tags(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": val} for k, val in v.validate_tags(tags).items()]


class RestRegistryStore(AbstractRegistryStore):
    """Model registry metadata held by a tracking server.

    Args:
        uri: the server's URL (``http://host:port``, optionally with a path prefix).
        search_timeout_seconds: unused (the server applies its own).
        max_retry_seconds: how long an unreachable server (or 429/5xx answers) is retried
            before `StoreError` is raised.
        timeout_seconds: the timeout of one HTTP attempt.
    """

    def __init__(
        self,
        uri: str,
        *,
        search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.uri = uri.rstrip("/")
        self.http = HttpTransport(
            self.uri, max_retry_seconds=max_retry_seconds, timeout_seconds=timeout_seconds
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        audit: AuditInfo | None = None,
    ) -> dict[str, Any]:
        headers = None
        if method != "GET":
            headers = audit_header(audit if audit is not None else current_audit_info())
        return self.http.json(method, _MLFLOW + path, body, headers=headers)

    def _version(self, payload: dict[str, Any]) -> ModelVersion:
        storage = None
        if resolved_elsewhere(str(payload.get("source", ""))):
            # The server resolved a runs:/ or models:/ source at registration; ask it where.
            query = {"name": payload["name"], "version": payload["version"]}
            storage = self._call("GET", f"{_MV}/get-download-uri", query)["artifact_uri"]
        return model_version_from_json(payload, storage)

    def _model(self, payload: dict[str, Any]) -> RegisteredModel:
        return registered_model_from_json(payload, self._version)

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        *,
        audit: AuditInfo | None = None,
    ) -> RegisteredModel:
        v.validate_model_name(name)
        body: dict[str, Any] = {"name": name, "tags": _tags(tags)}
        if v.validate_description(description) is not None:
            body["description"] = description
        reply = self._call("POST", f"{_RM}/create", body, audit)
        return self._model(reply["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        v.validate_model_name(name)
        return self._model(self._call("GET", f"{_RM}/get", {"name": name})["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        v.validate_model_name(name)
        body = {"name": name, "description": v.validate_description(description)}
        return self._model(self._call("PATCH", f"{_RM}/update", body)["registered_model"])

    def rename_registered_model(
        self, name: str, new_name: str, *, audit: AuditInfo | None = None
    ) -> RegisteredModel:
        v.validate_model_name(name)
        v.validate_model_name(new_name, what="new name")
        body = {"name": name, "new_name": new_name}
        return self._model(self._call("POST", f"{_RM}/rename", body, audit)["registered_model"])

    def delete_registered_model(self, name: str, *, audit: AuditInfo | None = None) -> None:
        v.validate_model_name(name)
        self._call("DELETE", f"{_RM}/delete", {"name": name}, audit)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        reply = self._search(f"{_RM}/search", filter_string, max_results, order_by, page_token)
        models = [self._model(m) for m in reply.get("registered_models", ())]
        return PagedList(models, reply.get("next_page_token") or None)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        v.validate_model_name(name)
        if stages is not None and (
            isinstance(stages, str) or not all(isinstance(s, str) for s in stages)
        ):
            raise InvalidParameter(f"stages must be a list of stage names, got {stages!r}")
        body = {"name": name, "stages": list(stages or [])}
        reply = self._call("POST", f"{_RM}/get-latest-versions", body)
        return [self._version(mv) for mv in reply.get("model_versions", ())]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        v.validate_model_name(name)
        key, value = v.validate_tag(key, value)
        self._call("POST", f"{_RM}/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        v.validate_model_name(name)
        v.validate_tag(key, "")
        self._call("DELETE", f"{_RM}/delete-tag", {"name": name, "key": key})

    # -- model versions ----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        *,
        storage_location: str | None = None,
        audit: AuditInfo | None = None,
    ) -> ModelVersion:
        # ``storage_location`` is the server's to decide: it resolves runs:/ and models:/
        # sources against its own stores, as it does for MLflow's clients.
        v.validate_model_name(name)
        v.validate_source(source)
        body = {
            "name": name,
            "source": source,
            "run_id": v.validate_optional_text("run_id", run_id, 32),
            "run_link": v.validate_optional_text("run_link", run_link, 500),
            "description": v.validate_description(description),
            "tags": _tags(tags),
        }
        body = {k: val for k, val in body.items() if val is not None}
        reply = self._call("POST", f"{_MV}/create", body, audit)
        return self._version(reply["model_version"])

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        v.validate_model_name(name)
        query = {"name": name, "version": str(v.validate_version(version))}
        return self._version(self._call("GET", f"{_MV}/get", query)["model_version"])

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        v.validate_model_name(name)
        body = {
            "name": name,
            "version": str(v.validate_version(version)),
            "description": v.validate_description(description),
        }
        return self._version(self._call("PATCH", f"{_MV}/update", body)["model_version"])

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        audit: AuditInfo | None = None,
    ) -> ModelVersion:
        v.validate_model_name(name)
        if not isinstance(archive_existing_versions, bool):
            raise InvalidParameter(
                "archive_existing_versions must be True or False, "
                f"got {archive_existing_versions!r}"
            )
        if not isinstance(stage, str):
            raise InvalidParameter(f"stage must be a string, got {stage!r}")
        body = {
            "name": name,
            "version": str(v.validate_version(version)),
            "stage": stage,
            "archive_existing_versions": archive_existing_versions,
        }
        reply = self._call("POST", f"{_MV}/transition-stage", body, audit)
        return self._version(reply["model_version"])

    def delete_model_version(
        self, name: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        body = {"name": name, "version": str(v.validate_version(version))}
        self._call("DELETE", f"{_MV}/delete", body, audit)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        reply = self._search(f"{_MV}/search", filter_string, max_results, order_by, page_token)
        versions = [self._version(mv) for mv in reply.get("model_versions", ())]
        return PagedList(versions, reply.get("next_page_token") or None)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        key, value = v.validate_tag(key, value)
        body = {"name": name, "version": str(number), "key": key, "value": value}
        self._call("POST", f"{_MV}/set-tag", body)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        v.validate_model_name(name)
        number = v.validate_version(version)
        v.validate_tag(key, "")
        self._call(
            "DELETE", f"{_MV}/delete-tag", {"name": name, "version": str(number), "key": key}
        )

    # -- aliases -----------------------------------------------------------------------------

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        body = {"name": name, "alias": alias, "version": str(v.validate_version(version))}
        self._call("POST", f"{_RM}/alias", body, audit)

    def delete_registered_model_alias(
        self, name: str, alias: str, *, audit: AuditInfo | None = None
    ) -> None:
        v.validate_model_name(name)
        v.validate_alias(alias)
        self._call("DELETE", f"{_RM}/alias", {"name": name, "alias": alias}, audit)

    def _get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        reply = self._call("GET", f"{_RM}/alias", {"name": name, "alias": alias})
        return self._version(reply["model_version"])

    # -- audit (flowml's extension) ----------------------------------------------------------

    def log_audit_event(
        self,
        name: str,
        action: str,
        *,
        version: int | str | None = None,
        from_value: str | None = None,
        to_value: str | None = None,
        audit: AuditInfo | None = None,
    ) -> AuditEntry:
        v.validate_model_name(name)
        if not isinstance(action, str):
            raise InvalidParameter(f"Audit action must be a string, got {action!r}")
        for label, text in (("from_value", from_value), ("to_value", to_value)):
            if text is not None and not isinstance(text, str):
                raise InvalidParameter(f"Audit {label} must be a string, got {text!r}")
        body = {
            "name": name,
            "action": action,
            "version": None if version is None else str(v.validate_version(version)),
            "from_value": from_value,
            "to_value": to_value,
        }
        body = {k: val for k, val in body.items() if val is not None}
        info = audit if audit is not None else current_audit_info()
        reply = self.http.json(
            "POST", f"{_FLOWML}/registry/audit/log", body, headers=audit_header(info)
        )
        return audit_entry_from_json(reply["entry"])

    def get_audit_log(
        self,
        name: str | None = None,
        max_results: int = AUDIT_MAX_RESULTS_DEFAULT,
        after_id: int = 0,
    ) -> list[AuditEntry]:
        if name is not None:
            v.validate_model_name(name)
        if _max_results(max_results) < 1:
            raise InvalidParameter(f"max_results must be a positive integer, got {max_results!r}")
        if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
            raise InvalidParameter(f"after_id must be a non-negative integer, got {after_id!r}")
        query = {"name": name, "max_results": max_results, "after_id": after_id}
        reply = self.http.json("GET", f"{_FLOWML}/registry/audit/search", query)
        return [audit_entry_from_json(e) for e in reply.get("entries", ())]

    # -- helpers -----------------------------------------------------------------------------

    def _search(
        self,
        path: str,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        if filter_string is not None and not isinstance(filter_string, str):
            raise InvalidParameter(f"filter_string must be a string, got {filter_string!r}")
        if order_by is not None and (
            isinstance(order_by, str) or not all(isinstance(o, str) for o in order_by)
        ):
            raise InvalidParameter(f"order_by must be a list of strings, got {order_by!r}")
        query = {
            "filter": filter_string or None,
            "max_results": _max_results(max_results),
            "order_by": list(order_by or []),
            "page_token": page_token or None,
        }
        return self._call("GET", path, query)

    def close(self) -> None:
        self.http.close()
