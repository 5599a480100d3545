"""Tracking workloads, run in a fresh process against flowml or MLflow.

This file runs under two interpreters: the main one (``--lib flowml``) and MLflow's
own virtual environment (``--lib mlflow``). It therefore imports only the standard
library at module level; the library under test is imported inside `Library`.
Both libraries expose the same fluent and client verbs, so each workload is written
once and drives either of them the same way.

Each invocation runs one workload against a fresh SQLite file in ``--workdir`` and
prints one line of JSON (its last line of output) with the timings. Setup (creating
the database, populating runs to search) is done before the clock starts; a check
that the data really landed in the store runs after it stops.

Usage:
    python _tracking_workloads.py --lib flowml --workload a --workdir /tmp/x \\
        --config '{"runs": 200, "params": 10, "tags": 5, "metrics": 20, "steps": 10}'
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LIBS = ("flowml", "mlflow")
WORKLOADS = ("a", "b", "c")

# The search workload's data: every run gets one of these, chosen by a seeded RNG so
# that both libraries hold identical data and must return identical result counts.
LEARNING_RATES = ("0.01", "0.1", "0.001")
TEAMS = ("vision", "nlp", "tabular", "speech")
TAG_FILTER = "tags.team = 'nlp'"
METRIC_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"


class Library:
    """The library under test, behind the verbs both of them share."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.uri = f"sqlite:///{workdir / f'{name}.db'}"
        self.artifact_root = str(workdir / "artifacts")
        if name == "flowml":
            import flowml as fluent
            from flowml import Metric, Param, RunTag, TrackingClient

            self.version = fluent.__version__
            self.client: Any = TrackingClient(self.uri, self.artifact_root)
        elif name == "mlflow":
            import mlflow as fluent
            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param, RunTag

            self.version = fluent.__version__
            self.client = MlflowClient(tracking_uri=self.uri)
        else:
            raise SystemExit(f"unknown --lib {name!r}; expected one of {LIBS}")
        self.fluent: Any = fluent
        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag

    def create_experiment(self, name: str) -> str:
        if self.name == "mlflow":
            return self.client.create_experiment(name, artifact_location=self.artifact_root)
        return self.client.create_experiment(name)


def _metric_value(run: int, key: int, step: int) -> float:
    return ((run * 31 + key * 17 + step * 7) % 1000) / 1000


def _check_runs(lib: Library, experiment_id: str, cfg: dict[str, int]) -> dict[str, Any]:
    """After the clock: the store holds every run and the last run's full history."""
    runs = lib.client.search_runs([experiment_id], "", max_results=1000)
    last = max(runs, key=lambda r: r.info.start_time)
    history = lib.client.get_metric_history(last.info.run_id, "metric_0")
    ok = (
        len(runs) == cfg["runs"]
        and len(last.data.params) == cfg["params"]
        and len(last.data.metrics) == cfg["metrics"]
        and sum(1 for k in last.data.tags if k.startswith("tag_")) == cfg["tags"]
        and len(history) == cfg["steps"]
    )
    return {"runs_found": len(runs), "history_len": len(history), "verified": ok}


def workload_a(lib: Library, cfg: dict[str, int]) -> dict[str, Any]:
    """(a) One fluent call per value: log_param, set_tag, log_metric(step=)."""
    fluent = lib.fluent
    fluent.set_tracking_uri(lib.uri)
    experiment = fluent.set_experiment("bench-a")  # creates the database: setup, untimed
    n_params, n_tags, n_metrics, n_steps = cfg["params"], cfg["tags"], cfg["metrics"], cfg["steps"]
    start = time.perf_counter()
    for r in range(cfg["runs"]):
        with fluent.start_run(run_name=f"run-{r}"):
            for i in range(n_params):
                fluent.log_param(f"param_{i}", f"value-{r}-{i}")
            for i in range(n_tags):
                fluent.set_tag(f"tag_{i}", f"tag-{r}-{i}")
            for s in range(n_steps):
                for k in range(n_metrics):
                    fluent.log_metric(f"metric_{k}", _metric_value(r, k, s), step=s)
    elapsed = time.perf_counter() - start
    calls = cfg["runs"] * (n_params + n_tags + n_metrics * n_steps)
    return {
        "seconds": elapsed,
        "calls": calls,
        "calls_per_s": calls / elapsed,
        **_check_runs(lib, experiment.experiment_id, cfg),
    }


def workload_b(lib: Library, cfg: dict[str, Any]) -> dict[str, Any]:
    """(b) The same values through log_batch (create_run and set_terminated included).

    ``cfg["batching"]`` is ``"run"`` (one call per run holding every value) or ``"step"``
    (params and tags in one call, then one call per step with that step's metrics, as a
    training loop would log them).
    """
    client = lib.client
    experiment_id = lib.create_experiment("bench-b")
    n_params, n_tags, n_metrics, n_steps = cfg["params"], cfg["tags"], cfg["metrics"], cfg["steps"]
    Metric, Param, RunTag = lib.Metric, lib.Param, lib.RunTag
    per_step = cfg.get("batching", "run") == "step"
    calls = 0
    start = time.perf_counter()
    for r in range(cfg["runs"]):
        run_id = client.create_run(experiment_id, run_name=f"run-{r}").info.run_id
        ts = int(time.time() * 1000)
        params = [Param(f"param_{i}", f"value-{r}-{i}") for i in range(n_params)]
        tags = [RunTag(f"tag_{i}", f"tag-{r}-{i}") for i in range(n_tags)]
        if per_step:
            client.log_batch(run_id, params=params, tags=tags)
            for s in range(n_steps):
                client.log_batch(
                    run_id,
                    metrics=[
                        Metric(f"metric_{k}", _metric_value(r, k, s), ts, s)
                        for k in range(n_metrics)
                    ],
                )
            calls += 1 + n_steps
        else:
            metrics = [
                Metric(f"metric_{k}", _metric_value(r, k, s), ts, s)
                for s in range(n_steps)
                for k in range(n_metrics)
            ]
            client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            calls += 1
        client.set_terminated(run_id)
    elapsed = time.perf_counter() - start
    values = cfg["runs"] * (n_params + n_tags + n_metrics * n_steps)
    return {
        "seconds": elapsed,
        "values": values,
        "values_per_s": values / elapsed,
        "batch_calls": calls,
        **_check_runs(lib, experiment_id, cfg),
    }


def _populate(lib: Library, experiment_id: str, n_runs: int) -> None:
    """Setup for (c): runs with params lr/model, metrics acc/loss, tags team/stage."""
    rng = random.Random(20240601)
    client, Metric, Param, RunTag = lib.client, lib.Metric, lib.Param, lib.RunTag
    for r in range(n_runs):
        run_id = client.create_run(experiment_id, run_name=f"run-{r}").info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric("acc", rng.random(), ts, 0), Metric("loss", rng.random(), ts, 0)],
            params=[Param("lr", rng.choice(LEARNING_RATES)), Param("model", f"m{r % 7}")],
            tags=[
                RunTag("team", rng.choice(TEAMS)),
                RunTag("stage", "prod" if r % 10 == 0 else "dev"),
            ],
        )


def search_queries(max_all: int) -> dict[str, dict[str, Any]]:
    """The three timed queries (shared with the report, which prints their text)."""
    return {
        "no_filter": {"filter_string": "", "max_results": max_all, "order_by": None},
        "metric_param": {
            "filter_string": METRIC_FILTER,
            "max_results": 100,
            "order_by": ["metrics.acc DESC"],
        },
        "tag": {"filter_string": TAG_FILTER, "max_results": max_all, "order_by": None},
    }


def workload_c(lib: Library, cfg: dict[str, int]) -> dict[str, Any]:
    """(c) search_runs over ``cfg['search_runs']`` runs: median seconds per query."""
    experiment_id = lib.create_experiment("bench-c")
    setup_start = time.perf_counter()
    _populate(lib, experiment_id, cfg["search_runs"])
    setup_s = time.perf_counter() - setup_start
    out: dict[str, Any] = {"populate_seconds": setup_s, "queries": {}}
    for name, query in search_queries(cfg["max_results"]).items():

        def run_query(query: dict[str, Any] = query) -> Any:
            return lib.client.search_runs([experiment_id], **query)

        first = run_query()  # warm-up (caches, lazy imports), not counted
        times = []
        for _ in range(cfg["repeats"]):
            start = time.perf_counter()
            result = run_query()
            times.append(time.perf_counter() - start)
        out["queries"][name] = {
            "median_s": statistics.median(times),
            "times_s": times,
            "results": len(result),
            "first_run_id_matches": bool(first) and first[0].info.run_id == result[0].info.run_id,
            "first_acc": result[0].data.metrics.get("acc") if len(result) else None,
        }
    return out


RUNNERS: dict[str, Callable[[Library, dict[str, int]], dict[str, Any]]] = {
    "a": workload_a,
    "b": workload_b,
    "c": workload_c,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=LIBS, required=True)
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--config", type=json.loads, required=True, help="sizes, as a JSON object")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    lib = Library(args.lib, args.workdir)
    result = RUNNERS[args.workload](lib, args.config)
    result.update(
        lib=args.lib, version=lib.version, workload=args.workload, python=sys.version.split()[0]
    )
    sys.stdout.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
