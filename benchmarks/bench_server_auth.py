"""What token auth costs `flowml server`: the same workloads with ``--auth none`` and ``token``.

Two servers on one fresh SQLite store each (one worker, loopback), driven by the same client
code over one keep-alive connection:
  (a) per-call logging: sequential ``runs/log-metric`` requests per second;
  (b) ``runs/log-batch`` of 1,000 metric values per request: values per second;
  (c) ``runs/search`` of one experiment's 200 runs: median latency.
With auth every request also authenticates (one indexed token lookup; scrypt only on a
token's first use in the process) and checks the run's experiment permission.

Usage:
    python benchmarks/bench_server_auth.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
API = "/api/2.0/mlflow"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(root: Path, auth: str) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    store = f"sqlite:///{root / 'flowml.db'}"
    headers: dict[str, str] = {}
    if auth == "token":
        from flowml.server.auth.store import AuthStore

        token, _ = AuthStore.open(store).create_token("bench", create_user=True)
        headers = {"Authorization": f"Bearer {token}"}
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowml.cli", "server", "--port", str(port), "--auth", auth,
         "--backend-store-uri", store, "--artifacts-destination", str(root / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url, headers
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _measure(url: str, headers: dict[str, str], calls: int, batches: int) -> dict[str, float]:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        exp = http.post(f"{API}/experiments/create", json={"name": "bench"}).json()["experiment_id"]
        run_id = http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"][
            "run_id"
        ]
        started = time.perf_counter()
        for step in range(calls):
            body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": step}
            http.post(f"{API}/runs/log-metric", json=body).raise_for_status()
        per_call = calls / (time.perf_counter() - started)
        started = time.perf_counter()
        for batch in range(batches):
            metrics = [
                {"key": f"k{i % 10}", "value": float(i), "timestamp": 1, "step": batch * 1000 + i}
                for i in range(1000)
            ]
            http.post(
                f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
            ).raise_for_status()
        values = batches * 1000 / (time.perf_counter() - started)
        for _ in range(200):
            http.post(f"{API}/runs/create", json={"experiment_id": exp}).raise_for_status()
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            http.post(
                f"{API}/runs/search", json={"experiment_ids": [exp], "max_results": 1000}
            ).raise_for_status()
            latencies.append(time.perf_counter() - started)
    search_ms = 1000 * statistics.median(latencies)
    return {"log_metric_req_s": per_call, "log_batch_values_s": values, "search_ms": search_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    calls, batches = (100, 5) if args.quick else (1000, 30)
    results: dict[str, Any] = {}
    for auth in ("none", "token"):
        with tempfile.TemporaryDirectory() as tmp:
            proc, url, headers = _start(Path(tmp), auth)
            try:
                results[auth] = _measure(url, headers, calls, batches)
            finally:
                proc.terminate()
                proc.wait(30)
    results["token_vs_none"] = {
        k: results["token"][k] / results["none"][k] for k in results["none"]
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key in results["none"]:
        none, token = results["none"][key], results["token"][key]
        ratio = results["token_vs_none"][key]
        print(f"{key:22s} none {none:10.1f}  token {token:10.1f}  ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
