"""Bad sources and bad contents: a clear typed error, and flowml's stores left as they were."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from flowml.exceptions import StoreError
from flowml.importers.mlflow import (
    ArtifactImportError,
    InvalidSourceData,
    NotAnMLflowStore,
    UnsupportedMLflowSchema,
    import_mlflow,
)


def _dump(db: Path) -> list[str]:
    # Rows and schema, not bytes: opening may switch the file to WAL journaling (harmless).
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def _no_target(target: dict[str, str]) -> None:
    assert not Path(target["db"]).exists()
    assert not Path(target["artifact_root"]).exists()


@pytest.mark.parametrize(
    "source", ["file:./mlruns", "./mlruns", "ftp://host/mlflow.db", "sqlite:///no/such/file.db"]
)
def test_sources_that_are_no_mlflow_store_are_refused(source: str, target) -> None:
    with pytest.raises(NotAnMLflowStore) as info:
        import_mlflow(source)
    if "mlruns" in source:
        assert "migrate-filestore" in str(info.value)
    _no_target(target)


def test_another_applications_sqlite_file_is_refused(tmp_path: Path, target) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(NotAnMLflowStore, match="no MLflow schema version"):
        import_mlflow(f"sqlite:///{other}")
    _no_target(target)


def test_a_flowml_database_is_not_an_mlflow_source(tmp_path: Path, target) -> None:
    from flowml.tracking.store.sql import SqlStore

    flowml_db = tmp_path / "other-flowml.db"
    SqlStore(f"sqlite:///{flowml_db}", str(tmp_path / "a")).engine.dispose()
    with pytest.raises(NotAnMLflowStore, match="is a flowml database"):
        import_mlflow(f"sqlite:///{flowml_db}")
    _no_target(target)


@pytest.mark.mlflow
def test_a_newer_mlflow_schema_is_refused(mlflow_store, target) -> None:
    db, _ = mlflow_store
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(UnsupportedMLflowSchema, match="ffffffffffff"):
        import_mlflow(f"sqlite:///{db}")
    _no_target(target)


@pytest.mark.mlflow
def test_flowml_on_an_mlflow_database_points_to_the_importer(mlflow_store, monkeypatch) -> None:
    from flowml.tracking.client import TrackingClient

    db, _ = mlflow_store
    before = _dump(db)
    monkeypatch.setenv("FLOWML_TRACKING_URI", f"sqlite:///{db}")
    with pytest.raises(StoreError, match="flowml import mlflow sqlite:///"):
        TrackingClient().search_experiments()
    assert _dump(db) == before


@pytest.mark.mlflow
def test_the_mlflow_database_is_refused_as_the_import_target(mlflow_store, monkeypatch) -> None:
    db, _ = mlflow_store
    before = _dump(db)
    monkeypatch.setenv("FLOWML_TRACKING_URI", f"sqlite:///{db}")
    with pytest.raises(StoreError, match="MLflow tracking store"):
        import_mlflow(f"sqlite:///{db}")
    assert _dump(db) == before


@pytest.mark.mlflow
def test_a_run_id_shaped_like_a_path_is_refused(mlflow_store, target) -> None:
    db, facts = mlflow_store
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute(
            "UPDATE runs SET run_uuid = '../../evil' WHERE run_uuid = ?", (facts["child"],)
        )
    with pytest.raises(InvalidSourceData, match="evil"):
        import_mlflow(f"sqlite:///{db}")
    assert not Path(target["artifact_root"]).exists()


@pytest.mark.mlflow
def test_artifacts_outside_their_experiment_are_refused(mlflow_store, target) -> None:
    db, facts = mlflow_store
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET artifact_uri = '/etc' WHERE run_uuid = ?", (facts["parent"],))
    with pytest.raises(InvalidSourceData, match="outside its experiment"):
        import_mlflow(f"sqlite:///{db}", batch_size=1)
    _only_whole_runs_without(target, facts["parent"])


def _only_whole_runs_without(target: dict[str, str], run_id: str) -> None:
    with sqlite3.connect(target["db"]) as conn:
        runs = {r[0] for r in conn.execute("SELECT run_uuid FROM runs")}
        assert run_id not in runs
        orphans = conn.execute(
            "SELECT COUNT(*) FROM params WHERE run_uuid NOT IN (SELECT run_uuid FROM runs)"
        ).fetchone()[0]
        assert orphans == 0
    assert not (Path(target["artifact_root"]) / "1" / run_id).exists()


@pytest.mark.mlflow
def test_a_symlink_leaving_the_artifacts_fails_the_run_only(mlflow_store, target) -> None:
    from flowml.tracking.client import TrackingClient

    db, facts = mlflow_store
    with sqlite3.connect(db) as conn:
        uri = conn.execute(
            "SELECT artifact_uri FROM runs WHERE run_uuid = ?", (facts["parent"],)
        ).fetchone()[0]
    os.symlink("/etc/hostname", Path(uri) / "docs" / "leak.txt")
    with pytest.raises(ArtifactImportError, match=facts["parent"]):
        import_mlflow(f"sqlite:///{db}", batch_size=1)
    _only_whole_runs_without(target, facts["parent"])
    assert not list(Path(target["artifact_root"]).rglob("leak.txt"))
    # Runs before it in the source's order landed whole; fixing the source resumes.
    (Path(uri) / "docs" / "leak.txt").unlink()
    report = import_mlflow(f"sqlite:///{db}")
    assert report.matches
    assert TrackingClient().get_run(facts["parent"]).data.params["lr"] == "0.1"


@pytest.mark.mlflow
def test_unreadable_artifact_storage_is_a_typed_error(mlflow_store, target) -> None:
    db, facts = mlflow_store
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE experiments SET artifact_location = 'nosuchfs://bucket/1' "
                     "WHERE experiment_id = ?", (facts["experiments"]["imp-a"],))  # fmt: skip
        conn.execute("UPDATE runs SET artifact_uri = 'nosuchfs://bucket/1/' || run_uuid "
                     "WHERE run_uuid = ?", (facts["parent"],))  # fmt: skip
    with pytest.raises(ArtifactImportError, match="nosuchfs"):
        import_mlflow(f"sqlite:///{db}", batch_size=1)
    _only_whole_runs_without(target, facts["parent"])


def test_a_flowml_server_url_as_target_is_refused(tmp_path: Path, monkeypatch) -> None:
    from flowml.exceptions import InvalidParameter

    monkeypatch.setenv("FLOWML_TRACKING_URI", "http://127.0.0.1:5000")
    with pytest.raises(InvalidParameter, match="writes into flowml's database directly"):
        import_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}")
