"""The genuine MLflow 3.17 client and flowml's REST store authenticate with a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.exceptions import FlowMLError
from flowml.server.auth.store import AuthStore
from tests.server.conftest import FlowmlServer, start_server


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlowmlServer, str]]:
    root = tmp_path_factory.mktemp("secured")
    srv = start_server(f"sqlite:///{root / 'flowml.db'}", root, options=["--auth", "token"])
    token, _ = AuthStore.open(str(srv.store_uri)).create_token("trainer", create_user=True)
    yield srv, token
    srv.stop()


MLFLOW_SCRIPT = r"""
import os
import sys
import tempfile

token = sys.argv[1]
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

# Without a token: refused with MLflow's code.
try:
    MlflowClient().search_experiments()
except MlflowException as exc:
    assert exc.error_code == "UNAUTHENTICATED", exc.error_code
else:
    raise AssertionError("an unauthenticated call was answered")

os.environ["MLFLOW_TRACKING_TOKEN"] = token
experiment_id = mlflow.set_experiment("with-token").experiment_id
with mlflow.start_run() as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_metric("loss", 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.txt")
        with open(path, "w") as fh:
            fh.write("through the proxy")
        mlflow.log_artifact(path)
client = MlflowClient()
got = client.get_run(run.info.run_id)
assert got.data.params == {"lr": "0.1"} and got.data.metrics == {"loss": 0.5}
local = client.download_artifacts(run.info.run_id, "a.txt")
assert open(local).read() == "through the proxy"
client.create_registered_model("secured-model")
print("ok", experiment_id)
"""


@pytest.mark.mlflow
def test_mlflow_client_authenticates_with_mlflow_tracking_token(
    secured: tuple[FlowmlServer, str], run_mlflow_against
):
    srv, token = secured
    out = run_mlflow_against(srv.url, MLFLOW_SCRIPT, token)
    assert out.splitlines()[-1].startswith("ok ")
    assert "denied user=- POST /api/2.0/mlflow/experiments/search" in srv.log.read_text()


@pytest.mark.parametrize("variable", ["FLOWML_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"])
def test_flowml_rest_store_sends_the_token(
    secured: tuple[FlowmlServer, str], monkeypatch: pytest.MonkeyPatch, variable: str
):
    from flowml.tracking.store.rest import RestStore

    srv, token = secured
    for name in ("FLOWML_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    anonymous = RestStore(srv.url, max_retry_seconds=0)
    with pytest.raises(FlowMLError, match="Authentication required") as refused:
        anonymous.create_experiment(f"no-token-{variable}")
    assert refused.value.error_code == "UNAUTHENTICATED"
    anonymous.close()
    monkeypatch.setenv(variable, token)
    store = RestStore(srv.url, max_retry_seconds=0)
    experiment_id = store.create_experiment(f"token-{variable}")
    assert store.get_experiment(experiment_id).name == f"token-{variable}"
    store.close()


def test_auth_refusals_are_not_retried(secured: tuple[FlowmlServer, str], tmp_path: Path):
    """A 401 is a verdict: raised at once even with a long retry budget."""
    import time

    from flowml.tracking.store.rest import RestStore

    srv, _ = secured
    store = RestStore(srv.url, max_retry_seconds=120)
    store.http._headers = {"Authorization": "Bearer flowml_0000000000000000_" + "x" * 43}
    started = time.monotonic()
    with pytest.raises(FlowMLError, match="refused"):
        store.search_experiments()
    assert time.monotonic() - started < 60  # far below the budget: never retried
    store.close()


def test_flowml_client_logs_and_uploads_with_a_token(
    secured: tuple[FlowmlServer, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """The whole library path: the REST store and the artifact proxy both send the token."""
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.store.schemes import clear_cache

    srv, token = secured
    monkeypatch.setenv("FLOWML_TRACKING_TOKEN", token)
    clear_cache()
    client = TrackingClient(tracking_uri=srv.url)
    try:
        experiment_id = client.create_experiment("library-with-token")
        run = client.create_run(experiment_id)
        client.log_param(run.info.run_id, "lr", 0.1)
        local = tmp_path / "notes.txt"
        local.write_text("uploaded with a token")
        client.log_artifact(run.info.run_id, str(local))
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
        assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}
    finally:
        client.close()
        clear_cache()


@pytest.mark.mlflow
def test_mlflow_log_model_and_register_with_a_token(
    secured: tuple[FlowmlServer, str], run_mlflow_against
):
    """MLflow 3's model path (logged models, proxied files, registration, loading back)
    passes every permission rule for the user who owns the experiment."""
    from tests.server.test_mlflow_logged_models_client import LOG_MODEL_SCRIPT

    srv, token = secured
    script = (
        "import os, sys\nos.environ['MLFLOW_TRACKING_TOKEN'] = sys.argv[1]\n" + LOG_MODEL_SCRIPT
    )
    denials = srv.log.read_text().count("denied")
    out = run_mlflow_against(srv.url, script, token)
    assert out.strip().splitlines()[-1].startswith("RESULT")
    assert srv.log.read_text().count("denied") == denials  # nothing was refused on the way
