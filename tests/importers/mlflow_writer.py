"""Runs in MLflow 3.17's own venv (never imported by the test process): writes an MLflow
store with the genuine client and prints what it wrote as JSON.

Usage: python mlflow_writer.py TRACKING_URI
"""

import json
import sys
import warnings

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
y = (X.a > 9).astype(int)

exp_a = mlflow.set_experiment("imp-a").experiment_id
client.set_experiment_tag(exp_a, "team", "vision")
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": "0.1", "depth": 3})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metric("odd", float("nan"), step=0)
    mlflow.log_input(mlflow.data.from_pandas(X, name="train"), context="training")
    with open("notes.txt", "w") as fh:
        fh.write("hello")
    mlflow.log_artifact("notes.txt", artifact_path="docs")
    info = mlflow.sklearn.log_model(
        LogisticRegression().fit(X, y),
        name="model",
        registered_model_name="clf",
        input_example=X.head(2),
    )
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("acc", 0.9)
v2 = mlflow.register_model(f"models:/{info.model_id}", "clf")
client.set_registered_model_alias("clf", "champion", "1")
client.set_registered_model_tag("clf", "owner", "ana")
client.set_model_version_tag("clf", "2", "validated", "yes")
client.transition_model_version_stage("clf", "2", "Staging")

exp_b = mlflow.set_experiment("imp-b").experiment_id
run_ids = []
for i in range(6):
    with mlflow.start_run(run_name=f"sweep-{i}") as run:
        mlflow.log_param("i", i)
        client.log_batch(
            run.info.run_id,
            metrics=[
                mlflow.entities.Metric(key, float(i * step), 1_700_000_000_000 + step, step)
                for key in ("m1", "m2", "m3")
                for step in range(50)
            ],
        )
        run_ids.append(run.info.run_id)
client.delete_run(run_ids[-1])
gone = client.create_experiment("imp-gone")
with mlflow.start_run(experiment_id=gone, run_name="in-gone") as in_gone:
    mlflow.log_metric("x", 1.0)
client.delete_experiment(gone)

print(
    json.dumps(
        {
            "experiments": {"imp-a": exp_a, "imp-b": exp_b, "imp-gone": gone},
            "parent": parent.info.run_id,
            "child": child.info.run_id,
            "sweep": run_ids,
            "in_gone": in_gone.info.run_id,
            "model_id": info.model_id,
            "versions": ["1", v2.version],
            "predictions": LogisticRegression().fit(X, y).predict(X.head(5)).tolist(),
        }
    )
)
