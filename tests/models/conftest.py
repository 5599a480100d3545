"""Fixtures for the models tests: small data sets, fitted models, MLflow's venv, servers."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def frame() -> Any:
    """A small numeric DataFrame with a float and an int column, and its binary labels."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"a": rng.normal(size=40), "b": rng.integers(0, 10, size=40)})
    return data


@pytest.fixture
def labels(frame: Any) -> Any:
    return (frame["a"] + frame["b"] / 10 > 0.5).astype("int64").to_numpy()


@pytest.fixture
def classifier(frame: Any, labels: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame, labels)


def _load_mlflow_env_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "_flowml_bench_mlflow_env", REPO_ROOT / "benchmarks" / "_mlflow_env.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def mlflow_venv() -> tuple[Path, dict[str, str]]:
    """MLflow 3.17's interpreter (its venv is created on first use) and its environment."""
    module = _load_mlflow_env_module()
    return Path(module.mlflow_python()), module.mlflow_env()


@pytest.fixture
def run_mlflow(mlflow_venv: tuple[Path, dict[str, str]], tmp_path: Path) -> Callable[..., str]:
    """Run a Python script in MLflow's venv; returns its stdout (fails the test on errors)."""
    python, env = mlflow_venv

    def run(script: str, *args: str) -> str:
        path = tmp_path / f"mlflow_script_{time.monotonic_ns()}.py"
        path.write_text(script, encoding="utf-8")
        done = subprocess.run(
            [str(python), str(path), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"MLflow script failed:\n{done.stderr[-4000:]}"
        return done.stdout

    return run


class Server:
    """A `flowml models serve` subprocess on a loopback port."""

    def __init__(
        self, model_uri: str, cwd: Path, workers: int = 1, options: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowml.cli",
                "models",
                "serve",
                "-m",
                model_uri,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                *options,
            ],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"server exited with {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not answer /ping in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(model_uri: str, workers: int = 1, *options: str) -> Server:
        server = Server(model_uri, tmp_path, workers, options)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
