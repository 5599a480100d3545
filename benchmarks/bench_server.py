"""Tracking server speed: ``flowml server`` against ``mlflow server`` 3.17, side by side.

Both servers run on this machine with the same backend (a fresh PostgreSQL database each,
``--workers 4``, artifacts proxied to a local directory) and are driven by the *same*
client: plain HTTP calls to MLflow's REST API through `_lean_http.LeanHTTP` (from worker
processes where clients run concurrently), a socket client that costs less CPU than the
servers it measures, so the figures compare the servers, not two client libraries, and a
client's own CPU (on the same 2 cores) hides little of the faster server's speed. Timing
starts once the server's process tree is idle (all workers imported), and each client's
from a barrier it passes once connected. Throughput is measured on one server at a time,
the sides taking turns; searches with both running, asked in turn (see `measure`).

Workloads (issue 11, "Speed"):
  (a) ``runs/log-batch`` values/s with 1 and 4 concurrent clients (each its own run, batches
      of 20 metrics x 10 steps);
  (b) per-call logging: ``runs/log-metric`` requests/s, one client;
  (c) ``runs/search`` latency over REST on 5,000 runs: no filter (1,000 results),
      ``metrics.acc > 0.5 and params.lr = '0.01'`` ordered by ``metrics.acc DESC`` (100),
      a tag filter, a param filter ordered by a metric, and a metric filter (100 each);
      median of 11 per server, the two asked in turn, once the tables are analyzed and
      both servers idle;
  (d) artifact proxy MB/s, up and down: 100 files of 10 KB, and one 50 MB file (median of
      5 rounds in a server's lifetime);
  (e) memory: RSS (and PSS, which counts pages shared between workers once) of each
      server's whole process tree after the workloads (the largest of its lifetimes).

(a), (b) and (d) run in 3 lifetimes of each server, the sides alternating, and each figure
is the median of the three; see `measure`.

Usage:
    python benchmarks/bench_server.py            # full run (several minutes)
    python benchmarks/bench_server.py --quick    # small sizes, a smoke run
    python benchmarks/bench_server.py --json
    python benchmarks/bench_server.py --only search --only artifacts   # some workloads
    python benchmarks/bench_server.py --side flowml                    # one server only

PostgreSQL is expected at ``FLOWML_BENCH_PG`` (default ``postgres@127.0.0.1:5432``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _lean_http import LeanHTTP  # noqa: E402
from _mlflow_env import mlflow_env, mlflow_python  # noqa: E402
from _prefect_server import PG, _admin, free_port, stop_process  # noqa: E402

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
WORKERS = 4
FULL = {"batches": 60, "calls": 300, "runs": 5000, "repeats": 5, "search_repeats": 11}
FULL |= {"rounds": 3}
FULL |= {"small": 100, "big_mb": 50}
QUICK = {"batches": 5, "calls": 50, "runs": 300, "repeats": 3, "search_repeats": 3}
QUICK |= {"rounds": 1}
QUICK |= {"small": 20, "big_mb": 5}


# -- the client (runs in worker processes) ---------------------------------------------------


def _client(url: str) -> LeanHTTP:
    return LeanHTTP(url)


def _post(http: LeanHTTP, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = http.post_json(API + path, body)
    return reply


def _new_run(http: LeanHTTP, experiment_id: str, tags: list[dict[str, str]] | None = None) -> str:
    body = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}
    if tags:
        body["tags"] = tags
    return _post(http, "/runs/create", body)["run"]["info"]["run_id"]


def _log_batches(url: str, experiment_id: str, batches: int, start: Any) -> tuple[int, float]:
    """One client: a run, then ``batches`` log-batch calls of 200 metric values each, timed
    from ``start`` (a barrier every client passes once its connection and run exist, so
    that the figure is the server's throughput, not the clients' start-up)."""
    with _client(url) as http:
        run_id = _new_run(http, experiment_id)
        now = int(time.time() * 1000)
        bodies = [
            {
                "run_id": run_id,
                "metrics": [
                    {"key": f"m{k}", "value": k * 0.1 + s, "timestamp": now + s, "step": b * 10 + s}
                    for k in range(20)
                    for s in range(10)
                ],
            }
            for b in range(batches)
        ]
        start.wait()
        started = time.perf_counter()
        for body in bodies:
            _post(http, "/runs/log-batch", body)
        return sum(len(body["metrics"]) for body in bodies), time.perf_counter() - started


def _log_calls(url: str, experiment_id: str, calls: int, start: Any) -> tuple[int, float]:
    with _client(url) as http:
        run_id = _new_run(http, experiment_id)
        now = int(time.time() * 1000)
        start.wait()
        started = time.perf_counter()
        for i in range(calls):
            body = {"run_id": run_id, "key": "loss", "value": 1 / (i + 1), "timestamp": now + i}
            _post(http, "/runs/log-metric", {**body, "step": i})
        return calls, time.perf_counter() - started


def _populate(url: str, experiment_id: str, start: int, count: int) -> None:
    with _client(url) as http:
        for i in range(start, start + count):
            run_id = _new_run(http, experiment_id, [{"key": "team", "value": f"t{i % 7}"}])
            body = {
                "run_id": run_id,
                "params": [{"key": "lr", "value": "0.01" if i % 2 else "0.1"}],
                "metrics": [{"key": "acc", "value": (i % 100) / 100, "timestamp": 1, "step": 0}],
            }
            _post(http, "/runs/log-batch", body)


# -- measurements ----------------------------------------------------------------------------


def _parallel(fn: Any, args: list[tuple[Any, ...]]) -> tuple[float, list[Any]]:
    with ProcessPoolExecutor(len(args)) as pool:
        started = time.perf_counter()
        results = list(pool.map(fn, *zip(*args, strict=True)))
        return time.perf_counter() - started, results


def _throughput(fn: Any, args: tuple[Any, ...], clients: int) -> float:
    """Items/s of ``clients`` concurrent ``fn(*args, start)`` calls, each returning ``(items,
    seconds)`` timed from the barrier ``start``: all items over the slowest client's time."""
    with multiprocessing.Manager() as manager:
        start = manager.Barrier(clients)
        _, results = _parallel(fn, [(*args, start)] * clients)
    return sum(items for items, _ in results) / max(seconds for _, seconds in results)


def _experiment(url: str, name: str) -> str:
    with _client(url) as http:
        return _post(http, "/experiments/create", {"name": name})["experiment_id"]


def _turns(sides: tuple[str, ...], round_: int) -> tuple[str, ...]:
    """The order the sides take their turns in, swapped every round."""
    return sides if round_ % 2 == 0 else sides[::-1]


def _search_ms(
    urls: dict[str, str], experiments: dict[str, str], body: dict[str, Any], repeats: int
) -> dict[str, float]:
    """Median milliseconds of the search ``body`` on each server (``urls`` by side), the
    servers asked in turn, request by request (the order swapped every round), so that a
    machine whose speed drifts from one minute to the next slows both sides alike."""
    times: dict[str, list[float]] = {side: [] for side in urls}
    clients = {side: _client(url) for side, url in urls.items()}
    try:
        for round_ in range(repeats + 1):  # the first warms caches and connections
            for side in _turns(tuple(urls), round_):
                request = {"experiment_ids": [experiments[side]], **body}
                started = time.perf_counter()
                _post(clients[side], "/runs/search", request)
                times[side].append(time.perf_counter() - started)
    finally:
        for http in clients.values():
            http.close()
    return {side: statistics.median(values[1:]) * 1000 for side, values in times.items()}


def _artifacts(url: str, side: str, small: int, big_mb: int, repeats: int) -> dict[str, float]:
    """Proxy MB/s up and down, through `LeanHTTP` (the same lean client for both servers):
    the median of ``repeats`` rounds, each uploading ``small`` new 10 KB files and the big
    file, then downloading them (one round lasts a fraction of a second, so a single one
    measures whatever else the machine was doing at that moment)."""
    payload = os.urandom(10 * 1024)
    big = os.urandom(big_mb * 1024 * 1024)
    buffer = bytearray(len(big) + 1)  # one byte more: a longer reply is caught
    rates: dict[str, list[float]] = {"small_up": [], "small_down": [], "big_up": [], "big_down": []}
    with LeanHTTP(url) as http:
        base = f"{PROXY}/bench-{side}-{uuid.uuid4().hex[:6]}"
        for round_ in range(repeats):
            files = [f"{base}/{round_}/small/{i}.bin" for i in range(small)]
            started = time.perf_counter()
            for path in files:
                http.request("PUT", path, payload)
            rates["small_up"].append(small * len(payload) / (time.perf_counter() - started))
            started = time.perf_counter()
            for path in files:
                assert http.request("GET", path, into=buffer) == len(payload)
            rates["small_down"].append(small * len(payload) / (time.perf_counter() - started))
            started = time.perf_counter()
            http.request("PUT", f"{base}/{round_}/big.bin", big)
            rates["big_up"].append(len(big) / (time.perf_counter() - started))
            started = time.perf_counter()
            assert http.request("GET", f"{base}/{round_}/big.bin", into=buffer) == len(big)
            rates["big_down"].append(len(big) / (time.perf_counter() - started))
            assert buffer[: len(big)] == big
    return {key: statistics.median(values) / 1e6 for key, values in rates.items()}


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _memory_mb(pid: int) -> tuple[float, float]:
    rss = pss = 0
    for one in _tree(pid):
        try:
            with open(f"/proc/{one}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


# -- the servers -----------------------------------------------------------------------------


@contextlib.contextmanager
def _database() -> Iterator[str]:
    name = f"bench_server_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _server(side: str) -> Iterator[tuple[str, int, str]]:
    port = free_port()
    with _database() as db, tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        common = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
        common += ["--artifacts-destination", str(Path(tmp) / "artifacts")]
        if side == "flowml":
            env = {**os.environ, "FLOWML_HOME": str(Path(tmp) / "home")}
            env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
            store = f"postgresql+psycopg://{PG}/{db}"
            argv = [sys.executable, "-m", "flowml.cli", "server", "--backend-store-uri", store]
        else:
            env = mlflow_env()
            python = mlflow_python()
            argv = [str(python), "-m", "mlflow", "server"]
            argv += ["--backend-store-uri", f"postgresql://{PG}/{db}"]
            # uvicorn restarts a worker that misses a 5 s health ping, which MLflow's slow
            # start misses on a busy machine: wait as long as flowml's server does.
            argv += ["--uvicorn-opts", "--timeout-worker-healthcheck 60"]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([*argv, *common], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, proc, Path(tmp) / "server.log")
            _settle(proc.pid)
            yield url, proc.pid, db
        except BaseException:
            print(f"{side} server log:\n{(Path(tmp) / 'server.log').read_text()[-3000:]}")
            raise
        finally:
            stop_process(proc)
            log.close()


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 600  # a loaded machine starts MLflow slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not answer:\n{log.read_text()[-3000:]}")


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by ``pid`` and its descendants that are still alive."""
    ticks = 0
    for one in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{one}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _settle(pid: int, timeout: float = 120) -> None:
    """Wait until the server's process tree is idle: ``/health`` answers once one worker is
    up, while the others may still be importing (MLflow's take many seconds), and timing
    requests then would time the imports too."""
    deadline = time.monotonic() + timeout
    used = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = _cpu_seconds(pid)
        if now - used < 0.05:  # under 5% of one core over the last second
            return
        used = now


WORKLOADS = ("log", "search", "artifacts")
# The filtered searches (100 results each) over the populated runs.
SEARCHES: dict[str, dict[str, Any]] = {
    "search_filter_ms": {
        "filter": "metrics.acc > 0.5 and params.lr = '0.01'",
        "order_by": ["metrics.acc DESC"],
        "max_results": 100,
    },
    "search_tag_ms": {"filter": "tags.team = 't3'", "max_results": 100},
    "search_param_order_ms": {
        "filter": "params.lr = '0.1'",
        "order_by": ["metrics.acc ASC"],
        "max_results": 100,
    },
    "search_metric_ms": {"filter": "metrics.acc >= 0.9", "max_results": 100},
}


def _log(url: str, sizes: dict[str, int]) -> dict[str, float]:
    """Logging throughput: 1 then 4 log-batch clients, then one per-call client."""
    exp = _experiment(url, "log")
    batches = (url, exp, sizes["batches"])
    figures = {f"log_batch_{n}": _throughput(_log_batches, batches, n) for n in (1, 4)}
    figures["log_calls"] = _throughput(_log_calls, (url, exp, sizes["calls"]), 1)
    return figures


def _searches(
    sides: tuple[str, ...], sizes: dict[str, int]
) -> tuple[dict[str, dict[str, float]], dict[str, tuple[float, float]]]:
    """Search latencies from one fresh server of each side, all running at once, asked in
    turn request by request (`_search_ms`), and each server's memory after them."""
    out: dict[str, dict[str, float]] = {side: {} for side in sides}
    with contextlib.ExitStack() as stack:
        servers = {side: stack.enter_context(_server(side)) for side in sides}
        experiments: dict[str, str] = {}
        for side, (url, _, db) in servers.items():
            print(f"{side}: {sizes['runs']} runs for search", file=sys.stderr)
            experiments[side] = exp = _experiment(url, "search")
            share = sizes["runs"] // 4
            _parallel(_populate, [(url, exp, i * share, share) for i in range(4)])
            # Searched as a deployment would be: the tables vacuumed and analyzed, as
            # autovacuum leaves them a minute after 5,000 inserts (done here, so that it
            # cannot start on either server's tables while its searches are timed).
            with _admin(db) as conn:
                conn.execute("VACUUM ANALYZE")
        for _, pid, _ in servers.values():
            _settle(pid)  # every server idle
        urls = {side: url for side, (url, _, _) in servers.items()}
        searches = {"search_all_ms": {"max_results": 1000}, **SEARCHES}
        for key, body in searches.items():
            found = _search_ms(urls, experiments, body, sizes["search_repeats"])
            for side, ms in found.items():
                out[side][key] = ms
        return out, {side: _memory_mb(pid) for side, (_, pid, _) in servers.items()}


def measure(
    sides: tuple[str, ...], sizes: dict[str, int], only: tuple[str, ...] = WORKLOADS
) -> dict[str, dict[str, float]]:
    """The ``only`` workloads against fresh servers of each side (``flowml``, ``mlflow``).

    The speed of a shared machine drifts from one minute to the next, so the sides take
    turns. Throughput (logging, the artifact proxy) is measured on one server at a time (an
    idle server beside the one measured slowed a 50 MB upload by a third here), in
    ``rounds`` lifetimes per side, the sides alternating (the order swapped every round):
    each figure is the median of its rounds. Searches, a few milliseconds each, are
    measured with both servers running, asked in turn request by request (`_searches`).
    Memory is the largest of each side's process trees after their workloads.
    """
    rounds: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    memory: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    if "log" in only or "artifacts" in only:
        for round_ in range(sizes["rounds"]):
            for side in _turns(sides, round_):
                figures: dict[str, float] = {}
                with _server(side) as (url, pid, _):
                    if "log" in only:
                        print(f"{side}: log-batch (round {round_ + 1})", file=sys.stderr)
                        figures.update(_log(url, sizes))
                    if "artifacts" in only:
                        print(f"{side}: artifacts (round {round_ + 1})", file=sys.stderr)
                        artifacts = (sizes["small"], sizes["big_mb"], sizes["repeats"])
                        figures.update(_artifacts(url, side, *artifacts))
                    memory[side].append(_memory_mb(pid))
                rounds[side].append(figures)
    out = {
        side: {key: statistics.median(r[key] for r in done) for key in done[0]} if done else {}
        for side, done in rounds.items()
    }
    if "search" in only:
        latencies, after = _searches(sides, sizes)
        for side in sides:
            out[side].update(latencies[side])
            memory[side].append(after[side])
    for side, trees in memory.items():
        out[side]["rss_mb"] = max(rss for rss, _ in trees)
        out[side]["pss_mb"] = max(pss for _, pss in trees)
    return out


ROWS = (
    ("log_batch_1", "log-batch values/s, 1 client", True),
    ("log_batch_4", "log-batch values/s, 4 clients", True),
    ("log_calls", "log-metric requests/s, 1 client", True),
    ("search_all_ms", "search 5,000 runs, 1,000 results (ms)", False),
    ("search_filter_ms", "search with filter + order, 100 results (ms)", False),
    ("search_tag_ms", "search with a tag filter, 100 results (ms)", False),
    ("search_param_order_ms", "search param filter, metric order, 100 (ms)", False),
    ("search_metric_ms", "search with a metric filter, 100 results (ms)", False),
    ("small_up", "proxy up, 100 x 10 KB (MB/s)", True),
    ("small_down", "proxy down, 100 x 10 KB (MB/s)", True),
    ("big_up", "proxy up, one 50 MB file (MB/s)", True),
    ("big_down", "proxy down, one 50 MB file (MB/s)", True),
    ("rss_mb", "process tree RSS after the run (MB)", False),
    ("pss_mb", "process tree PSS after the run (MB)", False),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOADS,
        help="run only this workload group (repeatable; default: all)",
    )
    parser.add_argument(
        "--side",
        choices=("flowml", "mlflow"),
        help="measure only this server (no ratios; default: both)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    only = tuple(args.only or WORKLOADS)
    sides = (args.side,) if args.side else ("flowml", "mlflow")
    results = measure(sides, sizes, only)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'workload':<46} " + " ".join(f"{side:>10}" for side in sides) + f" {'ratio':>8}")
    for key, label, higher_better in ROWS:
        if key not in results[sides[0]]:
            continue
        figures = [results[side][key] for side in sides]
        line = f"{label:<46} " + " ".join(f"{figure:>10.1f}" for figure in figures)
        if len(sides) == 2:
            ours, theirs = figures
            # Ratio > 1 means flowml is better, whichever direction the unit goes.
            ratio = ours / theirs if higher_better else theirs / ours
            line += f" {ratio:>7.1f}x"
        print(line)
    if len(sides) == 2:
        print("(ratio: how many times better flowml is; >1 favours flowml)")


if __name__ == "__main__":
    main()
