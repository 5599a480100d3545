"""The SQL trace store, on SQLite and PostgreSQL: writes and merges, the search grammar
compiled to SQL, tags, assessments, retention, bad input leaving data untouched, and the
migration going down and up."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

import flowml
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracing import entities as e
from flowml.tracing import writer
from flowml.tracing.convert import trace_from_spans
from flowml.tracing.schema import assessments, spans, traces
from flowml.tracing.store import SqlTraceStore

T0 = 1_700_000_000_000


def _span(
    trace_hex: str,
    span_hex: str,
    parent: str | None,
    name: str,
    start_ms: int,
    duration_ms: int,
    status: str = "OK",
    attrs: dict | None = None,
) -> e.Span:
    return e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id(span_hex),
            "parent_span_id": e.encode_id(parent) if parent else None,
            "name": name,
            "start_time_unix_nano": start_ms * 1_000_000,
            "end_time_unix_nano": (start_ms + duration_ms) * 1_000_000,
            "events": [],
            "status": {"code": f"STATUS_CODE_{status}", "message": ""},
            "attributes": {"mlflow.spanType": '"LLM"', **(attrs or {})},
            "links": [],
        }
    )


def _trace(
    n: int,
    *,
    state: str = "OK",
    duration: int = 100,
    run_id: str | None = None,
    tags: dict | None = None,
    metadata: dict | None = None,
    experiment_id: str = "0",
):
    trace_hex = f"{n:032x}"
    root = _span(
        trace_hex,
        f"{n:015x}1",
        None,
        f"root{n}",
        T0 + n * 1000,
        duration,
        state,
        {"mlflow.spanInputs": f'{{"n":{n}}}'},
    )
    child = _span(
        trace_hex,
        f"{n:015x}2",
        f"{n:015x}1",
        "child",
        T0 + n * 1000 + 1,
        10,
        "OK",
        {"mlflow.chat.tokenUsage": '{"input_tokens":3,"output_tokens":4,"total_tokens":7}'},
    )
    return trace_from_spans(
        f"tr-{trace_hex}", experiment_id, [child, root], run_id=run_id, metadata=metadata, tags=tags
    )


@pytest.fixture
def store(trace_store_uri: str) -> SqlTraceStore:
    return writer.store_for(trace_store_uri)


def _ids(page) -> list[str]:
    return [int(i.trace_id[3:], 16) for i in page]


def test_write_then_read_back(store):
    store.write_traces([_trace(1, run_id="r" * 32, tags={"env": "prod"}, metadata={"u": "ann"})])
    trace = store.get_trace(f"tr-{1:032x}")
    assert trace.info.state == "OK" and trace.info.execution_duration == 100
    assert trace.info.run_id == "r" * 32
    assert trace.info.tags == {"env": "prod", "mlflow.traceName": "root1"}
    assert trace.info.trace_metadata["u"] == "ann"
    assert trace.info.token_usage == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert [s.name for s in trace.data.spans] == ["root1", "child"]
    assert trace.info.request_preview == '{"n":1}'


def test_a_trace_written_in_parts_is_merged(store):
    full = _trace(2)
    child, root = full.data.spans[1], full.data.spans[0]
    part = trace_from_spans(full.info.trace_id, "0", [child])
    assert part.info.state == "OK" or part.info.state == "IN_PROGRESS"
    store.write_traces([trace_from_spans(full.info.trace_id, "0", [child], root_span_id="x")])
    store.write_traces([full])
    store.write_traces([full])  # the same again: no duplicate spans
    trace = store.get_trace(full.info.trace_id)
    assert [s.name for s in trace.data.spans] == [root.name, "child"]
    assert trace.info.execution_duration == 100


def test_search_grammar(store):
    store.write_traces(
        [
            _trace(1, duration=50, tags={"env": "prod"}, run_id="a" * 32),
            _trace(2, duration=500, state="ERROR", tags={"env": "dev"}, metadata={"user": "ann"}),
            _trace(3, duration=5000, tags={"env": "prod"}, metadata={"user": "bob"}),
        ]
    )
    search = store.search_traces
    assert _ids(search(["0"])) == [3, 2, 1]
    assert _ids(search(["0"], "attributes.status = 'ERROR'")) == [2]
    assert _ids(search(["0"], "trace.state != 'ERROR'")) == [3, 1]
    assert _ids(search(["0"], f"timestamp_ms >= {T0 + 2000}")) == [3, 2]
    assert _ids(search(["0"], "execution_time_ms > 100 and tags.env = 'prod'")) == [3]
    assert _ids(search(["0"], "metadata.user IN ('ann', 'bob')")) == [3, 2]
    assert _ids(search(["0"], "metadata.user IS NULL")) == [1]
    assert _ids(search(["0"], f"run_id = '{'a' * 32}'")) == [1]
    assert _ids(search(["0"], "name LIKE 'root%' and tags.env ILIKE 'PROD'")) == [3, 1]
    assert _ids(search(["0"], "tags.env = 'dev' or execution_time_ms < 60")) == [2, 1]
    assert _ids(search(["0"], order_by=["execution_time_ms ASC"])) == [1, 2, 3]
    assert _ids(search(["0"], order_by=["tags.env ASC", "timestamp_ms ASC"])) == [2, 1, 3]
    first = search(["0"], max_results=2)
    assert _ids(first) == [3, 2] and first.token
    second = search(["0"], max_results=2, page_token=first.token)
    assert _ids(second) == [1] and second.token is None
    assert list(search(["1"])) == []


@pytest.mark.parametrize(
    "bad",
    [
        "status = OK",  # unquoted
        "timestamp_ms > 'yesterday'",
        "params.x = '1'",  # runs' prefix, not traces'
        "attributes.nope = 'x'",
        "tags.env LIKE 'a\\'",
        "(" * 100 + "status = 'OK'" + ")" * 100,
    ],
)
def test_bad_filters_are_refused(store, bad):
    with pytest.raises(InvalidParameter):
        store.search_traces(["0"], bad)


def test_bad_search_arguments_are_refused(store):
    store.write_traces([_trace(1)])
    page = store.search_traces(["0"], max_results=1)
    with pytest.raises(InvalidParameter):
        store.search_traces(["0"], "status = 'OK'", page_token=page.token or "x")
    for bad in (0, -1, 10**9, "10"):
        with pytest.raises(InvalidParameter):
            store.search_traces(["0"], max_results=bad)
    with pytest.raises(InvalidParameter):
        store.search_traces(["0; DROP TABLE traces"])
    with pytest.raises(InvalidParameter):
        store.search_traces(["0"], order_by=["execution_time_ms SIDEWAYS"])
    assert store.count_traces() == 1


def test_quotes_in_values_are_data_not_sql(store):
    store.write_traces([_trace(1, tags={"q": "it's"})])
    assert _ids(store.search_traces(["0"], "tags.q = 'it''s'")) == [1]
    assert _ids(store.search_traces(["0"], "tags.q = 'x'' OR ''1''=''1'")) == []
    assert store.count_traces() == 1


def test_tags_set_and_delete(store):
    store.write_traces([_trace(1)])
    trace_id = f"tr-{1:032x}"
    store.set_trace_tag(trace_id, "reviewed", "yes")
    store.set_trace_tag(trace_id, "reviewed", "twice")
    assert store.get_trace(trace_id).info.tags["reviewed"] == "twice"
    store.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in store.get_trace(trace_id).info.tags
    with pytest.raises(ResourceNotFound):
        store.delete_trace_tag(trace_id, "reviewed")
    with pytest.raises(ResourceNotFound):
        store.set_trace_tag("tr-missing", "a", "b")
    with pytest.raises(InvalidParameter):
        store.set_trace_tag(trace_id, "../escape", "b")
    assert "../escape" not in store.get_trace(trace_id).info.tags


def test_assessments_need_an_existing_trace_and_valid_input(trace_store_uri, store):
    store.write_traces([_trace(1)])
    trace_id = f"tr-{1:032x}"
    with pytest.raises(ResourceNotFound):
        flowml.log_feedback("tr-missing", name="x", value=1)
    with pytest.raises(InvalidParameter):
        flowml.log_feedback(trace_id, name="x")  # neither value nor error
    with pytest.raises(InvalidParameter):
        flowml.log_feedback(trace_id, name="x", value=object())
    with pytest.raises(InvalidParameter):
        flowml.log_feedback(trace_id, name="x", value=1, source="ROBOT")
    with pytest.raises(InvalidParameter):
        flowml.log_expectation(trace_id, name="", value=1)
    assert store.get_trace(trace_id).info.assessments == []
    flowml.log_feedback(trace_id, name="ok", error=TimeoutError("judge timed out"))
    (only,) = store.get_trace(trace_id).info.assessments
    assert only.error == "TimeoutError: judge timed out"


def test_traces_need_an_existing_experiment_and_a_failed_batch_writes_nothing(store):
    with pytest.raises(ResourceNotFound):
        store.write_traces([_trace(1), _trace(2, experiment_id="999")])
    assert store.count_traces() == 0


def test_retention_deletes_old_traces_with_their_spans(store):
    store.write_traces([_trace(n) for n in range(1, 6)])
    flowml.log_feedback(f"tr-{1:032x}", name="x", value=1)
    assert store.delete_traces(older_than_ms=T0 + 3000) == 2  # traces 1 and 2 started before
    assert _ids(store.search_traces(["0"])) == [5, 4, 3]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(spans)).scalar_one() == 6
        assert conn.execute(select(func.count()).select_from(assessments)).scalar_one() == 0
    assert store.delete_traces(older_than_ms=T0 + 10_000, experiment_ids=["1"]) == 0
    assert store.delete_traces(older_than_ms=T0 + 10_000, max_traces=1) == 1
    assert _ids(store.search_traces(["0"])) == [5, 4]


def test_deleting_by_ids_scopes_to_experiments_and_refuses_bad_input(store):
    store.write_traces([_trace(n) for n in range(1, 4)])
    ids = [f"tr-{n:032x}" for n in (3, 1)] + ["tr-" + "f" * 32]
    assert store.delete_traces(trace_ids=ids, experiment_ids=["1"]) == 0
    for bad in (
        {},
        {"trace_ids": ids, "max_traces": 0},
        {"trace_ids": ids, "experiment_ids": ["x"]},
    ):
        with pytest.raises(InvalidParameter):
            store.delete_traces(**bad)
    assert store.count_traces() == 3
    assert store.delete_traces(trace_ids=ids, max_traces=1) == 1  # the older named one
    assert _ids(store.search_traces(["0"])) == [3, 2]
    assert store.delete_traces(trace_ids=ids) == 1
    assert _ids(store.search_traces(["0"])) == [2]


def test_migration_goes_down_and_up(trace_store_uri, store):
    from alembic import command
    from alembic.config import Config

    from flowml.tracking.store import migrate

    store.write_traces([_trace(1)])
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004_logged_models")
    with store.engine.connect() as conn:
        assert not inspect(conn).has_table(traces.name)
    migrate.upgrade(store.engine)
    assert store.count_traces() == 0
    store.write_traces([_trace(1)])
    assert store.count_traces() == 1
