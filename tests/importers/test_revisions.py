"""The importer's list of MLflow schemas is MLflow 3.17's own history, and messages hide
passwords."""

from __future__ import annotations

import re
import subprocess

import pytest

from flowml.importers.mlflow import NotAnMLflowStore
from flowml.importers.mlflow.revisions import HEAD_REVISION, KNOWN_REVISIONS
from flowml.importers.mlflow.source import open_source, redact


@pytest.mark.mlflow
def test_known_revisions_are_mlflow_3_17s_migration_chain(mlflow_venv) -> None:
    python, env = mlflow_venv
    where = subprocess.run(
        [str(python), "-c", "import mlflow.store.db_migrations as m, os; "
         "print(os.path.dirname(m.__file__))"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    from pathlib import Path

    chain: dict[str, str | None] = {}
    for path in (Path(where) / "versions").glob("*.py"):
        text = path.read_text()
        revision = re.search(r'^revision\s*=\s*"(\w+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*"?(\w+)"?', text, re.M)
        if revision:
            chain[revision.group(1)] = down.group(1) if down and down.group(1) != "None" else None
    assert set(chain) == set(KNOWN_REVISIONS)
    ordered, current = [], HEAD_REVISION
    while current:
        ordered.append(current)
        current = chain[current]
    assert ordered[::-1] == list(KNOWN_REVISIONS)


def test_passwords_never_reach_messages() -> None:
    assert redact("postgresql://ana:s3cret@db/mlflow") == "postgresql://ana:***@db/mlflow"
    with pytest.raises(NotAnMLflowStore) as info:
        open_source("postgresql://ana:s3cret@127.0.0.1:1/mlflow")
    assert "s3cret" not in str(info.value)
