"""``flowml runs gc``: close runs left RUNNING by flow and task runs that are over, and by
processes that died.

A tracked run is closed by a Prefect state hook, a plain run by ``end_run`` or at interpreter
exit. When neither happened — the process was killed, the machine lost, or a tracked task ran
in a process-pool worker of a plain ``@flow`` — the run stays RUNNING. A run is collected when:

- its Prefect flow or task run is in a terminal state (the run gets the matching status:
  COMPLETED -> FINISHED, FAILED -> FAILED, CRASHED and CANCELLED -> KILLED);
- its Prefect flow or task run no longer exists (KILLED);
- it is owned (``flowml.owner``, recorded on every run) by a process of this host that is
  gone, while Prefect (if it knows the run at all) still shows it running (KILLED).

Runs of a live process whose Prefect run is still running are left alone. The reason is kept
in the ``flowml.gc.reason`` tag.

A flow run's run (a tracked flow's, or a ``flowml run`` project's) collected because its
process is gone while Prefect still shows its flow run running also moves that flow run to
CRASHED (when Prefect is reachable): nothing is left to end it, and Prefect would show it
running forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flowml.tasks import tags as ptags
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Run, RunStatus, RunTag, ViewType, now_ms
from flowml.tracking.owner import is_gone, parse_owner

__all__ = ["Collected", "collect_orphans"]

logger = logging.getLogger(__name__)

GC_REASON_TAG = "flowml.gc.reason"
_MISSING = "MISSING"
_PAGE = 1000
_TERMINAL = {
    "COMPLETED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "CRASHED": RunStatus.KILLED,
    "CANCELLED": RunStatus.KILLED,
}
_CRASHED = "CRASHED"
# Prefect states of a flow run that only its (dead) process could have moved on.
_CRASHABLE = {"PENDING", "RUNNING", "CANCELLING"}


@dataclass(frozen=True)
class Collected:
    """A RUNNING run found orphaned, with the status it was (or would be) given."""

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    reason: str
    # The state the run's Prefect flow run was moved to ("CRASHED"), if any.
    prefect_state: str | None = None


def collect_orphans(
    client: TrackingClient | None = None,
    *,
    dry_run: bool = False,
    experiment_ids: list[str] | None = None,
) -> list[Collected]:
    """Find RUNNING runs whose Prefect run is over (or gone, or whose process died) and end them.

    Args:
        client: the tracking client (default: the fluent API's).
        dry_run: report what would be collected without changing anything.
        experiment_ids: where to look (default: every active experiment).

    Returns:
        The collected runs, with their new status and the reason.

    Example:
        >>> for c in collect_orphans(dry_run=True):
        ...     print(c.run_id, c.status, c.reason)
    """
    if client is None:
        from flowml.tracking.fluent import get_client

        client = get_client()
    ids = experiment_ids or [e.experiment_id for e in client.search_experiments()]
    found: list[Collected] = []
    with _PrefectStates() as states:
        for run in _running(client, ids):
            verdict = _verdict(run, states)
            if verdict is None:
                continue
            status, reason, crash = verdict
            crashed = None
            if not dry_run:
                client.flush(run.info.run_id)
                client.store.finish_run(
                    run.info.run_id, status, now_ms(), tags=[RunTag(GC_REASON_TAG, reason)]
                )
                if crash is not None and states.crash_flow_run(crash, reason):
                    crashed = _CRASHED
            found.append(
                Collected(
                    run.info.run_id,
                    run.info.run_name,
                    run.info.experiment_id,
                    status,
                    reason,
                    crashed,
                )
            )
    return found


def _running(client: TrackingClient, experiment_ids: list[str]):
    token = None
    while experiment_ids:
        page = client.search_runs(
            experiment_ids,
            "attributes.status = 'RUNNING'",
            ViewType.ACTIVE_ONLY,
            _PAGE,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _verdict(run: Run, states: _PrefectStates) -> tuple[str, str, str | None] | None:
    """The run's new status, the reason, and the Prefect flow run to crash (if any)."""
    tags = run.data.tags
    prefect_running = False
    flow_run_id = None
    if tags.get(ptags.RUN_KIND) == ptags.RUN_KIND_TASK:
        # Prefect learns of task runs from events, possibly late: a task run it does not
        # know (yet) proves nothing, so only its state, or its flow run's, decides.
        state = states.state("task-run", tags.get(ptags.TASK_RUN_ID))
        if state in _TERMINAL:
            return _TERMINAL[state], f"its Prefect task run is {state}", None
        prefect_running = state not in (None, _MISSING)
        flow_state = states.state("flow-run", tags.get(ptags.FLOW_RUN_ID))
        if flow_state == _MISSING:
            return RunStatus.KILLED, "its Prefect flow run no longer exists", None
        if flow_state in _TERMINAL:
            return RunStatus.KILLED, f"its flow run ended ({flow_state}) before it did", None
    else:
        state = states.state("flow-run", tags.get(ptags.FLOW_RUN_ID))
        if state == _MISSING:
            return RunStatus.KILLED, "its Prefect flow run no longer exists", None
        if state in _TERMINAL:
            return _TERMINAL[state], f"its Prefect flow run is {state}", None
        prefect_running = state is not None
        if state in _CRASHABLE:
            flow_run_id = tags.get(ptags.FLOW_RUN_ID)
    owner = parse_owner(tags.get(ptags.OWNER))
    if owner is not None and is_gone(owner):
        where = " while Prefect shows it running" if prefect_running else ""
        return RunStatus.KILLED, f"its process {owner.pid} is gone{where}", flow_run_id
    return None


class _PrefectStates:
    """Prefect flow/task run state types, read once each; ``None`` when Prefect is unknown
    or unreachable (then only the process check applies), ``"MISSING"`` when deleted."""

    def __init__(self) -> None:
        self._client: Any = None
        self._cache: dict[tuple[str, str], str | None] = {}
        self._usable = True

    def __enter__(self) -> _PrefectStates:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)

    def state(self, kind: str, obj_id: str | None) -> str | None:
        if not obj_id or not self._usable:
            return None
        key = (kind, obj_id)
        if key not in self._cache:
            self._cache[key] = self._read(kind, obj_id)
        return self._cache[key]

    def _read(self, kind: str, obj_id: str) -> str | None:
        from prefect.exceptions import ObjectNotFound

        try:
            client = self._prefect()
            read = client.read_task_run if kind == "task-run" else client.read_flow_run
            found = read(UUID(obj_id))
        except ObjectNotFound:
            return _MISSING
        except ValueError:
            return None  # not a UUID: not a Prefect id after all
        except Exception:  # Prefect is not reachable from here: fall back on the pid check
            self._usable = False
            return None
        state_type = getattr(found, "state_type", None)
        return getattr(state_type, "value", None)

    def crash_flow_run(self, flow_run_id: str, reason: str) -> bool:
        """Move the flow run to CRASHED; False when Prefect refused or is unreachable."""
        from prefect.states import Crashed

        try:
            result = self._prefect().set_flow_run_state(
                UUID(flow_run_id),
                Crashed(message=f"flowml runs gc: the tracked run's process died ({reason})"),
                force=True,
            )
        except Exception:  # Prefect unreachable: the tracked run is ended all the same
            logger.warning("flowml: could not mark flow run %s CRASHED", flow_run_id, exc_info=True)
            return False
        self._cache[("flow-run", flow_run_id)] = _CRASHED
        return getattr(getattr(result, "status", None), "value", None) == "ACCEPT"

    def _prefect(self) -> Any:
        if self._client is None:
            from prefect.client.orchestration import get_client

            self._client = get_client(sync_client=True)
            self._client.__enter__()
        return self._client
