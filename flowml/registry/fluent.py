"""Module-level registry functions, as MLflow's ``mlflow.register_model`` & co.

They use one process-wide `RegistryClient` for the current registry URI (set with
`set_registry_uri`, else ``FLOWML_REGISTRY_URI``, else the tracking URI).

Example:
    >>> import flowml
    >>> mv = flowml.register_model(f"runs:/{run_id}/model", "churn")
    >>> [m.name for m in flowml.search_registered_models("name LIKE 'ch%'")]
    ['churn']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowml.registry.client import RegistryClient
from flowml.registry.entities import ModelVersion, RegisteredModel
from flowml.registry.store.base import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
)
from flowml.tracking.entities import PagedList

__all__ = [
    "get_registry_uri",
    "register_model",
    "search_model_versions",
    "search_registered_models",
    "set_registry_uri",
]

_registry_uri: str | None = None


def set_registry_uri(uri: str | None) -> None:
    """Point the module-level functions at another registry (``None``: back to the default).

    Example:
        >>> flowml.set_registry_uri("sqlite:///registry.db")
        >>> flowml.get_registry_uri()
        'sqlite:///registry.db'
        >>> flowml.set_registry_uri(None)
    """
    global _registry_uri
    _registry_uri = str(uri) if uri is not None else None


def get_registry_uri() -> str:
    """The registry URI the module-level functions use.

    Example:
        >>> flowml.get_registry_uri() == flowml.get_tracking_uri()  # unless set apart
        True
    """
    return _client().registry_uri


def _client() -> RegistryClient:
    return RegistryClient(_registry_uri)


def register_model(
    model_uri: str,
    name: str,
    tags: Mapping[str, Any] | None = None,
    *,
    description: str | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Register the model at ``model_uri`` as a new version of ``name`` (created if missing).

    Args:
        model_uri: ``runs:/<run_id>/<path>``, a ``models:/`` URI, a path or an fsspec URL.
        name: the registered model.
        tags: tags of the new version.
        description: description of the new version.
        reason: recorded in the audit trail.

    Returns:
        The new version.

    Raises:
        ResourceNotFound: the run (or the model in it) or the source version does not exist.
        InvalidParameter: a malformed URI or name.

    Example:
        >>> with flowml.start_run():
        ...     info = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> version = flowml.register_model(info.model_uri, "echo", tags={"team": "risk"})
        >>> version.name, version.version, version.tags
        ('echo', 1, {'team': 'risk'})
    """
    return _client().register_model(model_uri, name, tags, description, reason=reason)


def search_registered_models(
    filter_string: str | None = None,
    max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[RegisteredModel]:
    """Registered models matching a filter such as ``name LIKE 'churn%'``.

    Example:
        >>> with flowml.start_run():
        ...     info = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> _ = flowml.register_model(info.model_uri, "churn-small")
        >>> _ = flowml.register_model(info.model_uri, "fraud")
        >>> [m.name for m in flowml.search_registered_models("name LIKE 'churn%'")]
        ['churn-small']
    """
    return _client().search_registered_models(filter_string, max_results, order_by, page_token)


def search_model_versions(
    filter_string: str | None = None,
    max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[ModelVersion]:
    """Model versions matching a filter such as ``name = 'churn' and run_id = '...'``.

    Example:
        >>> with flowml.start_run():
        ...     info = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> for _ in range(2):
        ...     _ = flowml.register_model(info.model_uri, "churn")
        >>> sorted(v.version for v in flowml.search_model_versions("name = 'churn'"))
        [1, 2]
    """
    return _client().search_model_versions(filter_string, max_results, order_by, page_token)
