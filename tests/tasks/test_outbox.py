"""The outbox: Prefect artifacts and events still queued when a program ends are written to a
file and published by another process; an abandoned file is published by ``flowml runs gc``.
Against the session's real Prefect server."""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from subprocess_helpers import run_cli

from flowml.tasks import outbox

from .helpers import eventually

pytestmark = pytest.mark.usefixtures("prefect")


def _api() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _artifact(key: str, n: int) -> dict[str, Any]:
    return outbox.artifact_item(ArtifactCreate(type="markdown", key=f"{key}-{n}", data=f"# {n}"))


def _event(resource: str) -> dict[str, Any]:
    return outbox.event_item(
        "flowml.test.outbox", {"resource": {"prefect.resource.id": resource}, "payload": {}}
    )


def _keys(prefix: str) -> set[str]:
    with get_client(sync_client=True) as prefect_client:
        found = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix)), limit=200
        )
    return {a.key for a in found if a.key}


def _events(resource: str) -> int:
    from prefect.events.filters import EventFilter, EventResourceFilter

    with get_client(sync_client=True) as prefect_client:
        page = prefect_client.read_events(
            filter=EventFilter(resource=EventResourceFilter(id=[resource])), limit=50
        )
    return len(page.events)


def _abandoned(items: list[dict[str, Any]]) -> Path:
    return _age(outbox.write_outbox(_api(), items))


def _age(path: Path) -> Path:
    old = time.time() - outbox.ABANDONED_AFTER_S - 5
    os.utime(path, (old, old))  # its publisher died a while ago
    return path


def test_an_abandoned_outbox_is_published_once_by_gc_and_removed():
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    resource = f"flowml.run.{uuid.uuid4().hex}"
    path = _abandoned([_artifact(key, n) for n in range(3)] + [_event(resource)])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"

    assert outbox.replay_abandoned() == 4
    assert not path.exists() and not Path(f"{path}.sent").exists()
    assert _keys(key) == {f"{key}-{n}" for n in range(3)}
    eventually(lambda: _events(resource) == 1, "the outbox event")
    assert outbox.replay_abandoned() == 0  # nothing left: nothing sent twice


def test_a_file_being_published_or_just_written_is_left_alone():
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    held = _abandoned([_artifact(key, 0)])
    fresh = outbox.write_outbox(_api(), [_artifact(key, 1)])
    with open(held) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # its publisher is alive
        assert outbox.replay_abandoned() == 0
    assert held.exists() and fresh.exists() and _keys(key) == set()
    assert outbox.replay_abandoned() == 1  # the lock is gone; the fresh file may still start
    assert not held.exists() and fresh.exists()
    assert outbox.publish_file(fresh) == 1
    assert _keys(key) == {f"{key}-0", f"{key}-1"}


def test_a_file_taken_over_sends_only_what_was_not_sent():
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    path = _abandoned([_artifact(key, n) for n in range(4)])
    Path(f"{path}.sent").write_text("2")  # its publisher died after the first two
    assert outbox.replay_abandoned() == 2
    assert _keys(key) == {f"{key}-2", f"{key}-3"}


def test_an_unreadable_file_is_set_aside_and_nothing_is_sent(caplog):
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    path = _abandoned([_artifact(key, 0)])
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"script": "import os"}\n')  # neither an artifact nor an event
    _age(path)
    assert outbox.replay_abandoned() == 0
    assert not path.exists() and path.with_suffix(".bad").exists()
    assert "set aside" in caplog.text
    assert _keys(key) == set()
    assert outbox.replay_abandoned() == 0  # never retried


def test_events_carry_the_related_resources_of_their_run_context():
    seen: dict[str, Any] = {}

    @task
    def inner() -> None:
        seen["item"] = _event("flowml.run.x")

    @flow(name="outbox-related")
    def outer() -> None:
        inner()

    state = outer(return_state=True)
    related = {r["prefect.resource.role"]: r for r in seen["item"]["event"]["related"]}
    assert related["flow-run"]["prefect.resource.id"] == (
        f"prefect.flow-run.{state.state_details.flow_run_id}"
    )
    assert related["flow"]["prefect.resource.name"] == "outbox-related"
    assert related["task-run"]["prefect.resource.id"].startswith("prefect.task-run.")


def test_hand_off_is_only_used_where_it_is_safe(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    assert outbox.can_hand_off()  # a server of its own: it outlives a program
    monkeypatch.setenv("FLOWML_PUBLISH_AT_EXIT", "wait")
    assert not outbox.can_hand_off()
    monkeypatch.delenv("FLOWML_PUBLISH_AT_EXIT")
    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert not outbox.can_hand_off()  # Prefect's local mode: its server ends with us
    monkeypatch.setenv("FLOWML_PUBLISH_AT_EXIT", "later")
    with pytest.raises(ValueError, match="publish_at_exit"):
        outbox.can_hand_off()


def test_the_cli_gc_publishes_an_abandoned_outbox(tmp_path):
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    path = _abandoned([_artifact(key, 0)])
    env = {
        **os.environ,
        "PREFECT_API_URL": _api(),
        "FLOWML_TRACKING_URI": f"sqlite:///{tmp_path / 'gc.db'}",
    }
    done = run_cli(env, "runs", "gc", "-o", "json")
    assert json.loads(done.stdout) == []  # no runs to collect; the outbox went to stderr
    assert "abandoned outbox" in done.stderr
    assert not path.exists() and _keys(key) == {f"{key}-0"}


def test_a_file_for_another_api_is_never_sent_with_this_processs_credentials(caplog):
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    path = _age(outbox.write_outbox("http://127.0.0.1:9/api", [_artifact(key, 0)]))
    assert outbox.replay_abandoned() == 0
    assert path.exists() and "not this one" in caplog.text
    assert _keys(key) == set()


def test_an_outbox_folder_others_may_write_is_refused(caplog):
    key = f"outbox-{uuid.uuid4().hex[:8]}"
    path = _abandoned([_artifact(key, 0)])
    path.parent.chmod(0o777)
    try:
        assert outbox.replay_abandoned() == 0
        assert "not private" in caplog.text
        with pytest.raises(PermissionError, match="not private"):
            outbox.write_outbox(_api(), [_artifact(key, 1)])
    finally:
        path.parent.chmod(0o700)
    assert path.exists() and _keys(key) == set()
    assert outbox.replay_abandoned() == 1  # private again: published
