"""Project runs on Prefect's monitoring surface, like tracked flows.

A project's flow run gets a readable name (``<entry point>-<two words>``, as Prefect names
runs), and its tracked run that name plus the flow run's Prefect tags and deployment. When it
ends, it publishes the same ``flowml.run.finished`` event and artifacts as a tracked flow (so
a deployment's runs show what they trained). A failed run records the error's type and
message. A run cancelled from Prefect whose process could not close it (killed, crashed) is
closed by the flow's hooks, in whichever process Prefect runs them: the flow run's tracked run
is found in the store by its run key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flowml.tasks import prefect_ui, publisher
from flowml.tasks import tags as ptags
from flowml.tasks.flow_runs import FLOW_END_PUBLISH_WAIT_S, prefect_tags
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient, shared_client
from flowml.tracking.entities import RunStatus, RunTag, now_ms

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

__all__ = [
    "RUN_KIND_PROJECT",
    "RunName",
    "error_tags",
    "on_killed",
    "publish_end",
    "run_key",
    "run_tags",
]

RUN_KIND_PROJECT = "project"
MAX_ERROR_MESSAGE = 4000

logger = logging.getLogger("flowml.projects")


class RunName:
    """A flow run name ``<entry point>-<two random words>`` (picklable, unlike a lambda:
    `serve` ships the flow to its runs' processes)."""

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def __call__(self) -> str:
        from prefect.utilities.names import generate_slug

        return f"{self.entry_point}-{generate_slug(2)}"


def run_key(flow_run_id: object) -> str:
    """The run key of a project's flow run's tracked run (a retry resumes the same run)."""
    return f"flowml.project:{flow_run_id}"


def run_tags(flow_run: FlowRun) -> dict[str, str]:
    """What a project run's tracked run records of its Prefect flow run."""
    tags = {ptags.FLOW_RUN_NAME: flow_run.name, **prefect_tags(flow_run.tags)}
    if flow_run.deployment_id:
        tags[ptags.DEPLOYMENT_ID] = str(flow_run.deployment_id)
    url = _ui_url(flow_run.id)
    if url:
        tags[ptags.UI_URL] = url
    return tags


def error_tags(kind: str, message: str) -> list[RunTag]:
    """Why a project run failed, as tags (read by the summary artifact and the event)."""
    return [
        RunTag(systags.ERROR_TYPE, kind[:250]),
        RunTag(systags.ERROR_MESSAGE, message[:MAX_ERROR_MESSAGE]),
    ]


def publish_end(client: TrackingClient, run_id: str, flow_name: str, flow_run_id: str) -> None:
    """Queue the run's ``flowml.run.finished`` event and artifacts (published in the
    background, and before the process exits)."""
    prefect_ui.publish_finished(
        client,
        run_id,
        kind=RUN_KIND_PROJECT,
        key_parts=(flow_name,),
        flow_run_id=flow_run_id,
        task_run_id=None,
    )
    publisher.flush(FLOW_END_PUBLISH_WAIT_S)


def on_killed(
    flow: Any, flow_run: FlowRun, state: State, *, tracking_uri: str | None = None
) -> None:
    """Prefect hook (cancellation, crash): close the run if its process could not.

    Bind ``tracking_uri`` (the project run's store, default ``FLOWML_TRACKING_URI``) with
    ``functools.partial``, which stays picklable.
    """
    from flowml.tasks import identity

    store = identity.current_store()
    client = shared_client(tracking_uri or store[0], store[1])
    run = client.get_run_by_key(run_key(flow_run.id))
    if run is None or run.info.status != RunStatus.RUNNING:
        return  # never started, or closed by its own process
    tags = [RunTag(ptags.STATE, state.name or "Cancelled")]
    if state.is_crashed():
        tags += error_tags("Crashed", state.message or "")
    client.store.finish_run(run.info.run_id, RunStatus.KILLED, now_ms(), tags=tags)
    logger.info("flowml: project run %s of flow run %s is KILLED", run.info.run_id, flow_run.id)
    publish_end(client, run.info.run_id, flow.name, str(flow_run.id))


def _ui_url(flow_run_id: object) -> str | None:
    from flowml.tasks.identity import ui_url

    return ui_url("flow-run", flow_run_id)
