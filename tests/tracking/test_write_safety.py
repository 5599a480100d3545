"""A queued value can only fail to be written for a fault of the store: bad values are refused
at the call site (the same answer on SQLite and PostgreSQL), a store fault keeps the queue for
a retry, and ``end_run`` never leaves a run RUNNING."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import flowml
from flowml.exceptions import InvalidParameter
from flowml.tracking import fluent
from flowml.tracking.buffer import BufferedWriteError
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[TrackingClient]:
    flowml.set_tracking_uri(store_uri)
    yield fluent.get_client()


BAD_METRICS = {
    "int beyond float64": 10**400,
    "fraction beyond float64": Fraction(10**400),
    "long double beyond float64": np.longdouble("1e400") * np.longdouble("1e400"),
    "decimal": Decimal("1.5"),
}
BAD_TEXT = {"NUL": "a\x00b", "lone surrogate": "caf\udce9"}


@pytest.mark.parametrize("case", BAD_METRICS)
def test_metric_values_that_do_not_fit_a_float64_are_refused_when_logged(client, case):
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match="'loss'"):
            flowml.log_metric("loss", BAD_METRICS[case])
        with pytest.raises(InvalidParameter, match="'loss'"):
            client.log_metric(run.info.run_id, "loss", BAD_METRICS[case])
    assert client.get_run(run.info.run_id).data.metrics == {}


def test_infinite_and_numpy_values_are_still_accepted(client):
    with flowml.start_run() as run:
        flowml.log_metrics({"inf": float("inf"), "np": np.float32(0.5), "big": 10**300})
        flowml.log_metric("step", 1.0, step=np.int64(3))
    assert client.get_run(run.info.run_id).data.metrics == {
        "inf": float("inf"),
        "np": 0.5,
        "big": 1e300,
        "step": 1.0,
    }


@pytest.mark.parametrize("case", BAD_TEXT)
def test_text_no_database_can_store_is_refused_on_every_store(client, case):
    bad = BAD_TEXT[case]
    with flowml.start_run() as run:
        rid = run.info.run_id
        with pytest.raises(InvalidParameter, match="Param 'lr' value"):
            flowml.log_param("lr", bad)
        with pytest.raises(InvalidParameter, match="Tag 'note' value"):
            flowml.set_tag("note", bad)
        with pytest.raises(InvalidParameter, match="Param 'lr' value"):
            client.log_batch(rid, params=[Param("lr", bad)])
        with pytest.raises(InvalidParameter, match="Run name"):
            client.update_run(rid, name=bad)
    with pytest.raises(InvalidParameter, match="Run name"):
        flowml.start_run(run_name=bad)
    with pytest.raises(InvalidParameter, match="Tag 'team' value"):
        client.create_run("0", tags={"team": bad})
    with pytest.raises(InvalidParameter, match="Experiment name"):
        client.create_experiment(f"exp{bad}")
    with pytest.raises(InvalidParameter, match="Tag 'owner' value"):
        client.set_experiment_tag("0", "owner", bad)
    got = client.get_run(rid)
    assert got.data.params == {} and "note" not in got.data.tags
    assert [r.info.run_id for r in client.search_runs("0")] == [rid]


@pytest.mark.parametrize("case", BAD_TEXT)
def test_one_bad_value_among_good_points_costs_nothing_else(client, case):
    run = flowml.start_run()
    rid = run.info.run_id
    for i in range(50):
        flowml.log_metric("acc", i / 50, step=i)
    with pytest.raises(InvalidParameter):
        flowml.log_param("model", BAD_TEXT[case])
    flowml.end_run()
    got = client.get_run(rid)
    assert got.info.status == RunStatus.FINISHED
    assert len(client.get_metric_history(rid, "acc")) == 50


@contextmanager
def _table_unavailable(store_uri: str, table: str) -> Iterator[None]:
    """A real store fault: the table the write needs is away (renamed) until the block ends."""
    if store_uri.startswith("sqlite"):
        path = store_uri.removeprefix("sqlite:///")
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        try:
            yield
        finally:
            with sqlite3.connect(path, isolation_level=None) as conn:
                conn.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
        return
    admin = sa.create_engine(store_uri, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_away")
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table}_away RENAME TO {table}")
    finally:
        admin.dispose()


def test_a_store_fault_keeps_the_queue_and_the_retry_writes_it(client, store_uri):
    with flowml.start_run() as run:
        rid = run.info.run_id
        client.flush()
        with _table_unavailable(store_uri, "metrics"):
            for i in range(50):
                flowml.log_metric("acc", float(i), step=i)
            flowml.log_param("lr", "0.1")
            flowml.set_tag("stage", "fit")
            with pytest.raises(BufferedWriteError, match="stay queued") as info:
                client.flush(rid)
            assert (info.value.kept, info.value.lost) == (52, 0)
            assert client.buffer.has_pending(rid)
            flowml.log_metric("acc", 50.0, step=50)  # logging goes on while the store is down
        client.flush(rid)
    got = client.get_run(rid)
    assert [m.step for m in client.get_metric_history(rid, "acc")] == list(range(51))
    assert got.data.params == {"lr": "0.1"} and got.data.tags["stage"] == "fit"
    assert got.info.status == RunStatus.FINISHED


def test_end_run_during_a_store_fault_ends_the_run_once_the_store_answers(client, store_uri):
    run = flowml.start_run()
    rid = run.info.run_id
    client.flush()
    with _table_unavailable(store_uri, "metrics"):
        flowml.log_metric("loss", 0.5)
        with pytest.raises(BufferedWriteError, match="stay queued"):
            flowml.end_run()
        assert flowml.active_run() is None
    client.flush()  # what the background thread does within a second, and exit does last
    got = client.get_run(rid)
    assert got.info.status == RunStatus.FINISHED and got.info.end_time is not None
    assert got.data.metrics == {"loss": 0.5}


def test_a_value_refused_by_the_store_drops_only_itself(client):
    with flowml.start_run() as run:
        rid = run.info.run_id
        TrackingClient(client.tracking_uri).log_param(rid, "seed", "1")  # another writer
        client.log_batch(
            rid,
            metrics=[Metric("m", float(i), 0, i) for i in range(10)],
            params=[Param("seed", "2"), Param("lr", "0.1")],
            tags=[RunTag("t", "v")],
            synchronous=False,
        )
        with pytest.raises(BufferedWriteError, match="'seed'") as info:
            client.flush(rid)
        assert info.value.lost == 1
    got = client.get_run(rid)
    assert got.data.params == {"seed": "1", "lr": "0.1"} and got.data.tags["t"] == "v"
    assert len(client.get_metric_history(rid, "m")) == 10
    assert got.info.status == RunStatus.FINISHED
