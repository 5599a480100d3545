"""``/api/2.0/mlflow/logged-models/search``: MLflow 3's logged models, read-only for now.

MLflow 3's client looks up a run's logged models whenever it resolves a ``runs:/`` URI
(``mlflow.artifacts.download_artifacts``, ``load_text``...). This server cannot create
logged models yet (``logged-models`` creation answers ``ENDPOINT_NOT_FOUND``), so a
search truthfully finds none once its experiments are known to exist.
"""

from __future__ import annotations

from typing import Any

from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import Fields

__all__ = ["ENDPOINTS"]


def search(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    for experiment_id in fields.strings("experiment_ids"):
        ctx.store.get_experiment(experiment_id)  # ResourceNotFound, as MLflow answers
    return {"models": []}


ENDPOINTS = (Endpoint("/logged-models/search", "POST", search),)
