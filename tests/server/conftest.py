"""Fixtures for the tracking server tests: a real `flowml server` on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from subprocess_helpers import free_port, run_script, stop, wait_answering


class FlowmlServer:
    """A `flowml server` subprocess on a free loopback port."""

    def __init__(
        self,
        store_uri: str | None,
        destination: Path | None,
        cwd: Path,
        workers: int = 1,
        options: Sequence[str] = (),
    ) -> None:
        self.store_uri = store_uri
        self.destination = destination
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        options = ["--port", str(self.port), "--workers", str(workers), *options]
        if store_uri is not None:  # None: the settings' defaults
            options += ["--backend-store-uri", store_uri]
        if destination is not None:
            options += ["--artifacts-destination", str(destination)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowml.cli", "server", *options],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_answering(
            self.proc,
            self.url + "/health",
            lambda: f"server exited: {self.log.read_text()[-3000:]}",
            timeout,
        )

    def stop(self) -> None:
        stop(self.proc)


def start_server(
    store_uri: str | None,
    root: Path,
    workers: int = 1,
    *,
    defaults: bool = False,
    options: Sequence[str] = (),
) -> FlowmlServer:
    """A ready server; with ``defaults``, no store or destination options are passed;
    ``options`` are added to the command line (``--auth token``...)."""
    root.mkdir(parents=True, exist_ok=True)
    destination = None if defaults else root / "artifacts"
    server = FlowmlServer(store_uri, destination, root, workers, options)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowmlServer]:
    """One server per test module, on a fresh SQLite store (tests use unique names)."""
    root = tmp_path_factory.mktemp("server")
    srv = start_server(f"sqlite:///{root / 'flowml.db'}", root)
    yield srv
    srv.stop()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., FlowmlServer]]:
    """Start servers on given stores; each is stopped at the end of the test."""
    started: list[FlowmlServer] = []

    def start(
        store_uri: str | None,
        root: Path,
        workers: int = 1,
        *,
        defaults: bool = False,
        options: Sequence[str] = (),
    ) -> FlowmlServer:
        srv = start_server(store_uri, root, workers, defaults=defaults, options=options)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def http(server: FlowmlServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def run_mlflow_against(
    mlflow_python: tuple[Path, dict[str, str]], tmp_path: Path
) -> Callable[..., str]:
    """Run a script with MLflow's own client pointed at a server; returns its stdout."""
    python, env = mlflow_python

    def run(url: str, script: str, *args: str) -> str:
        child_env = {**env, "MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        return run_script(python, child_env, tmp_path, script, args, stderr_tail=6000)

    return run
