"""The REST store end to end: the fluent API through a real `flowml server`, outages,
error mapping and the artifact proxy's confinement (the store contract itself runs in
test_store_conformance.py with the ``rest`` backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_server import LoopbackServer, free_port

import flowml
from flowml.exceptions import ArtifactPathError, InvalidParameter, StoreError
from flowml.tracking import fluent
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.buffer import BufferedWriteError
from flowml.tracking.store.rest import RestStore
from flowml.tracking.store.schemes import get_store


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A server of this test alone (it may be killed and restarted)."""
    root = tmp_path / "server"
    root.mkdir()
    server = LoopbackServer(root)
    server.start()
    yield server
    server.stop()


def test_http_uris_open_the_rest_store(own_server: LoopbackServer) -> None:
    store = get_store(own_server.url, "unused")
    assert isinstance(store, RestStore)
    assert store.get_experiment("0").name == "Default"
    with pytest.raises(InvalidParameter, match="http://"):
        get_store("ftp://example.invalid", "unused")


def test_fluent_api_end_to_end(own_server: LoopbackServer, tmp_path: Path) -> None:
    flowml.set_tracking_uri(own_server.url)
    flowml.set_experiment("over-http")
    model = tmp_path / "model.txt"
    model.write_text("weights", encoding="utf-8")
    with flowml.start_run(run_name="remote") as run:
        flowml.log_param("lr", 0.1)
        for step in range(50):
            flowml.log_metric("loss", 1 / (step + 1), step=step)
        flowml.log_artifact(str(model), artifact_path="models")
        flowml.log_text("hello", "notes/readme.txt")
    run_id = run.info.run_id

    got = flowml.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert got.data.params == {"lr": "0.1"} and got.data.metrics == {"loss": 1 / 50}
    history = flowml.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(50))

    client = fluent.get_client()
    assert [f.path for f in client.list_artifacts(run_id)] == ["models", "notes"]
    listed = client.list_artifacts(run_id, "models")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [("models/model.txt", False, 7)]
    local = client.download_artifacts(run_id, "", str(tmp_path / "down"))
    assert Path(local, "models", "model.txt").read_text(encoding="utf-8") == "weights"
    assert Path(local, "notes", "readme.txt").read_text(encoding="utf-8") == "hello"
    # The bytes live under the server's destination, where the run's location says.
    rel = got.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    on_disk = own_server.destination / rel / "models" / "model.txt"
    assert on_disk.read_text(encoding="utf-8") == "weights"


def test_logging_survives_a_server_outage(own_server: LoopbackServer) -> None:
    flowml.set_tracking_uri(own_server.url)
    client = fluent.get_client()
    store = client.store
    assert isinstance(store, RestStore)
    store.http.max_retry_seconds = 0.5  # give up on each attempt quickly; the buffer retries
    run = flowml.start_run(run_name="outage")
    for step in range(10):
        flowml.log_metric("m", float(step), step=step)
    flowml.flush()

    own_server.kill()
    # More than one batch: a full queue tries to write, fails, and keeps everything queued.
    for step in range(10, 1510):
        flowml.log_metric("m", float(step), step=step)
    flowml.log_param("p", "kept")
    with pytest.raises(BufferedWriteError, match="StoreError.*did not answer") as failed:
        flowml.flush()
    assert failed.value.kept == 1501  # every value stays queued

    own_server.start()  # same port, same store
    flowml.flush()
    flowml.end_run()
    got = flowml.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.params == {"p": "kept"}
    steps = [m.step for m in flowml.get_metric_history(run.info.run_id, "m")]
    assert steps == list(range(1510))


def test_an_unreachable_server_is_a_store_error() -> None:
    store = RestStore(f"http://127.0.0.1:{free_port()}", max_retry_seconds=0.3)
    with pytest.raises(StoreError, match="did not answer.*check it is running"):
        store.get_experiment("0")


def test_proxied_artifacts_stay_confined(own_server: LoopbackServer, tmp_path: Path) -> None:
    store = RestStore(own_server.url)
    run = store.create_run("0", "u")
    repo = ArtifactRepository(run.info.artifact_uri, proxy_url=own_server.url)
    secret = tmp_path / "secret.txt"
    secret.write_text("x", encoding="utf-8")
    for bad in ("../../escape", "/abs", "a/%2e%2e/b", "a\\b"):
        with pytest.raises(ArtifactPathError):
            repo.log_artifact(secret, bad)
    with pytest.raises(ArtifactPathError):
        ArtifactRepository("mlflow-artifacts:/../outside", proxy_url=own_server.url)
    with pytest.raises(InvalidParameter, match="names a host"):
        ArtifactRepository("mlflow-artifacts://evil.example/x", proxy_url=own_server.url)
    with pytest.raises(InvalidParameter, match="http"):
        ArtifactRepository(run.info.artifact_uri, proxy_url="sqlite:///x.db")
    # Nothing was written anywhere under the destination or beside it.
    assert not any(p.is_file() for p in own_server.destination.rglob("*"))
    assert not (own_server.root / "escape").exists()
