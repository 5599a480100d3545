"""Many runs' ends in one round trip (`sql_ends.finish_runs`), and the closer writing its
queued ends that way: all of a batch or nothing, and each end alone when the batch is refused."""

from __future__ import annotations

import threading
import time

import pytest

from flowml.exceptions import InvalidParameter
from flowml.tracking.closer import BatchedEnd, RunCloser
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.lineage import INPUT, LineageEntry
from flowml.tracking.store.sql import SqlStore
from flowml.tracking.store.sql_ends import BatchRefused, RunEnd, can_batch, finish_runs


def _end(run_id: str, i: int, **changes: object) -> RunEnd:
    end = RunEnd(
        run_id,
        RunStatus.FINISHED,
        1_000 + i,
        metrics=[Metric("score", float(i), 10, 0), Metric("score", 2.0 * i, 20, 1)],
        params=[Param("i", str(i)), Param("scale", "0.5")],
        tags=[RunTag("phase", "done")],
        lineage=[LineageEntry(INPUT, "dataset", f"file:///data/{i}.csv")],
    )
    for key, value in changes.items():
        setattr(end, key, value)
    return end


def test_a_batch_of_ends_and_creations_is_written_in_one_unit(sql_store: SqlStore):
    assert can_batch(sql_store)
    opened = sql_store.create_run("0", "me", start_time=1).info.run_id
    # Two runs opened without waiting: their creation goes with their end.
    prepared = [
        sql_store.prepare_run("0", "/tmp/art", "me", [RunTag("t", str(i))], f"new-{i}")
        for i in range(2)
    ]
    ids = [opened, *(p.run.info.run_id for p in prepared)]
    ends = [_end(ids[0], 0), *(_end(ids[i], i, opens=[prepared[i - 1]]) for i in (1, 2))]
    finish_runs(sql_store, ends)
    for i, run_id in enumerate(ids):
        run = sql_store.get_run(run_id)
        assert run.info.status == RunStatus.FINISHED
        assert run.info.end_time == 1_000 + i
        assert run.data.params == {"i": str(i), "scale": "0.5"}
        assert run.data.metrics == {"score": 2.0 * i}  # the highest step is the latest
        assert run.data.tags["phase"] == "done"
        assert [m.value for m in sql_store.get_metric_history(run_id, "score")] == [i, 2.0 * i]
        assert [e.uri for e in sql_store.search_lineage(run_ids=[run_id])] == [
            f"file:///data/{i}.csv"
        ]
    assert sql_store.get_run(ids[1]).data.tags["t"] == "0"


def test_one_refused_end_leaves_the_whole_batch_unwritten(sql_store: SqlStore):
    ids = [sql_store.create_run("0", "me", start_time=1).info.run_id for _ in range(3)]
    sql_store.log_batch(ids[1], params=[Param("i", "already something else")])
    sql_store.delete_run(ids[2])
    for refused in (
        [_end(ids[0], 0), _end(ids[1], 1)],  # a write-once param changed
        [_end(ids[0], 0), _end(ids[2], 2)],  # a deleted run
        [_end(ids[0], 0), _end("f" * 32, 3)],  # a run that does not exist
    ):
        with pytest.raises(BatchRefused):
            finish_runs(sql_store, refused)
        run = sql_store.get_run(ids[0])
        assert run.info.status == RunStatus.RUNNING and not run.data.params
    with pytest.raises(InvalidParameter):
        finish_runs(sql_store, [_end(ids[0], 0, status="DONE-ISH")])
    assert sql_store.get_run(ids[0]).info.status == RunStatus.RUNNING


def test_the_closer_batches_queued_ends_and_writes_each_alone_when_refused(sql_store: SqlStore):
    closer = RunCloser()
    ids = [sql_store.create_run("0", "me", start_time=1).info.run_id for _ in range(4)]
    sql_store.log_batch(ids[3], params=[Param("i", "taken")])
    gate = threading.Event()
    calls: dict[str, list[str]] = {run_id: [] for run_id in ids}

    def job(i: int, run_id: str) -> BatchedEnd:
        def alone() -> None:
            calls[run_id].append("alone")
            try:
                sql_store.finish_run(run_id, RunStatus.FINISHED, 1_000 + i)
            except InvalidParameter:
                pass

        return BatchedEnd(
            sql_store,
            lambda: _end(run_id, i),
            lambda end: calls[run_id].append("batched"),
            alone,
        )

    closer.submit("gate", lambda: gate.wait(10))  # the ends queue up behind it
    for i, run_id in enumerate(ids[:3]):
        closer.submit(run_id, job(i, run_id))
    gate.set()
    closer.ensure()
    assert [calls[r] for r in ids[:3]] == [["batched"]] * 3
    assert {sql_store.get_run(r).info.status for r in ids[:3]} == {RunStatus.FINISHED}
    assert sql_store.get_run(ids[0]).data.params == {"i": "0", "scale": "0.5"}

    # A batch holding a refused end: nothing of it is written at once, every end alone.
    more = [sql_store.create_run("0", "me", start_time=1).info.run_id for _ in range(2)]
    calls.update({r: [] for r in more})
    gate.clear()
    closer.submit("gate", lambda: gate.wait(10))
    closer.submit(more[0], job(0, more[0]))
    closer.submit(ids[3], job(3, ids[3]))
    closer.submit(more[1], job(1, more[1]))
    gate.set()
    closer.ensure()
    assert [calls[r] for r in (more[0], ids[3], more[1])] == [["alone"]] * 3
    assert sql_store.get_run(more[0]).info.status == RunStatus.FINISHED
    assert sql_store.get_run(more[1]).info.status == RunStatus.FINISHED


def test_ends_queued_while_a_write_is_under_way_wait_to_be_batched(
    sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
):
    from flowml.tracking import closer as closer_module

    monkeypatch.setattr(closer_module, "CLOSE_LINGER_S", 1.0)
    closer = RunCloser()
    ids = [sql_store.create_run("0", "me", start_time=1).info.run_id for _ in range(2)]
    calls: dict[str, list[str]] = {run_id: [] for run_id in ids}
    writing, release = threading.Event(), threading.Event()

    def job(i: int, run_id: str) -> BatchedEnd:
        def alone() -> None:
            calls[run_id].append("alone")
            sql_store.finish_run(run_id, RunStatus.FINISHED, 1_000 + i)

        return BatchedEnd(
            sql_store, lambda: _end(run_id, i), lambda end: calls[run_id].append("batched"), alone
        )

    closer.submit("slow", lambda: (writing.set(), release.wait(10)))
    assert writing.wait(10)
    closer.submit(ids[0], job(0, ids[0]))  # arrives while the slow write is under way
    release.set()
    time.sleep(0.05)
    closer.submit(ids[1], job(1, ids[1]))  # a moment after it ended: within the linger
    closer.ensure()
    assert calls == {ids[0]: ["batched"], ids[1]: ["batched"]}  # one batch, not two ends alone
    assert {sql_store.get_run(r).info.status for r in ids} == {RunStatus.FINISHED}


def test_ends_someone_waits_for_are_written_without_lingering(monkeypatch: pytest.MonkeyPatch):
    from flowml.tracking import closer as closer_module

    monkeypatch.setattr(closer_module, "CLOSE_LINGER_S", 30.0)
    closer = RunCloser()
    writing, release, written = threading.Event(), threading.Event(), threading.Event()
    closer.submit("slow", lambda: (writing.set(), release.wait(10)))
    waiter = threading.Thread(target=closer.ensure)  # every end: it cuts the linger short
    waiter.start()
    assert writing.wait(10)
    closer.submit("next", written.set)  # queued while the slow one is being written
    release.set()
    waiter.join(10)  # not the 30 s linger: someone is still waiting
    assert not waiter.is_alive() and written.is_set()
