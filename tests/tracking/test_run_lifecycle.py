"""Runs are not left RUNNING by the process that owns them: ended at interpreter exit, their
queue written on SIGTERM, and closed by ``flowml runs gc`` when the process was killed."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import RunStatus
from flowml.tracking.owner import Owner, current_owner, hostname, is_gone, parse_owner
from flowml.tracking.tags import OWNER

# A child script: never flushed by the background thread (so only the mechanism under test
# can write its queue), prints its run id when its values are queued.
PRELUDE = """
import os, signal, sys, time
import flowml.tracking.buffer as buffer
buffer.FLUSH_INTERVAL_S = 3600.0
import flowml
flowml.set_tracking_uri(os.environ["TEST_URI"])
"""


def _script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def _env(tmp_path: Path, uri: str) -> dict[str, str]:
    return {**os.environ, "TEST_URI": uri, "FLOWML_HOME": str(tmp_path / "home")}


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'life.db'}"


def _run(tmp_path: Path, uri: str, body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _script(body)],
        env=_env(tmp_path, uri),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start(tmp_path: Path, uri: str, body: str) -> tuple[subprocess.Popen[str], str]:
    """Start a child; returns it with the run id it prints once its values are queued."""
    child = subprocess.Popen(
        [sys.executable, "-c", _script(body)],
        env=_env(tmp_path, uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line, child.stderr.read() if child.stderr else "no output"
    return child, line


def test_a_script_that_forgets_end_run_finishes_its_run_at_exit(tmp_path, uri):
    out = _run(
        tmp_path,
        uri,
        """
        run = flowml.start_run()
        flowml.log_metric("acc", 0.9)
        print(run.info.run_id)
    """,
    )
    assert out.returncode == 0, out.stderr
    got = TrackingClient(uri).get_run(out.stdout.strip())
    assert got.info.status == RunStatus.FINISHED and got.info.end_time is not None
    assert got.data.metrics == {"acc": 0.9}


def test_a_script_killed_by_an_uncaught_exception_fails_its_runs(tmp_path, uri):
    out = _run(
        tmp_path,
        uri,
        """
        outer = flowml.start_run()
        inner = flowml.start_run(nested=True)
        print(outer.info.run_id, inner.info.run_id, flush=True)
        raise RuntimeError("the training diverged")
    """,
    )
    assert out.returncode == 1 and "diverged" in out.stderr
    client = TrackingClient(uri)
    assert [client.get_run(r).info.status for r in out.stdout.split()] == [RunStatus.FAILED] * 2


def test_every_run_records_the_process_that_owns_it(uri):
    client = TrackingClient(uri)
    run = client.create_run("0")
    owner = parse_owner(run.data.tags[OWNER])
    assert owner is not None and owner == parse_owner(current_owner())
    assert (owner.host, owner.pid) == (hostname(), os.getpid())
    assert is_gone(owner) is False


def test_a_reused_pid_is_not_mistaken_for_the_owner(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(f"/proc/{child.pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        assert is_gone(Owner(hostname(), child.pid, start)) is False
        assert is_gone(Owner(hostname(), child.pid, str(int(start) - 1))) is True
        assert is_gone(Owner("another-host", child.pid, start)) is None
    finally:
        child.kill()
        child.wait()
    assert is_gone(Owner(hostname(), child.pid, start)) is True


def test_gc_closes_the_run_of_a_script_killed_with_sigkill(tmp_path, uri):
    child, run_id = _start(
        tmp_path,
        uri,
        """
        run = flowml.start_run()
        flowml.log_metric("loss", 0.25)
        flowml.flush()
        print(run.info.run_id, flush=True)
        time.sleep(120)
    """,
    )
    client = TrackingClient(uri)
    live = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "runs", "gc", "-o", "json"],
        env={**_env(tmp_path, uri), "FLOWML_TRACKING_URI": uri},
        capture_output=True,
        text=True,
    )
    assert json.loads(live.stdout) == []  # its process is alive: left alone
    child.kill()
    child.wait()
    assert client.get_run(run_id).info.status == RunStatus.RUNNING
    out = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "runs", "gc", "-o", "json"],
        env={**_env(tmp_path, uri), "FLOWML_TRACKING_URI": uri},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    [collected] = json.loads(out.stdout)
    assert collected["run_id"] == run_id and collected["status"] == RunStatus.KILLED
    assert f"process {child.pid} is gone" in collected["reason"]
    got = client.get_run(run_id)
    assert got.info.status == RunStatus.KILLED and got.data.metrics == {"loss": 0.25}


def test_sigterm_writes_the_queue_and_ends_the_run_killed(tmp_path, uri):
    child, run_id = _start(
        tmp_path,
        uri,
        """
        run = flowml.start_run()
        for i in range(20):
            flowml.log_metric("loss", 1 / (i + 1), step=i)
        print(run.info.run_id, flush=True)
        time.sleep(120)
    """,
    )
    child.send_signal(signal.SIGTERM)
    assert child.wait(60) == -signal.SIGTERM  # it still dies of SIGTERM
    client = TrackingClient(uri)
    assert len(client.get_metric_history(run_id, "loss")) == 20
    assert client.get_run(run_id).info.status == RunStatus.KILLED


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_flowmls_threads_leave_process_signals_to_the_main_thread(tmp_path, uri):
    """The kernel gives a process-wide signal to any thread not blocking it, and Python acts on
    it only in the main thread: every thread flowml starts blocks SIGINT and SIGTERM."""
    out = _run(
        tmp_path,
        uri,
        """
        import threading
        run = flowml.start_run()
        flowml.log_metric("m", 1.0)  # the buffer's thread
        flowml.end_run()
        with flowml.start_run():  # a trace's writer thread
            with flowml.start_span("s"):
                pass
        for thread in threading.enumerate():
            if thread.name.startswith("flowml-"):
                status = open(f"/proc/self/task/{thread.native_id}/status").read()
                mask = int(status.split("SigBlk:")[1].split()[0], 16)
                blocked = [bool(mask & 1 << (s - 1)) for s in (signal.SIGINT, signal.SIGTERM)]
                print(thread.name, *blocked)
        # The thread that started them still takes both.
        print("main", *[s in signal.pthread_sigmask(signal.SIG_BLOCK, []) for s in (2, 15)])
    """,
    )
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    names = {name for name, *_ in lines}
    assert {"flowml-buffer", "flowml-trace-writer", "main"} <= names, out.stdout
    for name, *blocked in lines:
        assert blocked == (["False", "False"] if name == "main" else ["True", "True"]), name


def test_sigterm_stops_a_process_whose_main_thread_waits_on_a_process_lock(tmp_path, uri):
    """A pool worker waiting on its queue's lock while the buffer's thread lives (how
    ``Pool.terminate`` finds its workers): SIGTERM still writes the queue and stops it."""
    child, run_id = _start(
        tmp_path,
        uri,
        """
        import multiprocessing
        run = flowml.start_run()
        flowml.log_metric("loss", 0.5)
        lock = multiprocessing.Lock()
        lock.acquire()
        print(run.info.run_id, flush=True)
        lock.acquire()  # never released
    """,
    )
    time.sleep(0.5)  # well inside the second acquire
    child.send_signal(signal.SIGTERM)
    assert child.wait(60) == -signal.SIGTERM
    got = TrackingClient(uri).get_run(run_id)
    assert got.info.status == RunStatus.KILLED and got.data.metrics == {"loss": 0.5}


def _log_in_pool_worker(uri: str) -> str:
    import flowml
    from flowml.tracking import signals

    flowml.set_tracking_uri(uri)
    with flowml.start_run():
        flowml.log_metric("m", 1.0)  # queued: a main process would install the handler here
    return f"{signal.getsignal(signal.SIGTERM)!r} {signals._installed}"


def test_a_multiprocessing_child_keeps_sigterms_default_action(tmp_path, uri):
    """``Pool.terminate`` stops its workers with SIGTERM wherever they are; a Python handler
    can miss a signal that comes just before the worker blocks on the queue's lock."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        seen = pool.apply(_log_in_pool_worker, (uri,))
    assert seen == "<Handlers.SIG_DFL: 0> False"
    assert TrackingClient(uri).search_runs(["0"])[0].data.metrics == {"m": 1.0}


def test_sigterm_chains_to_the_handler_the_script_installed(tmp_path, uri):
    marker = tmp_path / "handled"
    child, run_id = _start(
        tmp_path,
        uri,
        f"""
        def on_term(signum, frame):
            open({str(marker)!r}, "w").write("mine")
            sys.exit(3)
        signal.signal(signal.SIGTERM, on_term)
        run = flowml.start_run()
        flowml.log_param("lr", "0.1")
        print(run.info.run_id, flush=True)
        time.sleep(120)
    """,
    )
    child.send_signal(signal.SIGTERM)
    assert child.wait(60) == 3
    assert marker.read_text() == "mine"
    got = TrackingClient(uri).get_run(run_id)
    assert got.data.params == {"lr": "0.1"} and got.info.status == RunStatus.KILLED


def test_prefects_sigterm_handler_is_never_replaced(tmp_path, uri):
    out = _run(
        tmp_path,
        uri,
        """
        from prefect.utilities.engine import capture_sigterm, is_prefect_sigterm_handler_installed
        from flowml.tracking import signals
        with capture_sigterm():
            run = flowml.start_run()  # logging inside a Prefect flow run
            flowml.log_metric("m", 1.0)
            print(is_prefect_sigterm_handler_installed(), signals._installed)
            flowml.end_run()
        flowml.start_run()  # outside: the default action is there again, chained
        print(signals._installed, signal.getsignal(signal.SIGTERM) is signals._on_sigterm)
    """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "True", "True"]
