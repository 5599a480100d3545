"""Several processes logging into one store at once: nothing lost, no 'database is locked'."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from flowml.tracking.store.sql_metrics import count_points

PROCESSES = 4
METRICS_PER_PROCESS = 2000


def _worker(
    uri: str, artifact_root: str, experiment_id: str, worker: int, synchronous: bool
) -> str:
    from flowml.tracking.client import TrackingClient

    client = TrackingClient(uri, artifact_root)
    run = client.create_run(experiment_id, run_name=f"worker-{worker}")
    rid = run.info.run_id
    for step in range(METRICS_PER_PROCESS):
        client.log_metric(
            rid, "value", float(worker * 100_000 + step), step=step, synchronous=synchronous
        )
    client.log_param(rid, "worker", worker)
    client.set_terminated(rid)
    client.close()
    return rid


def _run_workers(uri: str, tmp_path: Path, synchronous: bool) -> None:
    from flowml.tracking.client import TrackingClient

    root = str(tmp_path / "artifacts")
    client = TrackingClient(uri, root)
    exp_id = client.create_experiment("concurrency")
    ctx = mp.get_context("spawn")  # fresh interpreters, like separate worker processes
    with ctx.Pool(PROCESSES) as pool:
        run_ids = pool.starmap(
            _worker, [(uri, root, exp_id, w, synchronous) for w in range(PROCESSES)]
        )
    assert len(set(run_ids)) == PROCESSES
    store = client.store
    with store.engine.connect() as conn:
        total = count_points(conn)
    assert total == PROCESSES * METRICS_PER_PROCESS
    for worker, rid in enumerate(run_ids):
        history = client.get_metric_history(rid, "value")
        assert [m.step for m in history] == list(range(METRICS_PER_PROCESS))
        assert [m.value for m in history] == [
            float(worker * 100_000 + s) for s in range(METRICS_PER_PROCESS)
        ]
        run = client.get_run(rid)
        assert run.info.status == "FINISHED"
        assert run.data.metrics["value"] == float(worker * 100_000 + METRICS_PER_PROCESS - 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "synchronous", [True, False], ids=["one-transaction-per-value", "buffered"]
)
def test_processes_share_one_sqlite_file(tmp_path: Path, synchronous: bool):
    _run_workers(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path, synchronous)


@pytest.mark.slow
@pytest.mark.parametrize(
    "synchronous", [True, False], ids=["one-transaction-per-value", "buffered"]
)
def test_processes_share_one_postgresql_database(pg_url: str, tmp_path: Path, synchronous: bool):
    _run_workers(pg_url, tmp_path, synchronous)


@pytest.mark.slow
def test_many_processes_open_a_brand_new_database_at_once(tmp_path: Path):
    """Schema creation races: every process opens the store first thing."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        ids = pool.starmap(_create_one, [(uri, str(tmp_path / "a"), i) for i in range(PROCESSES)])
    assert len(set(ids)) == PROCESSES


def _create_one(uri: str, root: str, i: int) -> str:
    from flowml.tracking.client import TrackingClient

    return TrackingClient(uri, root).create_run("0", run_name=f"r{i}").info.run_id
