"""Store fixtures: the same conformance tests run on SQLite, PostgreSQL and over REST.

The REST backend is a `RestStore` talking to a real ``flowml server`` subprocess on a
loopback port, over a SQLite store. One server serves the whole session; each test starts
from an empty store (every table emptied, the Default experiment recreated), and the test's
row counts read that SQLite file directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from flowml.tracking.store import schema
from flowml.tracking.store.base import AbstractStore
from flowml.tracking.store.rest import RestStore
from flowml.tracking.store.sql import SqlStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """A ``flowml server`` on 127.0.0.1, stoppable and restartable on the same port and store."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.store_uri = f"sqlite:///{root / 'server.db'}"
        self.destination = root / "artifacts"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = ["--port", str(self.port), "--backend-store-uri", self.store_uri]
        options += ["--artifacts-destination", str(self.destination)]
        with open(self.root / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowml.cli", "server", *options],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError((self.root / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("flowml server did not answer /health in time")

    def kill(self) -> None:
        """Stop abruptly (an outage), waiting until the port is closed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(15)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    server = LoopbackServer(tmp_path_factory.mktemp("rest-server"))
    server.start()
    yield server
    server.stop()


class RestStoreUnderTest(RestStore):
    """A REST store whose ``engine`` is the server's database, for the tests' row counts."""

    def __init__(self, url: str, backing: SqlStore) -> None:
        super().__init__(url, max_retry_seconds=5)
        self.engine = backing.engine


def _emptied(server: LoopbackServer) -> SqlStore:
    backing = SqlStore(server.store_uri, str(server.destination))
    with backing.engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(delete(table))
    # A fresh Default experiment, as a new store has.
    return SqlStore(server.store_uri, str(server.destination))


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
        rest = RestStoreUnderTest(server.url, _emptied(server))
        yield rest
        rest.close()
        return
    yield SqlStore(_sql_uri(request, request.param, tmp_path), str(tmp_path / "artifacts"))
