"""The web UI's requests at scale: 10,000 runs x 100 metrics behind a real `flowml server`.

What a page of the UI asks for, timed over loopback HTTP (median of several repetitions):

  (a) the runs table's first page: ``runs/search`` for 50 top-level runs (the tree's query,
      ``tags.mlflow.parentRunId IS NULL``), newest first;
  (b) the same ordered by a metric, with a metric filter;
  (c) the tree's children of one page (``tags.mlflow.parentRunId IN (<50 ids>)``);
  (d) a page deep in the results (page 20, following page tokens);
  (e) one chart: a 200,000-step history through MLflow's ``metrics/get-history`` against
      flowml's ``metrics/history`` thinned to 1,000 points (time and bytes).

The store is a fresh SQLite file seeded through the library (10,000 runs: 9,000 top-level,
1,000 children, each with 100 metrics and 10 params). flowml only: MLflow's server has no
downsampling endpoint to compare (e) with; (a)-(d) are the same requests ``bench_tracking``
already compares against MLflow at the store level.

Usage:
    python benchmarks/bench_ui.py             # 10,000 runs x 100 metrics (a few minutes)
    python benchmarks/bench_ui.py --quick     # 1,000 runs x 20 metrics
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

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
API = "/ajax-api/2.0"


def seed(root: Path, runs: int, metrics: int, history: int) -> dict:
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.entities import Metric, Param, RunTag

    client = TrackingClient(f"sqlite:///{root / 'flowml.db'}", str(root / "artifacts"))
    exp = client.create_experiment("scale")
    now = int(time.time() * 1000)
    parents: list[str] = []
    for i in range(runs):
        parent = parents[i % len(parents)] if i % 10 == 9 and parents else None
        run = client.create_run(exp, start_time=now + i, run_name=f"run-{i}", parent_run_id=parent)
        rid = run.info.run_id
        if parent is None:
            parents.append(rid)
        client.store.log_batch(
            rid,
            metrics=[
                Metric(f"m{k}", ((i * 7 + k * 13) % 1000) / 1000, now, 0) for k in range(metrics)
            ],
            params=[Param(f"p{k}", str((i + k) % 17)) for k in range(10)],
            tags=[RunTag("team", "bench")],
        )
    long_run = client.create_run(exp, run_name="long-history").info.run_id
    points = [Metric("loss", 1 / (1 + s) + (s % 97) / 1e4, now + s, s) for s in range(history)]
    for k in range(0, len(points), 1000):
        client.store.log_batch(long_run, metrics=points[k : k + 1000])
    return {"experiment_id": exp, "long_run": long_run}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median_ms(call, repeat: int) -> float:  # type: ignore[no-untyped-def]
    call()  # warm caches once
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs, metrics, history = (1000, 20, 20_000) if args.quick else (10_000, 100, 200_000)
    with tempfile.TemporaryDirectory(prefix="flowml-bench-ui-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        ids = seed(root, runs, metrics, history)
        seeded_s = time.perf_counter() - started
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowml.cli",
                "server",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{root / 'flowml.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=root,
            env={**os.environ, "FLOWML_HOME": str(root / "home")},
        )
        try:
            results = measure(f"http://127.0.0.1:{port}", ids, repeat=3 if args.quick else 7)
        finally:
            server.terminate()
            server.wait(30)
    results["seed_seconds"] = round(seeded_s, 1)
    results["size"] = f"{runs} runs x {metrics} metrics, history {history} steps"
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:<44} {value}")


def measure(url: str, ids: dict, repeat: int) -> dict:
    with httpx.Client(base_url=url, timeout=300) as http:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        exp = [ids["experiment_id"]]
        top = "tags.`mlflow.parentRunId` IS NULL"

        def search(**body):  # type: ignore[no-untyped-def]
            reply = http.post(f"{API}/mlflow/runs/search", json={"experiment_ids": exp, **body})
            reply.raise_for_status()
            return reply.json()

        first = search(filter=top, max_results=50, order_by=["attributes.start_time DESC"])
        page_ids = ", ".join(f"'{r['info']['run_id']}'" for r in first["runs"])
        out: dict = {}
        out["(a) first page, 50 top-level runs (ms)"] = round(
            median_ms(
                lambda: search(filter=top, max_results=50, order_by=["attributes.start_time DESC"]),
                repeat,
            ),
            1,
        )
        out["(b) ordered by a metric, filtered (ms)"] = round(
            median_ms(
                lambda: search(
                    filter="metrics.m7 > 0.5", max_results=50, order_by=["metrics.m42 DESC"]
                ),
                repeat,
            ),
            1,
        )
        out["(c) children of one page (ms)"] = round(
            median_ms(
                lambda: search(
                    filter=f"tags.`mlflow.parentRunId` IN ({page_ids})", max_results=1000
                ),
                repeat,
            ),
            1,
        )

        def deep() -> None:
            token = None
            for _ in range(20):
                token = search(filter=top, max_results=50, page_token=token).get("next_page_token")

        out["(d) 20 pages by token, per page (ms)"] = round(
            median_ms(deep, max(1, repeat // 3)) / 20, 1
        )
        long_run = ids["long_run"]
        full = http.get(
            f"{API}/mlflow/metrics/get-history", params={"run_id": long_run, "metric_key": "loss"}
        )
        thin = http.post(
            f"{API}/flowml/metrics/history",
            json={"run_ids": [long_run], "metric_keys": ["loss"], "max_points": 1000},
        )
        t_full = median_ms(
            lambda: http.get(
                f"{API}/mlflow/metrics/get-history",
                params={"run_id": long_run, "metric_key": "loss"},
            ),
            3,
        )
        t_thin = median_ms(
            lambda: http.post(
                f"{API}/flowml/metrics/history",
                json={"run_ids": [long_run], "metric_keys": ["loss"], "max_points": 1000},
            ),
            3,
        )
        out["(e) full history: ms / KiB"] = f"{t_full:.0f} / {len(full.content) // 1024}"
        out["(e) thinned to 1,000 points: ms / KiB"] = f"{t_thin:.0f} / {len(thin.content) // 1024}"
        out["(e) ratio full/thinned (time, bytes)"] = (
            f"{t_full / t_thin:.1f}x, {len(full.content) / len(thin.content):.0f}x"
        )
    return out


if __name__ == "__main__":
    main()
