"""The audit trail: every change recorded with who/when/from/to/why/where, and never rewritten."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry.audit import AuditAction, audit_context, current_audit_info
from flowml.registry.client import RegistryClient
from flowml.registry.schema import registry_audit


def _trail(client: RegistryClient, name: str) -> list[tuple]:
    return [(e.action, e.version, e.from_value, e.to_value) for e in client.get_audit_log(name)]


def test_every_change_is_recorded(client: RegistryClient):
    client.create_registered_model("churn", reason="new project")
    client.register_model("file:///m/1", "churn", run_id="r1", reason="first")
    client.register_model("file:///m/2", "churn")
    client.transition_model_version_stage("churn", 1, "Production", reason="go live")
    client.transition_model_version_stage("churn", 2, "Production", True)
    client.set_registered_model_alias("churn", "champion", 1)
    client.set_registered_model_alias("churn", "champion", 1)  # no move, no entry
    client.set_registered_model_alias("churn", "champion", 2)
    client.delete_registered_model_alias("churn", "champion")
    client.set_registered_model_alias("churn", "champion", 2)
    client.delete_model_version("churn", 2, reason="bad")
    client.rename_registered_model("churn", "churn2")
    client.delete_registered_model("churn2", reason="retired")
    assert _trail(client, "churn2") == [
        ("model_created", None, None, "churn"),
        ("version_registered", 1, None, "file:///m/1"),
        ("version_registered", 2, None, "file:///m/2"),
        ("stage_transitioned", 1, "None", "Production"),
        ("stage_transitioned", 1, "Production", "Archived"),
        ("stage_transitioned", 2, "None", "Production"),
        ("alias_set", 1, None, "1"),
        ("alias_set", 2, "1", "2"),
        ("alias_deleted", 2, "2", None),
        ("alias_set", 2, None, "2"),
        ("alias_deleted", 2, "2", None),
        ("version_deleted", 2, "Production", None),
        ("model_renamed", None, "churn", "churn2"),
        ("model_deleted", None, "churn2", None),
    ]
    # The trail under the old name includes everything that happened while it had that name.
    assert [a for a, *_ in _trail(client, "churn")][:3] == [
        "model_created",
        "version_registered",
        "version_registered",
    ]
    log = client.get_audit_log("churn2")
    assert {e.name for e in log} == {"churn", "churn2"}
    assert log[0].reason == "new project" and log[1].reason == "first"
    assert log[1].details == {"run_id": "r1"}
    assert log[4].details == {"archived_by_version": 2}
    assert log[6].details == {"alias": "champion"}
    assert log[-1].reason == "retired"
    assert all(e.user_id for e in log)
    assert [e.id for e in log] == sorted(e.id for e in log)
    assert all(a.timestamp <= b.timestamp for a, b in zip(log, log[1:], strict=False))


def test_audit_context_records_prefect_run_ids(client: RegistryClient, monkeypatch):
    client.create_registered_model("churn")
    with audit_context(
        user_id="alice", reason="retrain", flow_run_id="f-1", task_run_id="t-1", ticket="ML-42"
    ):
        with audit_context(reason="inner"):
            client.register_model("file:///m/1", "churn")
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "f-env")
    client.set_registered_model_alias("churn", "champion", 1)
    entries = client.get_audit_log("churn")
    registered, alias = entries[1], entries[2]
    assert (
        registered.user_id,
        registered.reason,
        registered.flow_run_id,
        registered.task_run_id,
    ) == ("alice", "inner", "f-1", "t-1")
    assert registered.details == {"ticket": "ML-42"}
    assert alias.flow_run_id == "f-env" and alias.task_run_id is None
    assert current_audit_info("why").reason == "why"
    with pytest.raises(InvalidParameter):
        with audit_context(flow_run_id=123):  # type: ignore[arg-type]
            pass


def test_decisions_can_be_appended_but_changes_cannot_be_forged(
    client: RegistryClient, store, unchanged
):
    client.register_model("file:///m/1", "churn")
    entry = client.log_audit_event(
        "churn",
        AuditAction.APPROVAL_GRANTED,
        version=1,
        to_value="Production",
        reason="looks good",
        reviewer="bob",
    )
    assert (entry.action, entry.version, entry.to_value, entry.reason) == (
        "approval_granted",
        1,
        "Production",
        "looks good",
    )
    assert entry.details == {"reviewer": "bob"}
    for action in sorted(AuditAction.MUTATIONS) + ["made_up", ""]:
        unchanged(InvalidParameter, store.log_audit_event, "churn", action)
    unchanged(ResourceNotFound, store.log_audit_event, "nope", AuditAction.APPROVAL_GRANTED)
    unchanged(
        ResourceNotFound, store.log_audit_event, "churn", AuditAction.APPROVAL_GRANTED, version=5
    )
    unchanged(
        InvalidParameter, store.log_audit_event, "churn", AuditAction.APPROVAL_GRANTED, to_value=3
    )
    for method in ("update_audit", "delete_audit", "delete_audit_log", "clear_audit_log"):
        assert not hasattr(client, method) and not hasattr(store, method)


def test_the_database_refuses_to_rewrite_history(client: RegistryClient, store):
    client.register_model("file:///m/1", "churn")
    before = client.get_audit_log("churn")
    for statement in (
        update(registry_audit).values(reason="forged"),
        delete(registry_audit),
        text("UPDATE registry_audit SET user_id = 'mallory'"),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(statement)
    assert client.get_audit_log("churn") == before


def test_audit_log_paging_and_bad_arguments(client: RegistryClient):
    for i in range(5):
        client.register_model(f"file:///m/{i}", "churn")
    first = client.get_audit_log("churn", max_results=2)
    rest = client.get_audit_log("churn", after_id=first[-1].id)
    assert len(first) == 2 and len(rest) == 4
    assert len(client.get_audit_log()) == 6
    for kwargs in ({"max_results": 0}, {"max_results": "5"}, {"after_id": -1}, {"name": "a/b"}):
        with pytest.raises(InvalidParameter):
            client.get_audit_log(**kwargs)
