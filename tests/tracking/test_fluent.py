"""The fluent API: run stack in contextvars, statuses, buffering and env-provided runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import flowml
from flowml.exceptions import FlowMLError, InvalidParameter, InvalidState
from flowml.tracking import fluent
from flowml.tracking.client import TrackingClient
from flowml.tracking.tags import GIT_COMMIT, PARENT_RUN_ID, SOURCE_NAME, USER


def test_start_run_context_manager_statuses():
    with flowml.start_run(run_name="ok") as run:
        assert flowml.active_run() is run
        flowml.log_param("lr", 0.01)
        flowml.log_metric("acc", 0.9)
    got = flowml.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.data.params == {"lr": "0.01"} and got.data.metrics == {"acc": 0.9}
    assert flowml.active_run() is None

    with pytest.raises(RuntimeError):
        with flowml.start_run() as failing:
            raise RuntimeError("boom")
    assert flowml.get_run(failing.info.run_id).info.status == "FAILED"

    with pytest.raises(KeyboardInterrupt):
        with flowml.start_run() as killed:
            raise KeyboardInterrupt
    assert flowml.get_run(killed.info.run_id).info.status == "KILLED"


def test_system_tags_and_description():
    with flowml.start_run(description="first try", tags={"team": "ml"}) as run:
        pass
    tags = flowml.get_run(run.info.run_id).data.tags
    assert tags[USER] and tags[SOURCE_NAME] and tags["team"] == "ml"
    assert tags["mlflow.note.content"] == "first try"
    assert GIT_COMMIT not in tags or len(tags[GIT_COMMIT]) == 40


def test_nested_runs_need_nested_flag():
    with flowml.start_run() as parent:
        with pytest.raises(InvalidState, match="nested=True"):
            flowml.start_run()
        with flowml.start_run(nested=True) as child:
            assert flowml.active_run() is child
        assert flowml.active_run() is parent
    assert flowml.get_run(child.info.run_id).data.tags[PARENT_RUN_ID] == parent.info.run_id


def test_end_run_with_status():
    run = flowml.start_run()
    flowml.log_metric("m", 1)
    flowml.end_run("KILLED")
    assert flowml.get_run(run.info.run_id).info.status == "KILLED"
    assert flowml.active_run() is None


def test_each_thread_has_its_own_run_stack():
    results: dict[str, str] = {}
    barrier = threading.Barrier(4)

    def work(name: str) -> None:
        with flowml.start_run(run_name=name) as run:
            barrier.wait()  # all four runs active at once
            for step in range(50):
                flowml.log_metric("owner", float(len(name)), step=step)
                flowml.set_tag("thread", name)
            results[name] = run.info.run_id

    threads = [threading.Thread(target=work, args=(f"t{'x' * i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, rid in results.items():
        run = flowml.get_run(rid)
        assert run.data.tags["thread"] == name and run.info.run_name == name
        assert {m.value for m in flowml.get_metric_history(rid, "owner")} == {float(len(name))}
        assert PARENT_RUN_ID not in run.data.tags


def test_each_asyncio_task_has_its_own_run_stack():
    async def work(name: str) -> str:
        with flowml.start_run(run_name=name) as run:
            await asyncio.sleep(0.01)
            assert flowml.active_run() is run
            flowml.set_tag("task", name)
            await asyncio.sleep(0.01)
            return run.info.run_id

    async def main() -> list[str]:
        return await asyncio.gather(*(work(f"a{i}") for i in range(5)))

    ids = asyncio.run(main())
    assert [flowml.get_run(r).data.tags["task"] for r in ids] == [f"a{i}" for i in range(5)]


def test_invalid_values_fail_at_the_call_site():
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter):
            flowml.log_metric("bad key!", 1.0)
        with pytest.raises(InvalidParameter):
            flowml.log_param("p", "x" * 6001)
        flowml.log_param("lr", 1)
        with pytest.raises(InvalidParameter, match="write-once"):
            flowml.log_param("lr", 2)
    assert flowml.get_run(run.info.run_id).data.params == {"lr": "1"}


def test_reads_see_pending_writes():
    with flowml.start_run() as run:
        flowml.log_metric("m", 3.0)
        assert fluent.get_client().buffer.has_pending(run.info.run_id)
        assert flowml.get_run(run.info.run_id).data.metrics == {"m": 3.0}
        assert [m.value for m in flowml.get_metric_history(run.info.run_id, "m")] == [3.0]


def test_buffer_flushes_when_a_batch_fills():
    with flowml.start_run() as run:
        rid = run.info.run_id
        for i in range(1000):
            flowml.log_metric("m", float(i), step=i)
        client = fluent.get_client()
        assert not client.buffer.has_pending(rid)
        assert len(client.store.get_metric_history(rid, "m")) == 1000


def test_background_flush_writes_within_seconds():
    with flowml.start_run() as run:
        flowml.log_metric("m", 1.0)
        other = TrackingClient()  # a different client reads only what is in the database
        deadline = time.monotonic() + 10
        while not other.store.get_metric_history(run.info.run_id, "m"):
            assert time.monotonic() < deadline, "queued metric never reached the database"
            time.sleep(0.05)


def test_failed_background_write_is_raised_at_the_next_call():
    with flowml.start_run() as run:
        rid = run.info.run_id
        TrackingClient().log_param(rid, "lr", "0.1")  # written directly by someone else
        flowml.log_param("lr", "0.2")  # queued: conflicts only in the database
        flowml.log_metric("kept", 1.0)
        with pytest.raises(FlowMLError, match="write-once") as info:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                flowml.log_metric("later", 1.0)
                time.sleep(0.05)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
        assert info.value.lost == 1
    # only the refused param was dropped: the metric queued with it was written
    assert [m.value for m in TrackingClient().get_metric_history(rid, "kept")] == [1.0]
    assert flowml.get_run(rid).data.params == {"lr": "0.1"}


def test_failed_write_is_raised_at_end_run():
    run = flowml.start_run()
    TrackingClient().log_param(run.info.run_id, "lr", "0.1")
    flowml.log_param("lr", "0.2")
    flowml.log_metric("m", 1.0)
    with pytest.raises(FlowMLError, match="write-once"):
        flowml.end_run()
    # the run is not left RUNNING: it ended FAILED, saying which values were lost
    ended = TrackingClient().get_run(run.info.run_id)
    assert ended.info.status == "FAILED" and ended.info.end_time is not None
    assert "'lr'" in ended.data.tags["flowml.tracking_error"]
    assert ended.data.metrics == {"m": 1.0}


def test_queued_writes_are_flushed_at_interpreter_exit(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'exit.db'}"
    script = (
        "import flowml\n"
        f"flowml.set_tracking_uri({uri!r})\n"
        "run = flowml.start_run()\n"
        "for i in range(10): flowml.log_metric('m', float(i), step=i)\n"
        "print(run.info.run_id)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    rid = out.stdout.strip()
    assert len(TrackingClient(uri).get_metric_history(rid, "m")) == 10


def test_logging_without_a_run_uses_FLOWML_RUN_ID(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    uri = f"sqlite:///{tmp_path / 'env.db'}"
    run = TrackingClient(uri).create_run("0", run_name="from-parent")
    env = {"FLOWML_TRACKING_URI": uri, "FLOWML_RUN_ID": run.info.run_id, "PATH": ""}
    script = "import flowml\nflowml.log_metric('child', 7.0)\nflowml.log_param('p', 'v')\n"
    subprocess.run(
        [sys.executable, "-c", script], env={**env, "FLOWML_HOME": str(tmp_path)}, check=True
    )
    got = TrackingClient(uri).get_run(run.info.run_id)
    assert got.data.metrics == {"child": 7.0} and got.data.params == {"p": "v"}


def test_set_experiment_creates_and_selects():
    exp = flowml.set_experiment("fluent-exp")
    with flowml.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    assert flowml.set_experiment("fluent-exp").experiment_id == exp.experiment_id
    fluent.get_client().delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidState, match="restore"):
        flowml.set_experiment("fluent-exp")
    with pytest.raises(InvalidParameter):
        flowml.set_experiment()


def test_search_runs_list_and_pandas():
    flowml.set_experiment("search-fluent")
    for i in range(3):
        with flowml.start_run(run_name=f"r{i}"):
            flowml.log_metric("acc", i / 10)
            flowml.log_param("i", i)
    runs = flowml.search_runs(filter_string="metrics.acc >= 0.1", order_by=["metrics.acc DESC"])
    assert [r.info.run_name for r in runs] == ["r2", "r1"]
    frame = flowml.search_runs(
        filter_string="params.i = '0' or params.i = '2'", output="pandas", order_by=["params.i"]
    )
    assert list(frame["params.i"]) == ["0", "2"]
    assert {"run_id", "status", "metrics.acc", "tags.mlflow.runName"} <= set(frame.columns)
    with pytest.raises(InvalidParameter):
        flowml.search_runs(output="xml")


def test_tracking_uri_round_trip(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    flowml.set_tracking_uri(uri)
    assert flowml.get_tracking_uri() == uri
    with flowml.start_run() as run:
        pass
    assert TrackingClient(uri).get_run(run.info.run_id).info.status == "FINISHED"
    flowml.set_tracking_uri(None)
    assert flowml.get_tracking_uri().endswith("flowml.db")


def test_unknown_store_scheme_names_the_known_ones():
    with pytest.raises(InvalidParameter, match="postgresql://, sqlite://"):
        _ = TrackingClient("mongodb://localhost/x").store
