"""Searches on PostgreSQL: stale statistics refreshed, and their own autocommit pool."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from flowml.tracking.entities import Metric, Param
from flowml.tracking.store import pg_stats
from flowml.tracking.store.paging import search_connection
from flowml.tracking.store.pg_search import search_engine
from flowml.tracking.store.schemes import get_store

pytestmark = pytest.mark.postgres


def _analyzed(conn, table: str) -> bool:
    row = conn.execute(
        text(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = :t"
        ),
        {"t": table},
    ).scalar()
    return bool(row)


def test_a_search_analyzes_tables_that_filled_up(pg_url: str, tmp_path: Path, monkeypatch):
    store = get_store(pg_url, str(tmp_path / "artifacts"))
    exp = store.create_experiment("stats")
    for i in range(120):
        run = store.create_run(exp, user_id="u", start_time=i, tags=[])
        store.log_batch(run.info.run_id, [Metric("acc", i / 120, 1, 0)], [Param("lr", str(i % 2))])
    with store.engine.connect() as conn:
        assert not _analyzed(conn, "runs")
    # Table counters reach pg_stat_user_tables within about a second of a commit.
    deadline = time.monotonic() + 10
    refreshed: list[str] = []
    while time.monotonic() < deadline and "runs" not in refreshed:
        monkeypatch.setattr(pg_stats, "_checked", type(pg_stats._checked)())
        refreshed = pg_stats.refresh_if_stale(store.engine)
        time.sleep(0.2)
    assert {"runs", "params", "latest_metrics"} <= set(refreshed)
    with store.engine.connect() as conn:
        assert _analyzed(conn, "runs") and _analyzed(conn, "latest_metrics")
    # Fresh now, and checked at most once per interval anyway.
    assert pg_stats.refresh_if_stale(store.engine) == []
    found = store.search_runs([exp], "metrics.acc > 0.5 and params.lr = '1'", max_results=100)
    assert len(found) == 30 and all(r.data.params["lr"] == "1" for r in found)


def test_searches_read_in_autocommit_with_their_timeout(pg_url: str, tmp_path: Path):
    store = get_store(pg_url, str(tmp_path / "artifacts"))
    with search_connection(store.engine, 2.5) as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
        assert conn.connection.dbapi_connection.autocommit
        # The URI's own options (here the test schema) still apply.
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 0
    with search_connection(store.engine, 0) as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    with store.engine.connect() as conn:  # writes keep the server's default
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
        assert not conn.connection.dbapi_connection.autocommit
    sibling = search_engine(store.engine, 2500)
    assert search_engine(store.engine, 2500) is sibling
    store.engine.dispose()  # disposes the sibling too: a new one is made on demand
    assert search_engine(store.engine, 2500) is not sibling
    with search_connection(store.engine, 2.5) as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_other_databases_are_left_alone(tmp_path: Path):
    store = get_store(f"sqlite:///{tmp_path / 'f.db'}", str(tmp_path / "artifacts"))
    assert pg_stats.refresh_if_stale(store.engine) == []
