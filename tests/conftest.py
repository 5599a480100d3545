"""Fixtures shared by the whole suite: isolated FLOWML_HOME, PostgreSQL schemas, a loopback
S3 server and one session-wide Prefect test harness."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from subprocess_helpers import free_port

PG_BASE_URL = os.environ.get(
    "FLOWML_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_flowml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own FLOWML_HOME (so its own default SQLite store) and fresh fluent
    state."""
    home = tmp_path / "flowml-home"
    monkeypatch.setenv("FLOWML_HOME", str(home))
    for var in (
        "FLOWML_TRACKING_URI",
        "FLOWML_ARTIFACT_ROOT",
        "FLOWML_REGISTRY_URI",
        "FLOWML_RUN_ID",
        "FLOWML_EXPERIMENT_ID",
        "FLOWML_TRACKING_TOKEN",
        "MLFLOW_TRACKING_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    from flowml.tracking import fluent

    fluent._tracking_uri = None
    fluent._experiment_id = None
    fluent._env_run_used.clear()
    # The run stack is a ContextVar, and pytest runs every synchronous test in one context:
    # a run a test left active (it failed inside `start_run`, or forgot `end_run`) would
    # otherwise be the next test's parent run and receive its `log_*` calls. Cleared, not
    # ended: its store belongs to the finished test and may be down on purpose.
    fluent._run_stack.set(())
    fluent._last_run = None
    yield home
    fluent._run_stack.set(())
    from flowml.tracking.client import close_shared_clients

    close_shared_clients()
    fluent._open_runs.clear()
    fluent._tracking_uri = None
    fluent._experiment_id = None


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core this process may use, at most
    four. Each worker starts its own session fixtures (a Prefect harness, S3 and tracking
    servers), and more workers would only crowd a small machine and its PostgreSQL."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


def _pg_admin():
    import sqlalchemy as sa

    return sa.create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_admin_engine():
    engine = _pg_admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # the machine promises PostgreSQL: a missing server is a failure
        pytest.fail(f"PostgreSQL at {PG_BASE_URL} is not reachable: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine) -> Iterator[str]:
    """A PostgreSQL URI whose search_path is a fresh schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    from flowml.tracking.store import engine as engines
    from flowml.tracking.store import schemes

    schemes.clear_cache()
    engines.dispose_all()
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server (moto's standalone server) on a loopback port."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point s3fs (and botocore) at the loopback server; returns the endpoint URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3_server)
    import fsspec

    fsspec.config.conf.setdefault("s3", {})
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": s3_server}})
    # s3fs caches filesystem instances per options: start clean so the endpoint applies
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return s3_server


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test harness (a temporary local server, ~10 s to start) for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One ``flowml server`` on a loopback port and a SQLite store, for the REST stores' tests."""
    from loopback_server import LoopbackServer

    server = LoopbackServer(tmp_path_factory.mktemp("rest-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_python() -> tuple[Path, dict[str, str]]:
    """MLflow 3.17's interpreter (its venv is created on first use) and its environment."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "_flowml_bench_mlflow_env", root / "benchmarks" / "_mlflow_env.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.mlflow_python()), module.mlflow_env()
