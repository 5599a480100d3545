"""Registry fixtures: tests run on SQLite and PostgreSQL, the conformance suite over REST too.

The REST backend is a `RestRegistryStore` talking to the session's loopback
``flowml server`` (over SQLite); each test starts from empty registry tables, and
``dump`` reads the server's database directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flowml.registry import schema
from flowml.registry.client import RegistryClient
from flowml.registry.store import AbstractRegistryStore, clear_cache
from flowml.registry.store.rest import RestRegistryStore
from flowml.registry.store.sql import SqlRegistryStore

_TABLES = (
    schema.registered_models,
    schema.registered_model_tags,
    schema.model_versions,
    schema.model_version_tags,
    schema.registered_model_aliases,
    schema.registry_audit,
)


class RestRegistryStoreUnderTest(RestRegistryStore):
    """A REST registry store whose ``engine`` is the server's database, for ``dump``."""

    def __init__(self, url: str, backing: SqlRegistryStore) -> None:
        super().__init__(url, max_retry_seconds=5)
        self.engine = backing.engine


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield request.getfixturevalue("pg_url")
    clear_cache()


@pytest.fixture
def store(registry_uri: str) -> SqlRegistryStore:
    return SqlRegistryStore(registry_uri)


@pytest.fixture(params=["sqlite", "postgresql", "rest"])
def conformance_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[AbstractRegistryStore]:
    """A fresh store of each backend: SQLite, PostgreSQL, and REST to a loopback server.

    The conformance suite takes it as its ``store`` (`test_registry_store`).
    """
    if request.param == "rest":
        server = request.getfixturevalue("rest_server")
        server.empty()
        backing = SqlRegistryStore(server.store_uri)
        rest = RestRegistryStoreUnderTest(server.url, backing)
        yield rest
        rest.close()
    elif request.param == "sqlite":
        yield SqlRegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
    else:
        yield SqlRegistryStore(request.getfixturevalue("pg_url"))
    clear_cache()


@pytest.fixture
def client(registry_uri: str, store: AbstractRegistryStore) -> RegistryClient:
    return RegistryClient(registry_uri=registry_uri, tracking_uri=registry_uri)


def dump(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every registry row, in a stable order: compare two dumps to prove nothing changed."""
    out = {}
    with store.engine.connect() as conn:
        for table in _TABLES:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def unchanged(store: Any) -> Callable[..., None]:
    """``unchanged(error_type, fn, *args, **kwargs)``: the call raises and stores nothing."""

    def check(error: type[BaseException], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        before = dump(store)
        with pytest.raises(error) as info:
            fn(*args, **kwargs)
        assert dump(store) == before, f"{fn.__name__}{args} changed stored data"
        return str(info.value)

    return check
