"""Registry flow steps in real Prefect flow runs: gates, approval, rollback, events, artifacts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import flowml
from flowml.exceptions import InvalidParameter, InvalidState
from flowml.registry import RegistryClient, beats_champion, metric_at_least
from flowml.registry.errors import ApprovalRejected, PromotionRefused

pytestmark = pytest.mark.usefixtures("prefect_harness")

WAIT_S = 120  # an upper bound for the Prefect server to catch up, never a timing assertion


@pytest.fixture
def name() -> str:
    return f"model-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def registry() -> RegistryClient:
    return RegistryClient()


def _version(client: RegistryClient, name: str, **metrics: float) -> int:
    with flowml.start_run() as run:
        for key, value in metrics.items():
            flowml.log_metric(key, value)
    try:
        client.create_registered_model(name)
    except flowml.exceptions.ResourceAlreadyExists:
        pass
    return client.create_model_version(name, f"file:///{name}", run_id=run.info.run_id).version


def _eventually(read: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _events(event: str, name: str) -> list[Any]:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    def read() -> list[Any]:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[event]),
                    resource=EventResourceFilter(id=[f"flowml.registered-model.{name}"]),
                ),
                limit=50,
            )
        return list(page.events)

    return _eventually(read)


def _artifact(key: str) -> Any:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    def read() -> list[Any]:
        with get_client(sync_client=True) as client:
            return client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )

    found = _eventually(read)
    assert found, f"no artifact with key {key!r}"
    return max(found, key=lambda a: a.created)


def _flow_run(flow_run_id: Any) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


# -- register --------------------------------------------------------------------------------


def test_register_model_step_audits_and_emits(name: str, registry: RegistryClient):
    from prefect import flow

    from flowml.models import log_model
    from flowml.tasks.steps import register_model

    with flowml.start_run() as run:
        log_model(python_model=lambda model_input: model_input, name="model")

    @flow
    def train_and_register(run_id: str) -> tuple[int, str]:
        from prefect.runtime import flow_run

        version = register_model(
            f"runs:/{run_id}/model", name, tags={"stage": "nightly"}, reason="nightly build"
        )
        return version.version, str(flow_run.id)

    version, flow_run_id = train_and_register(run.info.run_id)
    assert version == 1
    entry = registry.get_audit_log(name)[-1]
    assert (entry.action, entry.reason, entry.flow_run_id) == (
        "version_registered",
        "nightly build",
        flow_run_id,
    )
    assert entry.task_run_id and entry.details == {"run_id": run.info.run_id}
    [event] = _events("flowml.model.registered", name)
    assert event.payload["version"] == 1 and event.payload["run_id"] == run.info.run_id
    assert event.resource.name == name


# -- promote: gates --------------------------------------------------------------------------


def test_promotion_with_passing_gates(name: str, registry: RegistryClient):
    from prefect import flow

    from flowml.tasks.steps import promote_model

    v1 = _version(registry, name, auc=0.80)
    v2 = _version(registry, name, auc=0.85)
    v3 = _version(registry, name, auc=0.90)
    registry.transition_model_version_stage(name, v1, "Production")
    registry.transition_model_version_stage(name, v2, "Production")

    @flow
    def release():
        return promote_model(
            name,
            v3,
            to="production",
            reason="better auc",
            gates=[metric_at_least("auc", 0.85), beats_champion("auc")],
        )

    result = release()
    assert (result.version, result.kind, result.target, result.previous) == (
        v3,
        "stage",
        "Production",
        v2,
    )
    assert result.archived == [v1, v2] and all(g["passed"] for g in result.gates)
    stages = {
        mv.version: mv.current_stage for mv in registry.search_model_versions(f"name = '{name}'")
    }
    assert stages == {v1: "Archived", v2: "Archived", v3: "Production"}
    transition = [e for e in registry.get_audit_log(name) if e.version == v3][-1]
    assert (transition.action, transition.to_value, transition.reason) == (
        "stage_transitioned",
        "Production",
        "better auc",
    )
    assert [g["passed"] for g in transition.details["gates"]] == [True, True]
    assert transition.flow_run_id and transition.task_run_id
    [promoted] = _events("flowml.model.promoted", name)
    assert promoted.payload["version"] == v3 and promoted.payload["stage"] == "Production"
    assert promoted.payload["previous_version"] == v2
    archived = _eventually(
        lambda: (
            len(_events("flowml.model.archived", name)) == 2
            and _events("flowml.model.archived", name)
        )
    )
    assert sorted(e.payload["version"] for e in archived) == [v1, v2]
    artifact = _artifact(result.artifact_key)
    assert "**Decision: promoted**" in artifact.data
    assert "| auc | 0.9 | 0.85 |" in artifact.data


def test_refused_promotion_changes_nothing(name: str, registry: RegistryClient):
    from prefect import flow

    from flowml.tasks.steps import promote_model

    v1 = _version(registry, name, auc=0.9)
    v2 = _version(registry, name, auc=0.8)
    registry.set_registered_model_alias(name, "champion", v1)

    @flow
    def release():
        promote_model(name, v2, to="champion", gates=[beats_champion("auc")], reason="try")

    state = release(return_state=True)
    assert state.is_failed()
    with pytest.raises(PromotionRefused, match="beats_champion"):
        state.result()
    assert registry.get_model_version_by_alias(name, "champion").version == v1
    refused = registry.get_audit_log(name)[-1]
    assert (refused.action, refused.version, refused.to_value, refused.reason) == (
        "promotion_refused",
        v2,
        "champion",
        "try",
    )
    assert refused.flow_run_id == str(state.state_details.flow_run_id)
    assert refused.details["gates"][0]["passed"] is False
    [event] = _events("flowml.model.promotion-refused", name)
    assert event.payload["refused_by"] == "gates"
    assert "**Decision: refused by gates**" in _artifact(f"flowml-{name}-champion-promotion").data


def test_bad_arguments_are_typed_errors(name: str, registry: RegistryClient):
    from flowml.tasks.steps import promote_model

    v1 = _version(registry, name)
    with pytest.raises(InvalidState, match="flow run"):
        promote_model.fn(name, v1, to="champion", require_approval=True)
    for kwargs in (
        {"require_approval": "yes"},
        {"to": "latest"},
        {"archive_existing": 1},
        {"require_approval": True, "approval_timeout": 0},
        {"gates": [42]},
        {"evaluations": {"one": {"auc": 1}}},
    ):
        with pytest.raises(InvalidParameter):
            promote_model.fn(name, v1, **{"to": "champion", **kwargs})
    assert registry.get_registered_model(name).aliases == {}
    assert [e.action for e in registry.get_audit_log(name)] == [
        "model_created",
        "version_registered",
    ]


# -- promote: approval -----------------------------------------------------------------------


@pytest.fixture
def reviewer() -> Iterator[Callable[[str, dict[str, Any]], threading.Thread]]:
    """Resume a paused flow run (found by name) with the given form input, from a thread."""
    threads: list[threading.Thread] = []

    def start(flow_run_name: str, answer: dict[str, Any]) -> threading.Thread:
        def resume() -> None:
            from prefect import get_client
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
            from prefect.flow_runs import resume_flow_run

            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                with get_client(sync_client=True) as client:
                    runs = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name]))
                    )
                if runs and runs[0].state and runs[0].state.is_paused():
                    try:
                        resume_flow_run(runs[0].id, run_input=answer)
                        return
                    except RuntimeError:  # the form's schema is saved just after the pause
                        pass
                time.sleep(0.2)

        thread = threading.Thread(target=resume, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(WAIT_S)


def _approval_flow(name: str, version: int, timeout: int = 600):
    from prefect import flow

    from flowml.tasks.steps import promote_model

    @flow
    def release():
        return promote_model(
            name,
            version,
            to="champion",
            require_approval=True,
            reason="ship",
            approval_timeout=timeout,
            approval_poll_interval=1,
            gates=[metric_at_least("auc", 0.5)],
        )

    run_name = f"release-{uuid.uuid4().hex[:8]}"
    return release.with_options(flow_run_name=run_name), run_name


def test_approval_accepted(name: str, registry: RegistryClient, reviewer):
    v1 = _version(registry, name, auc=0.9)
    release, run_name = _approval_flow(name, v1)
    reviewer(run_name, {"approve": True, "comment": "ship it", "reviewer": "bob"})
    result = release()
    assert result.approval == {"reviewer": "bob", "comment": "ship it"}
    assert registry.get_model_version_by_alias(name, "champion").version == v1
    log = registry.get_audit_log(name)
    assert [e.action for e in log][-3:] == ["approval_requested", "approval_granted", "alias_set"]
    granted = log[-2]
    assert (granted.user_id, granted.details["comment"]) == ("bob", "ship it")
    assert log[-1].details["approval"] == {"reviewer": "bob", "comment": "ship it"}
    assert "approved by bob: ship it" in _artifact(result.artifact_key).data


def test_approval_rejected(name: str, registry: RegistryClient, reviewer):
    v1 = _version(registry, name, auc=0.9)
    release, run_name = _approval_flow(name, v1)
    reviewer(run_name, {"approve": False, "comment": "not before the audit", "reviewer": "carol"})
    state = release(return_state=True)
    with pytest.raises(ApprovalRejected, match="not before the audit") as info:
        state.result()
    assert info.value.timed_out is False and info.value.comment == "not before the audit"
    assert registry.get_registered_model(name).aliases == {}
    rejected = registry.get_audit_log(name)[-1]
    assert (rejected.action, rejected.user_id, rejected.details["comment"]) == (
        "approval_rejected",
        "carol",
        "not before the audit",
    )
    [event] = _events("flowml.model.promotion-refused", name)
    assert event.payload["refused_by"] == "reviewer"


def test_approval_timeout_rejects(name: str, registry: RegistryClient):
    v1 = _version(registry, name, auc=0.9)
    release, _ = _approval_flow(name, v1, timeout=2)
    state = release(return_state=True)
    assert state.is_failed()
    assert _flow_run(state.state_details.flow_run_id).state.is_failed()
    assert registry.get_registered_model(name).aliases == {}
    rejected = registry.get_audit_log(name)[-1]
    assert (rejected.action, rejected.details) == ("approval_rejected", {"timed_out": True})
    assert "no approval within 2 s" in _artifact(f"flowml-{name}-champion-promotion").data


# -- promote: rollback -----------------------------------------------------------------------


def test_rollback_inside_a_transaction_restores_alias_and_stages(
    name: str, registry: RegistryClient
):
    from prefect import flow, task
    from prefect.transactions import transaction

    from flowml.tasks.steps import promote_model

    v1, v2, v3 = (_version(registry, name, auc=a) for a in (0.7, 0.8, 0.9))
    registry.set_registered_model_alias(name, "champion", v1)
    registry.transition_model_version_stage(name, v1, "Production")
    registry.transition_model_version_stage(name, v2, "Staging")

    @task
    def smoke_test() -> None:
        raise RuntimeError("smoke test failed")

    @flow
    def release() -> None:
        with transaction():
            promote_model(name, v3, to="champion")
            promote_model(name, v3, to="Production")
            smoke_test()

    state = release(return_state=True)
    with pytest.raises(RuntimeError, match="smoke test failed"):
        state.result()
    assert registry.get_model_version_by_alias(name, "champion").version == v1
    stages = {
        mv.version: mv.current_stage for mv in registry.search_model_versions(f"name = '{name}'")
    }
    assert stages == {v1: "Production", v2: "Staging", v3: "None"}
    rolled_back = [e for e in registry.get_audit_log(name) if e.action == "promotion_rolled_back"]
    assert sorted(e.from_value for e in rolled_back) == ["Production", "champion"]
    assert all(e.flow_run_id == str(state.state_details.flow_run_id) for e in rolled_back)
    events = _eventually(lambda: len(_events("flowml.model.promotion-rolled-back", name)) == 2)
    assert events


def test_no_rollback_when_the_transaction_commits(name: str, registry: RegistryClient):
    from prefect import flow
    from prefect.transactions import transaction

    from flowml.tasks.steps import promote_model

    v1 = _version(registry, name)

    @flow
    def release() -> None:
        with transaction():
            promote_model(name, v1, to="champion")

    release()
    assert registry.get_model_version_by_alias(name, "champion").version == v1
    assert "promotion_rolled_back" not in [e.action for e in registry.get_audit_log(name)]
