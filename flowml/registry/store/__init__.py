"""Registry stores chosen by URI scheme, opened once per process.

SQL databases (the tracking database, usually) and, for ``http(s)://`` URIs, a tracking
server's registry endpoints (`flowml.registry.store.rest`); other backends register
themselves with `register_registry_store`.
"""

from __future__ import annotations

from collections.abc import Callable

from flowml.registry.store.base import AbstractRegistryStore
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.schemes import StoreKind

__all__ = [
    "AbstractRegistryStore",
    "clear_cache",
    "get_registry_store",
    "known_schemes",
    "register_registry_store",
]

# factory(uri, *, search_timeout_seconds)
RegistryStoreFactory = Callable[..., AbstractRegistryStore]

# The backends of `flowml.tracking.store.schemes.SCHEMES`, for registry stores.
REGISTRY_STORES: StoreKind[AbstractRegistryStore] = StoreKind(
    "model registry store",
    {
        "sql": "flowml.registry.store.sql:SqlRegistryStore",
        "rest": "flowml.registry.store.rest:RestRegistryStore",
    },
)


def register_registry_store(scheme: str, factory: RegistryStoreFactory) -> None:
    """Make ``scheme://`` registry URIs open with ``factory(uri, *, search_timeout_seconds)``."""
    REGISTRY_STORES.register(scheme, factory)


def known_schemes() -> list[str]:
    return REGISTRY_STORES.known_schemes()


def get_registry_store(
    uri: str, *, search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
) -> AbstractRegistryStore:
    """The registry store for ``uri``, opened once per process and search timeout.

    Raises:
        InvalidParameter: no store handles the URI's scheme.
    """
    return REGISTRY_STORES.open(
        (uri, search_timeout_seconds), uri, search_timeout_seconds=search_timeout_seconds
    )


def clear_cache() -> None:
    """Forget opened stores (tests, and after the database was replaced)."""
    REGISTRY_STORES.clear_cache()
