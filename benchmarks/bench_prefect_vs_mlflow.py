"""flowml against MLflow used by hand inside Prefect, on a real Prefect server, tracking on
PostgreSQL.

The setup of a team: ``prefect server`` in its own process on PostgreSQL (`_prefect_server`),
tracking metadata in PostgreSQL (flowml: a fresh schema of the ``test`` database; MLflow: a
fresh database, its own schema made by its migrations). Each side runs in its own process
(`_prefect_pair_worker.py`; MLflow in its own venv, `_mlflow_env`): rounds of a plain
``@flow`` of ``--tasks`` plain ``@task`` runs, then the same flow tracked (flowml's
decorators; or MLflow's nested run per task with 2 params and 1 metric). A side's overhead
per task is the median over its rounds of (tracked - plain) / tasks. The two sides run in
alternating blocks of rounds, so load from other processes on a shared machine hits both.

Usage:
    python benchmarks/bench_prefect_vs_mlflow.py                  # 200 tasks, 2 x 3 rounds
    python benchmarks/bench_prefect_vs_mlflow.py --tasks 50 --blocks 1 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import _mlflow_env  # noqa: E402
import _prefect_server  # noqa: E402


@contextlib.contextmanager
def mlflow_database() -> Iterator[str]:
    """A fresh PostgreSQL database for MLflow's tracking store; yields its URI."""
    name = f"bench_mlflow_{uuid.uuid4().hex[:10]}"
    with _prefect_server._admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{_prefect_server.PG}/{name}"
    finally:
        with _prefect_server._admin() as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _side(python: str, lib: str, env: dict[str, str], tasks: int, rounds: int) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(HERE / "_prefect_pair_worker.py"), "--lib", lib, "--tasks", str(tasks),
         "--rounds", str(rounds)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the {lib} side failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per block")
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mlflow_python = str(
        _mlflow_env.mlflow_python(
            _mlflow_env.PREFECT_VENV_DIR, extra=(_mlflow_env.PREFECT_REQUIREMENT,)
        )
    )
    paired: dict[str, list[float]] = {"flowml": [], "mlflow": []}
    plain: dict[str, list[float]] = {"flowml": [], "mlflow": []}
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(_prefect_server.prefect_server())
        flowml_uri = stack.enter_context(_prefect_server.postgres_schema())
        mlflow_uri = stack.enter_context(mlflow_database())
        home = stack.enter_context(_tempdir())
        stack.enter_context(contextlib.chdir(home))  # MLflow's artifacts (./mlruns) go there
        base = {**os.environ, "PREFECT_API_URL": api, "PREFECT_LOGGING_LEVEL": "WARNING"}
        envs = {
            "flowml": {
                **base,
                "FLOWML_TRACKING_URI": flowml_uri,
                "FLOWML_HOME": str(home),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
                ),
            },
            "mlflow": {**_mlflow_env.mlflow_env(base), "MLFLOW_TRACKING_URI": mlflow_uri},
        }
        pythons = {"flowml": sys.executable, "mlflow": mlflow_python}
        for _ in range(args.blocks):
            for lib in ("flowml", "mlflow"):
                got = _side(pythons[lib], lib, envs[lib], args.tasks, args.rounds)
                for p, t in zip(got["plain"], got["tracked"], strict=True):
                    paired[lib].append((t - p) * 1000 / args.tasks)
                    plain[lib].append(p * 1000 / args.tasks)
    report = {
        "tasks": args.tasks,
        "rounds": args.rounds * args.blocks,
        "setup": "prefect server on PostgreSQL; tracking on PostgreSQL",
        **{
            f"{lib}_overhead_ms_per_task": round(statistics.median(paired[lib]), 3)
            for lib in paired
        },
        **{f"{lib}_plain_ms_per_task": round(statistics.median(plain[lib]), 3) for lib in plain},
        "paired_ms": {lib: [round(x, 2) for x in paired[lib]] for lib in paired},
    }
    report["mlflow_over_flowml"] = round(
        report["mlflow_overhead_ms_per_task"] / max(report["flowml_overhead_ms_per_task"], 1e-3),
        1,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        r = report
        print(
            f"Tracking inside Prefect ({args.tasks} tasks, {r['rounds']} paired rounds per "
            f"side; {r['setup']})\n"
            f"  plain @task              flowml side {r['flowml_plain_ms_per_task']:.2f} ms/task,"
            f" MLflow side {r['mlflow_plain_ms_per_task']:.2f} ms/task\n"
            f"  flowml @tracked_task     {r['flowml_overhead_ms_per_task']:8.3f} ms/task more\n"
            f"  MLflow nested run        {r['mlflow_overhead_ms_per_task']:8.3f} ms/task more"
            f" (by hand: 2 params, 1 metric)\n"
            f"  MLflow / flowml          x{r['mlflow_over_flowml']}"
        )
    return 0


@contextlib.contextmanager
def _tempdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="flowml-bench-") as path:
        yield Path(path)


if __name__ == "__main__":
    sys.exit(main())
