"""A task run's end described without a store read: the run as opened plus what its end
wrote equals the run the store then holds, and the buffer tells when that would not hold."""

from __future__ import annotations

from pathlib import Path

from flowml.tasks.snapshot import ended_run, remember_name, run_name_of
from flowml.tracking.buffer import BatchBuffer
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.store.sql import SqlStore


def _store(tmp_path: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))


def test_the_ended_run_is_the_run_the_store_holds(tmp_path: Path):
    store = _store(tmp_path)
    opened = store.create_run("0", "me", start_time=1, tags=[RunTag("kind", "task")])
    metrics = [
        Metric("loss", 0.5, 30, 2),
        Metric("loss", 0.9, 40, 1),  # a lower step, later: not the latest
        Metric("acc", 0.1, 10, 0),
        Metric("acc", 0.2, 10, 0),  # same step and time: the later one wins
        Metric("nan", float("nan"), 5, 0),
    ]
    params = [Param("lr", "0.1")]
    tags = [RunTag("phase", "done"), RunTag("kind", "task-2")]
    store.finish_run(
        opened.info.run_id, RunStatus.FINISHED, 99, metrics=metrics, params=params, tags=tags
    )
    stored = store.get_run(opened.info.run_id)
    built = ended_run(opened, RunStatus.FINISHED, 99, metrics, params, tags)
    assert built.info == stored.info
    assert built.data.params == stored.data.params
    assert built.data.tags == stored.data.tags
    assert {k: v for k, v in built.data.metrics.items() if k != "nan"} == {
        "loss": 0.5,
        "acc": 0.2,
    }
    assert stored.data.metrics["loss"] == 0.5 and stored.data.metrics["acc"] == 0.2
    # A run read back with its points (a retry's): a new value at a lower step is not latest.
    again = ended_run(stored, RunStatus.FINISHED, 100, [Metric("loss", 7.0, 50, 0)], [], [])
    assert again.data.metrics["loss"] == stored.data.metrics["loss"]


def test_the_buffer_tells_whether_anything_of_a_watched_run_was_written(tmp_path: Path):
    store = _store(tmp_path)
    buffer = BatchBuffer(store, flush_interval=3600)
    quiet, flushed, direct = (store.create_run("0", "me").info.run_id for _ in range(3))
    for run_id in (quiet, flushed, direct):
        buffer.watch(run_id)
    for run_id in (quiet, flushed):
        buffer.add(run_id, params=[Param("p", "1")])
    buffer.flush(flushed)  # its values were written before its end
    buffer.flush(direct)  # what a synchronous write of the client does first, even empty
    assert buffer.take(quiet)[1] == [Param("p", "1")]
    assert buffer.unwatch(quiet) is True
    assert buffer.unwatch(flushed) is False
    assert buffer.unwatch(direct) is False
    assert buffer.unwatch(quiet) is False  # no longer watched: nothing is known
    buffer.close()


def test_names_of_ended_task_runs_are_remembered():
    remember_name("prefect-task-run://abc", "train-1")
    assert run_name_of("prefect-task-run://abc") == "train-1"
    assert run_name_of("prefect-task-run://unknown") is None
