"""The SQL store's driver-level statements (`flowml.tracking.store.sql_fast`) close every
cursor they open, on the one-round-trip paths too; and a metric point is checked once,
when it is queued, not again when the buffer writes it to the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracking import validation as v
from flowml.tracking.buffer import BatchBuffer
from flowml.tracking.entities import Metric, Param, RunTag
from flowml.tracking.lineage import OUTPUT, LineageEntry
from flowml.tracking.store.sql import SqlStore


@pytest.fixture
def cursors(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every psycopg cursor opened from here on."""
    import psycopg

    opened: list = []
    cursor = psycopg.Connection.cursor

    def recorded(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made = cursor(self, *args, **kwargs)
        opened.append(made)
        return made

    monkeypatch.setattr(psycopg.Connection, "cursor", recorded)
    return opened


def test_every_cursor_of_the_fast_path_is_closed(pg_url: str, tmp_path: Path, cursors: list):
    store = SqlStore(pg_url, str(tmp_path / "artifacts"))
    exp_id = store.create_experiment("cursors")
    cursors.clear()
    run = store.create_run(exp_id, "u", tags=[RunTag("t", "v")], run_key="k:1")
    again = store.create_run(exp_id, "u", run_key="k:1")  # the checked get-or-create
    assert again.info.run_id == run.info.run_id
    store.log_batch(run.info.run_id, [Metric("m", 1.0, 1, 0)], [Param("p", "1")])
    opened = store.prepare_run(exp_id, str(tmp_path / "artifacts"), "u")
    store.finish_run(
        run.info.run_id,
        "FINISHED",
        5,
        metrics=[Metric("m", 2.0, 2, 1)],
        lineage=[LineageEntry(OUTPUT, "model", "models:/m/1")],
        opens=[opened],
    )
    store.update_run_info(run.info.run_id, run_name="renamed")
    with pytest.raises(ResourceNotFound):
        store.finish_run("0" * 32, "FINISHED", 6)  # refused in the round trip, then checked
    store.search_runs([exp_id])
    assert store.get_run(opened.run.info.run_id).info.status == "RUNNING"
    assert cursors, "the fast path opened no psycopg cursor: the spy sees nothing"
    assert [c for c in cursors if not c.closed] == []


def test_a_queued_point_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))
    run = store.create_run(store.create_experiment("once"), "u")
    checks: list[str] = []
    full_check = v.validate_metric

    def counted(key: str, value: object, timestamp: object, step: object) -> float:
        checks.append(key)
        return full_check(key, value, timestamp, step)

    monkeypatch.setattr(v, "validate_metric", counted)
    buffer = BatchBuffer(store, flush_interval=None)
    # Integer values are not floats: each takes the full check, which counts.
    buffer.add(run.info.run_id, metrics=[Metric("m", 1, 1, i) for i in range(3)])
    buffer.flush(run.info.run_id)
    assert checks == ["m", "m", "m"]
    assert [m.value for m in store.get_metric_history(run.info.run_id, "m")] == [1.0, 1.0, 1.0]
    checks.clear()
    store.log_batch(run.info.run_id, [Metric("n", 2, 1, 0)])  # not queued: checked by the store
    assert checks == ["n"]
    buffer.close()


def test_checked_points_come_back_as_plain_types() -> None:
    checked = v.validate_metrics([Metric("a", 3, 1, 2), Metric("a", 0.5, 1, 3)])
    assert type(checked) is v.CheckedMetrics
    assert [(type(m.value), m.value) for m in checked] == [(float, 3.0), (float, 0.5)]
    assert v.validate_metrics(checked) is checked
    for bad in (Metric("a", 0.5, 1, 2**63), Metric("../a", 0.5, 1, 0), Metric("a", "x", 1, 0)):
        with pytest.raises(InvalidParameter):
            v.validate_metrics([bad])
