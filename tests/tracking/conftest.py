"""Store fixtures: the same conformance tests run on SQLite, PostgreSQL and over REST.

The REST backend is a `RestStore` talking to a real ``flowml server`` subprocess on a
loopback port, over a SQLite store. One server serves the whole session; each test starts
from an empty store (every table emptied, the Default experiment recreated), and the test's
row counts read that SQLite file directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_server import LoopbackServer

from flowml.tracking.store.base import AbstractStore
from flowml.tracking.store.rest import RestStore
from flowml.tracking.store.sql import SqlStore


class RestStoreUnderTest(RestStore):
    """A REST store whose ``engine`` is the server's database, for the tests' row counts."""

    def __init__(self, url: str, backing: SqlStore) -> None:
        super().__init__(url, max_retry_seconds=5)
        self.engine = backing.engine


def _sql_uri(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQL store's URI (tests that reach into the database itself)."""
    return _sql_uri(request, request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AbstractStore]:
    """A fresh store of each backend: SQLite, PostgreSQL, and REST to a loopback server."""
    if request.param == "rest":
        server: LoopbackServer = request.getfixturevalue("rest_server")
        rest = RestStoreUnderTest(server.url, server.empty())
        yield rest
        rest.close()
        return
    yield SqlStore(_sql_uri(request, request.param, tmp_path), str(tmp_path / "artifacts"))


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    """A fresh SQL store (tests of SQL-only parts, such as logged models' own store)."""
    return SqlStore(_sql_uri(request, request.param, tmp_path), str(tmp_path / "artifacts"))
