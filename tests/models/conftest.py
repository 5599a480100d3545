"""Fixtures for the models tests: small data sets, fitted models, MLflow's venv, servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from subprocess_helpers import free_port, run_script, stop, wait_answering

REPO_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def mlflow_venv(mlflow_python: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """MLflow 3.17's interpreter and environment (the session's `mlflow_python`)."""
    return mlflow_python


@pytest.fixture
def run_mlflow(mlflow_venv: tuple[Path, dict[str, str]], tmp_path: Path) -> Callable[..., str]:
    """Run a Python script in MLflow's venv; returns its stdout (fails the test on errors)."""
    python, env = mlflow_venv

    def run(script: str, *args: str) -> str:
        return run_script(python, env, tmp_path, script, args)

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
        wait_answering(self.proc, self.url + "/ping", self._exited, timeout)

    def _exited(self) -> str:
        err = self.proc.stderr.read().decode() if self.proc.stderr else ""
        return f"server exited with {self.proc.returncode}: {err}"

    def stop(self) -> None:
        stop(self.proc)
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
