"""`RegistryClient`: the model registry with MLflow's method names.

The client is thin: it attaches the audit context (who, why, which Prefect run) to
every change, turns ``runs:/`` and ``models:/`` sources into storage locations at
registration, and delegates everything else to the store.

Example:
    >>> client = RegistryClient()
    >>> mv = client.register_model(f"runs:/{run_id}/model", "churn")
    >>> client.set_registered_model_alias("churn", "champion", mv.version)
    >>> client.get_model_version_by_alias("churn", "champion").source
    '/home/me/.flowml/artifacts/1/<run_id>/artifacts/model'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import FlowMLError, InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.registry.audit import AuditInfo, current_audit_info
from flowml.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from flowml.registry.store import AbstractRegistryStore, get_registry_store
from flowml.registry.store.base import (
    AUDIT_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
)
from flowml.registry.validation import validate_model_name
from flowml.tracking.entities import PagedList
from flowml.tracking.run_uri import RUNS_SCHEME, check_location, parse_runs_uri, resolve_runs_uri

__all__ = ["RegistryClient"]


class RegistryClient:
    """Client for a model registry.

    Args:
        registry_uri: the registry database; defaults to ``FLOWML_REGISTRY_URI``, then to
            the tracking URI.
        tracking_uri: the tracking store that ``runs:/`` sources and gate metrics are read
            from; defaults to the fluent API's current tracking URI.
    """

    def __init__(self, registry_uri: str | None = None, tracking_uri: str | None = None) -> None:
        from flowml.settings import get_settings
        from flowml.tracking import fluent

        self.tracking_uri = tracking_uri or fluent.get_tracking_uri()
        settings = get_settings()
        self.registry_uri = registry_uri or settings.registry_uri or self.tracking_uri
        self.search_timeout_seconds = settings.search_timeout_seconds
        self._store: AbstractRegistryStore | None = None
        self._tracking: Any = None

    @property
    def store(self) -> AbstractRegistryStore:
        if self._store is None:
            self._store = get_registry_store(
                self.registry_uri, search_timeout_seconds=self.search_timeout_seconds
            )
        return self._store

    @property
    def tracking(self) -> Any:
        """The `TrackingClient` for ``tracking_uri`` (shared with the fluent API when equal)."""
        if self._tracking is None:
            from flowml.tracking.client import shared_client

            self._tracking = shared_client(self.tracking_uri)
        return self._tracking

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model.

        Raises:
            ResourceAlreadyExists: the name is taken.
            InvalidParameter: a bad name, tag or description.
        """
        return self.store.create_registered_model(
            name, _str_tags(tags), description, audit=_info(reason)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Raises `ResourceNotFound` when no model has that name."""
        return self.store.get_registered_model(name)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return self.store.update_registered_model(name, description)

    def rename_registered_model(
        self, name: str, new_name: str, *, reason: str | None = None
    ) -> RegisteredModel:
        return self.store.rename_registered_model(name, new_name, audit=_info(reason))

    def delete_registered_model(self, name: str, *, reason: str | None = None) -> None:
        """Delete a model with all its versions; its audit trail is kept."""
        self.store.delete_registered_model(name, audit=_info(reason))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Models matching e.g. ``name LIKE 'churn%' and tags.team = 'ml'``, by name."""
        return self.store.search_registered_models(filter_string, max_results, order_by, page_token)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (all stages when ``None`` or empty)."""
        return self.store.get_latest_versions(name, stages)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.set_registered_model_tag(name, key, _str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(name, key)

    # -- model versions ----------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        *,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Register the model at ``model_uri`` as the next version of ``name`` (created if missing).

        Args:
            model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version|stage|latest>``,
                ``models:/<name>@<alias>``, a local path or any fsspec URL.
            name: the registered model; created when it does not exist yet.
            tags: tags of the new version.
            description: description of the new version.
            run_id: the producing run, for sources that do not name it.
            reason: recorded in the audit trail.

        Returns:
            The new version.

        Raises:
            ResourceNotFound: the run, or the registered version a ``models:/`` URI names,
                does not exist.
            InvalidParameter: a malformed URI or name.
        """
        validate_model_name(name)
        source, storage, source_run_id = self._resolve_source(model_uri)
        if isinstance(model_uri, str) and model_uri.startswith(RUNS_SCHEME):
            self._require_mlmodel(model_uri, storage)
        try:
            self.create_registered_model(name, reason=reason)
        except ResourceAlreadyExists:
            pass  # registering a new version of an existing model
        version = self.store.create_model_version(
            name,
            source,
            run_id=run_id or source_run_id,
            tags=_str_tags(tags),
            description=description,
            storage_location=storage,
            audit=_info(reason),
        )
        self._record_lineage(version)
        return version

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Add a version of an existing model from ``source`` (stored as given, as MLflow).

        Raises:
            ResourceNotFound: no model has that name.
        """
        _, storage, _ = self._resolve_source(source)
        version = self.store.create_model_version(
            name,
            source,
            run_id=run_id,
            tags=_str_tags(tags),
            run_link=run_link,
            description=description,
            storage_location=storage,
            audit=_info(reason),
        )
        self._record_lineage(version)
        return version

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, version)

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        return self.store.update_model_version(name, version, description)

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to ``None``, ``Staging``, ``Production`` or ``Archived`` (any case).

        Args:
            archive_existing_versions: archive the other versions in ``stage`` (Staging or
                Production only).

        Raises:
            InvalidParameter: an unknown stage or a forbidden archive request.
        """
        return self.store.transition_model_version_stage(
            name, version, stage, archive_existing_versions, audit=_info(reason)
        )

    def delete_model_version(
        self, name: str, version: int | str, *, reason: str | None = None
    ) -> None:
        self.store.delete_model_version(name, version, audit=_info(reason))

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are (a local path or an fsspec URL).

        Raises:
            InvalidParameter: the stored location could point outside the version's files.
        """
        from flowml.registry.uri import version_location

        return version_location(self.store.get_model_version(name, version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Versions matching e.g. ``name = 'churn' and run_id IN ('a', 'b')``."""
        return self.store.search_model_versions(filter_string, max_results, order_by, page_token)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self.store.set_model_version_tag(name, version, key, _str(value))

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.delete_model_version_tag(name, version, key)

    # -- aliases -----------------------------------------------------------------------------

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> None:
        """Point ``alias`` at ``version``, moving it from any other version.

        Raises:
            InvalidParameter: a malformed or reserved alias (``latest``, ``v<digits>``).
            ResourceNotFound: no such model or version.
        """
        self.store.set_registered_model_alias(name, alias, version, audit=_info(reason))

    def delete_registered_model_alias(
        self, name: str, alias: str, *, reason: str | None = None
    ) -> None:
        self.store.delete_registered_model_alias(name, alias, audit=_info(reason))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at (``latest`` and ``v<N>`` resolve too)."""
        return self.store.get_model_version_by_alias(name, alias)

    # -- audit -------------------------------------------------------------------------------

    def get_audit_log(
        self,
        name: str | None = None,
        max_results: int = AUDIT_MAX_RESULTS_DEFAULT,
        after_id: int = 0,
    ) -> list[AuditEntry]:
        """A model's audit trail (every model's when ``name`` is ``None``), oldest first."""
        return self.store.get_audit_log(name, max_results, after_id)

    def log_audit_event(
        self,
        name: str,
        action: str,
        *,
        version: int | str | None = None,
        from_value: str | None = None,
        to_value: str | None = None,
        reason: str | None = None,
        **details: Any,
    ) -> AuditEntry:
        """Record a decision that changes nothing by itself (a refused gate, an approval).

        Raises:
            InvalidParameter: ``action`` is not one of `AuditAction.EVENTS`.
        """
        info = _info(reason).with_details(**details) if details else _info(reason)
        return self.store.log_audit_event(
            name, action, version=version, from_value=from_value, to_value=to_value, audit=info
        )

    # -- sources -----------------------------------------------------------------------------

    def _resolve_source(self, model_uri: object) -> tuple[str, str, str | None]:
        """``(source, storage_location, run_id)`` for a model URI, as MLflow stores them.

        ``runs:/`` URIs become the run's artifact location (MLflow does the same), so a
        version stays readable whatever the tracking URI of its reader. Every form is
        confined: a ``runs:/`` path stays inside the run's artifacts, and no location may
        hold ``..`` or encoded dots and slashes (`flowml.tracking.run_uri`).
        """
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise InvalidParameter(f"A model URI must be a non-empty string, got {model_uri!r}")
        if model_uri.startswith(RUNS_SCHEME):
            location = resolve_runs_uri(model_uri, self.tracking)
            return location, location, parse_runs_uri(model_uri)[0]
        if model_uri.startswith("models:"):
            from flowml.registry.uri import resolve_model_version, version_location

            version = resolve_model_version(model_uri, self)
            return model_uri, version_location(version), version.run_id
        return model_uri, check_location(model_uri, "model source"), None

    def _record_lineage(self, version: ModelVersion) -> None:
        """Record ``models:/<name>/<version>`` as an output of its source run.

        Best effort: the run may live in another tracking store, or be deleted; the
        version's ``run_id`` links the two either way.
        """
        if not version.run_id:
            return
        from flowml.tracking.lineage import KIND_MODEL
        from flowml.tracking.lineage.inputs import record_output

        try:
            record_output(
                version.run_id,
                KIND_MODEL,
                f"models:/{version.name}/{version.version}",
                name=f"{version.name} v{version.version}",
                client=self.tracking,
            )
        except FlowMLError:
            pass

    def _require_mlmodel(self, model_uri: str, location: str) -> None:
        # As MLflow: registering a runs:/ path without a logged model is an error, found now
        # rather than when someone tries to load the version.
        from flowml.tracking.artifacts import ArtifactRepository

        # A run logged through a server has mlflow-artifacts:/ files, read via its proxy.
        if not ArtifactRepository(location, proxy_url=self.tracking_uri).exists("MLmodel"):
            raise ResourceNotFound(
                f"No model logged at {model_uri!r}: {location}/MLmodel does not exist"
            )


def _info(reason: str | None) -> AuditInfo:
    if reason is not None and not isinstance(reason, str):
        raise InvalidParameter(f"reason must be a string, got {reason!r}")
    return current_audit_info(reason)


def _str(value: Any) -> str:
    if value is None:
        raise InvalidParameter("Tag value cannot be None")
    return value if isinstance(value, str) else str(value)


def _str_tags(tags: Mapping[str, Any] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise InvalidParameter(f"tags must be a mapping of key to value, got {type(tags).__name__}")
    return {k: _str(val) for k, val in tags.items()}
