"""The registry store contract.

A backend implements the abstract primitives; the operations MLflow derives from
them (download URIs, the reserved ``latest`` and ``v<N>`` aliases) are written here
once. Every mutating primitive takes an `AuditInfo` and writes its audit entries in
the same transaction as the change, so the trail can never disagree with the data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from flowml.exceptions import ResourceNotFound
from flowml.registry.audit import AuditInfo
from flowml.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from flowml.registry.validation import (
    RESERVED_ALIAS_LATEST,
    validate_alias,
    validate_model_name,
    version_alias,
)
from flowml.tracking.entities import PagedList

__all__ = [
    "SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT",
    "SEARCH_MODEL_VERSION_MAX_RESULTS_LIMIT",
    "SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT",
    "SEARCH_REGISTERED_MODEL_MAX_RESULTS_LIMIT",
    "AbstractRegistryStore",
]

# MLflow's defaults and limits.
SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT = 100
SEARCH_REGISTERED_MODEL_MAX_RESULTS_LIMIT = 1000
SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT = 10_000
SEARCH_MODEL_VERSION_MAX_RESULTS_LIMIT = 200_000
AUDIT_MAX_RESULTS_DEFAULT = 1000


class AbstractRegistryStore(ABC):
    """What every model registry backend provides."""

    # -- registered models -------------------------------------------------------------------

    @abstractmethod
    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        *,
        audit: AuditInfo | None = None,
    ) -> RegisteredModel:
        """Create a registered model.

        Raises:
            ResourceAlreadyExists: a model has that name.
            InvalidParameter: a bad name, tag or description.
        """

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """Raises `ResourceNotFound` when no model has that name."""

    @abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(
        self, name: str, new_name: str, *, audit: AuditInfo | None = None
    ) -> RegisteredModel:
        """Raises `ResourceAlreadyExists` when ``new_name`` is taken."""

    @abstractmethod
    def delete_registered_model(self, name: str, *, audit: AuditInfo | None = None) -> None:
        """Delete a model with its versions, tags and aliases (its audit trail stays)."""

    @abstractmethod
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]: ...

    @abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when empty), by version."""

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    # -- model versions ----------------------------------------------------------------------

    @abstractmethod
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
        """Add the next version (highest ever + 1) of an existing model.

        Safe under concurrent callers in many processes: numbers are never
        duplicated, skipped or reused.

        Raises:
            ResourceNotFound: no model has that name.
        """

    @abstractmethod
    def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...

    @abstractmethod
    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion: ...

    @abstractmethod
    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        audit: AuditInfo | None = None,
    ) -> ModelVersion:
        """Move a version to ``stage``; optionally archive the others in that stage.

        Raises:
            InvalidParameter: an unknown stage, or ``archive_existing_versions`` with a
                stage other than Staging or Production.
        """

    @abstractmethod
    def delete_model_version(
        self, name: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        """Delete a version and the aliases pointing at it. Its number is never reused."""

    @abstractmethod
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]: ...

    @abstractmethod
    def set_model_version_tag(
        self, name: str, version: int | str, key: str, value: str
    ) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None: ...

    # -- aliases -----------------------------------------------------------------------------

    @abstractmethod
    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, audit: AuditInfo | None = None
    ) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""

    @abstractmethod
    def delete_registered_model_alias(
        self, name: str, alias: str, *, audit: AuditInfo | None = None
    ) -> None:
        """Remove ``alias``; nothing happens when the model has no such alias (as MLflow)."""

    @abstractmethod
    def _get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an ordinary (not reserved) alias points at."""

    # -- audit -------------------------------------------------------------------------------

    @abstractmethod
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
        """Append a decision (gate refusal, approval, rollback) to a model's trail.

        Raises:
            InvalidParameter: ``action`` is a mutation (those are written only by the
                mutation itself) or unknown.
        """

    @abstractmethod
    def get_audit_log(
        self,
        name: str | None = None,
        max_results: int = AUDIT_MAX_RESULTS_DEFAULT,
        after_id: int = 0,
    ) -> list[AuditEntry]:
        """Audit entries in the order they were written.

        Args:
            name: one model's trail (including entries from before a rename or after a
                deletion of a model with that name); every model's when ``None``.
            max_results: at most this many entries.
            after_id: only entries with an id above this (for paging).
        """

    # -- derived operations ------------------------------------------------------------------

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; ``latest`` and ``v<N>`` resolve as in MLflow URIs.

        Raises:
            ResourceNotFound: no such model, alias or version.
        """
        validate_model_name(name)
        validate_alias(alias, reserved_ok=True)
        if alias.lower() == RESERVED_ALIAS_LATEST:
            return self.get_latest_version(name)
        number = version_alias(alias)
        if number is not None:
            return self.get_model_version(name, number)
        return self._get_version_by_alias(name, alias)

    def get_latest_version(self, name: str, stage: str | None = None) -> ModelVersion:
        """The highest version of a model, optionally only among those in ``stage``.

        Raises:
            ResourceNotFound: the model has no (such) version.
        """
        latest = self.get_latest_versions(name, None if stage is None else [stage])
        if not latest:
            where = "" if stage is None else f" in stage {stage!r}"
            raise ResourceNotFound(f"Registered model {name!r} has no versions{where}")
        return max(latest, key=lambda mv: mv.version)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are (an fsspec URL or local path)."""
        return self.get_model_version(name, version).storage_location

    def close(self) -> None:  # noqa: B027 - optional hook, not a primitive
        """Release connections. The base store holds none."""
