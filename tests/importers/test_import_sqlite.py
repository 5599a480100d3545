"""`flowml import mlflow` from a SQLite store written by MLflow 3.17's own client."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from flowml.importers.mlflow import ImportReport, import_mlflow
from flowml.tracking.artifacts import ArtifactRepository

pytestmark = pytest.mark.mlflow


def _check_all_counts(report: ImportReport) -> None:
    assert report.matches
    for row in report.rows:
        assert row.after == row.source, row


def _source_count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_import_brings_runs_histories_artifacts_and_registry(mlflow_store, target) -> None:
    import flowml
    from flowml.registry.client import RegistryClient
    from flowml.tracking.client import TrackingClient

    db, facts = mlflow_store
    report = import_mlflow(f"sqlite:///{db}")
    _check_all_counts(report)
    assert report.row("runs").source == _source_count(db, "SELECT COUNT(*) FROM runs") == 9
    assert report.row("metric points").after == _source_count(db, "SELECT COUNT(*) FROM metrics")

    client = TrackingClient()
    parent = client.get_run(facts["parent"])  # the run id is kept
    assert parent.info.experiment_id == facts["experiments"]["imp-a"]  # so is the experiment's
    assert parent.data.params == {"lr": "0.1", "depth": "3"}
    history = client.get_metric_history(facts["parent"], "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert math.isnan(client.get_metric_history(facts["parent"], "odd")[0].value)
    sweep = client.get_metric_history(facts["sweep"][3], "m2")
    assert [m.value for m in sweep] == [3.0 * s for s in range(50)]
    child = client.get_run(facts["child"])
    assert child.data.tags["mlflow.parentRunId"] == facts["parent"]
    assert client.get_run(facts["sweep"][-1]).info.lifecycle_stage == "deleted"
    assert client.get_experiment(facts["experiments"]["imp-gone"]).lifecycle_stage == "deleted"
    assert client.get_experiment(facts["experiments"]["imp-a"]).tags == {"team": "vision"}

    # Artifacts were copied under flowml's root, and runs:/ URIs resolve there.
    assert parent.info.artifact_uri.startswith(target["artifact_root"])
    assert ArtifactRepository(parent.info.artifact_uri).read_bytes("docs/notes.txt") == b"hello"
    frame = __import__("pandas").DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0], "b": [0.0, 1, 2, 0, 1]})
    model = flowml.load_model(f"runs:/{facts['parent']}/model")
    assert list(model.predict(frame)) == facts["predictions"]

    registry = RegistryClient()
    assert registry.get_model_version_by_alias("clf", "champion").version == 1
    v2 = registry.get_model_version("clf", 2)
    assert v2.current_stage == "Staging" and v2.tags == {"validated": "yes"}
    assert registry.get_registered_model("clf").tags == {"owner": "ana"}
    assert v2.storage_location.startswith(target["artifact_root"])
    via_registry = flowml.load_model("models:/clf@champion")
    assert list(via_registry.predict(frame)) == facts["predictions"]
    inputs = flowml.lineage(facts["parent"])
    assert "dataset" in repr(inputs)


def test_second_import_adds_nothing_and_dry_run_writes_nothing(mlflow_store, target) -> None:
    db, _ = mlflow_store
    dry = import_mlflow(f"sqlite:///{db}", dry_run=True)
    assert dry.dry_run and dry.row("runs").imported == 9
    assert not Path(target["db"]).exists()  # not even created

    _check_all_counts(import_mlflow(f"sqlite:///{db}"))
    again = import_mlflow(f"sqlite:///{db}")
    _check_all_counts(again)
    assert all(row.imported == 0 for row in again.rows)
    assert all(row.imported == 0 for row in import_mlflow(f"sqlite:///{db}", dry_run=True).rows)


def test_new_runs_in_the_source_are_all_a_rerun_imports(mlflow_store, target) -> None:
    db, facts = mlflow_store
    import_mlflow(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:  # a run MLflow logged after the first import
        conn.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) SELECT 'abcdef0123456789abcdef0123456789', 'late', "
            "source_type, source_name, entry_point_name, user_id, status, start_time + 1, "
            "end_time, source_version, lifecycle_stage, replace(artifact_uri, run_uuid, "
            "'abcdef0123456789abcdef0123456789'), experiment_id FROM runs WHERE run_uuid = ?",
            (facts["child"],),
        )
    report = import_mlflow(f"sqlite:///{db}")
    _check_all_counts(report)
    assert report.row("runs").imported == 1


class _StopAfter:
    """A progress receiver that interrupts the import after some runs (like Ctrl-C)."""

    def __init__(self, runs: int) -> None:
        self.runs, self.phase_name = runs, ""

    def phase(self, name: str, total: int) -> None:
        self.phase_name = name

    def advance(self, count: int) -> None:
        if self.phase_name == "runs":
            self.runs -= count
            if self.runs <= 0:
                raise KeyboardInterrupt


def test_interrupted_import_leaves_whole_runs_and_resumes(mlflow_store, target) -> None:
    from flowml.tracking.client import TrackingClient

    db, _ = mlflow_store
    with pytest.raises(KeyboardInterrupt):
        import_mlflow(f"sqlite:///{db}", batch_size=2, progress=_StopAfter(4))
    with sqlite3.connect(target["db"]) as conn:
        imported = [r[0] for r in conn.execute("SELECT run_uuid FROM runs WHERE name != ''")]
    assert 0 < len(imported) < 9
    client = TrackingClient()
    with sqlite3.connect(db) as source:
        for run_id in imported:  # every run that landed has all it owns
            params = source.execute("SELECT COUNT(*) FROM params WHERE run_uuid=?", (run_id,))
            assert len(client.get_run(run_id).data.params) == params.fetchone()[0]
            points = source.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid=?", (run_id,))
            run = client.get_run(run_id)
            got = sum(len(client.get_metric_history(run_id, k)) for k in run.data.metrics)
            assert got == points.fetchone()[0]
    resumed = import_mlflow(f"sqlite:///{db}")
    _check_all_counts(resumed)
    assert resumed.row("runs").imported == 9 - len(imported)


def test_keep_artifact_locations_points_flowml_at_the_source_files(mlflow_store, target) -> None:
    from flowml.tracking.client import TrackingClient

    db, facts = mlflow_store
    _check_all_counts(import_mlflow(f"sqlite:///{db}", keep_artifact_locations=True))
    run = TrackingClient().get_run(facts["parent"])
    assert run.info.artifact_uri.startswith(str(db.parent))
    assert not Path(target["artifact_root"]).exists()


def test_cli_imports_and_prints_the_count_table(mlflow_store, target, capsys) -> None:
    from flowml.cli import main

    db, _ = mlflow_store
    assert main(["import", "mlflow", f"sqlite:///{db}", "--dry-run"]) == 0
    assert "would import" in capsys.readouterr().out
    assert not Path(target["db"]).exists()
    assert main(["import", "mlflow", f"sqlite:///{db}", "-o", "json"]) == 0
    assert '"matches": true' in capsys.readouterr().out


def test_taken_experiment_ids_are_mapped_and_same_names_merged(mlflow_store, target) -> None:
    from flowml.tracking.client import TrackingClient

    db, facts = mlflow_store
    client = TrackingClient()
    mine = client.create_experiment("flowml-own")  # takes id 1, which imp-a has in MLflow
    assert mine == facts["experiments"]["imp-a"]
    client.create_experiment("imp-b")  # the name of MLflow's experiment 2: merged into it
    report = import_mlflow(f"sqlite:///{db}")
    _check_all_counts(report)
    moved = report.experiment_ids[facts["experiments"]["imp-a"]]
    assert moved != mine
    assert client.get_run(facts["parent"]).info.experiment_id == moved
    merged = client.get_experiment_by_name("imp-b").experiment_id
    assert report.experiment_ids[facts["experiments"]["imp-b"]] == merged
    assert client.get_run(facts["sweep"][0]).info.experiment_id == merged
    assert client.get_experiment(mine).name == "flowml-own"  # untouched
