"""``mlflow.sklearn.log_model`` with MLflow 3.17's own client against `flowml server`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.mlflow

LOG_MODEL_SCRIPT = r"""
import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

X = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1]])
y = np.array([0, 0, 1, 1])
clf = LogisticRegression().fit(X, y)
expected = clf.predict(X).tolist()

mlflow.set_experiment("logged-models")
with mlflow.start_run() as run:
    mlflow.log_param("C", 1.0)
    # cloudpickle, not MLflow 3.17's default skops, so flowml loads it without skops installed.
    info = mlflow.sklearn.log_model(
        clf, name="model", input_example=X[:2], serialization_format="cloudpickle"
    )
run_id = run.info.run_id
model_id = info.model_id
assert model_id.startswith("m-"), model_id

client = MlflowClient()
logged = client.get_logged_model(model_id)
assert logged.status.to_proto() == 2, logged.status  # LOGGED_MODEL_READY
assert logged.source_run_id == run_id and logged.name == "model", logged
assert logged.params.get("C") == "1.0", logged.params
assert logged.artifact_location.startswith("mlflow-artifacts:/"), logged.artifact_location
found = mlflow.search_logged_models(filter_string="name = 'model'", output_format="list")
assert [m.model_id for m in found] == [model_id], found

for uri in (f"runs:/{run_id}/model", f"models:/{model_id}"):
    loaded = mlflow.pyfunc.load_model(uri)
    assert loaded.predict(X).tolist() == expected, uri

version = mlflow.register_model(f"runs:/{run_id}/model", "iris-lr")
assert str(version.version) == "1", version
loaded = mlflow.pyfunc.load_model("models:/iris-lr/1")
assert loaded.predict(X).tolist() == expected
print("RESULT", logged.experiment_id, run_id, model_id)
"""


def test_mlflow_log_model_and_load_back(server_factory, run_mlflow_against, tmp_path):
    db = f"sqlite:///{tmp_path / 'flowml.db'}"
    srv = server_factory(db, tmp_path / "srv")
    out = run_mlflow_against(srv.url, LOG_MODEL_SCRIPT)
    _, experiment_id, run_id, model_id = out.strip().splitlines()[-1].split()

    # The model's files are at its real location under the destination, and flowml's
    # own loader reads them there (no server involved).
    import numpy as np

    import flowml
    from flowml.registry.store import get_registry_store
    from flowml.tracking.store.engine import get_engine
    from flowml.tracking.store.sql_logged_models import SqlLoggedModelStore

    location = srv.destination / experiment_id / "models" / model_id / "artifacts"
    assert (location / "MLmodel").is_file()
    stored = SqlLoggedModelStore(get_engine(db)).get_logged_model(model_id)
    assert Path(stored.artifact_location) == location
    assert stored.status == "READY" and stored.source_run_id == run_id
    model = flowml.load_model(stored.artifact_location)
    data = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert list(model.predict(data)) == [0, 1]
    # The registered version points at the same files.
    version = get_registry_store(db).get_model_version("iris-lr", 1)
    assert Path(version.storage_location) == location
