"""Import from a real ``mlflow server`` (MLflow 3.17, its own venv) on loopback, over REST."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.importers.mlflow import NotAnMLflowStore, import_mlflow
from tests.conftest import free_port

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]


@pytest.fixture
def mlflow_server(mlflow_venv, tmp_path: Path) -> Iterator[str]:
    python, env = mlflow_venv
    port = free_port()
    root = tmp_path / "server"
    root.mkdir()
    proc = subprocess.Popen(
        [str(python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mlflow server exited: {proc.stderr.read()[-3000:]!r}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_import_from_an_mlflow_tracking_server(
    mlflow_server: str, write_mlflow_store, target, tmp_path: Path
) -> None:
    import pandas as pd

    import flowml
    from flowml.tracking.client import TrackingClient

    facts = write_mlflow_store(mlflow_server, tmp_path / "client-cwd")
    report = import_mlflow(mlflow_server)
    assert report.matches
    for row in report.rows:
        assert row.source is None or row.after == row.source, row
    assert report.row("runs").after == 9
    assert report.row("metric points").source is None  # a server cannot count them cheaply
    client = TrackingClient()
    parent = client.get_run(facts["parent"])
    assert parent.info.artifact_uri.startswith(target["artifact_root"])
    history = client.get_metric_history(facts["sweep"][4], "m1")
    assert [m.value for m in history] == [4.0 * s for s in range(50)]
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0], "b": [0.0, 1, 2, 0, 1]})
    model = flowml.load_model(f"runs:/{facts['parent']}/model")
    assert list(model.predict(frame)) == facts["predictions"]
    assert list(flowml.load_model("models:/clf@champion").predict(frame)) == facts["predictions"]
    assert all(row.imported == 0 for row in import_mlflow(mlflow_server).rows)


def test_a_server_that_is_not_mlflow_is_refused(target) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(NotAnMLflowStore, match="could not be reached"):
        import_mlflow(f"http://127.0.0.1:{port}")
    assert not Path(target["db"]).exists()
