"""A real ``prefect server`` on PostgreSQL, and a fresh PostgreSQL schema for tracking.

Shared by the benchmarks that measure flowml where it matters most: a team's setup, with
Prefect's API server in its own process and tracking metadata in PostgreSQL.

- `prefect_server` creates a database (dropped afterwards), starts ``prefect server start``
  on a free loopback port with its own ``PREFECT_HOME`` and that database, waits for its
  health check, and yields the API URL;
- `postgres_schema` creates a schema in the ``test`` database (dropped afterwards) and
  yields a tracking URI whose ``search_path`` is that schema.

PostgreSQL is expected at ``FLOWML_BENCH_PG`` (default ``postgres@127.0.0.1:5432``,
trust authentication), as in the test suite.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

PG = os.environ.get("FLOWML_BENCH_PG", "postgres@127.0.0.1:5432")
SERVER_START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate a server the benchmark started; kill it if it is still up after ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _admin(database: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(f"postgresql://{PG}/{database}", autocommit=True)


@contextlib.contextmanager
def postgres_schema(database: str = "test") -> Iterator[str]:
    """A ``postgresql+psycopg://`` tracking URI on a fresh schema of ``database``."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with _admin(database) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://{PG}/{database}?options=-csearch_path%3D{schema}"
    finally:
        from flowml.tracking.store import engine as engines

        engines.dispose_all()  # the schema cannot go while pooled connections use it
        with _admin(database) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def prefect_server() -> Iterator[str]:
    """Start a Prefect API server backed by a fresh PostgreSQL database; yield its API URL."""
    database = f"bench_prefect_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flowml-bench-prefect-") as home:
        env = {
            **os.environ,
            "PREFECT_HOME": home,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{PG}/{database}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        env.pop("PREFECT_API_URL", None)
        log = Path(home) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-ui",
                    "--analytics-off",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        api = f"http://127.0.0.1:{port}/api"
        try:
            _wait_healthy(api, proc, log)
            yield api
        finally:
            stop_process(proc)
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _wait_healthy(api: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer within {SERVER_START_TIMEOUT_S:.0f} s")
