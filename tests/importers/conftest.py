"""MLflow stores written by the genuine MLflow 3.17 client (in its own venv), and helpers.

One SQLite store is written per session (MLflow's start-up is slow); tests that change a
store work on a clone whose stored artifact locations point at the clone's own files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("mlflow_writer.py")


@pytest.fixture(scope="session")
def mlflow_venv(mlflow_python: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """MLflow 3.17's interpreter and environment (the session's `mlflow_python`)."""
    return mlflow_python


@pytest.fixture(scope="session")
def write_mlflow_store(mlflow_venv: tuple[Path, dict[str, str]]) -> Callable[[str, Path], dict]:
    """Write the test store at a tracking URI with MLflow's client (cwd: ``workdir``)."""
    python, env = mlflow_venv

    def write(uri: str, workdir: Path) -> dict:
        workdir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [str(python), str(WRITER), uri], capture_output=True, text=True, env=env,
            cwd=workdir, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"MLflow writer failed:\n{done.stderr[-4000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return write


@pytest.fixture(scope="session")
def mlflow_template(write_mlflow_store, tmp_path_factory) -> tuple[Path, dict]:
    """A SQLite MLflow store (``mlflow.db`` + ``mlruns/``) and what the writer logged."""
    root = tmp_path_factory.mktemp("mlflow-store")
    facts = write_mlflow_store(f"sqlite:///{root / 'mlflow.db'}", root)
    return root, facts


def clone_store(template: Path, dest: Path) -> Path:
    """A copy of the template store whose artifact locations point at its own files."""
    shutil.copytree(template, dest)
    db = dest / "mlflow.db"
    old, new = str(template), str(dest)
    with sqlite3.connect(db) as conn:
        for table, column in (
            ("experiments", "artifact_location"), ("runs", "artifact_uri"),
            ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
        ):  # fmt: skip
            conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return db


@pytest.fixture
def mlflow_store(mlflow_template, tmp_path: Path) -> tuple[Path, dict]:
    """A private clone of the template store (its database file) and the writer's facts."""
    template, facts = mlflow_template
    return clone_store(template, tmp_path / "source"), facts


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """flowml's database and artifact root for the test, also set as FLOWML_* variables."""
    uri = f"sqlite:///{tmp_path / 'flowml' / 'flowml.db'}"
    root = str(tmp_path / "flowml" / "artifacts")
    (tmp_path / "flowml").mkdir()
    monkeypatch.setenv("FLOWML_TRACKING_URI", uri)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", root)
    db = str(tmp_path / "flowml" / "flowml.db")
    return {"tracking_uri": uri, "artifact_root": root, "db": db}
