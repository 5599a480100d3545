"""A metric step (or timestamp) outside int64 is refused with `InvalidParameter` on every way
in (fluent API, `TrackingClient`, a store's ``log_batch``), and nothing of its batch is written.

Both stores keep steps as 64-bit integers (packed segments and ``latest_metrics``): without
the range check a step of 2**63 reaches the database and fails there with a driver error (or,
worse, wraps), so these tests fail when the check in `flowml.tracking.validation` (the full one
in ``validate_metric`` or the inlined one in ``validate_metrics``) is removed. The REST server's
endpoints are covered in ``tests/server/test_step_range_http.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import flowml
from flowml.exceptions import InvalidParameter
from flowml.tracking import fluent
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Metric, Param, RunTag
from flowml.tracking.store import schema
from flowml.tracking.store.sql_metrics import count_points

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
OUT_OF_RANGE = {"2**63": INT64_MAX + 1, "-2**63-1": INT64_MIN - 1, "2**64": 2**64}


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[TrackingClient]:
    """The fluent API's client on SQLite and PostgreSQL."""
    flowml.set_tracking_uri(store_uri)
    yield fluent.get_client()


def _counts(store) -> tuple[int, int, int, int]:
    """Metric points, latest values, params and tags in the store's database."""
    with store.engine.connect() as conn:
        rows = [
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (schema.latest_metrics, schema.params, schema.tags)
        ]
        return (count_points(conn), *rows)


def _nothing_logged(client: TrackingClient, run_id: str) -> None:
    client.flush()
    data = client.get_run(run_id).data
    assert data.metrics == {} and data.params == {}
    assert "good" not in data.tags
    assert client.get_metric_history(run_id, "loss") == []
    assert client.get_metric_history(run_id, "good") == []


@pytest.mark.parametrize("step", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_fluent_api_refuses_a_step_beyond_int64(client, step):
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match="'loss'.*64 bits"):
            flowml.log_metric("loss", 0.5, step=step)
        with pytest.raises(InvalidParameter, match="64 bits"):
            flowml.log_metrics({"good": 1.0, "loss": 0.5}, step=step)
    _nothing_logged(client, run.info.run_id)


@pytest.mark.parametrize("step", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_tracking_client_refuses_a_step_beyond_int64(client, step):
    run_id = client.create_run("0").info.run_id
    for synchronous in (True, False):
        with pytest.raises(InvalidParameter, match="'loss'.*64 bits"):
            client.log_metric(run_id, "loss", 0.5, step=step, synchronous=synchronous)
        with pytest.raises(InvalidParameter, match="64 bits"):
            client.log_batch(
                run_id,
                metrics=[Metric("good", 1.0, 1, 0), Metric("loss", 0.5, 1, step)],
                params=[Param("good", "1")],
                tags=[RunTag("good", "1")],
                synchronous=synchronous,
            )
    _nothing_logged(client, run_id)


def test_a_timestamp_beyond_int64_is_refused_too(client):
    run_id = client.create_run("0").info.run_id
    for timestamp in OUT_OF_RANGE.values():
        with pytest.raises(InvalidParameter, match="64 bits"):
            client.log_metric(run_id, "loss", 0.5, timestamp=timestamp)
    _nothing_logged(client, run_id)


@pytest.mark.parametrize("step", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_store_log_batch_refuses_a_step_beyond_int64_and_writes_nothing(store, step):
    exp = store.create_experiment("steps")
    run_id = store.create_run(exp, "alice", tags=[], run_name="r").info.run_id
    before = _counts(store)
    # The bad point after good ones of the same and another key: the whole batch is refused.
    batch = {
        "metrics": [
            Metric("good", 1.0, 1, 0),
            Metric("loss", 0.9, 1, 0),
            Metric("loss", 0.5, 2, step),
        ],
        "params": [Param("good", "1")],
        "tags": [RunTag("good", "1")],
    }
    with pytest.raises(InvalidParameter, match="'loss'.*64 bits"):
        store.log_batch(run_id, **batch)
    assert _counts(store) == before
    got = store.get_run(run_id)
    assert got.data.metrics == {} and got.data.params == {} and "good" not in got.data.tags


def test_the_int64_bounds_themselves_are_accepted_and_round_trip(store):
    exp = store.create_experiment("bounds")
    run_id = store.create_run(exp, "alice", tags=[], run_name="r").info.run_id
    store.log_batch(
        run_id,
        metrics=[
            Metric("loss", 1.0, INT64_MIN, INT64_MIN),
            Metric("loss", 2.0, INT64_MAX, INT64_MAX),
        ],
    )
    history = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (INT64_MIN, INT64_MIN, 1.0),
        (INT64_MAX, INT64_MAX, 2.0),
    ]
    assert store.get_run(run_id).data.metrics == {"loss": 2.0}
