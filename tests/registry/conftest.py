"""Registry fixtures: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flowml.registry import schema
from flowml.registry.client import RegistryClient
from flowml.registry.store import clear_cache
from flowml.registry.store.sql import SqlRegistryStore

_TABLES = (
    schema.registered_models,
    schema.registered_model_tags,
    schema.model_versions,
    schema.model_version_tags,
    schema.registered_model_aliases,
    schema.registry_audit,
)


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


@pytest.fixture
def client(registry_uri: str, store: SqlRegistryStore) -> RegistryClient:
    return RegistryClient(registry_uri=registry_uri, tracking_uri=registry_uri)


def dump(store: SqlRegistryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every registry row, in a stable order: compare two dumps to prove nothing changed."""
    out = {}
    with store.engine.connect() as conn:
        for table in _TABLES:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def unchanged(store: SqlRegistryStore) -> Callable[..., None]:
    """``unchanged(error_type, fn, *args, **kwargs)``: the call raises and stores nothing."""

    def check(error: type[BaseException], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        before = dump(store)
        with pytest.raises(error) as info:
            fn(*args, **kwargs)
        assert dump(store) == before, f"{fn.__name__}{args} changed stored data"
        return str(info.value)

    return check
