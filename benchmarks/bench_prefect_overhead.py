"""The cost of tracking a Prefect task: 50 tracked tasks against 50 plain ones.

One process, one Prefect test harness (a temporary local Prefect server, like Prefect's
local mode), one temporary SQLite tracking store. Each round runs, in alternation:

- ``plain``: a ``@flow`` calling 50 ``@task`` runs one after the other;
- ``tracked``: the same with ``@flowml.tracked_flow`` / ``@flowml.tracked_task``; each task
  logs its two arguments as params, its result as a metric, and ``--metrics`` more points
  through ``flowml.log_metric`` in its body.

The overhead per task is (tracked - plain) / 50 for the task loop inside the flow: the median
over the rounds of each round's difference (the two flows of a round run back to back, so
load from other processes on a shared machine hits both alike). The flow run's own cost
around its tasks (Prefect's, plus opening and closing the flow's tracked run) is reported
beside it. Store round trips are the calls into the sqlite3 driver (``execute``,
``executemany``, ``commit``), counted by a driver connection subclass: the store's hot
statements run on the DBAPI cursor, beneath SQLAlchemy's ``before_cursor_execute`` events,
so a listener there would miss them. They are counted per tracked task for two logging
volumes: the count must not grow with what a task logs. Publishing the Prefect artifacts
and ``flowml.run.*`` events happens in a background thread; the time that thread spends is reported
separately (off the task's path; the outermost flow run waits for it when it ends, so its
monitoring surface is complete when it returns).

Usage:
    python benchmarks/bench_prefect_overhead.py            # 11 rounds
    python benchmarks/bench_prefect_overhead.py --quick    # 2 rounds, a smoke run
    python benchmarks/bench_prefect_overhead.py --json --check   # exit 1 on a missed target
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TASKS = 50
TARGET_MS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    parser.add_argument("--metrics", type=int, default=200, help="extra points per task")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds

    with tempfile.TemporaryDirectory(prefix="flowml-bench-") as home:
        os.environ["FLOWML_HOME"] = home
        for var in ("FLOWML_TRACKING_URI", "FLOWML_ARTIFACT_ROOT", "FLOWML_EXPERIMENT_ID"):
            os.environ.pop(var, None)
        report = _run(rounds, args.metrics)
    report["quick"] = args.quick
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 1 if args.check and not report["passed"] else 0


def _run(rounds: int, extra_metrics: int) -> dict[str, Any]:
    _count_driver_calls()  # before the tracking store opens its first connection
    # Keep Prefect's per-task console logging out of the measurement's noise.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    import flowml
    from flowml.tasks import publisher

    logging.getLogger("prefect").setLevel(logging.WARNING)

    @task
    def plain_step(i: int, scale: float) -> dict[str, float]:
        return {"score": i * scale}

    @flow
    def plain_flow(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            plain_step(i, 0.5)
        return time.perf_counter() - start

    def make_tracked(points: int):
        @flowml.tracked_task(name="tracked-step")
        def tracked_step(i: int, scale: float) -> dict[str, float]:
            for step in range(points):
                flowml.log_metric("loss", 1.0 / (step + 1), step=step)
            return {"score": i * scale}

        @flowml.tracked_flow(name=f"tracked-flow-{points}", experiment="bench", log_result=False)
        def tracked_flow(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                tracked_step(i, 0.5)
            return time.perf_counter() - start

        return tracked_flow

    tracked_light, tracked_heavy = make_tracked(0), make_tracked(extra_metrics)

    def timed(fn: Any, n: int) -> tuple[float, float]:
        """(the task loop inside the flow, the whole flow call)."""
        start = time.perf_counter()
        inner = fn(n)
        return inner, time.perf_counter() - start

    with prefect_test_harness(server_startup_timeout=120):
        plain_flow(2)  # warm up Prefect, the store and both code paths
        tracked_light(2)
        tracked_heavy(2)
        publisher.flush()

        busy = _time_publisher(publisher)
        plain, tracked, published = [], [], []
        for _ in range(rounds):
            plain.append(timed(plain_flow, TASKS))
            busy["s"] = 0.0
            tracked.append(timed(tracked_light, TASKS))
            publisher.flush()
            published.append(busy["s"])

        # Round trips: a flow with 0 tasks gives the flow's own share; the rest is per task.
        trips: dict[str, dict[str, float]] = {}
        for label, fn in (("light", tracked_light), ("heavy", tracked_heavy)):
            flow_only = _count(lambda fn=fn: (fn(0), publisher.flush()))
            total = _count(lambda fn=fn: (fn(TASKS), publisher.flush()))
            trips[label] = {
                side: round((total[side] - flow_only[side]) / TASKS, 2) for side in total
            }
            trips[label]["flow"] = sum(flow_only.values())

    plain_ms = statistics.median(p[0] for p in plain) * 1000 / TASKS
    tracked_ms = statistics.median(t[0] for t in tracked) * 1000 / TASKS
    paired = [t[0] - p[0] for p, t in zip(plain, tracked, strict=True)]
    overhead = statistics.median(paired) * 1000 / TASKS
    # What a flow run costs around its tasks (creating and closing the flow's run).
    plain_flow_ms = statistics.median(p[1] - p[0] for p in plain) * 1000
    tracked_flow_ms = statistics.median(t[1] - t[0] for t in tracked) * 1000
    # The writes a task makes do not depend on what it logs; the buffer's one-second timer
    # may split a batch in two now and then, hence the tolerance of one call.
    bounded = abs(trips["heavy"]["foreground"] - trips["light"]["foreground"]) <= 1
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "tasks": TASKS,
        "rounds": rounds,
        "plain_ms_per_task": round(plain_ms, 3),
        "tracked_ms_per_task": round(tracked_ms, 3),
        "overhead_ms_per_task": round(overhead, 3),
        "plain_flow_ms_outside_tasks": round(plain_flow_ms, 1),
        "tracked_flow_ms_outside_tasks": round(tracked_flow_ms, 1),
        "target_ms": TARGET_MS,
        "round_trips": trips,
        "extra_metrics_heavy": extra_metrics,
        "round_trips_bounded": bounded,
        "background_publishing_ms_per_task": round(statistics.median(published) * 1000 / TASKS, 3),
        "passed": overhead <= TARGET_MS and bounded,
    }


# -- counting calls into the sqlite3 driver -------------------------------------------------

_calls = {"foreground": 0, "background": 0, "on": False}


def _tally() -> None:
    if _calls["on"]:
        # The buffer's timer and the Prefect publisher run in "flowml-*" threads.
        name = threading.current_thread().name
        _calls["background" if name.startswith("flowml-") else "foreground"] += 1


class _CountingCursor(sqlite3.Cursor):
    def execute(self, *args: Any) -> Any:
        _tally()
        return super().execute(*args)

    def executemany(self, *args: Any) -> Any:
        _tally()
        return super().executemany(*args)


class _CountingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _CountingCursor) -> Any:
        return super().cursor(factory)

    def execute(self, *args: Any) -> Any:
        _tally()
        return super().execute(*args)

    def commit(self) -> None:
        _tally()
        super().commit()


def _count_driver_calls() -> None:
    """Make every sqlite3 connection opened from now on count its calls."""
    import sqlite3.dbapi2  # what SQLAlchemy's pysqlite dialect connects through

    connect = sqlite3.dbapi2.connect

    def counting_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _CountingConnection)
        return connect(*args, **kwargs)

    sqlite3.connect = sqlite3.dbapi2.connect = counting_connect  # type: ignore[assignment]


def _time_publisher(publisher: Any) -> dict[str, float]:
    """Accumulate the time the Prefect publisher thread spends on its jobs."""
    busy = {"s": 0.0}
    worker = publisher._publisher
    run_batch = worker._run_batch

    def timed_run_batch(batch: Any) -> None:
        start = time.perf_counter()
        try:
            run_batch(batch)
        finally:
            busy["s"] += time.perf_counter() - start

    worker._run_batch = timed_run_batch
    return busy


def _count(action: Any) -> dict[str, int]:
    _calls.update(foreground=0, background=0, on=True)
    try:
        action()
    finally:
        _calls["on"] = False
    return {"foreground": _calls["foreground"], "background": _calls["background"]}


def _print(report: dict[str, Any]) -> None:
    trips = report["round_trips"]
    lines = [
        f"Prefect task tracking overhead ({report['machine']}, {report['tasks']} tasks, "
        f"median of {report['rounds']} rounds)",
        f"  plain @task            {report['plain_ms_per_task']:8.3f} ms/task",
        f"  @flowml.tracked_task   {report['tracked_ms_per_task']:8.3f} ms/task",
        f"  overhead               {report['overhead_ms_per_task']:8.3f} ms/task "
        f"(target <= {report['target_ms']} ms) "
        f"{'PASS' if report['overhead_ms_per_task'] <= report['target_ms'] else 'FAIL'}",
        f"  per flow run, outside its tasks: plain {report['plain_flow_ms_outside_tasks']:.1f} ms,"
        f" tracked {report['tracked_flow_ms_outside_tasks']:.1f} ms",
        f"  store round trips      {trips['light']['foreground']:g}/task logging 4 values, "
        f"{trips['heavy']['foreground']:g}/task logging {report['extra_metrics_heavy'] + 4} "
        f"(+{trips['light']['flow']:g} per flow run) "
        f"{'PASS' if report['round_trips_bounded'] else 'FAIL'}",
        f"                         + {trips['light']['background']:g}/task in the background "
        "(reads for the artifacts)",
        f"  background publishing  {report['background_publishing_ms_per_task']:8.3f} ms/task "
        "(2 artifacts and 2 events per run, in the publisher thread, which the outermost\n"
        "                                           flow run waits for when it ends)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
