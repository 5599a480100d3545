"""Run ends written in the background: order, waiting for a run, failures that do not stop it."""

from __future__ import annotations

import logging
import threading

from flowml.tracking.closer import RunCloser, drain_all


def test_ends_run_in_submission_order_and_ensure_waits_for_a_run():
    closer = RunCloser()
    gate = threading.Event()
    done: list[str] = []
    closer.submit("a", lambda: (gate.wait(10), done.append("a")))
    closer.submit("b", lambda: done.append("b"))
    assert closer.pending() == 2
    waiter = threading.Thread(target=closer.ensure, args=("b",))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # "b" waits behind "a", which waits for the gate
    gate.set()
    waiter.join(10)
    assert not waiter.is_alive()
    assert done == ["a", "b"]
    assert closer.pending() == 0


def test_a_run_ended_twice_is_settled_after_its_last_end():
    closer = RunCloser()
    gate = threading.Event()
    done: list[int] = []
    closer.submit("a", lambda: (gate.wait(10), done.append(1)))
    closer.submit("a", lambda: done.append(2))
    threading.Timer(0.1, gate.set).start()
    closer.ensure("a")
    assert done == [1, 2]


def test_a_failing_end_is_logged_and_the_next_one_still_runs(caplog):
    closer = RunCloser()
    done: list[str] = []

    def boom() -> None:
        raise RuntimeError("disk on fire")

    with caplog.at_level(logging.ERROR, logger="flowml.tracking.closer"):
        closer.submit("bad", boom)
        closer.submit("good", lambda: done.append("good"))
        drain_all()
    assert done == ["good"]
    assert "writing the end of run bad failed" in caplog.text


def test_unknown_runs_and_an_idle_closer_do_not_block():
    closer = RunCloser()
    closer.ensure("never-submitted")
    closer.ensure()
    assert closer.pending() == 0


def test_a_job_may_read_through_its_own_closer():
    # A job that reads the store through the client (which settles the run first) must
    # not wait for itself.
    closer = RunCloser()
    done: list[str] = []
    closer.submit("a", lambda: (closer.ensure("a"), closer.ensure(), done.append("a")))
    closer.ensure("a")
    assert done == ["a"]
