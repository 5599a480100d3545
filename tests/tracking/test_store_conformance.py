"""The tracking store contract, run against every backend (see conftest.store)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select

from flowml.exceptions import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag, ViewType
from flowml.tracking.store import schema
from flowml.tracking.store.base import AbstractStore
from flowml.tracking.store.sql_metrics import count_points
from flowml.tracking.tags import PARENT_RUN_ID, RUN_NAME


def _count(store, table) -> int:
    with store.engine.connect() as conn:
        if table is schema.metrics:  # packed history: count points, not segments
            return count_points(conn)
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _run(store, name="r", tags=()):
    exp = store.create_experiment(f"exp-{name}")
    return store.create_run(exp, "alice", tags=list(tags), run_name=name)


# -- experiments -----------------------------------------------------------------------------


def test_default_experiment_exists(store):
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.artifact_location.endswith("/0")


def test_create_and_get_experiment(store):
    exp_id = store.create_experiment("alpha", tags={"team": "ml"})
    exp = store.get_experiment(exp_id)
    assert exp.name == "alpha"
    assert exp.tags == {"team": "ml"}
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location.endswith(f"/{exp_id}")
    assert store.get_experiment_by_name("alpha").experiment_id == exp_id
    assert store.get_experiment_by_name("missing") is None


def test_duplicate_experiment_name_is_refused(store):
    store.create_experiment("alpha")
    before = _count(store, schema.experiments)
    with pytest.raises(ResourceAlreadyExists, match="alpha"):
        store.create_experiment("alpha")
    assert _count(store, schema.experiments) == before


@pytest.mark.parametrize("bad", ["", "   ", None, "x" * 501])
def test_bad_experiment_name(store, bad):
    before = _count(store, schema.experiments)
    with pytest.raises(InvalidParameter):
        store.create_experiment(bad)
    assert _count(store, schema.experiments) == before


def test_unknown_experiment(store):
    with pytest.raises(ResourceNotFound):
        store.get_experiment("12345")
    with pytest.raises(InvalidParameter, match="integers"):
        store.get_experiment("abc")


def test_delete_restore_rename_experiment(store):
    exp_id = store.create_experiment("alpha")
    run = store.create_run(exp_id, "u")
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert store.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidState):
        store.create_run(exp_id, "u")
    with pytest.raises(InvalidState):
        store.rename_experiment(exp_id, "beta")
    store.restore_experiment(exp_id)
    assert store.get_run(run.info.run_id).info.lifecycle_stage == "active"
    store.rename_experiment(exp_id, "beta")
    assert store.get_experiment(exp_id).name == "beta"
    store.create_experiment("gamma")
    with pytest.raises(ResourceAlreadyExists):
        store.rename_experiment(exp_id, "gamma")
    assert store.get_experiment(exp_id).name == "beta"


def test_experiment_tags(store):
    exp_id = store.create_experiment("alpha")
    store.set_experiment_tag(exp_id, "k", "v1")
    store.set_experiment_tag(exp_id, "k", "v2")
    assert store.get_experiment(exp_id).tags == {"k": "v2"}
    with pytest.raises(InvalidParameter):
        store.set_experiment_tag(exp_id, "../bad", "v")


def test_search_experiments_by_view(store):
    a = store.create_experiment("a")
    store.create_experiment("b")
    store.delete_experiment(a)
    active = {e.name for e in store.search_experiments(ViewType.ACTIVE_ONLY)}
    deleted = {e.name for e in store.search_experiments(ViewType.DELETED_ONLY)}
    assert active == {"Default", "b"}
    assert deleted == {"a"}
    assert {e.name for e in store.search_experiments(ViewType.ALL)} == {"Default", "a", "b"}
    assert [e.name for e in store.search_experiments(filter_string="name LIKE 'b%'")] == ["b"]


# -- runs ------------------------------------------------------------------------------------


def test_create_run_fields(store):
    exp_id = store.create_experiment("alpha")
    run = store.create_run(
        exp_id, "alice", start_time=1234, tags=[RunTag("k", "v")], run_name="first"
    )
    got = store.get_run(run.info.run_id)
    assert got.info.run_name == "first"
    assert got.info.status == RunStatus.RUNNING
    assert got.info.start_time == 1234
    assert got.info.end_time is None
    assert got.info.user_id == "alice"
    assert got.info.experiment_id == exp_id
    assert got.info.artifact_uri.endswith(f"/{exp_id}/{run.info.run_id}/artifacts")
    assert got.data.tags == {"k": "v", RUN_NAME: "first"}


def test_run_name_is_generated(store):
    run = _run(store, name=None)
    assert run.info.run_name
    assert store.get_run(run.info.run_id).data.tags[RUN_NAME] == run.info.run_name


def test_run_key_makes_create_idempotent(store):
    exp_id = store.create_experiment("alpha")
    first = store.create_run(exp_id, "u", run_key="prefect-flow-run:1")
    again = store.create_run(exp_id, "u", run_key="prefect-flow-run:1")
    assert first.info.run_id == again.info.run_id
    assert store.get_run_by_key("prefect-flow-run:1").info.run_id == first.info.run_id
    assert store.get_run_by_key("nope") is None


def test_create_run_in_unknown_experiment(store):
    before = _count(store, schema.runs)
    with pytest.raises(ResourceNotFound):
        store.create_run("999", "u")
    assert _count(store, schema.runs) == before


def test_nested_run_parent(store):
    parent = _run(store, "parent")
    child = store.create_run(
        parent.info.experiment_id, "u", tags=[RunTag(PARENT_RUN_ID, parent.info.run_id)]
    )
    assert store.get_run(child.info.run_id).data.tags[PARENT_RUN_ID] == parent.info.run_id
    found = store.search_runs(
        [parent.info.experiment_id], f"tags.`{PARENT_RUN_ID}` = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]


def test_update_and_end_run(store):
    run = _run(store)
    store.end_run(run.info.run_id, RunStatus.FAILED, end_time=99)
    got = store.get_run(run.info.run_id).info
    assert (got.status, got.end_time) == (RunStatus.FAILED, 99)
    store.update_run_info(run.info.run_id, run_name="renamed")
    got = store.get_run(run.info.run_id)
    assert got.info.run_name == "renamed" and got.data.tags[RUN_NAME] == "renamed"
    with pytest.raises(InvalidParameter, match="status"):
        store.update_run_info(run.info.run_id, status="DONE")
    assert store.get_run(run.info.run_id).info.status == RunStatus.FAILED


def test_delete_and_restore_run(store):
    run = _run(store)
    store.delete_run(run.info.run_id)
    assert store.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    exp = [run.info.experiment_id]
    assert list(store.search_runs(exp)) == []
    assert [r.info.run_id for r in store.search_runs(exp, run_view_type=ViewType.DELETED_ONLY)] == [
        run.info.run_id
    ]
    with pytest.raises(InvalidState):
        store.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 1, 0)])
    assert _count(store, schema.metrics) == 0
    store.restore_run(run.info.run_id)
    store.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 1, 0)])
    with pytest.raises(ResourceNotFound):
        store.delete_run("0" * 32)


def test_unknown_run(store):
    with pytest.raises(ResourceNotFound):
        store.get_run("f" * 32)
    with pytest.raises(ResourceNotFound):
        store.log_batch("f" * 32, params=[Param("a", "1")])
    with pytest.raises(ResourceNotFound):
        store.get_metric_history("f" * 32, "m")


# -- params, metrics, tags -------------------------------------------------------------------


def test_params_are_write_once(store):
    run = _run(store)
    rid = run.info.run_id
    store.log_batch(rid, params=[Param("lr", "0.1")])
    store.log_batch(rid, params=[Param("lr", "0.1")])  # same value: a no-op
    metrics_before = _count(store, schema.metrics)
    with pytest.raises(InvalidParameter, match="write-once"):
        store.log_batch(rid, params=[Param("lr", "0.2")], metrics=[Metric("m", 1.0, 1, 0)])
    # the rejected batch wrote nothing, not even its metric
    assert _count(store, schema.metrics) == metrics_before
    assert store.get_run(rid).data.params == {"lr": "0.1"}


def test_metric_history_and_latest(store):
    rid = _run(store).info.run_id
    points = [
        Metric("loss", 1.0, 10, 0),
        Metric("loss", 0.5, 11, 1),
        Metric("loss", 0.7, 9, 1),
        Metric("loss", 0.9, 12, 0),
    ]
    store.log_batch(rid, metrics=points[:2])
    store.log_batch(rid, metrics=points[2:])
    history = store.get_metric_history(rid, "loss")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (0, 10, 1.0),
        (0, 12, 0.9),
        (1, 9, 0.7),
        (1, 11, 0.5),
    ]
    # latest = highest step, then latest timestamp (independent of write order)
    run = store.get_run(rid)
    assert run.data.metrics == {"loss": 0.5}
    assert run.data.metric_points == {"loss": (11, 1)}  # its timestamp and step, as MLflow's
    found = store.search_runs([run.info.experiment_id], f"attributes.run_id = '{rid}'")
    assert found[0].data.metric_points == {"loss": (11, 1)}


def test_nan_and_infinities_round_trip(store):
    rid = _run(store).info.run_id
    store.log_batch(
        rid,
        metrics=[
            Metric("a", math.nan, 1, 0),
            Metric("b", math.inf, 1, 0),
            Metric("c", -math.inf, 1, 0),
        ],
    )
    data = store.get_run(rid).data.metrics
    assert math.isnan(data["a"]) and data["b"] == math.inf and data["c"] == -math.inf
    assert math.isnan(store.get_metric_history(rid, "a")[0].value)
    assert store.get_metric_history(rid, "c")[0].value == -math.inf


def test_tags_are_mutable_and_deletable(store):
    rid = _run(store).info.run_id
    store.log_batch(rid, tags=[RunTag("k", "1")])
    store.log_batch(rid, tags=[RunTag("k", "2")])
    assert store.get_run(rid).data.tags["k"] == "2"
    store.delete_tag(rid, "k")
    assert "k" not in store.get_run(rid).data.tags
    with pytest.raises(ResourceNotFound):
        store.delete_tag(rid, "k")


BAD_BATCHES = [
    ({"metrics": [Metric("bad key!", 1.0, 1, 0)]}, "Invalid Metric name"),
    ({"metrics": [Metric("../up", 1.0, 1, 0)]}, "normal relative paths"),
    ({"metrics": [Metric("/abs", 1.0, 1, 0)]}, "normal relative paths"),
    ({"metrics": [Metric("a//b", 1.0, 1, 0)]}, "normal relative paths"),
    ({"metrics": [Metric("k" * 251, 1.0, 1, 0)]}, "limit is 250"),
    ({"metrics": [Metric("m", "high", 1, 0)]}, "real number"),  # type: ignore[arg-type]
    ({"metrics": [Metric("m", 1.0, 1.5, 0)]}, "timestamp"),  # type: ignore[arg-type]
    ({"metrics": [Metric("m", 1.0, 1, "x")]}, "step"),  # type: ignore[arg-type]
    ({"params": [Param("p", "x" * 6001)]}, "limit is 6000"),
    ({"params": [Param("p", "1"), Param("p", "2")]}, "appears twice"),
    ({"tags": [RunTag("t", "x" * 8001)]}, "limit is 8000"),
    ({"metrics": [Metric(f"m{i}", 1.0, 1, 0) for i in range(1001)]}, "at most 1000 metrics"),
    ({"params": [Param(f"p{i}", "1") for i in range(101)]}, "at most 100 params"),
    ({"tags": [RunTag(f"t{i}", "1") for i in range(101)]}, "at most 100 tags"),
    (
        {
            "metrics": [Metric(f"m{i}", 1.0, 1, 0) for i in range(950)],
            "params": [Param(f"p{i}", "1") for i in range(60)],
        },
        "at most 1000 entries",
    ),
]


@pytest.mark.parametrize("batch,message", BAD_BATCHES, ids=[m for _, m in BAD_BATCHES])
def test_bad_batches_are_refused_and_write_nothing(store, batch, message):
    rid = _run(store).info.run_id
    ok = {
        "metrics": [Metric("good", 1.0, 1, 0)],
        "params": [Param("good", "1")],
        "tags": [RunTag("good", "1")],
    }
    merged = {k: ok[k] + batch.get(k, []) for k in ok}
    before = (
        _count(store, schema.metrics),
        _count(store, schema.params),
        _count(store, schema.tags),
    )
    with pytest.raises(InvalidParameter, match=message):
        store.log_batch(rid, **merged)
    assert (
        _count(store, schema.metrics),
        _count(store, schema.params),
        _count(store, schema.tags),
    ) == before


def test_batch_at_the_limits_is_accepted(store):
    rid = _run(store).info.run_id
    store.log_batch(
        rid,
        metrics=[Metric(f"m{i % 50}", float(i), i, i) for i in range(800)],
        params=[Param(f"p{i}", "v" * 6000) for i in range(100)],
        tags=[RunTag(f"t{i}", "v" * 8000) for i in range(100)],
    )
    run = store.get_run(rid)
    assert len(run.data.params) == 100 and len(run.data.metrics) == 50
    assert run.data.params["p5"] == "v" * 6000


def test_store_is_an_abc_with_primitives():
    class Partial(AbstractStore):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


# -- search through the store ----------------------------------------------------------------


def test_search_runs_filter_order_and_pages(store):
    exp_id = store.create_experiment("search")
    ids = []
    for i in range(7):
        run = store.create_run(exp_id, "u", start_time=1000 + i, run_name=f"r{i}")
        store.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 1, 0)],
            params=[Param("lr", "0.01" if i % 2 else "0.1")],
            tags=[RunTag("kind", "odd" if i % 2 else "even")],
        )
        ids.append(run.info.run_id)
    found = store.search_runs(
        [exp_id], "metrics.acc > 0.2 and params.lr = '0.01'", order_by=["metrics.acc DESC"]
    )
    assert [r.info.run_name for r in found] == ["r5", "r3"]
    found = store.search_runs(
        [exp_id], "tags.kind = 'even' or metrics.acc >= 0.5", order_by=["metrics.acc ASC"]
    )
    assert [r.info.run_name for r in found] == ["r0", "r2", "r4", "r5", "r6"]
    # default order: newest first; pages cover everything exactly once
    seen, token = [], None
    while True:
        page = store.search_runs([exp_id], max_results=3, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if token is None:
            break
    assert seen == [f"r{i}" for i in reversed(range(7))]
    assert found[0].data.params and found[0].data.tags["kind"]
    with pytest.raises(InvalidParameter, match="position"):
        store.search_runs([exp_id], "metrics.acc >> 1")


def test_history_is_stored_in_packed_segments_and_read_in_order(store):
    """One segment row per key per batch; history comes back ordered by step, then time."""
    rid = _run(store).info.run_id
    store.log_batch(rid, metrics=[Metric("a", float(i), 100 - i, i % 3) for i in range(30)])
    store.log_batch(rid, metrics=[Metric("a", math.nan, 1, 0), Metric("b", -math.inf, 5, 7)])
    with store.engine.connect() as conn:
        segments = conn.execute(select(func.count()).select_from(schema.metrics)).scalar_one()
        assert segments == 3
        assert count_points(conn, [rid]) == 32
    history = store.get_metric_history(rid, "a")
    points = [(m.step, m.timestamp) for m in history]
    assert points == sorted(points)
    assert len(history) == 31 and math.isnan(history[0].value)
    assert store.get_metric_history(rid, "b") == [Metric("b", -math.inf, 5, 7)]
    assert store.get_metric_history(rid, "missing") == []


def test_lineage_round_trip(store):
    from flowml.tracking.lineage import INPUT, OUTPUT, LineageEntry

    exp_id = store.create_experiment("lineage")
    producer = store.create_run(exp_id, "u", run_key="prefect-task-run:p1").info.run_id
    consumer = store.create_run(exp_id, "u").info.run_id
    entry = LineageEntry(INPUT, "prefect-task-run", "prefect-task-run:p1", name="x", digest="d")
    store.log_lineage(consumer, [entry])
    store.log_lineage(consumer, [entry])  # the same fact again: a no-op
    found = store.search_lineage(uris=["prefect-task-run:p1"])
    assert sorted((e.run_id, e.direction) for e in found) == sorted(
        [(producer, OUTPUT), (consumer, INPUT)]
    )
    mine = store.search_lineage(run_ids=[consumer], direction=INPUT)
    assert [(e.kind, e.uri, e.name, e.digest) for e in mine] == [
        ("prefect-task-run", "prefect-task-run:p1", "x", "d")
    ]
    assert mine[0].timestamp
    assert store.search_lineage() == []
    with pytest.raises(InvalidParameter, match="direction"):
        store.log_lineage(consumer, [LineageEntry("sideways", "dataset", "s3://b/x")])
    with pytest.raises(ResourceNotFound):
        store.log_lineage("f" * 32, [entry])
