"""PostgreSQL's batches as one statement over arrays (`pg_arrays`) leave exactly what the
same rows executed one by one leave: the same tables, the same refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from flowml.tracking.entities import LifecycleStage, RunTag
from flowml.tracking.store import pg_arrays, sql_fast
from flowml.tracking.store.engine import one_round_trip
from flowml.tracking.store.sql import SqlStore

TABLES = {
    "tags": "run_uuid, key, value",
    "params": "run_uuid, key, value",
    "metrics": "run_uuid, key, n, step_min, step_max, points",
    "latest_metrics": "run_uuid, key, value, timestamp, step",
    "run_lineage": "run_uuid, direction, kind, uri, name, digest, timestamp",
    "runs": "run_uuid, status, end_time, name, lifecycle_stage",
}


@pytest.fixture
def pg_store(pg_url: str, tmp_path: Path) -> SqlStore:
    return SqlStore(pg_url, str(tmp_path / "artifacts"))


def _batches(a: str, b: str, gone: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """One batch per statement, each with what makes its one-by-one order matter."""
    tag = lambda run, key, value: {"run_uuid": run, "key": key, "value": value}  # noqa: E731
    latest = lambda run, key, value, ts, step: {  # noqa: E731
        "run_uuid": run,
        "key": key,
        "value": value,
        "timestamp": ts,
        "step": step,
    }
    lineage = lambda run, uri: {  # noqa: E731
        "run_uuid": run,
        "direction": "input",
        "kind": "dataset",
        "uri": uri,
        "name": None,
        "digest": "d1",
        "timestamp": 5,
    }
    segment = lambda run, key, n: {  # noqa: E731
        "run_uuid": run,
        "key": key,
        "n": n,
        "step_min": 0,
        "step_max": n,
        # Bytes an array's text form would have to escape, and every other byte value.
        "points": bytes([n]) * 3 + b'\x00\\"{},\x7f\xff' + bytes(range(256)),
    }
    return [
        # The later value of a tag wins, also over a stored one.
        (
            "upsert_tags",
            [tag(a, "t", "1"), tag(b, "t", "x"), tag(a, "t", "2"), tag(a, "old", "new")],
        ),
        # Tags of a run that does not exist are not written.
        (
            "insert_tags_of_new_run",
            [tag(b, "n1", "v"), tag("0" * 32, "n1", "v"), tag(b, "n2", "w")],
        ),
        # An equal param again is skipped, whether stored or repeated in the batch.
        (
            "insert_params_once",
            [tag(a, "p", "1"), tag(a, "p", "1"), tag(a, "kept", "same"), tag(b, "p", "2")],
        ),
        # Values the arrays' text form must quote: quotes, backslashes, braces, commas,
        # blanks, the word NULL, an empty string, other scripts.
        (
            "insert_tags",
            [
                tag(a, 'q"uote', 'a "b" \\ c\\'),
                tag(a, "braces", "{x,y}, {z}"),
                tag(a, "the word", "NULL"),
                tag(a, "empty", ""),
                tag(b, " blank ", "  "),
                tag(b, "ünï", "日本語 \t tab"),
            ],
        ),
        ("insert_segments", [segment(a, "m", 1), segment(a, "m", 2), segment(b, "m", 3)]),
        # Doubles as written: tiny, huge, negative, not a number, infinite; big steps.
        (
            "upsert_latest",
            [
                latest(b, "tiny", 1e-300, 1, 2**62),
                latest(b, "huge", -1.7976931348623157e308, 1, -(2**62)),
                latest(b, "third", 1 / 3, 1, 0),
                latest(b, "nan", float("nan"), 1, 0),
                latest(b, "inf", float("inf"), 1, 0),
                latest(b, "-inf", float("-inf"), 1, 0),
            ],
        ),
        # Highest step, then the later of equal steps with a timestamp at least as high;
        # a stored newer point stays.
        (
            "upsert_latest",
            [
                latest(a, "m", 1.0, 10, 1),
                latest(a, "m", 3.0, 5, 3),
                latest(a, "m", 2.0, 4, 2),
                latest(a, "m", 4.0, 5, 3),
                latest(b, "m", None, 1, 0),
                latest(a, "stored", 1.0, 1, 0),
            ],
        ),
        (
            "insert_lineage",
            [lineage(a, "file:///x"), lineage(a, "file:///x"), lineage(b, "file:///y")],
        ),
        # A run no longer active keeps its status.
        (
            "update_run",
            [
                {"b_run_uuid": a, "status": "FINISHED", "end_time": 9, "name": None},
                {"b_run_uuid": gone, "status": "FINISHED", "end_time": 9, "name": None},
                {"b_run_uuid": b, "status": None, "end_time": 7, "name": "renamed"},
            ],
        ),
    ]


def _apply(store: SqlStore, arrays: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    a, b, gone = (
        store.create_run("0", "me", start_time=1, run_name=name).info.run_id
        for name in ("a", "b", "gone")
    )
    store.set_run_lifecycle(gone, LifecycleStage.DELETED)
    with one_round_trip(store.engine) as conn:  # what the batch meets: stored rows
        sql_fast.run(conn, "insert_tags", {"run_uuid": a, "key": "old", "value": "old"})
        sql_fast.run(conn, "insert_params", {"run_uuid": a, "key": "kept", "value": "same"})
        sql_fast.run(
            conn,
            "upsert_latest",
            {"run_uuid": a, "key": "stored", "value": 9.0, "timestamp": 9, "step": 9},
        )
    sent: list[str] = []
    real = pg_arrays.statement

    def statement(name: str, rows: Any) -> Any:
        found = real(name, rows) if arrays else None
        if found is not None:
            sent.append(name)
        return found

    batches = _batches(a, b, gone)
    with monkeypatch.context() as patched:
        patched.setattr(pg_arrays, "statement", statement)
        for name, rows in batches:
            with one_round_trip(store.engine) as conn:
                sql_fast.run_many(conn, name, rows)
    assert sent == ([name for name, _ in batches] if arrays else [])
    names = {a: "a", b: "b", gone: "gone"}
    snapshot: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for table, columns in TABLES.items():
            rows = conn.execute(
                text(
                    f"SELECT {columns} FROM {table} WHERE run_uuid IN (:a, :b, :g)"
                    + (" ORDER BY id" if table == "metrics" else "")
                ),
                {"a": a, "b": b, "g": gone},
            ).all()
            # NaN never equals itself: compared by name.
            named = [(names[row[0]], *("NaN" if v != v else v for v in row[1:])) for row in rows]
            # Metric segments keep their write order (the history's order); others sorted.
            snapshot[table] = named if table == "metrics" else sorted(named, key=repr)
    return snapshot


def test_arrays_leave_what_one_by_one_leaves(pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch):
    by_rows = _apply(pg_store, arrays=False, monkeypatch=monkeypatch)
    by_arrays = _apply(pg_store, arrays=True, monkeypatch=monkeypatch)
    assert by_arrays == by_rows
    # And what that is, spelled out.
    assert ("a", "t", "2") in by_arrays["tags"] and ("a", "old", "new") in by_arrays["tags"]
    assert [r for r in by_arrays["tags"] if r[1].startswith("n")] == [
        ("b", "n1", "v"),
        ("b", "n2", "w"),
    ]
    assert sorted(by_arrays["params"]) == [("a", "kept", "same"), ("a", "p", "1"), ("b", "p", "2")]
    assert [r[2] for r in by_arrays["metrics"]] == [1, 2, 3]  # written in order
    assert ("a", "m", 4.0, 5, 3) in by_arrays["latest_metrics"]
    assert ("a", "stored", 9.0, 9, 9) in by_arrays["latest_metrics"]
    assert ("b", "m", None, 1, 0) in by_arrays["latest_metrics"]
    assert ("a", 'q"uote', 'a "b" \\ c\\') in by_arrays["tags"]
    assert ("a", "braces", "{x,y}, {z}") in by_arrays["tags"]
    assert ("a", "the word", "NULL") in by_arrays["tags"] and ("a", "empty", "") in by_arrays[
        "tags"
    ]
    assert ("b", "ünï", "日本語 \t tab") in by_arrays["tags"]
    latest = {r[1]: r[2:] for r in by_arrays["latest_metrics"] if r[0] == "b"}
    assert latest["tiny"] == (1e-300, 1, 2**62) and latest["third"][0] == 1 / 3
    assert latest["huge"] == (-1.7976931348623157e308, 1, -(2**62))
    assert [latest[k][0] for k in ("nan", "inf", "-inf")] == ["NaN", float("inf"), float("-inf")]
    assert len(by_arrays["run_lineage"]) == 2
    runs = {r[0]: r[1:] for r in by_arrays["runs"]}
    assert runs["a"][:2] == ("FINISHED", 9)
    assert runs["gone"][:2] == ("RUNNING", None)
    assert runs["b"] == ("RUNNING", 7, "renamed", "active")


def test_a_conflicting_param_is_refused_both_ways(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
):
    run = pg_store.create_run("0", "me", start_time=1).info.run_id
    rows = [
        {"run_uuid": run, "key": "p", "value": "1"},
        {"run_uuid": run, "key": "p", "value": "2"},
    ]
    for arrays in (True, False):
        with monkeypatch.context() as patched:
            if not arrays:
                patched.setattr(pg_arrays, "statement", lambda name, rows: None)
            with pytest.raises(psycopg.IntegrityError):
                with one_round_trip(pg_store.engine) as conn:
                    sql_fast.run_many(conn, "insert_params_once", rows)
    assert pg_store.get_run(run).data.params == {}  # nothing of the batch was written


def test_a_batch_naming_an_inactive_run_fails_as_a_whole(pg_store: SqlStore):
    live, gone = (pg_store.create_run("0", "me", start_time=1).info.run_id for _ in range(2))
    pg_store.set_run_lifecycle(gone, LifecycleStage.DELETED)
    with pytest.raises(psycopg.DataError):  # division by zero
        with one_round_trip(pg_store.engine) as conn:
            sql_fast.run_many(
                conn,
                "upsert_tags",
                [
                    {"run_uuid": live, "key": "k", "value": "v"},
                    {"run_uuid": live, "key": "k2", "value": "v"},
                ],
            )
            sql_fast.run_many(conn, "assert_active_run", [{"run_uuid": live}, {"run_uuid": gone}])
    assert "k" not in pg_store.get_run(live).data.tags  # rolled back with it
    with one_round_trip(pg_store.engine) as conn:  # the same run twice counts once
        sql_fast.run_many(conn, "assert_active_run", [{"run_uuid": live}, {"run_uuid": live}])


def test_two_updates_of_one_run_go_row_by_row():
    rows = [{"b_run_uuid": "r", "status": "FAILED", "end_time": 1, "name": None}] * 2
    assert pg_arrays.statement("update_run", rows) is None
    assert pg_arrays.statement("params_of_run", rows) is None  # no array form


def _created(store: SqlStore, replies: bool, deleted_experiment: str) -> list[tuple[Any, ...]]:
    """Four runs prepared and created in one unit: one with a key already taken, one in a
    deleted experiment; the runs table afterwards, by name."""
    taken = store.create_run("0", "me", start_time=1, run_key=f"taken-{replies}").info.run_id
    prepared = [
        store.prepare_run("0", "/art/", "me", [RunTag("t", "1")], f"new-{replies}-{i}", key)
        for i, key in enumerate((f"key-{replies}", f"taken-{replies}", None))
    ]
    prepared.append(
        store.prepare_run(deleted_experiment, "/art", "me", [], f"gone-{replies}", None)
    )
    with one_round_trip(store.engine) as conn:
        sent = sql_fast.send_creations(conn, prepared, later=True, replies=replies)
    for reply in sent:
        reply.close()
    ids = {new.run.info.run_id: new.run.info.run_name for new in prepared}
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_uuid, run_key, name, experiment_id, status, artifact_uri, "
                "lifecycle_stage, parent_run_uuid FROM runs WHERE run_uuid = ANY(:ids)"
            ),
            {"ids": list(ids)},
        ).all()
        tags = conn.execute(
            text("SELECT run_uuid, key, value FROM tags WHERE run_uuid = ANY(:ids)"),
            {"ids": list(ids)},
        ).all()
    assert store.get_run(taken).info.run_id == taken  # the stored run with the key stays

    def replace(value: Any) -> str:  # run ids by their names, this call's marker as X
        text = str(value)
        for run_id, name in ids.items():
            text = text.replace(run_id, name)
        return text.replace(str(replies), "X")

    return sorted(
        [tuple(replace(v) for v in (*row[1:], "run")) for row in rows]
        + [(replace(row[0]), row[1], replace(row[2]), "tag") for row in tags]
    )


def test_runs_created_in_one_execution_are_those_created_one_by_one(pg_store: SqlStore):
    experiment = pg_store.create_experiment("soon-deleted")
    pg_store.delete_experiment(experiment)
    by_replies = _created(pg_store, True, experiment)
    by_arrays = _created(pg_store, False, experiment)
    assert by_arrays == by_replies
    names = {row[1] for row in by_arrays if row[-1] == "run"}
    assert names == {"new-X-0", "new-X-2"}  # not the taken key, not the deleted experiment
