"""One test's active runs never reach the next test (the autouse fixture in conftest.py).

The fluent run stack is a ContextVar, and pytest runs every synchronous test in the same
context: without the reset, a test that fails (or forgets ``end_run``) inside
``start_run`` leaves its run active, and every later test's ``start_run`` then fails with
"already active" and its ``log_*`` calls write into a dead test's store. The two tests
below run in file order: the first leaves runs active on purpose, the second checks that
it starts clean.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import flowml
from flowml.tracking import fluent

_left_behind: list[str] = []


def test_a_test_that_leaves_runs_active() -> None:
    outer = flowml.start_run()
    inner = flowml.start_run(nested=True)
    flowml.log_metric("loss", 0.5)  # queued, never flushed by this test
    assert flowml.active_run() is inner
    _left_behind.extend([outer.info.run_id, inner.info.run_id])


def test_the_next_test_starts_with_no_active_run() -> None:
    assert flowml.active_run() is None
    assert fluent._run_stack.get() == ()
    assert not fluent._open_runs
    # A new run is not nested under the leftover and goes to this test's own store.
    with flowml.start_run() as run:
        flowml.log_metric("acc", 1.0)
    got = flowml.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics == {"acc": 1.0}
    assert "mlflow.parentRunId" not in got.data.tags
    assert run.info.run_id not in _left_behind
    if _left_behind:  # the first test ran before this one: its runs are unknown here
        for run_id in _left_behind:
            assert not flowml.search_runs(filter_string=f"attributes.run_id = '{run_id}'")


_INNER_TESTS = """
import flowml


def test_fails_with_runs_active():
    flowml.start_run()
    flowml.start_run(nested=True)
    flowml.log_metric("loss", 0.5)
    assert False, "fails with two runs active"


def test_next():
    assert flowml.active_run() is None
    with flowml.start_run() as run:
        flowml.log_metric("acc", 1.0)
    assert flowml.get_run(run.info.run_id).data.metrics == {"acc": 1.0}
"""


def test_a_failing_test_with_runs_active_does_not_break_the_next(tmp_path: Path) -> None:
    """The same with a test that fails, in a pytest session of its own using this suite's
    conftest: the failure stays the first test's."""
    for helper in ("conftest.py", "subprocess_helpers.py"):  # the conftest imports the other
        shutil.copy(Path(__file__).with_name(helper), tmp_path / helper)
    (tmp_path / "test_inner.py").write_text(_INNER_TESTS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert "fails with two runs active" in done.stdout
