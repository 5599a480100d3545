"""Images and tables flowml logs are laid out as MLflow lays them out: the genuine MLflow
3.17 client, against `flowml server`, reads flowml's tables and sees its image series named
exactly like its own."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import flowml
from flowml.tracking import fluent

pytestmark = pytest.mark.mlflow

# key, step, timestamp, uuid, compressed?, extension: the fields MLflow's UI parses
IMAGE_NAME = re.compile(
    r"^images/(?P<key>[^+]+)\+step\+(?P<step>\d+)\+timestamp\+\d+\+[0-9a-f-]{36}"
    r"(?P<compressed>\+compressed)?\.(?P<ext>png|webp)$"
)

MLFLOW_SIDE = r"""
import json, sys
import mlflow, numpy as np
from mlflow import MlflowClient

client = MlflowClient()
flowml_run, experiment_id = sys.argv[1], sys.argv[2]
table = client.load_table(experiment_id, "eval/scores.json", run_ids=[flowml_run],
                          extra_columns=["run_id"])
with mlflow.start_run(experiment_id=experiment_id) as run:
    # MLflow's fluent log_image uploads in the background by default: wait for the files.
    mlflow.log_image(np.zeros((8, 8, 3), dtype=np.uint8), key="val/samples", step=2,
                     synchronous=True)
images = [f.path for f in client.list_artifacts(run.info.run_id, "images")]
tags = client.get_run(run.info.run_id).data.tags
print(json.dumps({"table": table.to_dict(orient="list"), "images": images,
                  "tag": tags.get("mlflow.loggedImages")}))
"""


def _shape(path: str) -> tuple[str, str, bool, str]:
    match = IMAGE_NAME.match(path)
    assert match, path
    return match["key"], match["step"], bool(match["compressed"]), match["ext"]


def test_mlflow_reads_flowml_tables_and_names_images_alike(server, run_mlflow_against):
    flowml.set_tracking_uri(server.url)
    exp_id = flowml.create_experiment("media-interop")
    with flowml.start_run(experiment_id=exp_id) as run:
        flowml.log_image(np.zeros((8, 8, 3), dtype=np.uint8), key="val/samples", step=2)
        flowml.log_table({"input": ["a", "b"], "score": [0.5, 0.25]}, "eval/scores.json")
        flowml.log_table({"input": ["c"], "score": [1.0]}, "eval/scores.json")
    ours = sorted(f.path for f in fluent.get_client().list_artifacts(run.info.run_id, "images"))

    out = run_mlflow_against(server.url, MLFLOW_SIDE, run.info.run_id, exp_id)
    theirs = json.loads(out.strip().splitlines()[-1])
    assert theirs["table"]["input"] == ["a", "b", "c"]
    assert theirs["table"]["score"] == [0.5, 0.25, 1.0]
    assert theirs["table"]["run_id"] == [run.info.run_id] * 3
    assert sorted(map(_shape, ours)) == sorted(map(_shape, theirs["images"]))
    assert theirs["tag"] == flowml.get_run(run.info.run_id).data.tags["mlflow.loggedImages"]
