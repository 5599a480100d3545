"""The genuine MLflow 3.17 client, in its own virtual environment, against `flowml server`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.mlflow

TRACKING_SCRIPT = r"""
import math
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException, RestException

client = MlflowClient()
experiment_id = mlflow.set_experiment("compat").experiment_id
experiment = client.get_experiment(experiment_id)
assert experiment.artifact_location == f"mlflow-artifacts:/{experiment_id}", experiment
assert experiment.lifecycle_stage == "active"

with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_param("lr", 0.1)
    mlflow.log_params({"depth": 3, "act": "relu"})
    mlflow.log_metric("loss", 0.5, step=0)
    mlflow.log_metric("loss", 0.25, step=1)
    mlflow.log_metric("odd", float("nan"), step=0)
    mlflow.log_metrics({"acc": 0.8, "f1": 0.7}, step=1)
    mlflow.set_tag("team", "ml")
    mlflow.set_tags({"stage": "dev", "gone": "soon"})
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("acc", 0.9)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.txt")
        with open(path, "w") as fh:
            fh.write("hello artifacts")
        mlflow.log_artifact(path, artifact_path="inputs")
        os.makedirs(os.path.join(tmp, "tree", "sub"))
        with open(os.path.join(tmp, "tree", "sub", "deep.bin"), "wb") as fh:
            fh.write(bytes(range(256)) * 4096)
        mlflow.log_artifacts(os.path.join(tmp, "tree"), artifact_path="tree")
    mlflow.log_text("some text", "notes/readme.md")
    mlflow.log_dict({"a": 1}, "config.json")

parent_id, child_id = parent.info.run_id, child.info.run_id
client.log_batch(
    parent_id,
    metrics=[Metric("batch", float(i), 1000 + i, i) for i in range(5)],
    params=[Param("batched", "yes")],
    tags=[RunTag("batch.tag", "1")],
)
client.delete_tag(parent_id, "gone")

run = client.get_run(parent_id)
assert run.info.status == "FINISHED" and run.info.end_time, run.info
assert run.info.run_name == "parent"
assert run.data.params == {"lr": "0.1", "depth": "3", "act": "relu", "batched": "yes"}
assert run.data.metrics["loss"] == 0.25 and run.data.metrics["batch"] == 4.0
assert math.isnan(run.data.metrics["odd"])
assert run.data.tags["team"] == "ml" and "gone" not in run.data.tags
assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{parent_id}/artifacts"
assert client.get_run(child_id).data.tags["mlflow.parentRunId"] == parent_id

history = client.get_metric_history(parent_id, "loss")
assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)], history
assert [m.timestamp > 0 for m in history] == [True, True]
assert [m.step for m in client.get_metric_history(parent_id, "batch")] == [0, 1, 2, 3, 4]

# Search: filter, order, pages.
for i in range(5):
    with mlflow.start_run(run_name=f"trial-{i}"):
        mlflow.log_metric("score", i)
        mlflow.log_param("kind", "even" if i % 2 == 0 else "odd")
names, token = [], None
while True:
    page = client.search_runs(
        [experiment_id], filter_string="metrics.score >= 1 and params.kind = 'even'",
        order_by=["metrics.score DESC"], max_results=1, page_token=token,
    )
    names += [r.info.run_name for r in page]
    token = page.token
    if not token:
        break
assert names == ["trial-4", "trial-2"], names
nested = mlflow.search_runs(
    [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    output_format="list",
)
assert [r.info.run_id for r in nested] == [child_id]
found = mlflow.search_runs(
    experiment_names=["compat"], filter_string="attributes.run_name = 'parent'"
)
assert list(found["run_id"]) == [parent_id]
searched = client.search_runs([experiment_id], filter_string="attributes.run_name = 'parent'")[0]
assert searched.data.params == run.data.params and searched.data.tags == run.data.tags
assert searched.data.metrics["loss"] == 0.25 and math.isnan(searched.data.metrics["odd"])
assert searched.data.metrics.keys() == run.data.metrics.keys()

# Artifacts through the proxy.
listing = sorted(f.path for f in client.list_artifacts(parent_id))
assert listing == ["config.json", "inputs", "notes", "tree"], listing
assert [f.path for f in client.list_artifacts(parent_id, "tree/sub")] == ["tree/sub/deep.bin"]
with tempfile.TemporaryDirectory() as dst:
    local = client.download_artifacts(parent_id, "inputs/data.txt", dst)
    assert open(local).read() == "hello artifacts"
    tree = mlflow.artifacts.download_artifacts(run_id=parent_id, artifact_path="tree", dst_path=dst)
    with open(os.path.join(tree, "sub", "deep.bin"), "rb") as fh:
        assert fh.read() == bytes(range(256)) * 4096
assert mlflow.artifacts.load_text(f"runs:/{parent_id}/notes/readme.md") == "some text"
assert mlflow.artifacts.load_dict(f"runs:/{parent_id}/config.json") == {"a": 1}

# Errors carry MLflow's codes.
try:
    client.get_run("0" * 32)
    raise AssertionError("get_run of a missing run succeeded")
except RestException as exc:
    assert exc.error_code == "RESOURCE_DOES_NOT_EXIST", exc.error_code
try:
    client.create_experiment("compat")
    raise AssertionError("a duplicate experiment was created")
except RestException as exc:
    assert exc.error_code == "RESOURCE_ALREADY_EXISTS", exc.error_code
try:
    client.log_param(parent_id, "lr", "0.9")
    raise AssertionError("a param was overwritten")
except MlflowException as exc:
    assert exc.error_code == "INVALID_PARAMETER_VALUE", exc.error_code
assert mlflow.get_experiment_by_name("missing-experiment") is None

# Lifecycle.
client.set_experiment_tag(experiment_id, "owner", "team-a")
client.delete_run(child_id)
assert client.get_run(child_id).info.lifecycle_stage == "deleted"
client.restore_run(child_id)
other = client.create_experiment("to-rename")
client.rename_experiment(other, "renamed")
client.delete_experiment(other)
assert client.get_experiment(other).lifecycle_stage == "deleted"
assert client.get_experiment_by_name("renamed").experiment_id == other
client.restore_experiment(other)
# Dataset inputs become flowml lineage.
import pandas as pd

with mlflow.start_run(run_name="with-data") as data_run:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    dataset = mlflow.data.from_pandas(frame, source=os.path.abspath("wine.csv"), name="wine")
    mlflow.log_input(dataset, context="training")
print("RESULT", experiment_id, parent_id, data_run.info.run_id, dataset.digest)
"""


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_mlflow_client_tracks_through_flowml_server(
    server_factory, run_mlflow_against, tmp_path, backend, request
):
    # On PostgreSQL a search page's values are JSON the database writes: MLflow's client
    # must read those replies as it reads the others.
    if backend == "sqlite":
        store_uri = f"sqlite:///{tmp_path / 'flowml.db'}"
    else:
        store_uri = request.getfixturevalue("pg_url")
    srv = server_factory(store_uri, tmp_path / "srv")
    out = run_mlflow_against(srv.url, TRACKING_SCRIPT)
    _, experiment_id, parent_id, data_run_id, digest = out.strip().splitlines()[-1].split()

    # flowml's own client reads what MLflow's client wrote, and the bytes sit at the
    # run's real location under the destination.
    from flowml.tracking.client import TrackingClient

    client = TrackingClient(store_uri, str(srv.destination))
    try:
        run = client.get_run(parent_id)
        assert run.data.params["lr"] == "0.1"
        root = Path(run.info.artifact_uri)
        assert root == srv.destination / experiment_id / parent_id / "artifacts"
        assert (root / "inputs" / "data.txt").read_text() == "hello artifacts"
        assert client.get_experiment(experiment_id).tags["owner"] == "team-a"
        inputs = client.store.search_lineage(run_ids=[data_run_id])
        assert [(e.kind, e.name, e.digest) for e in inputs] == [("dataset", "wine", digest)]
        assert inputs[0].uri.endswith("wine.csv")
    finally:
        client.close()
