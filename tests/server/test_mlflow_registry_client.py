"""The genuine MLflow 3.17 client's model registry calls against `flowml server`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.mlflow

REGISTRY_SCRIPT = r"""
import os
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import RestException

client = MlflowClient()
experiment_id = mlflow.set_experiment("registry").experiment_id
with mlflow.start_run() as run:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "MLmodel"), "w") as fh:
            fh.write("flavors: {}\n")
        with open(os.path.join(tmp, "weights.txt"), "w") as fh:
            fh.write("w=1")
        mlflow.log_artifacts(tmp, artifact_path="model")
run_id = run.info.run_id
source = f"runs:/{run_id}/model"


def error_code(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except RestException as exc:
        return exc.error_code
    raise AssertionError(f"{call.__name__}{args} succeeded")


model = client.create_registered_model("churn", tags={"team": "ml"}, description="d")
assert model.name == "churn" and model.tags == {"team": "ml"}, model
assert error_code(client.create_registered_model, "churn") == "RESOURCE_ALREADY_EXISTS"
assert error_code(client.get_registered_model, "nope") == "RESOURCE_DOES_NOT_EXIST"

mv = client.create_model_version("churn", source, run_id=run_id, tags={"k": "v"}, description="x")
assert mv.source == source, mv.source
assert str(mv.version) == "1" and mv.run_id == run_id and mv.status == "READY", mv
assert mv.tags == {"k": "v"} and mv.current_stage == "None", mv
download_uri = client.get_model_version_download_uri("churn", "1")
assert download_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model", download_uri
with tempfile.TemporaryDirectory() as dst:
    local = mlflow.artifacts.download_artifacts("models:/churn/1", dst_path=dst)
    assert open(os.path.join(local, "weights.txt")).read() == "w=1"

registered = mlflow.register_model(source, "churn")
assert str(registered.version) == "2" and registered.run_id == run_id, registered
# A proxied source round-trips in its mlflow-artifacts: form.
proxied = client.get_run(run_id).info.artifact_uri + "/model"
assert proxied.startswith("mlflow-artifacts:/"), proxied
client.create_registered_model("temp-proxied")
assert client.create_model_version("temp-proxied", proxied).source == proxied
client.delete_registered_model("temp-proxied")

client.set_registered_model_alias("churn", "champion", "1")
assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
assert client.get_registered_model("churn").aliases == {"champion": "1"}
with tempfile.TemporaryDirectory() as dst:
    local = mlflow.artifacts.download_artifacts("models:/churn@champion", dst_path=dst)
    assert open(os.path.join(local, "weights.txt")).read() == "w=1"
client.set_registered_model_alias("churn", "challenger", "2")
client.delete_registered_model_alias("churn", "challenger")
assert error_code(client.get_model_version_by_alias, "churn", "challenger") == (
    "RESOURCE_DOES_NOT_EXIST"
)

client.transition_model_version_stage("churn", "1", "Production")
client.transition_model_version_stage("churn", "2", "Production", archive_existing_versions=True)
assert client.get_model_version("churn", "1").current_stage == "Archived"
latest = client.get_latest_versions("churn", stages=["Production"])
assert [str(v.version) for v in latest] == ["2"], latest
assert mlflow.artifacts.download_artifacts("models:/churn/Production")

client.set_registered_model_tag("churn", "owner", "ana")
client.delete_registered_model_tag("churn", "team")
client.set_model_version_tag("churn", "2", "validated", "yes")
client.delete_model_version_tag("churn", "1", "k")
client.update_registered_model("churn", description="new")
client.update_model_version("churn", "2", description="second")
model = client.get_registered_model("churn")
assert model.tags == {"owner": "ana"} and model.description == "new", model
assert client.get_model_version("churn", "2").tags == {"validated": "yes"}
assert client.get_model_version("churn", "1").tags == {}

client.create_registered_model("temp-a")
client.create_registered_model("temp-b")
found = client.search_registered_models(filter_string="name LIKE 'temp%'", order_by=["name"])
assert [m.name for m in found] == ["temp-a", "temp-b"], found
page = client.search_registered_models(filter_string="name LIKE 'temp%'", max_results=1)
assert len(page) == 1 and page.token
versions = client.search_model_versions(f"run_id = '{run_id}'")
assert sorted(str(v.version) for v in versions) == ["1", "2"], versions
tagged = client.search_model_versions("name = 'churn' and tags.validated = 'yes'")
assert [str(v.version) for v in tagged] == ["2"], tagged

client.rename_registered_model("temp-a", "temp-renamed")
client.create_model_version("temp-renamed", source, run_id=run_id)
client.delete_model_version("temp-renamed", "1")
assert error_code(client.get_model_version, "temp-renamed", "1") == "RESOURCE_DOES_NOT_EXIST"
client.delete_registered_model("temp-renamed")
assert error_code(client.get_registered_model, "temp-renamed") == "RESOURCE_DOES_NOT_EXIST"
print("RESULT", experiment_id, run_id)
"""


def test_mlflow_client_uses_flowml_registry(server_factory, run_mlflow_against, tmp_path):
    db = f"sqlite:///{tmp_path / 'flowml.db'}"
    srv = server_factory(db, tmp_path / "srv")
    out = run_mlflow_against(srv.url, REGISTRY_SCRIPT)
    _, experiment_id, run_id = out.strip().splitlines()[-1].split()

    # flowml's own registry reads what MLflow's client registered: real locations, an
    # audit trail of every change.
    from flowml.registry.store import get_registry_store

    store = get_registry_store(db)
    v1 = store.get_model_version("churn", 1)
    assert v1.run_id == run_id
    root = srv.destination / experiment_id / run_id / "artifacts" / "model"
    assert Path(v1.storage_location) == root
    assert (root / "weights.txt").read_text() == "w=1"
    assert store.get_model_version_by_alias("churn", "champion").version == 1
    assert store.get_model_version("churn", 2).current_stage == "Production"
    # Every change MLflow's client made is in the model's audit trail, in order.
    actions = [entry.action for entry in store.get_audit_log("churn")]
    assert actions[:3] == ["model_created", "version_registered", "version_registered"], actions
    assert actions.count("stage_transitioned") == 3  # v1, v2, and v1 archived
    assert "alias_set" in actions and "alias_deleted" in actions
