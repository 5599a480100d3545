"""Lineage is recorded while tasks run (upstream task runs, datasets read, models produced) and
read back as a graph, upstream and downstream."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import flowml
from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run
from flowml.tracking.lineage import INPUT, OUTPUT, LineageEntry
from flowml.tracking.lineage.inputs import record_output
from flowml.tracking.store.sql import SqlStore

from .helpers import by_name, children, runs_of


@flowml.tracked_task(task_run_name="load")
def load(path: str) -> pd.DataFrame:
    flowml.log_input(path, name="raw")
    return pd.read_csv(path)


@flowml.tracked_task(task_run_name="clean")
def clean(frame: pd.DataFrame) -> pd.DataFrame:
    flowml.log_input(frame, name="loaded")  # the in-memory frame, digested
    return frame.dropna()


@flowml.tracked_task(task_run_name="fit")
def fit(frame: pd.DataFrame) -> float:
    run = flowml.active_run()
    record_output(run.info.run_id, "model", f"runs:/{run.info.run_id}/model", name="model")
    return float(frame["y"].mean())


@flowml.tracked_flow(experiment="lineage")
def three_steps(path: str) -> float:
    return fit(clean(load(path)))


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": [1, 2, None, 4], "y": [1.0, 2.0, 3.0, 4.0]}).to_csv(path, index=False)
    return path


@pytest.mark.usefixtures("prefect")
def test_a_three_step_pipeline_is_linked_upstream_and_downstream(client, csv: Path):
    state = three_steps(str(csv), return_state=True)
    assert state.result() == pytest.approx(7 / 3)
    runs = runs_of(client, "lineage")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    steps = by_name(children(runs, parent))
    load_run, fit_run = steps["load"], steps["fit"]

    up = flowml.lineage(fit_run.info.run_id)
    assert [r.info.run_name for r in up.upstream_runs()] == ["clean", "load"]
    datasets = [n for n in up.upstream() if n.kind == "dataset"]
    assert {n.label for n in datasets} == {"raw", "loaded"}
    (raw,) = [n for n in datasets if n.label == "raw"]
    assert raw.uri == str(csv.resolve()) and raw.digest.startswith("blake2b:")
    assert [n.uri for n in up.downstream()] == [f"runs:/{fit_run.info.run_id}/model"]

    down = flowml.lineage(load_run.info.run_id)
    assert [r.info.run_name for r in down.downstream_runs()] == ["clean", "fit"]
    assert down.upstream_runs() == []
    text = down.format()
    assert "run load" in text and "--> [frame] run clean" in text and "model model" in text
    json.dumps(down.to_dict())  # JSON-ready
    assert flowml.lineage(load_run.info.run_id, depth=0).downstream_runs() == []


def test_log_input_records_paths_urls_and_frames(client, csv: Path):
    with flowml.start_run() as run:
        path_entry = flowml.log_input(str(csv))
        frame_entry = flowml.log_input(pd.read_csv(csv), name="frame")
        url_entry = flowml.log_input("s3://bucket/data.parquet", digest="etag:abc")
    assert path_entry.name == "data.csv" and path_entry.digest.startswith("blake2b:")
    assert frame_entry.uri == f"digest:{frame_entry.digest}"
    assert url_entry.uri == "s3://bucket/data.parquet" and url_entry.digest == "etag:abc"
    stored = client.store.search_lineage(run_ids=[run.info.run_id])
    assert [(e.direction, e.uri) for e in stored] == [
        (INPUT, path_entry.uri),
        (INPUT, frame_entry.uri),
        (INPUT, url_entry.uri),
    ]
    # The same content gets the same digest: runs reading it are linked through it.
    with flowml.start_run():
        again = flowml.log_input(pd.read_csv(csv), name="same")
    assert again.uri == frame_entry.uri


def test_log_input_refuses_what_it_cannot_identify(client, tmp_path: Path):
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match="Nothing exists"):
            flowml.log_input(tmp_path / "missing.csv")
        with pytest.raises(InvalidParameter, match="takes a path"):
            flowml.log_input(object())
        with pytest.raises(InvalidParameter, match="Could not read the checksum"):
            flowml.log_input("memory://nowhere/missing.csv")
    assert client.store.search_lineage(run_ids=[run.info.run_id]) == []


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> SqlStore:
    return SqlStore(store_uri, str(tmp_path / "artifacts"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def _run(store: SqlStore) -> str:
    return store.create_run("0", user_id="me").info.run_id


def test_store_records_lineage_idempotently_and_finds_it_by_run_and_uri(store: SqlStore):
    producer, consumer = _run(store), _run(store)
    store.log_lineage(producer, [LineageEntry(OUTPUT, "dataset", "s3://b/out", name="out")])
    entry = LineageEntry(INPUT, "dataset", "s3://b/out", name="in", digest="d1")
    store.log_lineage(consumer, [entry, entry])
    store.log_lineage(consumer, [LineageEntry(INPUT, "dataset", "s3://b/out", name="again")])
    (found,) = store.search_lineage(run_ids=[consumer])
    assert (found.name, found.digest, found.run_id) == ("in", "d1", consumer)
    both = store.search_lineage(uris=["s3://b/out"])
    assert {(e.run_id, e.direction) for e in both} == {(producer, OUTPUT), (consumer, INPUT)}
    assert [e.run_id for e in store.search_lineage(uris=["s3://b/out"], direction=OUTPUT)] == [
        producer
    ]
    assert store.search_lineage() == []


@pytest.mark.parametrize(
    "bad, message",
    [
        (LineageEntry("sideways", "dataset", "u"), "direction"),
        (LineageEntry(INPUT, "Not A Kind", "u"), "kind"),
        (LineageEntry(INPUT, "dataset", ""), "non-empty"),
        (LineageEntry(INPUT, "dataset", "x" * 2001), "longer than"),
        (LineageEntry(INPUT, "dataset", "u", name="n" * 251), "name"),
        (LineageEntry(INPUT, "dataset", "u", digest="d" * 129), "digest"),
    ],
)
def test_bad_lineage_is_refused_and_leaves_stored_lineage_untouched(
    store: SqlStore, bad: LineageEntry, message: str
):
    run_id = _run(store)
    good = LineageEntry(INPUT, "dataset", "file:///kept")
    store.log_lineage(run_id, [good])
    with pytest.raises(InvalidParameter, match=message):
        store.log_lineage(run_id, [LineageEntry(INPUT, "dataset", "file:///new"), bad])
    assert [e.uri for e in store.search_lineage(run_ids=[run_id])] == ["file:///kept"]


def test_lineage_needs_an_existing_active_run(store: SqlStore):
    entry = LineageEntry(INPUT, "dataset", "u")
    with pytest.raises(ResourceNotFound):
        store.log_lineage("0" * 32, [entry])
    run_id = _run(store)
    store.delete_run(run_id)
    with pytest.raises(InvalidState):
        store.log_lineage(run_id, [entry])
    with pytest.raises(InvalidParameter, match="At most 1000"):
        store.log_lineage(_run(store), [LineageEntry(INPUT, "d", f"u{i}") for i in range(1001)])


def test_finish_run_writes_values_lineage_and_status_at_once(store: SqlStore):
    from flowml.tracking.entities import Metric, Param, RunTag

    run_id = _run(store)
    store.finish_run(
        run_id,
        "FINISHED",
        123,
        metrics=[Metric("m", 1.5, 1, 0)],
        params=[Param("p", "v")],
        tags=[RunTag("t", "x")],
        lineage=[LineageEntry(OUTPUT, "model", "models:/m/1")],
    )
    run = store.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 123)
    assert run.data.metrics == {"m": 1.5} and run.data.params == {"p": "v"}
    assert run.data.tags["t"] == "x"
    assert [e.uri for e in store.search_lineage(run_ids=[run_id])] == ["models:/m/1"]


def test_a_refused_finish_changes_nothing(store: SqlStore):
    from flowml.tracking.entities import Metric, Param

    run_id = _run(store)
    store.log_batch(run_id, params=[Param("p", "old")])
    with pytest.raises(InvalidParameter, match="write-once"):
        store.finish_run(
            run_id,
            "FINISHED",
            5,
            metrics=[Metric("m", 1.0, 1, 0)],
            params=[Param("p", "new")],
            lineage=[LineageEntry(OUTPUT, "model", "models:/m/1")],
        )
    with pytest.raises(InvalidParameter, match="Unknown run status"):
        store.finish_run(run_id, "DONE", 5)
    run = store.get_run(run_id)
    assert run.info.status == "RUNNING" and run.info.end_time is None
    assert run.data.metrics == {} and run.data.params == {"p": "old"}
    assert store.search_lineage(run_ids=[run_id]) == []


def test_lineage_of_an_unknown_run_or_a_bad_depth_is_an_error(client):
    with pytest.raises(ResourceNotFound):
        flowml.lineage("f" * 32)
    with flowml.start_run() as run:
        pass
    with pytest.raises(InvalidParameter, match="depth"):
        flowml.lineage(run.info.run_id, depth=-1)
    assert flowml.lineage(run.info.run_id).format().endswith("Downstream: (none)")


def test_tracked_runs_record_their_prefect_identity_as_lineage(client):
    # The URI of a task run's result is its run key: a consumer finds its producer by it.
    assert ptags.task_run_key("abc") == "prefect-task-run:abc"
    assert ptags.flow_run_key("abc") == "prefect-flow-run:abc"
