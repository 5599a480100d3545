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
separately (off the task's path: no flow waits for it).

With ``--server`` the same comparison runs where it matters most: a real ``prefect server``
subprocess backed by PostgreSQL (see ``_prefect_server.py``) and tracking on PostgreSQL (a
fresh schema; ``--store sqlite`` keeps a SQLite file instead). Round trips are then the
requests psycopg waits on (``Connection.wait``: one per statement, commit or pipeline sync)
and the HTTP requests to the Prefect API (plain vs tracked, per task). It also times one long
flow (``--long`` tasks, default 500) plain vs tracked, whole flow call against whole flow call,
and then the same flow in a process of its own: the seconds from its return to the process's
end (what is still queued is handed to flowml's outbox process there, `flowml.tasks.outbox`).

Usage:
    python benchmarks/bench_prefect_overhead.py            # 11 rounds
    python benchmarks/bench_prefect_overhead.py --quick    # 2 rounds, a smoke run
    python benchmarks/bench_prefect_overhead.py --json --check   # exit 1 on a missed target
    python benchmarks/bench_prefect_overhead.py --server   # real server, PostgreSQL tracking
    python benchmarks/bench_prefect_overhead.py --server --tasks 200 --long-rounds 1

MLflow used by hand inside Prefect on the same setup: ``bench_prefect_vs_mlflow.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
LONG_TASKS = 500
LONG_ROUNDS = 3
LONG_TARGET_RATIO = 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    parser.add_argument("--metrics", type=int, default=200, help="extra points per task")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--server", action="store_true", help="a real prefect server on PostgreSQL")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        help="tracking store (default: sqlite, postgresql with --server)",
    )
    parser.add_argument("--long", type=int, help="tasks of the long flow (0: skip)")
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks per paired round")
    parser.add_argument("--long-rounds", type=int, default=LONG_ROUNDS, help="long flow rounds")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    store = args.store or ("postgresql" if args.server else "sqlite")
    long_tasks = args.long if args.long is not None else (0 if args.quick else LONG_TASKS)

    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="flowml-bench-"))
        os.environ["FLOWML_HOME"] = home
        for var in ("FLOWML_TRACKING_URI", "FLOWML_ARTIFACT_ROOT", "FLOWML_EXPERIMENT_ID"):
            os.environ.pop(var, None)
        if args.server or store == "postgresql":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import _prefect_server

            if store == "postgresql":
                os.environ["FLOWML_TRACKING_URI"] = stack.enter_context(
                    _prefect_server.postgres_schema()
                )
            if args.server:
                # Before Prefect is imported: its settings are read then.
                os.environ["PREFECT_API_URL"] = stack.enter_context(
                    _prefect_server.prefect_server()
                )
        report = _run(rounds, args.metrics, args.server, long_tasks, args.tasks, args.long_rounds)
    report["quick"] = args.quick
    report["server"] = args.server
    report["store"] = store
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 1 if args.check and not report["passed"] else 0


def _run(
    rounds: int,
    extra_metrics: int,
    server: bool,
    long_tasks: int,
    tasks: int = TASKS,
    long_rounds: int = LONG_ROUNDS,
) -> dict[str, Any]:
    global TASKS, LONG_ROUNDS
    TASKS, LONG_ROUNDS = tasks, long_rounds
    _count_driver_calls()  # before the tracking store opens its first connection
    _count_http_requests()
    from _prefect_baseline import plain_flow as baseline

    plain_flow = baseline()
    from prefect.testing.utilities import prefect_test_harness

    import flowml
    from flowml.tasks import publisher

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

    harness = (
        contextlib.nullcontext() if server else prefect_test_harness(server_startup_timeout=120)
    )
    with harness:
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
        http = _http_per_task(plain_flow, tracked_light, publisher)
        long_flow = _long_flow(plain_flow, tracked_light, publisher, long_tasks)
        if long_flow and server:
            long_flow["exit"] = _exit_after_return(long_tasks)

    plain_ms = statistics.median(p[0] for p in plain) * 1000 / TASKS
    tracked_ms = statistics.median(t[0] for t in tracked) * 1000 / TASKS
    paired = [t[0] - p[0] for p, t in zip(plain, tracked, strict=True)]
    overhead = statistics.median(paired) * 1000 / TASKS
    # What a flow run costs around its tasks (creating and closing the flow's run).
    plain_flow_ms = statistics.median(p[1] - p[0] for p in plain) * 1000
    tracked_flow_ms = statistics.median(t[1] - t[0] for t in tracked) * 1000
    # The writes a task makes do not depend on what it logs; the buffer's one-second timer
    # may split a batch in two now and then, hence the tolerance of one call.
    writes = {label: trips[label]["foreground"] + trips[label]["deferred"] for label in trips}
    bounded = abs(writes["heavy"] - writes["light"]) <= 1
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
        "http_requests_per_task": http,
        "long_flow": long_flow,
        "passed": overhead <= TARGET_MS
        and bounded
        and (not long_flow or long_flow["ratio"] <= LONG_TARGET_RATIO),
    }


def _http_per_task(plain_flow: Any, tracked_flow: Any, publisher: Any) -> dict[str, float]:
    """HTTP requests to the Prefect API per task: plain, tracked, and tracked counting the
    background publisher's (artifacts), each net of a flow run without tasks."""

    def per_task(fn: Any, wait: bool) -> dict[str, float]:
        def call(n: int) -> None:
            fn(n)
            if wait:
                publisher.flush()

        base = _count_http(lambda: call(0))
        total = _count_http(lambda: call(TASKS))
        return {side: (total[side] - base[side]) / TASKS for side in total}

    plain = per_task(plain_flow, False)
    tracked = per_task(tracked_flow, True)
    return {
        "plain": round(plain["foreground"] + plain["background"], 2),
        "tracked_on_task_path": round(tracked["foreground"], 2),
        "tracked_in_publisher": round(tracked["background"], 2),
    }


def _long_flow(plain_flow: Any, tracked_flow: Any, publisher: Any, n: int) -> dict[str, Any]:
    """One long flow, plain vs tracked, whole flow calls (what the caller waits for: every
    run written, publication bounded by the flow's short wait); paired rounds, the median
    ratio. The time the publisher then takes to send the rest (in the background, before
    the process exits) is reported beside it."""
    if n <= 0:
        return {}
    ratios, plain_s, tracked_s, publishing_s = [], [], [], []
    for _ in range(LONG_ROUNDS):
        start = time.perf_counter()
        plain_flow(n)
        plain_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        tracked_flow(n)
        tracked_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        publisher.flush()
        publishing_s.append(time.perf_counter() - start)
        ratios.append(tracked_s[-1] / plain_s[-1])
    return {
        "tasks": n,
        "rounds": LONG_ROUNDS,
        "plain_s": round(statistics.median(plain_s), 2),
        "tracked_s": round(statistics.median(tracked_s), 2),
        "publishing_after_return_s": round(statistics.median(publishing_s), 2),
        "ratio": round(statistics.median(ratios), 3),
        "target_ratio": LONG_TARGET_RATIO,
    }


def _exit_after_return(n: int) -> dict[str, float]:
    """Seconds from a long flow's return to its process's end, plain vs tracked, each in a
    process of its own (`_exit_worker.py`), and how long the outbox process then took."""
    import subprocess

    here = Path(__file__).resolve().parent
    found: dict[str, float] = {}
    for side in ("plain", "tracked"):
        with tempfile.TemporaryDirectory(prefix="flowml-exit-") as home:
            env = {
                **os.environ,
                "FLOWML_HOME": home,
                "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)]),
            }
            proc = subprocess.Popen(
                [sys.executable, str(here / "_exit_worker.py"), side, str(n)],
                env=env,
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stderr is not None
            returned = None
            for line in proc.stderr:
                if line.strip() == "returned":
                    returned = time.perf_counter()
            proc.wait()
            if returned is None:
                raise RuntimeError(f"the {side} exit worker failed ({proc.returncode})")
            found[f"{side}_s"] = round(time.perf_counter() - returned, 2)
            outbox = Path(home) / "outbox"
            while outbox.is_dir() and any(outbox.glob("*.jsonl")):
                time.sleep(0.2)  # published by the detached process (bounded by the server)
            found[f"{side}_published_s"] = round(time.perf_counter() - returned, 2)
    return found


# -- counting calls into the sqlite3 driver -------------------------------------------------

_calls = {"foreground": 0, "deferred": 0, "background": 0, "on": False}


def _side() -> str:
    """Whose call this is: the task's path ("foreground"), flowml's writer threads (the
    run closer, opener and buffer timer: "deferred") or the Prefect publisher ("background")."""
    name = threading.current_thread().name
    if name == "flowml-prefect-publisher":
        return "background"
    return "deferred" if name.startswith("flowml-") else "foreground"


def _tally() -> None:
    if _calls["on"]:
        _calls[_side()] += 1


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
    _count_driver_calls_pg()


def _count_driver_calls_pg() -> None:
    """Count the server answers psycopg waits for: each statement, commit or pipeline sync
    whose result is not there yet asks ``Connection.wait`` to wait for a readable socket (a
    statement queued in pipeline mode does not: it is answered with the pipeline's sync)."""
    try:
        import psycopg
        from psycopg.waiting import Wait
    except ImportError:
        return

    def counted(gen: Any) -> Any:
        waited = False
        try:
            state = next(gen)
        except StopIteration as stop:
            return stop.value
        while True:
            if state == Wait.R and not waited:
                waited = True
                _tally()
            try:
                state = gen.send((yield state))
            except StopIteration as stop:
                return stop.value

    wait = psycopg.Connection.wait

    def counting_wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        return wait(self, counted(gen), *args, **kwargs)

    psycopg.Connection.wait = counting_wait  # type: ignore[method-assign]


_http = {"foreground": 0, "background": 0, "on": False}


def _count_http_requests() -> None:
    """Count the HTTP requests sent by httpx clients (Prefect's API client), by thread."""
    import httpx

    def counting(send: Any) -> Any:
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _http["on"]:
                name = threading.current_thread().name
                _http["background" if name.startswith("flowml-") else "foreground"] += 1
            return send(self, *args, **kwargs)

        return wrapped

    httpx.Client.send = counting(httpx.Client.send)  # type: ignore[method-assign]
    httpx.AsyncClient.send = counting(httpx.AsyncClient.send)  # type: ignore[method-assign]


def _count_http(action: Any) -> dict[str, int]:
    _http.update(foreground=0, background=0, on=True)
    try:
        action()
    finally:
        _http["on"] = False
    return {"foreground": _http["foreground"], "background": _http["background"]}


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
    _calls.update(foreground=0, deferred=0, background=0, on=True)
    try:
        action()
    finally:
        _calls["on"] = False
    return {side: _calls[side] for side in ("foreground", "deferred", "background")}


def _print(report: dict[str, Any]) -> None:
    trips = report["round_trips"]
    lines = [
        f"Prefect task tracking overhead ({report['machine']}, {report['tasks']} tasks, "
        f"median of {report['rounds']} rounds)",
        "  setup: "
        + ("a real prefect server on PostgreSQL" if report["server"] else "Prefect's test harness")
        + f", tracking on {report['store']}",
        f"  plain @task            {report['plain_ms_per_task']:8.3f} ms/task",
        f"  @flowml.tracked_task   {report['tracked_ms_per_task']:8.3f} ms/task",
        f"  overhead               {report['overhead_ms_per_task']:8.3f} ms/task "
        f"(target <= {report['target_ms']} ms) "
        f"{'PASS' if report['overhead_ms_per_task'] <= report['target_ms'] else 'FAIL'}",
        f"  per flow run, outside its tasks: plain {report['plain_flow_ms_outside_tasks']:.1f} ms,"
        f" tracked {report['tracked_flow_ms_outside_tasks']:.1f} ms",
        f"  store round trips      {trips['light']['foreground']:g}/task on the task's path; "
        f"written behind it: {trips['light']['deferred']:g}/task logging 4 values, "
        f"{trips['heavy']['deferred']:g}/task logging {report['extra_metrics_heavy'] + 4}\n"
        f"                         (+{trips['light']['flow']:g} per flow run) "
        f"{'PASS' if report['round_trips_bounded'] else 'FAIL'}",
        f"                         + {trips['light']['background']:g}/task in the background "
        "(reads for the artifacts)",
        f"  background publishing  {report['background_publishing_ms_per_task']:8.3f} ms/task "
        "(1 artifact and 2 events per task run, in the publisher thread, once the burst of\n"
        "                                           tasks is over; no flow waits for it)",
    ]
    http = report["http_requests_per_task"]
    lines.append(
        f"  Prefect API requests   plain {http['plain']:g}/task; tracked: "
        f"+{http['tracked_on_task_path']:g}/task outside the publisher, "
        f"{http['tracked_in_publisher']:g}/task in it"
    )
    long_flow = report["long_flow"]
    if long_flow:
        lines.append(
            f"  {long_flow['tasks']}-task flow         plain {long_flow['plain_s']:.2f} s, "
            f"tracked {long_flow['tracked_s']:.2f} s: x{long_flow['ratio']:.3f} "
            f"(target <= x{long_flow['target_ratio']}) "
            f"{'PASS' if long_flow['ratio'] <= long_flow['target_ratio'] else 'FAIL'}\n"
            f"                        then {long_flow['publishing_after_return_s']:.2f} s "
            "publishing the rest in this process's background thread"
        )
        if "exit" in long_flow:
            ex = long_flow["exit"]
            lines.append(
                f"  exit after the flow returned ({long_flow['tasks']} tasks, own process): "
                f"plain {ex['plain_s']:.2f} s, tracked {ex['tracked_s']:.2f} s "
                f"(+{ex['tracked_s'] - ex['plain_s']:.2f} s; the outbox process had published "
                f"everything {ex['tracked_published_s']:.1f} s after the return)"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
