"""Registry stores chosen by URI scheme, opened once per process.

SQL databases (the tracking database, usually) and, for ``http(s)://`` URIs, a tracking
server's registry endpoints (`flowml.registry.store.rest`); other backends register
themselves with `register_registry_store`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.registry.store.base import AbstractRegistryStore
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS

__all__ = [
    "AbstractRegistryStore",
    "clear_cache",
    "get_registry_store",
    "known_schemes",
    "register_registry_store",
]

# factory(uri, *, search_timeout_seconds)
RegistryStoreFactory = Callable[..., AbstractRegistryStore]

_BUILTIN = {
    "sqlite": "flowml.registry.store.sql:SqlRegistryStore",
    "postgresql": "flowml.registry.store.sql:SqlRegistryStore",
    "postgres": "flowml.registry.store.sql:SqlRegistryStore",
    "http": "flowml.registry.store.rest:RestRegistryStore",
    "https": "flowml.registry.store.rest:RestRegistryStore",
}
_registered: dict[str, RegistryStoreFactory] = {}
_cache: dict[tuple[str, float], AbstractRegistryStore] = {}
_lock = threading.Lock()


def register_registry_store(scheme: str, factory: RegistryStoreFactory) -> None:
    """Make ``scheme://`` registry URIs open with ``factory(uri, *, search_timeout_seconds)``."""
    _registered[scheme] = factory


def known_schemes() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registered))


def get_registry_store(
    uri: str, *, search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
) -> AbstractRegistryStore:
    """The registry store for ``uri``, opened once per process and search timeout.

    Raises:
        InvalidParameter: no store handles the URI's scheme.
    """
    key = (uri, search_timeout_seconds)
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = _factory(uri)(uri, search_timeout_seconds=search_timeout_seconds)
            _cache[key] = store
        return store


def clear_cache() -> None:
    """Forget opened stores (tests, and after the database was replaced)."""
    with _lock:
        _cache.clear()


def _factory(uri: str) -> RegistryStoreFactory:
    scheme = urlsplit(uri).scheme.lower().split("+", 1)[0]
    if scheme in _registered:
        return _registered[scheme]
    target = _BUILTIN.get(scheme)
    if target is None:
        raise InvalidParameter(
            f"No model registry store for URI {uri!r} (scheme {scheme or 'missing'!r}); "
            f"known schemes: {', '.join(s + '://' for s in known_schemes())}"
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
