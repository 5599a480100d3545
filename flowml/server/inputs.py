"""``/api/2.0/mlflow/runs/log-inputs``: MLflow's dataset inputs as flowml lineage.

MLflow describes a dataset by name, digest and a ``source`` (a JSON document whose
``uri``, ``url`` or ``path`` says where it lives). flowml records what a run read as
lineage entries keyed by URI, so runs reading the same data are linked: the dataset's own
location when its source names one, else ``mlflow-dataset:<name>@<digest>``. A model input
becomes a ``model`` entry on ``models:/<model_id>``. Entries a run already holds are kept as
they are, so a client that retries sends no duplicates.
"""

from __future__ import annotations

from typing import Any

from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import Fields
from flowml.tracking.datasets import dataset_uri
from flowml.tracking.lineage import INPUT, KIND_DATASET, KIND_MODEL, LineageEntry

__all__ = ["ENDPOINTS"]


def log_inputs(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    run_id = fields.required("run_id")
    entries = []
    for item in fields.messages("datasets"):
        dataset = item.messages_one("dataset")
        name = dataset.required("name")
        digest = dataset.string("digest")
        uri = dataset_uri(name, digest, dataset.string("source"))
        entries.append(LineageEntry(INPUT, KIND_DATASET, uri, name=name, digest=digest))
    for item in fields.messages("models"):
        model_id = item.required("model_id")
        entries.append(LineageEntry(INPUT, KIND_MODEL, f"models:/{model_id}", name=model_id))
    if entries:
        ctx.store.log_lineage(run_id, entries)
    return {}


ENDPOINTS = (Endpoint("/runs/log-inputs", "POST", log_inputs),)
