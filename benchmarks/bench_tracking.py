"""Tracking speed: flowml against MLflow 3.17, same machine, same invocation.

Workloads (issue 2, "Speed"):
  (a) 200 runs x (10 params, 5 tags, 20 metrics x 10 steps), one fluent call per value
      (start_run / log_param / set_tag / log_metric; run start and end inside the clock);
  (b) the same values through one ``log_batch`` per run (client API); also reported,
      (b2) one ``log_batch`` per training step (params and tags, then 20 metrics per call);
  (c) ``search_runs`` over 5,000 runs: no filter (1,000 results),
      ``metrics.acc > 0.5 and params.lr = '0.01'`` ordered by ``metrics.acc DESC``
      (100 results), and a tag filter; median of several repetitions;
  (d) cold ``import flowml`` vs ``import mlflow``: a fresh interpreter each time, minus a
      bare interpreter's start-up, median of 5; also reported, (d2) the same plus the
      modules that logging to a SQL store loads (flowml imports lazily, so (d) flatters it).

Every workload runs in a fresh subprocess against a fresh SQLite file in a temporary
directory: flowml with this interpreter, MLflow with the interpreter of its own
virtual environment (``.cache/mlflow-venv``, created on first use). Results print as
a table with both figures, the ratio, the target and PASS/FAIL; ``--json`` prints
them as JSON instead.

Usage:
    python benchmarks/bench_tracking.py              # full run (several minutes)
    python benchmarks/bench_tracking.py --quick      # small sizes, a smoke run
    python benchmarks/bench_tracking.py --only a,d --json
    python benchmarks/bench_tracking.py --side flowml --quick   # no MLflow at all
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
WORKER = HERE / "_tracking_workloads.py"
WORKLOAD_TIMEOUT_S = 3600
# What logging to a SQLite store loads beyond the top-level package, per side.
STORE_MODULES = {
    "flowml": "import flowml.tracking.fluent, flowml.tracking.store.sql",
    "mlflow": "import mlflow.tracking.fluent, mlflow.store.tracking.sqlalchemy_store",
}

FULL = {
    "a": {"runs": 200, "params": 10, "tags": 5, "metrics": 20, "steps": 10},
    "b": {"runs": 200, "params": 10, "tags": 5, "metrics": 20, "steps": 10},
    "c": {"search_runs": 5000, "max_results": 1000, "repeats": 5},
    "d": {"repeats": 5},
}
QUICK = {
    "a": {"runs": 5, "params": 10, "tags": 5, "metrics": 20, "steps": 10},
    "b": {"runs": 5, "params": 10, "tags": 5, "metrics": 20, "steps": 10},
    "c": {"search_runs": 300, "max_results": 1000, "repeats": 3},
    "d": {"repeats": 3},
}


@dataclass
class Row:
    """One line of the report: a figure for each side, their ratio and the target."""

    id: str
    label: str
    unit: str
    higher_is_better: bool
    target: str
    flowml: float | None = None
    mlflow: float | None = None
    ratio: float | None = None
    passed: bool | None = None

    def judge(
        self, minimum_ratio: float | None = None, maximum_fraction: float | None = None
    ) -> None:
        if self.flowml is None or self.mlflow is None or self.mlflow <= 0:
            return
        if maximum_fraction is not None:  # a fraction of MLflow's figure (import time)
            self.ratio = self.flowml / self.mlflow
            self.passed = self.ratio < maximum_fraction
            return
        if self.higher_is_better:
            self.ratio = self.flowml / self.mlflow
        else:
            self.ratio = self.mlflow / self.flowml if self.flowml > 0 else float("inf")
        # An informational row (no target) gets a ratio but no verdict.
        self.passed = None if minimum_ratio is None else self.ratio >= minimum_ratio


# -- running the sides ---------------------------------------------------------------------


def _flowml_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["FLOWML_HOME"] = str(workdir / "flowml-home")
    env["FLOWML_ARTIFACT_ROOT"] = str(workdir / "artifacts")
    for var in ("FLOWML_TRACKING_URI", "FLOWML_RUN_ID", "FLOWML_EXPERIMENT_ID"):
        env.pop(var, None)
    return env


def _interpreter(side: str) -> tuple[str, dict[str, str] | None]:
    if side == "flowml":
        return sys.executable, None
    from _mlflow_env import mlflow_env, mlflow_python

    return str(mlflow_python()), mlflow_env()


def run_worker(side: str, workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one workload in a fresh process against a fresh SQLite file; its JSON result."""
    python, env = _interpreter(side)
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-{workload}-") as tmp:
        workdir = Path(tmp)
        if env is None:
            env = _flowml_env(workdir)
        cmd = [
            python,
            str(WORKER),
            "--lib",
            side,
            "--workload",
            workload,
            "--workdir",
            str(workdir),
            "--config",
            json.dumps(config),
        ]
        done = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=WORKLOAD_TIMEOUT_S,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{side} worker for workload ({workload}) failed (exit {done.returncode}):\n"
            f"{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
        )
    return json.loads(lines[-1])


def _time_command(python: str, code: str, env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [python, "-c", code],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def import_time(side: str, repeats: int) -> dict[str, Any]:
    """Median of (``python -c 'import x'`` minus ``python -c 'pass'``), fresh interpreters."""
    python, env = _interpreter(side)
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-import-") as tmp:
        env = env if env is not None else _flowml_env(Path(tmp))
        code = f"import {side}"
        _time_command(python, code, env, tmp)  # warm the OS cache and the .pyc files
        deltas, bare_times, import_times = [], [], []
        for _ in range(repeats):
            bare = _time_command(python, "pass", env, tmp)
            full = _time_command(python, code, env, tmp)
            bare_times.append(bare)
            import_times.append(full)
            deltas.append(full - bare)
        # flowml defers nearly everything to first use: also time importing what logging
        # to a SQL store needs, on both sides (their fluent API plus their SQL store).
        use = f"import {side}; {STORE_MODULES[side]}"
        use_times = [
            _time_command(python, use, env, tmp) - statistics.median(bare_times)
            for _ in range(repeats)
        ]
    return {
        # A lazy import can cost less than the timer's noise: never report a negative time.
        "median_s": max(0.0, statistics.median(deltas)),
        "deltas_s": deltas,
        "bare_interpreter_s": statistics.median(bare_times),
        "with_import_s": statistics.median(import_times),
        "first_use_s": statistics.median(use_times),
    }


def run_workload(side: str, workload: str, sizes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One workload on one side; returns ``{result key: result}``."""
    print(f"  {side}: workload ({workload})...", file=sys.stderr, flush=True)
    if workload == "d":
        return {"d": import_time(side, sizes["d"]["repeats"])}
    if workload == "b":
        return {
            "b": run_worker(side, "b", {**sizes["b"], "batching": "run"}),
            "b2": run_worker(side, "b", {**sizes["b"], "batching": "step"}),
        }
    return {workload: run_worker(side, workload, sizes[workload])}


def run_all(
    sides: list[str], workloads: list[str], sizes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    # Both sides of a workload run back to back, so that load from other processes on a
    # shared machine shifts them alike rather than landing on one side's whole suite.
    results: dict[str, dict[str, Any]] = {side: {} for side in sides}
    for workload in workloads:
        for side in sides:
            results[side].update(run_workload(side, workload, sizes))
    return results


# -- the report ----------------------------------------------------------------------------


def build_rows(results: dict[str, dict[str, Any]], workloads: list[str]) -> list[Row]:
    from _tracking_workloads import METRIC_FILTER, TAG_FILTER

    fl, ml = results.get("flowml", {}), results.get("mlflow", {})
    rows: list[Row] = []

    def add(row: Row, path: tuple[str, ...], **judge: float) -> None:
        row.flowml, row.mlflow = _dig(fl, path), _dig(ml, path)
        row.judge(**judge)
        rows.append(row)

    if "a" in workloads:
        add(
            Row("a", "(a) fluent, one call per value", "calls/s", True, ">= 100x"),
            ("a", "calls_per_s"),
            minimum_ratio=100,
        )
    if "b" in workloads:
        add(
            Row("b", "(b) log_batch, one call per run", "values/s", True, ">= 30x"),
            ("b", "values_per_s"),
            minimum_ratio=30,
        )
        # Not one of the workloads: shown for information, without a target.
        add(
            Row("b2", "(b2) log_batch, one call per step", "values/s", True, "(extra)"),
            ("b2", "values_per_s"),
        )
    if "c" in workloads:
        labels = {
            "no_filter": "(c1) search, no filter (max 1000)",
            "metric_param": f"(c2) search {METRIC_FILTER!r}, acc DESC (100)",
            "tag": f"(c3) search {TAG_FILTER!r} (max 1000)",
        }
        for name, label in labels.items():
            add(
                Row(f"c.{name}", label, "s/query", False, ">= 10x"),
                ("c", "queries", name, "median_s"),
                minimum_ratio=10,
            )
    if "d" in workloads:
        add(
            Row("d", "(d) cold import (minus bare interpreter)", "s", False, "< 1/4 (0.25)"),
            ("d", "median_s"),
            maximum_fraction=0.25,
        )
        add(
            Row("d2", "(d2) import + fluent API + SQL store modules", "s", False, "< 1/4 (0.25)"),
            ("d", "first_use_s"),
            maximum_fraction=0.25,
        )
    return rows


def _dig(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    """``results[path[0]][path[1]]...``, or ``None`` where a side did not report it."""
    value: Any = results
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value if isinstance(value, int | float) else None


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s/query" or unit == "s":
        return f"{value * 1000:,.1f} ms"
    return f"{value:,.0f}"


def print_table(rows: list[Row], results: dict[str, dict[str, Any]]) -> None:
    header = ("workload", "unit", "flowml", "MLflow", "ratio", "target", "result")
    table = [header]
    for row in rows:
        if row.ratio is None:
            ratio = "-"
        elif row.id.startswith("d"):
            ratio = f"{row.ratio:.3f}"
        else:
            ratio = f"{row.ratio:,.1f}x"
        verdict = "-" if row.passed is None else ("PASS" if row.passed else "FAIL")
        table.append(
            (
                row.label,
                row.unit,
                _fmt(row.flowml, row.unit),
                _fmt(row.mlflow, row.unit),
                ratio,
                row.target,
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, line in enumerate(table):
        print(
            "  ".join(
                cell.ljust(w) if j == 0 else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    notes = _notes(results)
    if notes:
        print()
        for note in notes:
            print(note)


def _notes(results: dict[str, dict[str, Any]]) -> list[str]:
    """Sanity checks worth a line: unverified writes, result counts that differ, import detail."""
    notes = []
    for side, res in results.items():
        for w in ("a", "b", "b2"):
            if w in res and not res[w].get("verified"):
                notes.append(f"WARNING: {side} ({w}) data check failed: {res[w]}")
        for name, q in res.get("c", {}).get("queries", {}).items():
            other = results.get("mlflow" if side == "flowml" else "flowml", {})
            other_q = other.get("c", {}).get("queries", {}).get(name)
            if side == "flowml" and other_q and other_q["results"] != q["results"]:
                notes.append(
                    f"WARNING: ({name}) flowml returned {q['results']} runs, "
                    f"MLflow {other_q['results']}"
                )
        if "c" in res:
            counts = ", ".join(f"{n}={q['results']}" for n, q in res["c"]["queries"].items())
            notes.append(
                f"{side} (c): populated in {res['c']['populate_seconds']:.1f} s; results {counts}"
            )
        if "d" in res:
            d = res["d"]
            notes.append(
                f"{side} (d): bare interpreter {d['bare_interpreter_s'] * 1000:.0f} ms, "
                f"with import {d['with_import_s'] * 1000:.0f} ms; import + SQL store modules "
                f"{d['first_use_s'] * 1000:.0f} ms (minus bare)"
            )
    return notes


# -- entry point ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tracking speed: flowml vs MLflow 3.17.")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (a smoke run, not a measurement)"
    )
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated workloads among a,b,c,d")
    parser.add_argument(
        "--side",
        choices=("both", "flowml", "mlflow"),
        default="both",
        help="run one side only (no ratios); 'flowml' needs no MLflow venv",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(args.workloads) - set(FULL))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; expected some of a,b,c,d")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    sizes = QUICK if args.quick else FULL
    sides = ["flowml", "mlflow"] if args.side == "both" else [args.side]
    results = run_all(sides, args.workloads, sizes)
    rows = build_rows(results, args.workloads)
    if args.json:
        report = {
            "machine": {
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "quick": args.quick,
            "sizes": {w: sizes[w] for w in args.workloads},
            "rows": [asdict(r) for r in rows],
            "raw": results,
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(rows, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
