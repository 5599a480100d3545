"""Import from an MLflow store on PostgreSQL (its own database) into flowml on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flowml.importers.mlflow import import_mlflow

pytestmark = [pytest.mark.mlflow, pytest.mark.postgres]


@pytest.fixture
def mlflow_pg_database(pg_admin_engine) -> str:
    """A fresh PostgreSQL database for MLflow (MLflow needs a database of its own)."""
    from tests.conftest import PG_BASE_URL

    name = f"flowml_import_src_{uuid.uuid4().hex[:10]}"
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield PG_BASE_URL.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


def test_postgres_source_into_postgres_target(
    mlflow_pg_database: str, write_mlflow_store, pg_url: str, tmp_path: Path, monkeypatch
) -> None:
    from flowml.tracking.client import TrackingClient

    facts = write_mlflow_store(mlflow_pg_database, tmp_path / "mlflow-cwd")
    monkeypatch.setenv("FLOWML_TRACKING_URI", pg_url)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    report = import_mlflow(mlflow_pg_database.replace("+psycopg", ""))
    assert report.matches
    assert all(row.after == row.source for row in report.rows), report.rows
    assert report.row("runs").after == 9
    client = TrackingClient()
    assert client.get_run(facts["parent"]).info.experiment_id == facts["experiments"]["imp-a"]
    history = client.get_metric_history(facts["sweep"][2], "m3")
    assert [m.value for m in history] == [2.0 * s for s in range(50)]
    # Explicit experiment ids moved PostgreSQL's sequence: flowml's next id does not collide.
    new_id = client.create_experiment("made-after-import")
    assert int(new_id) > max(int(i) for i in facts["experiments"].values())
    again = import_mlflow(mlflow_pg_database)
    assert all(row.imported == 0 for row in again.rows)
