"""Import speed: ``flowml import mlflow`` against copying with MLflow's own client.

Workload (issue 13, "Speed"): an MLflow 3.17 SQLite store holding R runs (default 5,000),
each with 10 params, 5 tags and 20 metrics x 100 steps. The store's schema comes from
MLflow's own migrations (in its venv); the rows are then inserted straight into MLflow's
tables, since writing them through MLflow's client would take as long as the baseline.

- flowml: `import_mlflow` into a fresh flowml SQLite database (this interpreter);
- MLflow: its client, in its own venv, reads each run and its metric histories
  (search_runs, get_metric_history) and writes it with create_run + log_batch (1,000
  metrics a call) + set_terminated into a fresh MLflow SQLite store. With
  ``--baseline-runs`` smaller than R it copies that many runs and the per-run time is
  scaled to R (each run costs the same fixed calls, so the scaling is linear).

The ratio is computed against MLflow's writing time alone (the conservative figure) and
also shown against read + write.

Usage:
    python benchmarks/bench_import.py                       # 5,000 runs; MLflow copies 250
    python benchmarks/bench_import.py --runs 500 --baseline-runs 500
    python benchmarks/bench_import.py --runs 5000 --baseline-runs 5000   # all of it (slow)
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _mlflow_env import mlflow_env, mlflow_python  # noqa: E402

WORKER = HERE / "_import_workloads.py"
TARGET_RATIO = 20.0


def build_source(db: Path, runs: int, metrics: int, steps: int, python: Path) -> None:
    """An MLflow store at ``db``: schema by MLflow, rows inserted in bulk."""
    subprocess.run([str(python), str(WORKER), "schema", f"sqlite:///{db}"], check=True,
                   env=mlflow_env())  # fmt: skip
    rng = random.Random(0)
    with sqlite3.connect(db) as conn:
        exp_id, location = conn.execute(
            "SELECT experiment_id, artifact_location FROM experiments WHERE name='bench-import'"
        ).fetchone()
        base = 1_700_000_000_000
        for r in range(runs):
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            start = base + r * 1000
            conn.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id) VALUES (?, ?, 'LOCAL', '', '', 'bench', "
                "'FINISHED', ?, ?, '', 'active', ?, ?)",
                (run_id, f"run-{r}", start, start + 900, f"{location}/{run_id}/artifacts", exp_id),
            )
            conn.executemany(
                "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                [(f"p{i}", str(rng.random()), run_id) for i in range(10)],
            )
            tags = [(f"t{i}", f"v{i}", run_id) for i in range(4)]
            tags.append(("mlflow.runName", f"run-{r}", run_id))
            conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
            points = [
                (f"m{k}", rng.random(), start + s, s, 0, run_id)
                for k in range(metrics)
                for s in range(steps)
            ]
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, step, is_nan, "
                "run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                points,
            )
            conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, "
                             "run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
                             [(f"m{k}", points[k * steps + steps - 1][1], start + steps - 1,
                               steps - 1, run_id) for k in range(metrics)])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument(
        "--baseline-runs",
        type=int,
        default=250,
        help="runs MLflow's client copies (its time is scaled to --runs)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = mlflow_python()
    with tempfile.TemporaryDirectory(prefix="flowml-bench-import-") as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "mlflow.db"
        t0 = time.perf_counter()
        build_source(source, args.runs, args.metrics, args.steps, python)
        print(f"source built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        from flowml.importers.mlflow import import_mlflow

        t0 = time.perf_counter()
        report = import_mlflow(f"sqlite:///{source}",
                               tracking_uri=f"sqlite:///{tmp_path / 'flowml.db'}",
                               artifact_root=str(tmp_path / "artifacts"))  # fmt: skip
        flowml_s = time.perf_counter() - t0
        assert report.matches, report.rows

        baseline_runs = min(args.baseline_runs, args.runs)
        done = subprocess.run(
            [str(python), str(WORKER), "copy", f"sqlite:///{source}",
             f"sqlite:///{tmp_path / 'mlflow-copy.db'}", str(baseline_runs)],
            check=True, capture_output=True, text=True, env=mlflow_env(),
        )  # fmt: skip
        mlflow_run = json.loads(done.stdout.strip().splitlines()[-1])
    scale = args.runs / mlflow_run["runs"]
    write_s = mlflow_run["write_s"] * scale
    copy_s = (mlflow_run["write_s"] + mlflow_run["read_s"]) * scale
    result = {
        "runs": args.runs, "metrics": args.metrics, "steps": args.steps,
        "metric_points": report.row("metric points").after,
        "flowml_import_s": round(flowml_s, 2),
        "mlflow_runs_copied": mlflow_run["runs"],
        "mlflow_write_s": round(write_s, 2), "mlflow_read_plus_write_s": round(copy_s, 2),
        "scaled": scale != 1,
        "ratio_vs_write": round(write_s / flowml_s, 1),
        "ratio_vs_copy": round(copy_s / flowml_s, 1),
        "target": TARGET_RATIO,
    }  # fmt: skip
    result["pass"] = result["ratio_vs_write"] >= TARGET_RATIO
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        note = f" (measured on {mlflow_run['runs']} runs, scaled)" if scale != 1 else ""
        print(f"Import {args.runs} runs x {args.metrics} metrics x {args.steps} steps "
              f"({result['metric_points']:,} points)")  # fmt: skip
        print(f"  flowml import mlflow          {flowml_s:10.1f} s")
        print(f"  MLflow create_run+log_batch   {write_s:10.1f} s{note}")
        print(f"  MLflow read + write           {copy_s:10.1f} s{note}")
        print(
            f"  ratio (write only)            {result['ratio_vs_write']:10.1f}x  "
            f"target >= {TARGET_RATIO:.0f}x  {'PASS' if result['pass'] else 'FAIL'}"
        )
        print(f"  ratio (read + write)          {result['ratio_vs_copy']:10.1f}x")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
