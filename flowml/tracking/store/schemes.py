"""Tracking stores chosen by URI scheme.

Stores register a factory under one or more schemes; the factory's module is
imported only when a URI with that scheme is first used.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.base import AbstractStore

# Called as factory(uri, default_artifact_root, *, search_timeout_seconds).
StoreFactory = Callable[..., AbstractStore]

# scheme -> "module:attribute" of a StoreFactory
_BUILTIN: dict[str, str] = {
    "sqlite": "flowml.tracking.store.sql:SqlStore",
    "postgresql": "flowml.tracking.store.sql:SqlStore",
    "postgres": "flowml.tracking.store.sql:SqlStore",
    "http": "flowml.tracking.store.rest:RestStore",
    "https": "flowml.tracking.store.rest:RestStore",
}
_registered: dict[str, StoreFactory] = {}
_cache: dict[tuple[str, str, float], AbstractStore] = {}
_lock = threading.Lock()


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make ``scheme://`` URIs open with ``factory(uri, default_artifact_root, *,
    search_timeout_seconds)``."""
    _registered[scheme] = factory


def known_schemes() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registered))


def _scheme(uri: str) -> str:
    scheme = urlsplit(uri).scheme.lower()
    return scheme.split("+", 1)[0]  # postgresql+psycopg -> postgresql


# What `flowml import mlflow` reads: MLflow's file store is not one of them, but a
# `mlflow server` in front of it is.
_FILE_STORE_HINT = (
    "flowml keeps runs in a database, not in MLflow's file store ({uri!r} is a file path). "
    "Use sqlite:///path/to/flowml.db, postgresql://... or http(s)://<flowml server>; to bring "
    "MLflow runs along, run `flowml import mlflow SOURCE` with an MLflow database URI or "
    "tracking server URL (for a ./mlruns directory: `mlflow server --backend-store-uri "
    "./mlruns`, then import from its URL)"
)


def check_tracking_uri(uri: str) -> str:
    """``uri`` when it can name a tracking store; file paths and ``file:`` URIs are refused.

    Raises:
        InvalidParameter: ``uri`` is empty, a ``file:`` URI or a path (``./mlruns``,
            ``/data/mlruns``), with what to use instead.
    """
    text = str(uri).strip()
    if not text:
        raise InvalidParameter("A tracking URI must not be empty")
    scheme = urlsplit(text).scheme.lower()
    # A one-letter "scheme" is a Windows drive (C:\mlruns), a path like any other.
    if scheme == "file" or len(scheme) <= 1:
        raise InvalidParameter(_FILE_STORE_HINT.format(uri=text))
    return text


def _factory(uri: str) -> StoreFactory:
    check_tracking_uri(uri)
    scheme = _scheme(uri)
    if scheme in _registered:
        return _registered[scheme]
    target = _BUILTIN.get(scheme)
    if target is None:
        raise InvalidParameter(
            f"No tracking store for URI {uri!r} (scheme {scheme or 'missing'!r}); "
            f"known schemes: {', '.join(s + '://' for s in known_schemes())}"
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def get_store(
    uri: str,
    default_artifact_root: str,
    *,
    search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
) -> AbstractStore:
    """The store for ``uri``, opened once per process, artifact root and search timeout."""
    key = (uri, default_artifact_root, search_timeout_seconds)
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = _factory(uri)(
                uri, default_artifact_root, search_timeout_seconds=search_timeout_seconds
            )
            _cache[key] = store
        return store


def clear_cache() -> None:
    with _lock:
        _cache.clear()
