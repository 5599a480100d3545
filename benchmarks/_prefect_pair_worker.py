"""One side of `bench_prefect_vs_mlflow.py`: plain Prefect tasks against tracked ones.

Run by flowml's interpreter (``--lib flowml``: ``@flowml.tracked_flow`` and
``@flowml.tracked_task``) or by MLflow's venv (``--lib mlflow``: MLflow used by hand inside
Prefect, a parent run per flow run and a nested run per task with 2 params and 1 metric).
Both log the same values: the task's two arguments as params, its score as a metric. The
Prefect API (``PREFECT_API_URL``) and the tracking store (``FLOWML_TRACKING_URI`` or
``MLFLOW_TRACKING_URI``) come from the environment. Prints one JSON line: the seconds of each
round's task loop, plain and tracked (the two flows of a round run back to back).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=("flowml", "mlflow"), required=True)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from _prefect_baseline import plain_flow as baseline

    plain_flow = baseline()

    tracked_flow, wait = _flowml() if args.lib == "flowml" else _mlflow()

    plain_flow(2)  # warm up Prefect, the store and both code paths
    tracked_flow(2)
    wait()
    plain, tracked = [], []
    for _ in range(args.rounds):
        plain.append(plain_flow(args.tasks))
        tracked.append(tracked_flow(args.tasks))
        wait()  # background work of this round must not land in the next one
    print(json.dumps({"lib": args.lib, "tasks": args.tasks, "plain": plain, "tracked": tracked}))


def _flowml() -> tuple[Any, Any]:
    import flowml
    from flowml.tasks import publisher

    @flowml.tracked_task(name="step")
    def step(i: int, scale: float) -> float:
        return i * scale  # logged as the metric of the task's run

    @flowml.tracked_flow(name="tracked-flow", experiment="bench-flowml", log_result=False)
    def tracked_flow(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            step(i, 0.5)
        return time.perf_counter() - start

    return tracked_flow, publisher.flush


def _mlflow() -> tuple[Any, Any]:
    import mlflow
    from prefect import flow, task

    mlflow.set_experiment("bench-mlflow")
    parent: dict[str, str] = {}

    @task
    def step(i: int, scale: float) -> float:
        with mlflow.start_run(nested=True, parent_run_id=parent["id"], run_name=f"step-{i}"):
            mlflow.log_param("i", i)
            mlflow.log_param("scale", scale)
            mlflow.log_metric("score", i * scale)
        return i * scale

    @flow
    def tracked_flow(n: int) -> float:
        with mlflow.start_run(run_name="tracked-flow") as run:
            parent["id"] = run.info.run_id
            start = time.perf_counter()
            for i in range(n):
                step(i, 0.5)
            return time.perf_counter() - start

    return tracked_flow, lambda: None


if __name__ == "__main__":
    main()
