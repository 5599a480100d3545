"""Tracing speed: flowml against MLflow 3.17's tracing, same machine, same workload code.

Workloads (issue 14, "Speed"):
  (a) overhead per span of a traced no-op function, called directly (1 deep) and through a
      chain of 10 traced functions (10 deep): the caller's time per span, median of 3 runs
      (both sides write traces in the background; their write time is (b)); and the
      process's CPU time per span from the first call until the traces are written (every
      thread's: recording and writing, less sensitive to a busy machine than the clock);
  (b) spans written per second into SQLite: traces of 10 spans recorded and flushed, the
      clock stopping when the last one is in the database;
  (c) ``search_traces`` over 10,000 traces (recorded through each side's tracing API, a tag
      ``bucket`` on each): no filter, a tag filter and a status + time filter, 100 results
      each with spans, median of 5.

Each side runs in its own subprocess on a fresh SQLite file: flowml with this interpreter,
MLflow with its own virtual environment's (``.cache/mlflow-venv``). The same worker code
drives both (the two packages share the verbs: ``trace``, ``update_current_trace``,
``search_traces``).

Usage:
    python benchmarks/bench_tracing.py                 # full run
    python benchmarks/bench_tracing.py --quick         # small sizes, a smoke run
    python benchmarks/bench_tracing.py --side flowml --quick --json
    python benchmarks/bench_tracing.py --search-only   # (c) alone, both sides
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _compare import chosen_sides, comparison_parser

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
FULL = {
    "calls": 2000,
    "deep_calls": 300,
    "write_traces": 300,
    "search_traces": 10_000,
    "repeats": 5,
}
QUICK = {"calls": 200, "deep_calls": 30, "write_traces": 30, "search_traces": 300, "repeats": 2}


# -- the worker: runs inside one side's interpreter ----------------------------------------


def _setup(side: str, db: Path) -> tuple[Any, Any]:
    if side == "flowml":
        import flowml as lib
        from flowml.tracing import writer

        flush = writer.flush
    else:
        import mlflow as lib

        flush = lib.flush_trace_async_logging
    lib.set_tracking_uri(f"sqlite:///{db}")
    lib.set_experiment("bench")
    return lib, flush


def _chain(lib: Any, depth: int) -> Any:
    @lib.trace
    def leaf(x: int) -> int:
        return x

    fn = leaf
    for _ in range(depth - 1):
        fn = (lambda inner: lib.trace(lambda x: inner(x), name="link"))(fn)
    return fn


def worker(side: str, sizes: dict[str, int], db: Path) -> dict[str, float]:
    lib, flush = _setup(side, db)
    out: dict[str, float] = {}
    one, ten = _chain(lib, 1), _chain(lib, 10)
    one(0)
    ten(0)  # warm-up: first-use imports and the store's creation stay outside the clock
    flush()
    if sizes.get("search_only"):
        return _search(lib, flush, sizes, out)
    for label, fn, calls, depth in (
        ("overhead_1_us", one, sizes["calls"], 1),
        ("overhead_10_us", ten, sizes["deep_calls"], 10),
    ):
        samples, cpu = [], []
        for _ in range(3):
            cpu_start, start = time.process_time(), time.perf_counter()
            for i in range(calls):
                fn(i)
            samples.append((time.perf_counter() - start) / (calls * depth) * 1e6)
            flush()  # background writes stay out of the next sample
            cpu.append((time.process_time() - cpu_start) / (calls * depth) * 1e6)
        out[label] = statistics.median(samples)
        out[label.replace("overhead", "cpu")] = statistics.median(cpu)

    start = time.perf_counter()
    for i in range(sizes["write_traces"]):
        ten(i)
    flush()
    out["spans_per_s"] = sizes["write_traces"] * 10 / (time.perf_counter() - start)
    return _search(lib, flush, sizes, out)


def _search(lib: Any, flush: Any, sizes: dict[str, int], out: dict[str, float]) -> dict[str, float]:
    @lib.trace
    def request(i: int) -> int:
        lib.update_current_trace(tags={"bucket": str(i % 10)})
        return i

    cutoff_ms = int(time.time() * 1000)
    for i in range(sizes["search_traces"]):
        request(i)
    flush()
    queries = {
        "search_all_ms": None,
        "search_tag_ms": "tags.bucket = '3'",
        "search_status_time_ms": f"trace.status = 'OK' AND trace.timestamp_ms > {cutoff_ms}",
    }
    for label, filter_string in queries.items():
        samples = []
        for _ in range(sizes["repeats"]):
            start = time.perf_counter()
            found = lib.search_traces(
                filter_string=filter_string, max_results=100, return_type="list"
            )
            samples.append((time.perf_counter() - start) * 1000)
            assert found, label
        out[label] = statistics.median(samples)
    return out


# -- the driver ----------------------------------------------------------------------------


def _run_side(side: str, sizes: dict[str, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / f"{side}.db"
        args = ["--worker", side, "--sizes", json.dumps(sizes), "--db", str(db)]
        if side == "flowml":
            python = sys.executable
            env = {**os.environ, "FLOWML_HOME": str(Path(tmp) / "home")}
            env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
        else:
            sys.path.insert(0, str(HERE))
            from _mlflow_env import mlflow_env, mlflow_python

            python, env = str(mlflow_python()), mlflow_env()
        done = subprocess.run(
            [python, __file__, *args],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=7200,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{side} worker failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


ROWS = [
    ("overhead_1_us", "a1: overhead per span, traced no-op", "µs", False),
    ("overhead_10_us", "a10: overhead per span, 10 deep", "µs", False),
    ("cpu_1_us", "a1: CPU per span, with writing it", "µs", False),
    ("cpu_10_us", "a10: CPU per span, with writing it", "µs", False),
    ("spans_per_s", "b: spans written per second (SQLite)", "spans/s", True),
    ("search_all_ms", "c1: search_traces, no filter, 100 of N", "ms", False),
    ("search_tag_ms", "c2: search_traces, tags.bucket = '3'", "ms", False),
    ("search_status_time_ms", "c3: search_traces, status + time", "ms", False),
]


def main(argv: list[str] | None = None) -> int:
    parser = comparison_parser("Tracing speed: flowml vs MLflow 3.17.", "small sizes (a smoke run)")
    parser.add_argument(
        "--search-only", action="store_true", help="only (c): record 10,000 traces and search"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.sizes), Path(args.db))))
        return 0
    sizes = dict(QUICK if args.quick else FULL)
    if args.search_only:
        sizes["search_only"] = 1
    sides = chosen_sides(args)
    results = {side: _run_side(side, sizes) for side in sides}
    rows = []
    for key, label, unit, higher in ROWS:
        f, m = results.get("flowml", {}).get(key), results.get("mlflow", {}).get(key)
        ratio = None
        if f and m:
            ratio = f / m if higher else m / f  # > 1: flowml is better by that factor
        rows.append(
            {
                "id": key,
                "label": label,
                "unit": unit,
                "flowml": f,
                "mlflow": m,
                "flowml_better_by": ratio,
            }
        )
    if args.json:
        print(json.dumps({"quick": args.quick, "sizes": sizes, "rows": rows}, indent=2))
        return 0
    print(f"{'workload':44} {'flowml':>12} {'mlflow':>12}  flowml better by")
    for row in rows:

        def cell(v: float | None) -> str:
            return "-" if v is None else f"{v:,.1f}"

        ratio = "-" if row["flowml_better_by"] is None else f"{row['flowml_better_by']:.1f}x"
        print(
            f"{row['label']:44} {cell(row['flowml']):>12} {cell(row['mlflow']):>12}  "
            f"{ratio} ({row['unit']})"
        )
    print(f"sizes: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
