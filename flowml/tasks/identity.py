"""Prefect ids -> tracked runs.

A Prefect flow run maps to one tracked run (run key ``prefect-flow-run:<id>``) and a task run
to one child run (``prefect-task-run:<id>``); creation is an idempotent get-or-create, so
threads, processes and retries all land on the same run. Nothing here consults a
thread-global "active run".

A `FlowRunBinding` is what a task needs to know about its flow run's tracked run: the run
id, the experiment, the store. Bindings live in a per-process registry and, for task runners
that execute in other processes, on the Prefect ``Flow`` object itself, which Prefect ships
to the worker process with the flow run context: a task in a ``ProcessPoolTaskRunner``
worker finds its parent run and its store without asking anyone.
"""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowml.settings import get_settings
from flowml.tasks import tags as ptags
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.context import current_user, git_info
from flowml.tracking.entities import Run, RunStatus
from flowml.tracking.lineage import OUTPUT, task_run_uri
from flowml.tracking.owner import current_owner, hostname  # noqa: F401 - hostname re-exported

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow

__all__ = [
    "FlowRunBinding",
    "code_tags",
    "experiment_id_for",
    "find_binding",
    "child_tags",
    "flow_run_tags",
    "forget_binding",
    "register_binding",
    "run_for_task_run",
]

_BINDINGS_ATTR = "_flowml_bindings"


@dataclass(frozen=True, slots=True)
class FlowRunBinding:
    """The tracked run of one Prefect flow run, as its tasks need it.

    Attributes:
        flow_run_id: the Prefect flow run id.
        run_id: the tracked run's id.
        experiment_id: the experiment both it and its task runs belong to.
        tracking_uri: the store the run lives in.
        artifact_root: the artifact root of that store's client.
        child_tags: tags every task run under this flow run inherits.
    """

    flow_run_id: str
    run_id: str
    experiment_id: str
    tracking_uri: str
    artifact_root: str
    child_tags: tuple[tuple[str, str], ...] = ()


_bindings: dict[str, FlowRunBinding] = {}
_lock = threading.Lock()
_experiments: dict[tuple[str, str], str] = {}


def register_binding(flow: Flow[Any, Any] | None, binding: FlowRunBinding) -> None:
    """Make a binding findable in this process and by workers that receive ``flow``."""
    with _lock:
        _bindings[binding.flow_run_id] = binding
        if flow is not None:
            # Replaced, never mutated: Prefect may be pickling the old mapping in another
            # thread while a concurrent flow run of the same Flow object binds.
            current = getattr(flow, _BINDINGS_ATTR, None) or {}
            setattr(flow, _BINDINGS_ATTR, {**current, binding.flow_run_id: binding})


def forget_binding(flow: Flow[Any, Any] | None, flow_run_id: str) -> FlowRunBinding | None:
    """Drop a flow run's binding once the flow run is over; returns it (``None`` if unknown)."""
    with _lock:
        binding = _bindings.pop(flow_run_id, None)
        if flow is not None:
            current = getattr(flow, _BINDINGS_ATTR, None) or {}
            if flow_run_id in current:
                found = current[flow_run_id]
                binding = binding or found
                setattr(
                    flow, _BINDINGS_ATTR, {k: v for k, v in current.items() if k != flow_run_id}
                )
    return binding


def find_binding(flow_run_id: str, flow: Flow[Any, Any] | None = None) -> FlowRunBinding | None:
    """The binding of a flow run known to this process or carried by ``flow``."""
    binding = _bindings.get(flow_run_id)
    if binding is None and flow is not None:
        binding = (getattr(flow, _BINDINGS_ATTR, None) or {}).get(flow_run_id)
    return binding


def current_store() -> tuple[str, str]:
    """The tracking URI and artifact root the fluent API points at right now."""
    from flowml.tracking.fluent import get_tracking_uri

    return get_tracking_uri(), get_settings().resolved_artifact_root


def experiment_id_for(client: TrackingClient, name: str) -> str:
    """The id of the experiment called ``name``, created on first use (looked up once per
    process).

    Raises:
        InvalidState: the experiment exists but is deleted.
    """
    key = (client.tracking_uri, name)
    found = _experiments.get(key)
    if found is not None:
        return found
    experiment = client.get_or_create_experiment(name)
    _experiments[key] = experiment.experiment_id
    return experiment.experiment_id


def flow_run_tags(flow: Flow[Any, Any], flow_run: FlowRun) -> dict[str, str]:
    """Tags describing a flow run; its task runs inherit them (see `child_tags`)."""
    out = {
        ptags.FLOW_NAME: flow.name,
        ptags.FLOW_RUN_ID: str(flow_run.id),
        ptags.FLOW_RUN_NAME: flow_run.name,
        **code_tags(flow.fn),
    }
    if flow.version:
        out[ptags.FLOW_VERSION] = str(flow.version)
    if flow_run.deployment_id:
        out[ptags.DEPLOYMENT_ID] = str(flow_run.deployment_id)
    return out


# What a task run repeats of its flow run's tags: enough to find and read it on its own.
# The rest (source file and type, branch, flow version) stays on the flow's run: every tag
# is a row written per task run.
_INHERITED = (
    ptags.FLOW_NAME,
    ptags.FLOW_RUN_ID,
    ptags.FLOW_RUN_NAME,
    ptags.DEPLOYMENT_ID,
    systags.USER,
    systags.GIT_COMMIT,
)


def child_tags(flow_tags: dict[str, str]) -> dict[str, str]:
    """The part of a flow run's tags its task runs carry too."""
    return {k: flow_tags[k] for k in _INHERITED if k in flow_tags}


def owner_tags() -> dict[str, str]:
    """Which process owns the run (for `flowml runs gc`)."""
    return {ptags.OWNER: current_owner()}


def ui_url(kind: str, obj_id: object) -> str | None:
    """The Prefect UI page of a flow or task run, when ``PREFECT_UI_URL`` is known."""
    from prefect.utilities.urls import url_for

    try:
        return url_for(kind, obj_id=str(obj_id))
    except Exception:  # no UI configured: nothing to link to
        return None


def code_tags(fn: Any) -> dict[str, str]:
    """User, source file and git commit of the code that defines ``fn``."""
    source = _source_file(inspect.unwrap(fn))
    out = {
        systags.USER: current_user(),
        systags.SOURCE_NAME: source or getattr(fn, "__qualname__", "<unknown>"),
        systags.SOURCE_TYPE: systags.SOURCE_TYPE_JOB,
    }
    git = git_info(os.path.dirname(source) if source else os.getcwd())
    if "commit" in git:
        out[systags.GIT_COMMIT] = git["commit"]
    if "branch" in git:
        out[systags.GIT_BRANCH] = git["branch"]
    return out


def _source_file(fn: Any) -> str | None:
    try:
        return inspect.getsourcefile(fn)
    except (TypeError, OSError):
        return None


def parent_flow_run_id(flow_run: FlowRun) -> str | None:
    """The flow run that started ``flow_run`` as a subflow, or ``None`` for a top-level run.

    Prefect records a subflow's caller as a task run of the parent flow run; one read of
    that task run gives the parent flow run id.
    """
    if not flow_run.parent_task_run_id:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect_client:
        task_run = prefect_client.read_task_run(flow_run.parent_task_run_id)
    return str(task_run.flow_run_id) if task_run.flow_run_id else None


def run_for_flow_run(client: TrackingClient, flow_run_id: object) -> Run | None:
    """The tracked run of a Prefect flow run, or ``None``."""
    return client.get_run_by_key(ptags.flow_run_key(flow_run_id))


def run_for_task_run(client: TrackingClient, task_run_id: object) -> Run | None:
    """The tracked run standing for a Prefect task run: its own, or for a cache hit, the run
    that computed the cached result. ``None`` when neither exists."""
    run = client.get_run_by_key(ptags.task_run_key(task_run_id))
    if run is not None:
        return run
    client.flush()
    for entry in client.store.search_lineage(uris=[task_run_uri(task_run_id)], direction=OUTPUT):
        if entry.run_id is not None:
            return client.get_run(entry.run_id)
    return None


def resume(client: TrackingClient, run: Run) -> Run:
    """A run found by its key is reopened when an earlier attempt already closed it (a flow
    run retried from the Prefect UI, or one ``flowml runs gc`` had marked). A run opened
    earlier by another process (a retry on another worker) becomes this process's, so
    ``flowml runs gc`` judges it by the process now running it."""
    owner = current_owner()
    if run.data.tags.get(systags.OWNER, owner) != owner:
        client.set_tag(run.info.run_id, systags.OWNER, owner)
    if run.info.status != RunStatus.RUNNING:
        client.update_run(run.info.run_id, status=RunStatus.RUNNING)
    return run
