"""Tracked runs of Prefect flow runs: opened by the flow's wrapper (or, for a plain ``@flow``,
by its first tracked task), closed by the flow's terminal-state hooks.

Prefect runs some of those hooks in another process than the flow's: a deployment run that
is cancelled (or whose process crashes) has its hooks run by the runner of ``.serve()`` or by
the worker, which killed the flow's process. There the hook finds the flow run's tracked run
in the store by its run key and closes it, with every run under it left RUNNING.

A subflow's run nests under its parent flow's run; the experiment is the one named on the
decorator, else the parent flow's, else the one chosen with ``flowml.set_experiment``, else
one named after the flow.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flowml.settings import get_settings
from flowml.tasks import identity, prefect_ui, publisher
from flowml.tasks import tags as ptags
from flowml.tasks.identity import FlowRunBinding
from flowml.tasks.recorder import (
    TRACKING_ERROR_TAG,
    Record,
    RunOptions,
    error_tags,
    finish,
    open_flows,
    queue_result_metrics,
    registry_lock,
    status_for,
    take_refusals,
)
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient, shared_client
from flowml.tracking.closer import drain_all
from flowml.tracking.entities import Run, RunStatus, RunTag, now_ms
from flowml.tracking.fluent import activate_run, selected_experiment_id
from flowml.tracking.lineage.inputs import defer_lineage, take_deferred

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State
    from prefect.context import FlowRunContext
    from prefect.flows import Flow

__all__ = [
    "FlowAttempt",
    "attach_flow_hooks",
    "call_index",
    "on_flow_final",
    "open_flow_run",
    "prefect_tags",
]

MAX_PREFECT_TAGS_LENGTH = 5000


# How many runs of each task a flow run has opened in this process (for artifact keys).
_calls: dict[str, dict[str, itertools.count[int]]] = {}


def call_index(flow_run_id: str | None, task_name: str, task_run_id: str) -> str:
    """What tells apart two runs of one task in a flow run, in artifact keys: the task's
    call count in the flow run (``0``, ``1``...: stable from one flow run to the next, so a
    call's artifacts form a versioned collection), or where calls are not counted here (a
    process-pool worker, no flow), the start of the task run id."""
    counts = _calls.get(flow_run_id) if flow_run_id else None
    if counts is None:
        return prefect_ui.index_of(task_run_id)
    return str(next(counts.setdefault(task_name, itertools.count())))


def prefect_tags(tags: list[str] | set[str] | tuple[str, ...]) -> dict[str, str]:
    """A Prefect run's tags as one tracked-run tag (sorted, comma-separated), or nothing."""
    if not tags:
        return {}
    return {ptags.PREFECT_TAGS: ",".join(sorted(set(tags)))[:MAX_PREFECT_TAGS_LENGTH]}


def open_flow_run(ctx: FlowRunContext, options: RunOptions, attach_hooks: bool) -> Record:
    """The record of the context's flow run, opening its tracked run on first use."""
    flow, flow_run = ctx.flow, ctx.flow_run
    assert flow is not None and flow_run is not None
    key = str(flow_run.id)
    record = open_flows.get(key)
    if record is not None:
        return record
    with registry_lock:
        record = open_flows.get(key)
        if record is not None:
            return record
        _freeze_for_flows()
        record = _open_flow_run(flow, flow_run, ctx.parameters or {}, options)
        open_flows[key] = record
        _calls[key] = {}
    if attach_hooks and not ctx.detached:
        attach_flow_hooks(flow)
    prefect_ui.emit_started(record.run, ptags.RUN_KIND_FLOW)
    return record


# Whether flowml froze the collector's objects for the tracked flow runs open now.
_frozen = False


def _freeze_for_flows() -> None:
    """Freeze the objects that exist (`gc.freeze`) when the first tracked flow run of the
    process opens, until the last one open ends (`_thaw_after_flows`); with the registry
    lock held. Not when the program froze objects itself, nor with ``FLOWML_GC_FREEZE=false``.

    A full collection scans every object the collector tracks: with Prefect imported that
    is a few hundred thousand, hundreds of milliseconds on a busy machine, and a flow of
    short tasks allocates enough to trigger one every few hundred tasks. Frozen objects
    (modules, classes, the program's data loaded so far) are not scanned. The price, only
    while flows run: a frozen object that becomes part of an unreachable cycle is freed
    after the flows end, and `gc.get_referrers` does not see frozen referrers.
    """
    global _frozen
    if open_flows or _frozen or gc.get_freeze_count():
        return
    if get_settings().gc_freeze:
        gc.freeze()
        _frozen = True


def _thaw_after_flows() -> None:
    """Unfreeze what `_freeze_for_flows` froze once no tracked flow run is open; with the
    registry lock held."""
    global _frozen
    if _frozen and not open_flows:
        gc.unfreeze()
        _frozen = False


def _open_flow_run(
    flow: Flow[Any, Any], flow_run: FlowRun, parameters: dict[str, Any], options: RunOptions
) -> Record:
    client = shared_client(*identity.current_store())
    parent = _parent_binding(client, flow_run)
    if options.experiment is not None:
        experiment_id = identity.experiment_id_for(client, options.experiment)
    elif parent is not None:
        experiment_id = parent.experiment_id
    else:
        experiment_id = selected_experiment_id() or identity.experiment_id_for(client, flow.name)
    inherited = identity.flow_run_tags(flow, flow_run)
    tags = {
        **inherited,
        **identity.owner_tags(),
        **prefect_tags(flow_run.tags),
        ptags.RUN_KIND: ptags.RUN_KIND_FLOW,
    }
    url = identity.ui_url("flow-run", flow_run.id)
    if url:
        tags[ptags.UI_URL] = url
    run = client.create_run(
        experiment_id,
        tags=tags,
        run_name=flow_run.name,
        parent_run_id=parent.run_id if parent else None,
        run_key=ptags.flow_run_key(flow_run.id),
    )
    identity.resume(client, run)
    binding = FlowRunBinding(
        flow_run_id=str(flow_run.id),
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        tracking_uri=client.tracking_uri,
        artifact_root=client.artifact_root,
        child_tags=tuple(identity.child_tags(inherited).items()),
    )
    identity.register_binding(flow, binding)
    defer_lineage(run.info.run_id)
    client.buffer.add(run.info.run_id, params=options.params.params(parameters))
    return Record(run, client, options, time.perf_counter(), (flow.name,))


def _parent_binding(client: TrackingClient, flow_run: FlowRun) -> FlowRunBinding | None:
    parent_id = identity.parent_flow_run_id(flow_run)
    if parent_id is None:
        return None
    binding = identity.find_binding(parent_id)
    if binding is not None:
        return binding
    run = identity.run_for_flow_run(client, parent_id)
    if run is None:
        return None  # the parent flow is not tracked: this flow run is a top-level run
    return FlowRunBinding(
        parent_id,
        run.info.run_id,
        run.info.experiment_id,
        client.tracking_uri,
        client.artifact_root,
    )


logger = logging.getLogger("flowml.tasks")
# What the outermost flow run waits for its artifacts at its end, at most: publishing goes
# on in the background (and is completed before the program exits).
FLOW_END_PUBLISH_WAIT_S = 0.2


class FlowAttempt:
    """One execution of a tracked flow's function (a flow retry is another attempt)."""

    def __init__(self) -> None:
        self.record: Record | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FlowAttempt:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if ctx is None or ctx.flow is None or ctx.flow_run is None:
            return self  # the function was called directly, not by Prefect's engine
        options = getattr(ctx.flow, "flowml_options", None) or RunOptions()
        self.record = open_flow_run(ctx, options, attach_hooks=True)
        self.record.client.buffer.add(
            self.record.run_id, tags=[RunTag(ptags.ATTEMPT, str(ctx.flow_run.run_count or 1))]
        )
        # Not flushed on exit: what the attempt logged goes out with the run's final values.
        self._stack.enter_context(activate_run(self.record.run, self.record.client, flush=False))
        return self

    def succeeded(self, result: Any) -> None:
        if self.record is not None:
            queue_result_metrics(self.record, result)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()


def attach_flow_hooks(flow: Flow[Any, Any]) -> None:
    """Close the flow's tracked run on every terminal state (idempotent; keeps user hooks)."""
    for hooks in (
        flow.on_completion_hooks,
        flow.on_failure_hooks,
        flow.on_crashed_hooks,
        flow.on_cancellation_hooks,
    ):
        if on_flow_final not in hooks:
            hooks.append(on_flow_final)


def on_flow_final(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """Prefect state hook: the flow run reached a terminal state; close its run."""
    key = str(flow_run.id)
    with registry_lock:
        record = open_flows.pop(key, None)
        _calls.pop(key, None)
        _thaw_after_flows()
    identity.forget_binding(flow, key)
    drain_all()  # the task runs' ends written in the background: children end first
    if record is None:
        _close_from_store(flow_run, state)
        return
    refusals = take_refusals(key)
    if refusals:
        reason = f"{len(refusals)} task run end(s) refused; the first: {refusals[0]}"
        record.client.buffer.add(record.run_id, tags=[RunTag(TRACKING_ERROR_TAG, reason[:500])])
    # The flow run's own URI is its run's key: nothing to add for it.
    finish(record, status_for(state), state, flow_run.run_count or 1, take_deferred(record.run_id))
    client = record.client
    prefect_ui.publish_finished(
        client,
        record.run_id,
        kind=ptags.RUN_KIND_FLOW,
        key_parts=record.key_parts,
        flow_run_id=key,
        task_run_id=None,
        artifacts=record.options.artifacts,
    )
    if flow_run.parent_task_run_id is None:
        # The outermost flow is done: publish its runs' artifacts now rather than after the
        # next burst, but do not hold the flow's return for them.
        publisher.flush(FLOW_END_PUBLISH_WAIT_S)


def _close_from_store(flow_run: FlowRun, state: State) -> None:
    """Close a flow run's tracked run that this process did not open (the hook runs in the
    runner or worker that cancelled the flow run), with every run under it still RUNNING."""
    client = shared_client(*identity.current_store())
    run = identity.run_for_flow_run(client, flow_run.id)
    if run is None or run.info.status != RunStatus.RUNNING:
        return  # not tracked, or closed by its own process
    status = status_for(state)
    tags = [RunTag(ptags.STATE, state.name or status), *error_tags(state)]
    # Deepest runs first, so no run is closed while a run under it is still open.
    for open_run in [*reversed(_open_descendants(client, run)), run]:
        client.store.finish_run(open_run.info.run_id, status, now_ms(), tags=tags)
        run_tags = open_run.data.tags
        task_run_id = run_tags.get(ptags.TASK_RUN_ID)
        key_parts: tuple[str | None, ...]
        if task_run_id is not None:
            key_parts = (
                run_tags.get(ptags.FLOW_NAME),
                run_tags.get(ptags.TASK_NAME),
                prefect_ui.index_of(task_run_id),  # its call count died with its process
            )
            kind = ptags.RUN_KIND_TASK
        else:
            key_parts, kind = (run_tags.get(ptags.FLOW_NAME),), ptags.RUN_KIND_FLOW
        prefect_ui.publish_finished(
            client,
            open_run.info.run_id,
            kind=kind,
            key_parts=key_parts,
            flow_run_id=run_tags.get(ptags.FLOW_RUN_ID),
            task_run_id=task_run_id,
        )
    logger.info("flowml: closed %s run %s of flow run %s", status, run.info.run_id, flow_run.id)
    publisher.hurry()


def _open_descendants(client: TrackingClient, root: Run) -> list[Run]:
    """The RUNNING runs under ``root`` (task runs, subflows and theirs), parents first."""
    running: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [root.info.experiment_id],
            "attributes.status = 'RUNNING'",
            max_results=1000,
            page_token=token,
        )
        running.extend(page)
        token = page.token
        if not token:
            break
    children: dict[str, list[Run]] = {}
    for found in running:
        parent = found.data.tags.get(systags.PARENT_RUN_ID)
        if parent:
            children.setdefault(parent, []).append(found)
    out: list[Run] = []
    level = [root.info.run_id]
    while level:
        below = [child for run_id in level for child in children.get(run_id, [])]
        out.extend(below)
        level = [child.info.run_id for child in below]
    return out
