"""Stores chosen by URI scheme: one table of schemes for tracking and registry stores.

`SCHEMES` says which backend a URI scheme names (``postgresql+psycopg`` is ``postgresql``);
each store kind (`StoreKind`: the tracking stores here, the registry stores in
`flowml.registry.store`) names the class implementing each backend. A store's module is
imported only when a URI with its scheme is first used, and each store is opened once per
process and arguments. Other backends register a factory for their scheme.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.base import AbstractStore

__all__ = [
    "SCHEMES",
    "StoreKind",
    "check_tracking_uri",
    "clear_cache",
    "get_store",
    "known_schemes",
    "register_store",
    "uri_scheme",
]

# URI scheme -> backend: every store kind has one implementation per backend.
SCHEMES: dict[str, str] = {
    "sqlite": "sql",
    "postgresql": "sql",
    "postgres": "sql",
    "http": "rest",
    "https": "rest",
}

S = TypeVar("S")


def uri_scheme(uri: str) -> str:
    """The scheme of ``uri``, lowercase and without a driver (``postgresql+psycopg`` ->
    ``postgresql``)."""
    return urlsplit(uri).scheme.lower().split("+", 1)[0]


class StoreKind(Generic[S]):
    """One kind of store (tracking, registry): its class per backend, the factories
    registered for other schemes, and the stores opened so far."""

    def __init__(self, what: str, backends: dict[str, str]) -> None:
        self.what = what  # "tracking store": how error messages name it
        self._backends = backends  # backend -> "module:attribute" of a factory
        self._registered: dict[str, Callable[..., S]] = {}
        self._cache: dict[Hashable, S] = {}
        self._lock = threading.Lock()

    def register(self, scheme: str, factory: Callable[..., S]) -> None:
        self._registered[scheme] = factory

    def known_schemes(self) -> list[str]:
        builtin = {s for s, backend in SCHEMES.items() if backend in self._backends}
        return sorted(builtin | set(self._registered))

    def factory(self, uri: str) -> Callable[..., S]:
        """The factory for ``uri``'s scheme.

        Raises:
            InvalidParameter: no store of this kind handles the scheme.
        """
        scheme = uri_scheme(uri)
        if scheme in self._registered:
            return self._registered[scheme]
        target = self._backends.get(SCHEMES.get(scheme, ""))
        if target is None:
            raise InvalidParameter(
                f"No {self.what} for URI {uri!r} (scheme {scheme or 'missing'!r}); "
                f"known schemes: {', '.join(s + '://' for s in self.known_schemes())}"
            )
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def open(self, key: Hashable, uri: str, *args: Any, **kwargs: Any) -> S:
        """The store cached under ``key``, made by ``factory(uri, *args, **kwargs)`` once."""
        with self._lock:
            store = self._cache.get(key)
            if store is None:
                store = self._cache[key] = self.factory(uri)(uri, *args, **kwargs)
            return store

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


# Called as factory(uri, default_artifact_root, *, search_timeout_seconds).
StoreFactory = Callable[..., AbstractStore]

TRACKING_STORES: StoreKind[AbstractStore] = StoreKind(
    "tracking store",
    {
        "sql": "flowml.tracking.store.sql:SqlStore",
        "rest": "flowml.tracking.store.rest:RestStore",
    },
)


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make ``scheme://`` URIs open with ``factory(uri, default_artifact_root, *,
    search_timeout_seconds)``."""
    TRACKING_STORES.register(scheme, factory)


def known_schemes() -> list[str]:
    return TRACKING_STORES.known_schemes()


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


def get_store(
    uri: str,
    default_artifact_root: str,
    *,
    search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS,
) -> AbstractStore:
    """The store for ``uri``, opened once per process, artifact root and search timeout.

    Raises:
        InvalidParameter: a file path or ``file:`` URI, or no store handles the scheme.
    """
    check_tracking_uri(uri)
    return TRACKING_STORES.open(
        (uri, default_artifact_root, search_timeout_seconds),
        uri,
        default_artifact_root,
        search_timeout_seconds=search_timeout_seconds,
    )


def clear_cache() -> None:
    TRACKING_STORES.clear_cache()
