"""The registry through a tracking server: ``http://`` registry URIs use the REST store.

A real ``flowml server`` on a loopback port (the session's, over SQLite); the model is
logged, registered, promoted and loaded with flowml's own API, every byte and row going
over HTTP.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

import flowml
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry import RegistryClient
from flowml.registry.audit import audit_context
from flowml.registry.store import get_registry_store
from flowml.registry.store.rest import RestRegistryStore, audit_from_header, audit_header


@pytest.fixture
def server(rest_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FLOWML_TRACKING_URI", rest_server.url)
    flowml.set_tracking_uri(rest_server.url)
    return rest_server


def _logged_model() -> tuple[str, LogisticRegression]:
    X = [[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [0.1, 0.8]]
    y = [0, 1, 1, 0]
    model = LogisticRegression().fit(X, y)
    with flowml.start_run() as run:
        flowml.log_model(model, "model")
        flowml.log_metric("accuracy", 0.93)
    return run.info.run_id, model


def test_http_registry_uris_open_the_rest_store(server: Any) -> None:
    assert isinstance(get_registry_store(server.url), RestRegistryStore)
    assert isinstance(RegistryClient(registry_uri=server.url).store, RestRegistryStore)


def test_register_promote_and_load_through_the_server(server: Any, tmp_path: Path) -> None:
    run_id, model = _logged_model()
    name = f"wine-{uuid.uuid4().hex[:8]}"
    client = RegistryClient()
    assert client.registry_uri == server.url

    mv = flowml.register_model(f"runs:/{run_id}/model", name, tags={"team": "ml"})
    assert (mv.version, mv.run_id, mv.tags) == (1, run_id, {"team": "ml"})
    # Stored as the real location on the server, sent back in the proxied form.
    assert mv.source.startswith("mlflow-artifacts:/") and mv.storage_location == mv.source
    second = client.register_model(f"runs:/{run_id}/model", name)
    assert second.version == 2

    client.set_registered_model_alias(name, "champion", 1)
    client.transition_model_version_stage(name, 2, "Staging")
    client.set_model_version_tag(name, 2, "validated", "yes")
    client.set_registered_model_tag(name, "owner", "ana")
    got = client.get_registered_model(name)
    assert got.aliases == {"champion": 1} and got.tags == {"owner": "ana"}
    assert client.get_model_version_by_alias(name, "champion").version == 1
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [2, 1]
    assert [m.name for m in client.search_registered_models(f"name = '{name}'")] == [name]
    assert client.get_latest_versions(name, ["Staging"])[0].tags == {"validated": "yes"}

    X = [[0.2, 0.7], [0.8, 0.3]]
    expected = list(model.predict(X))
    for uri in (f"models:/{name}@champion", f"models:/{name}/Staging", f"models:/{name}/2"):
        loaded = flowml.load_model(uri, dst_path=str(tmp_path / uri.replace("/", "_")))
        assert list(loaded.predict(X)) == expected

    # A version registered from another version resolves through the server too.
    copy = client.register_model(f"models:/{name}@champion", f"{name}-copy")
    assert copy.source == f"models:/{name}@champion"
    assert copy.storage_location == mv.storage_location
    assert list(flowml.load_model(f"models:/{name}-copy/1").predict(X)) == expected


def test_the_audit_trail_records_the_clients_context(server: Any) -> None:
    run_id, _ = _logged_model()
    name = f"audited-{uuid.uuid4().hex[:8]}"
    client = RegistryClient()
    with audit_context(user_id="ana", reason="weekly retrain", flow_run_id="fr-1", gate="ok"):
        client.register_model(f"runs:/{run_id}/model", name)
        client.set_registered_model_alias(name, "champion", 1)
    client.log_audit_event(name, "approval_granted", version=1, reason="looks good")
    entries = client.get_audit_log(name)
    assert [e.action for e in entries] == [
        "model_created",
        "version_registered",
        "alias_set",
        "approval_granted",
    ]
    assert {e.user_id for e in entries[:3]} == {"ana"}
    assert entries[2].reason == "weekly retrain" and entries[2].flow_run_id == "fr-1"
    assert entries[2].details.get("gate") == "ok"
    assert entries[3].reason == "looks good"
    with pytest.raises(InvalidParameter, match="only decisions"):
        client.log_audit_event(name, "alias_set")
    assert len(client.get_audit_log(name)) == 4


def test_errors_come_back_typed_and_change_nothing(server: Any) -> None:
    client = RegistryClient()
    name = f"errs-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ResourceNotFound):
        client.get_registered_model(name)
    with pytest.raises(ResourceNotFound):
        flowml.load_model(f"models:/{name}/1")
    client.create_registered_model(name)
    # A path on the server's own disk outside its destination is refused by the server.
    with pytest.raises(InvalidParameter, match="outside"):
        client.create_model_version(name, "/etc")
    with pytest.raises(InvalidParameter):
        client.create_model_version(name, "mlflow-artifacts:/../../etc")
    assert list(client.search_model_versions(f"name = '{name}'")) == []


def test_a_forged_audit_header_is_ignored_not_trusted_blindly() -> None:
    assert audit_from_header("not json") is None
    assert audit_from_header('{"user_id": 3}') is None
    info = audit_from_header('{"user_id": "x", "reason": 5, "details": [1]}')
    assert info is not None and info.reason is None and info.details == {}
    from flowml.registry.audit import AuditInfo

    round_trip = audit_from_header(
        audit_header(AuditInfo("é", "why", "f", "t", {"k": 1}))["X-FlowML-Audit"]
    )
    assert round_trip == AuditInfo("é", "why", "f", "t", {"k": 1})
