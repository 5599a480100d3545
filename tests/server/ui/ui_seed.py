"""Seed a store for the UI tests (and the README screenshots): run as a script.

``python ui_seed.py <root>`` fills ``<root>/flowml.db`` and ``<root>/artifacts`` through the
library (the way users write runs) and prints a JSON summary of the ids it made:

- experiment ``wine-quality``: a flow run (parent) with three nested task runs, and six
  top-level training runs with params, 200-step metric histories and artifacts of every
  previewable kind (text, JSON, YAML, CSV, PNG, an MLmodel directory);
- lineage: a dataset read by ``train`` runs, a task-result link between tasks, the model
  each training run produced;
- registered model ``wine-classifier`` with three versions, a stage, the ``champion``
  alias and an approval decision in its audit trail.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import time
import zlib
from pathlib import Path


def tiny_png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG (a colour gradient), written without an imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 5 % 256, y * 8 % 256, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def predict(model_input):  # the registered model: a plain function
    return model_input.sum(axis=1)


def seed(root: Path) -> dict:
    import pandas as pd

    import flowml
    from flowml.registry.client import RegistryClient
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.entities import Metric, Param, RunTag
    from flowml.tracking.lineage import LineageEntry

    uri = f"sqlite:///{root / 'flowml.db'}"
    destination = str(root / "artifacts")
    os.environ["FLOWML_TRACKING_URI"] = uri
    os.environ["FLOWML_ARTIFACT_ROOT"] = destination
    client = TrackingClient(uri, destination)
    registry = RegistryClient(uri, uri)
    exp = client.create_experiment("wine-quality")
    client.create_experiment("churn")
    gone = client.create_experiment("old-sandbox")
    client.delete_experiment(gone)
    start = int(time.time() * 1000) - 3_600_000
    dataset = "file:///data/wine.parquet"

    flow = client.create_run(
        exp,
        start_time=start,
        run_name="train-flow",
        tags={"flowml.prefect.flow_run_id": "0b6e4c1e-8d8e-4f4c-9a43-5f5d2e3c1a01"},
    )
    task_ids = []
    for i, task in enumerate(["load", "split", "fit"]):
        child = client.create_run(
            exp,
            start_time=start + i * 1000,
            run_name=task,
            parent_run_id=flow.info.run_id,
            tags={"flowml.prefect.task_run_id": f"7c1d0e2f-0000-4000-8000-00000000000{i}"},
        )
        task_ids.append(child.info.run_id)
        client.log_batch(child.info.run_id, metrics=[Metric("rows", 4898 - i * 900, start, 0)])
        client.set_terminated(child.info.run_id, end_time=start + i * 1000 + 700)
    client.store.log_lineage(task_ids[0], [LineageEntry("input", "dataset", dataset, "wine")])
    client.store.log_lineage(
        task_ids[0], [LineageEntry("output", "prefect-result", "prefect-result:load-1")]
    )
    client.store.log_lineage(
        task_ids[1], [LineageEntry("input", "prefect-result", "prefect-result:load-1")]
    )
    client.set_terminated(flow.info.run_id, end_time=start + 5000)

    runs = []
    example = pd.DataFrame({"alcohol": [9.4, 10.2], "acidity": [0.7, 0.3]})
    for i, (model, lr, depth) in enumerate(
        [
            ("rf", 0.1, 4),
            ("rf", 0.05, 8),
            ("gbm", 0.1, 3),
            ("gbm", 0.01, 6),
            ("lr", 0.5, 1),
            ("gbm", 0.2, 5),
        ]
    ):
        run = client.create_run(
            exp, start_time=start + 60_000 * (i + 1), run_name=f"train-{model}-{i}"
        )
        rid = run.info.run_id
        runs.append(rid)
        quality = 0.70 + 0.04 * i - 0.01 * (i % 3)
        metrics = []
        for step in range(200):
            t = start + 60_000 * (i + 1) + step * 250
            loss = 1.2 * math.exp(-step / (30 + 10 * i)) + 0.05 * math.sin(step / 3) + 0.1
            metrics.append(Metric("loss", loss, t, step))
            metrics.append(Metric("accuracy", quality * (1 - math.exp(-step / 40)), t, step))
        for k in range(0, len(metrics), 900):
            client.log_batch(rid, metrics=metrics[k : k + 900])
        client.log_batch(
            rid,
            metrics=[Metric("f1", quality - 0.03, start, 199)],
            params=[
                Param("model", model),
                Param("learning_rate", str(lr)),
                Param("max_depth", str(depth)),
                Param("seed", "42"),
            ],
            tags=[RunTag("team", "ml-platform"), RunTag("dataset", "wine")],
        )
        client.log_text(rid, f"training {model} lr={lr}\nepochs: 200\n", "logs/train.txt")
        client.log_dict(
            rid, {"model": model, "learning_rate": lr, "max_depth": depth}, "config.json"
        )
        client.log_text(rid, f"model: {model}\nlearning_rate: {lr}\n", "config.yaml")
        client.log_text(
            rid,
            'alcohol,acidity,quality\n9.4,0.70,5\n10.2,0.30,6\n"12,5",0.25,7\n',
            "data/sample.csv",
        )
        table = root / "predictions.parquet"
        pd.DataFrame({"id": range(500), "quality": [5 + k % 3 for k in range(500)]}).to_parquet(
            table
        )
        client.log_artifact(rid, str(table), "data")
        png = root / f"curve-{i}.png"
        png.write_bytes(tiny_png())
        client.log_artifact(rid, str(png), "plots")
        client.store.log_lineage(rid, [LineageEntry("input", "dataset", dataset, "wine")])
        if i < 3:
            flowml.log_model(python_model=predict, name="model", input_example=example, run_id=rid)
            version = registry.register_model(
                f"runs:/{rid}/model", "wine-classifier", reason=f"trained by {model}"
            )
            client.store.log_lineage(
                rid, [LineageEntry("output", "model", f"models:/wine-classifier/{version.version}")]
            )
        client.set_terminated(
            rid,
            status="FAILED" if i == 4 else "FINISHED",
            end_time=start + 60_000 * (i + 1) + 50_000,
        )
    registry.transition_model_version_stage("wine-classifier", 2, "Staging")
    registry.log_audit_event(
        "wine-classifier",
        "approval_granted",
        version=3,
        reason="beats champion on f1",
        approver="alice",
        f1="0.79",
    )
    registry.set_registered_model_alias("wine-classifier", "champion", 3, reason="approved")
    registry.create_registered_model("churn-model")
    client.flush()
    return {
        "experiment_id": exp,
        "flow_run_id": flow.info.run_id,
        "task_run_ids": task_ids,
        "train_run_ids": runs,
        "deleted_experiment_id": gone,
    }


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    print(json.dumps(seed(target)))
