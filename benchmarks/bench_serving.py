"""Serving speed: ``flowml models serve`` against ``mlflow models serve``, same model, same run.

One scikit-learn model (a StandardScaler + LogisticRegression pipeline on 8 numeric
columns) is saved once by flowml; both servers serve that same directory (MLflow loads
flowml's format) on loopback ports, one worker each, MLflow with ``--env-manager local``
from its own virtual environment (``.cache/mlflow-venv``, created on first use).

Measured, with one keep-alive HTTP connection per server and the same client code:
  (a) latency of 500 sequential 1-row ``dataframe_split`` requests: p50 and p99;
  (b) throughput of sequential 1,000-row batch requests (rows per second);
  (c) model load time: ``flowml.load_model`` vs ``mlflow.pyfunc.load_model``, cold (package
      import + first load in a fresh interpreter) and warm (median of the next loads).

Targets (issue 4): p50 at most half of MLflow's; batch throughput at least MLflow's.

Usage:
    python benchmarks/bench_serving.py            # full run (about a minute)
    python benchmarks/bench_serving.py --quick    # a smoke run
    python benchmarks/bench_serving.py --side flowml --quick --json   # no MLflow at all
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _compare import chosen_sides, comparison_parser, print_report  # noqa: E402
from _mlflow_env import mlflow_env, mlflow_python  # noqa: E402
from _prefect_server import stop_process  # noqa: E402

FULL = {"requests": 500, "warmup": 50, "batches": 40, "batch_rows": 1_000, "loads": 5}
QUICK = {"requests": 40, "warmup": 5, "batches": 4, "batch_rows": 1_000, "loads": 2}
COLUMNS = [f"x{i}" for i in range(8)]
START_TIMEOUT_S = 180

# "cold": package import plus the first load in a fresh interpreter (what a server or a
# batch job pays at start); "warm": the median of the following loads in that process.
LOAD_SCRIPT = """
import sys, time
start = time.perf_counter()
{imports}
path = sys.argv[1]
{load}(path)
cold = time.perf_counter() - start
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    {load}(path)
    times.append(time.perf_counter() - start)
print(cold, sorted(times)[len(times) // 2])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_model(root: Path) -> tuple[Path, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import flowml.models.api as models

    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(5_000, len(COLUMNS))), columns=COLUMNS)
    labels = (data.sum(axis=1) > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(data, labels)
    path = root / "model"
    models.save_model(pipe, path, input_example=data.head(2))
    return path, data


class _Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                tail = self.log.read().decode()[-3000:]
                raise RuntimeError(f"{self.name} server exited:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} server did not start in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.log.close()


def _start_flowml(model: Path) -> _Server:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "flowml.cli",
        "models",
        "serve",
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return _Server("flowml", cmd, dict(os.environ), port)


def _start_mlflow(model: Path) -> _Server:
    python = mlflow_python()
    port = _free_port()
    cmd = [
        str(python.parent / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model),
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = mlflow_env()
    # MLflow execs `uvicorn` through the shell: it must find the venv's, not ours.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return _Server("mlflow", cmd, env, port)


def _post(conn: http.client.HTTPConnection, body: bytes) -> bytes:
    conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    payload = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {payload[:300]!r}")
    return payload


def _split_body(frame: Any) -> bytes:
    return json.dumps(
        {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    ).encode()


def _measure(server: _Server, data: Any, sizes: dict[str, int]) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    singles = [_split_body(data.iloc[[i % len(data)]]) for i in range(sizes["requests"])]
    for body in singles[: sizes["warmup"]]:
        _post(conn, body)
    latencies = []
    for body in singles:
        start = time.perf_counter()
        _post(conn, body)
        latencies.append(time.perf_counter() - start)
    rows = sizes["batch_rows"]
    batches = [
        _split_body(data.iloc[(i * rows) % 4_000 : (i * rows) % 4_000 + rows])
        for i in range(sizes["batches"])
    ]
    _post(conn, batches[0])
    start = time.perf_counter()
    for body in batches:
        _post(conn, body)
    elapsed = time.perf_counter() - start
    conn.close()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "batch_rows_per_s": rows * len(batches) / elapsed,
    }


def _load_times(
    python: str, imports: str, load: str, model: Path, repeats: int, env: dict[str, str]
) -> tuple[float, float]:
    script = LOAD_SCRIPT.format(imports=imports, load=load)
    done = subprocess.run(
        [python, "-c", script, str(model), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    first, median = map(float, done.stdout.split()[-2:])
    return first * 1e3, median * 1e3


def run(sides: list[str], sizes: dict[str, int]) -> dict[str, Any]:
    report: dict[str, Any] = {"sizes": sizes, "python": platform.python_version(), "sides": {}}
    with tempfile.TemporaryDirectory(prefix="flowml-bench-serving-") as tmp:
        model, data = _make_model(Path(tmp))
        for side in sides:
            server = _start_flowml(model) if side == "flowml" else _start_mlflow(model)
            try:
                server.wait()
                figures = _measure(server, data, sizes)
            finally:
                server.stop()
            if side == "flowml":
                load = _load_times(
                    sys.executable,
                    "import flowml.models.api as m",
                    "m.load_model",
                    model,
                    sizes["loads"],
                    dict(os.environ),
                )
            else:
                load = _load_times(
                    str(mlflow_python()),
                    "import mlflow.pyfunc as m",
                    "m.load_model",
                    model,
                    sizes["loads"],
                    mlflow_env(),
                )
            figures["load_cold_ms"], figures["load_warm_ms"] = load
            report["sides"][side] = figures
    if {"flowml", "mlflow"} <= set(report["sides"]):
        ours, theirs = report["sides"]["flowml"], report["sides"]["mlflow"]
        report["ratios"] = {key: ours[key] / theirs[key] for key in ours}
        report["targets"] = {
            "p50_at_most_half": report["ratios"]["p50_ms"] <= 0.5,
            "throughput_at_least_mlflow": report["ratios"]["batch_rows_per_s"] >= 1.0,
        }
    return report


def _print_table(report: dict[str, Any]) -> None:
    sides = report["sides"]
    labels = {
        "p50_ms": "1-row latency p50 (ms)",
        "p99_ms": "1-row latency p99 (ms)",
        "batch_rows_per_s": "1,000-row batches (rows/s)",
        "load_cold_ms": "import + first load (ms)",
        "load_warm_ms": "load_model, warm median (ms)",
    }
    header = f"{'measure':<30}" + "".join(f"{s:>14}" for s in sides)
    if "ratios" in report:
        header += f"{'flowml/mlflow':>16}"
    print(header)
    for key, label in labels.items():
        line = f"{label:<30}" + "".join(f"{sides[s][key]:>14.2f}" for s in sides)
        if "ratios" in report:
            line += f"{report['ratios'][key]:>16.3f}"
        print(line)
    for name, passed in report.get("targets", {}).items():
        print(f"target {name}: {'PASS' if passed else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    args = comparison_parser(__doc__.splitlines()[0], "small sizes, a smoke run").parse_args(argv)
    return print_report(run(chosen_sides(args), QUICK if args.quick else FULL), args, _print_table)


if __name__ == "__main__":
    sys.exit(main())
