"""MLflow-side workers of bench_import.py, run with the interpreter of MLflow's own venv.

python _import_workloads.py schema SOURCE_URI
    create an empty MLflow 3.17 store (MLflow's own migrations) with one experiment;
python _import_workloads.py copy SOURCE_URI DEST_URI MAX_RUNS
    copy up to MAX_RUNS runs with MLflow's client: read each run and its metric
    histories, then create_run + log_batch (1,000 metrics a call) into DEST_URI.
    Prints JSON: runs copied, seconds reading, seconds writing.
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def schema(uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.create_experiment("bench-import")


def copy(source: str, dest: str, max_runs: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, ViewType

    src, dst = MlflowClient(source), MlflowClient(dest)
    experiment = src.get_experiment_by_name("bench-import")
    exp_id = dst.create_experiment("bench-import")
    read = write = 0.0
    copied = 0
    token = None
    while copied < max_runs:
        t0 = time.perf_counter()
        page = src.search_runs(
            [experiment.experiment_id],
            run_view_type=ViewType.ALL,
            max_results=min(1000, max_runs - copied),
            page_token=token,
        )
        runs = []
        for run in page:
            history = [
                m for key in run.data.metrics for m in src.get_metric_history(run.info.run_id, key)
            ]
            runs.append((run, history))
        read += time.perf_counter() - t0
        t0 = time.perf_counter()
        for run, history in runs:
            new = dst.create_run(
                exp_id,
                start_time=run.info.start_time,
                tags=run.data.tags,
                run_name=run.info.run_name,
            )
            params = [Param(k, v) for k, v in run.data.params.items()]
            metrics = [Metric(m.key, m.value, m.timestamp, m.step) for m in history]
            for start in range(0, max(len(metrics), 1), 1000):
                dst.log_batch(
                    new.info.run_id,
                    metrics=metrics[start : start + 1000],
                    params=params if start == 0 else [],
                )
            dst.set_terminated(new.info.run_id, run.info.status, run.info.end_time)
        write += time.perf_counter() - t0
        copied += len(runs)
        token = page.token
        if not token:
            break
    print(json.dumps({"runs": copied, "read_s": read, "write_s": write}))


if __name__ == "__main__":
    if sys.argv[1] == "schema":
        schema(sys.argv[2])
    else:
        copy(sys.argv[2], sys.argv[3], int(sys.argv[4]))
