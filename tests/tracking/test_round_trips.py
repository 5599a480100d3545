"""Opening and closing a run each cost one round trip on PostgreSQL (a run opened without
waiting costs none to open, and its creation goes with its end), and the one-round-trip
paths refuse exactly what the checked paths refuse, writing nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pg_round_trips import count_round_trips

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.lineage import OUTPUT, LineageEntry
from flowml.tracking.opener import RunOpener
from flowml.tracking.store.sql import SqlStore


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the server answers psycopg waits for on the test's thread (what a caller waits
    for, not a background writer): a generator that asks to wait for the socket to become
    readable is a request whose result is not there yet."""
    seen = {"n": 0}
    caller = threading.get_ident()

    def tally() -> None:
        seen["n"] += 1

    count_round_trips(monkeypatch, lambda: threading.get_ident() == caller, tally)
    return seen


def test_a_run_opens_and_closes_in_one_round_trip_each(
    pg_url: str, tmp_path: Path, round_trips: dict[str, int]
):
    store = SqlStore(pg_url, str(tmp_path / "artifacts"))
    exp_id = store.create_experiment("rt")
    round_trips["n"] = 0
    run = store.create_run(
        exp_id, "u", tags=[RunTag(f"t{i}", "v") for i in range(8)], run_key="prefect-task-run:1"
    )
    assert round_trips["n"] == 1
    round_trips["n"] = 0
    store.finish_run(
        run.info.run_id,
        "FINISHED",
        5,
        metrics=[Metric("m", 1.0, 1, 0), Metric("n", 2.0, 1, 0)],
        params=[Param("a", "1"), Param("b", "2")],
        tags=[RunTag("x", "y")],
        lineage=[LineageEntry(OUTPUT, "model", "models:/m/1")],
    )
    assert round_trips["n"] == 1
    done = store.get_run(run.info.run_id)
    assert (done.info.status, done.info.end_time) == ("FINISHED", 5)
    assert done.data.params == {"a": "1", "b": "2"}
    assert done.data.metrics == {"m": 1.0, "n": 2.0}
    assert done.data.tags["t7"] == "v" and done.data.tags["x"] == "y"
    assert done.info.artifact_uri.endswith(f"/{exp_id}/{run.info.run_id}/artifacts")


def test_a_batch_is_logged_in_one_round_trip(
    pg_url: str, tmp_path: Path, round_trips: dict[str, int]
):
    store = SqlStore(pg_url, str(tmp_path / "artifacts"))
    run_id = store.create_run(store.create_experiment("rt"), "u").info.run_id
    store.log_batch(run_id, params=[Param("warm", "up")])  # opens the pool's connection
    round_trips["n"] = 0
    store.log_batch(
        run_id,
        metrics=[Metric("m", float(i), i, i) for i in range(20)] + [Metric("n", 1.0, 1, 0)],
        params=[Param("a", "1"), Param("warm", "up")],
        tags=[RunTag("x", "y"), RunTag("z", "w")],
    )
    assert round_trips["n"] == 1
    round_trips["n"] = 0
    store.log_batch(run_id, metrics=[Metric("m", 99.0, 0, 99)])
    assert round_trips["n"] == 1
    done = store.get_run(run_id)
    assert done.data.params == {"a": "1", "warm": "up"}
    assert done.data.metrics == {"m": 99.0, "n": 1.0}
    assert done.data.tags["x"] == "y" and done.data.tags["z"] == "w"
    assert [m.value for m in store.get_metric_history(run_id, "m")] == [*map(float, range(20)), 99]


def test_a_refused_batch_writes_nothing(store: SqlStore):
    """A changed param, a deleted or an unknown run: the batch's other values are not
    written either (PostgreSQL sends the batch in one round trip, and falls back to the
    checked path for the error)."""
    exp_id = store.create_experiment("alpha")
    run_id = store.create_run(exp_id, "u").info.run_id
    store.log_batch(run_id, params=[Param("p", "v")])
    batch = {
        "metrics": [Metric("m", 1.0, 1, 0), Metric("m", 2.0, 2, 1)],
        "params": [Param("q", "w")],
        "tags": [RunTag("t", "x")],
    }
    with pytest.raises(InvalidParameter, match="write-once"):
        store.log_batch(run_id, **{**batch, "params": [Param("q", "w"), Param("p", "changed")]})
    store.delete_run(run_id)
    with pytest.raises(InvalidState):
        store.log_batch(run_id, **batch)
    with pytest.raises(ResourceNotFound):
        store.log_batch("f" * 32, **batch)
    store.restore_run(run_id)
    run = store.get_run(run_id)
    assert run.data.params == {"p": "v"} and run.data.metrics == {}
    assert "t" not in run.data.tags and store.get_metric_history(run_id, "m") == []


def test_get_or_create_returns_the_existing_run_with_its_data(store: SqlStore):
    exp_id = store.create_experiment("alpha")
    first = store.create_run(exp_id, "u", tags=[RunTag("k", "1")], run_key="key:1")
    store.log_batch(first.info.run_id, params=[Param("p", "v")])
    again = store.create_run(exp_id, "u", tags=[RunTag("k", "2")], run_key="key:1")
    assert again.info.run_id == first.info.run_id
    assert again.data.tags["k"] == "1" and again.data.params == {"p": "v"}


def test_a_run_in_a_deleted_experiment_is_refused(store: SqlStore):
    exp_id = store.create_experiment("alpha")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidState, match="restore"):
        store.create_run(exp_id, "u", run_key="key:2")
    assert store.get_run_by_key("key:2") is None


def test_finishing_a_deleted_or_unknown_run_writes_nothing(store: SqlStore):
    exp_id = store.create_experiment("alpha")
    run_id = store.create_run(exp_id, "u").info.run_id
    store.delete_run(run_id)
    with pytest.raises(InvalidState):
        store.finish_run(
            run_id, "FINISHED", 5, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("p", "v")]
        )
    store.restore_run(run_id)
    run = store.get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.metrics == {} and run.data.params == {}
    with pytest.raises(ResourceNotFound):
        store.finish_run("f" * 32, "FINISHED", 5, params=[Param("p", "v")])


def test_finish_skips_a_param_logged_earlier_with_the_same_value(store: SqlStore):
    exp_id = store.create_experiment("alpha")
    run_id = store.create_run(exp_id, "u").info.run_id
    store.log_batch(run_id, params=[Param("p", "v")])
    store.finish_run(run_id, "FINISHED", 5, params=[Param("p", "v"), Param("q", "w")])
    assert store.get_run(run_id).data.params == {"p": "v", "q": "w"}


def test_a_run_opened_without_waiting_costs_no_round_trip_and_is_created_with_its_end(
    pg_url: str, tmp_path: Path, round_trips: dict[str, int]
):
    store = SqlStore(pg_url, str(tmp_path / "artifacts"))
    exp_id = store.create_experiment("rt")
    opener = RunOpener(store, linger=3600)  # the background writer never gets to it here
    opener.open(exp_id, "u", [RunTag("warm", "up")])  # reads the experiment's location once
    round_trips["n"] = 0
    run = opener.open(exp_id, "u", [RunTag("t", "v")], "named", "prefect-task-run:2")
    assert round_trips["n"] == 0
    assert store.get_run_by_key("prefect-task-run:2") is None  # queued, not written
    round_trips["n"] = 0
    opens = opener.take(run.info.run_id)
    store.finish_run(
        run.info.run_id,
        "FINISHED",
        5,
        params=[Param("a", "1")],
        tags=[RunTag("x", "y")],
        opens=opens,
    )
    assert round_trips["n"] == 1 and len(opens) == 1
    done = store.get_run_by_key("prefect-task-run:2")
    assert done is not None and done.info.run_id == run.info.run_id
    assert (done.info.status, done.info.run_name, done.info.end_time) == ("FINISHED", "named", 5)
    assert done.info.artifact_uri == run.info.artifact_uri
    assert done.data.tags["t"] == "v" and done.data.tags["x"] == "y"
    assert done.data.params == {"a": "1"}


def test_reads_and_queued_values_of_a_run_opened_without_waiting_write_it_first(
    pg_url: str, tmp_path: Path
):
    client = TrackingClient(pg_url, str(tmp_path / "artifacts"))
    exp_id = client.create_experiment("rt")
    run = client.open_run(exp_id, tags={"k": "v"}, run_key="prefect-task-run:3")
    read = client.get_run(run.info.run_id)
    assert read.info.status == RunStatus.RUNNING and read.data.tags["k"] == "v"
    keyed = client.open_run(exp_id, run_key="prefect-task-run:5")
    found = client.get_run_by_key("prefect-task-run:5")
    assert found is not None and found.info.run_id == keyed.info.run_id
    later = client.open_run(exp_id, run_key="prefect-task-run:4")
    client.log_metric(later.info.run_id, "m", 1.0, synchronous=False)
    client.flush()
    assert client.store.get_run(later.info.run_id).data.metrics == {"m": 1.0}
    client.close()


def test_a_run_opened_without_waiting_on_a_taken_key_is_not_created(sql_store: SqlStore):
    store = sql_store  # opening without waiting is a SQL store feature
    exp_id = store.create_experiment("alpha")
    first = store.create_run(exp_id, "u", run_key="key:5")
    opener = RunOpener(store, linger=3600)
    run = opener.open(exp_id, "u", [], run_key="key:5")
    with pytest.raises(ResourceNotFound):
        store.finish_run(run.info.run_id, "FINISHED", 5, opens=opener.take(run.info.run_id))
    again = store.get_run(first.info.run_id)
    assert again.info.status == RunStatus.RUNNING  # the other run is untouched
    with pytest.raises(ResourceNotFound):
        store.get_run(run.info.run_id)


def test_a_page_of_runs_costs_one_round_trip(
    pg_url: str, tmp_path: Path, round_trips: dict[str, int], monkeypatch: pytest.MonkeyPatch
):
    """The page (with its high-water mark, on the first page) and the runs' params, tags
    and metrics in one statement, whatever the filter."""
    from flowml.tracking.store import paging

    monkeypatch.setattr(paging, "refresh_if_stale", lambda engine: [])  # its own schedule
    store = SqlStore(pg_url, str(tmp_path / "artifacts"))
    exp_id = store.create_experiment("pages")
    for i in range(5):
        run = store.create_run(exp_id, "u", start_time=i)
        store.log_batch(run.info.run_id, [Metric("acc", i / 5, 1, 0)], [Param("lr", str(i % 2))])
    search = {"filter_string": "metrics.acc > 0.1", "order_by": ["metrics.acc DESC"]}
    store.search_runs([exp_id], max_results=2, **search)  # opens the search pool's connection
    round_trips["n"] = 0
    first = store.search_runs([exp_id], max_results=2, **search)
    assert round_trips["n"] == 1
    round_trips["n"] = 0
    second = store.search_runs([exp_id], max_results=2, page_token=first.token, **search)
    assert round_trips["n"] == 1
    found = [r.data.metrics["acc"] for r in (*first, *second)]
    assert found == [0.8, 0.6, 0.4, 0.2] and second.token is None
