"""The life cycle of the tracked run behind a Prefect flow run or task run.

    open (first attempt)      get-or-create the run by its Prefect id, queue params, emit
                              ``flowml.run.started``
    each attempt              make the run active (``flowml.log_*`` lands in it), record the
                              attempt; on success queue result metrics, duration, attempts
    final state (state hook)  write lineage, close the run with the status Prefect decided,
                              publish artifacts and ``flowml.run.finished``

Closing happens in Prefect state hooks, so it follows Prefect's verdict: a failed attempt
that will be retried leaves the run RUNNING, and a flow run closes on its own terminal
state, never a task's. Writes are queued and go out in a few transactions per run,
however much the task logs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowml.tasks import identity, prefect_ui, publisher
from flowml.tasks import tags as ptags
from flowml.tasks.identity import FlowRunBinding
from flowml.tasks.summarize import ParamPolicy, result_metrics, to_metrics
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Run, RunStatus, RunTag, now_ms
from flowml.tracking.fluent import activate_run
from flowml.tracking.inputs import defer_lineage, take_deferred
from flowml.tracking.lineage import (
    INPUT,
    KIND_PREFECT_FLOW_RUN,
    KIND_PREFECT_RESULT,
    KIND_PREFECT_TASK_RUN,
    OUTPUT,
    LineageEntry,
    flow_run_uri,
    result_uri,
    task_run_uri,
)
from flowml.tracking.validation import (
    MAX_BATCH_ENTRIES,
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
)

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State, TaskRun
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.flows import Flow
    from prefect.tasks import Task

__all__ = [
    "FlowAttempt",
    "RunOptions",
    "TaskAttempt",
    "attach_flow_hooks",
    "attach_task_hooks",
    "on_flow_final",
    "on_task_final",
    "open_flow_run",
]


@dataclass(frozen=True)
class RunOptions:
    """What a tracked flow or task records (set by the decorators)."""

    params: ParamPolicy = field(default_factory=ParamPolicy)
    log_result: bool | str = True
    artifacts: bool = True
    experiment: str | None = None


@dataclass
class _Record:
    """A run this process has opened and not closed yet."""

    run: Run
    client: TrackingClient
    options: RunOptions
    started: float  # time.perf_counter() when the run was opened, for the duration metric
    key_parts: tuple[str | None, ...]
    upstream: list[LineageEntry] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


_tasks: dict[str, _Record] = {}
_flows: dict[str, _Record] = {}
_lock = threading.Lock()


# -- flows -----------------------------------------------------------------------------------


def open_flow_run(ctx: FlowRunContext, options: RunOptions, attach_hooks: bool) -> _Record:
    """The record of the context's flow run, opening its tracked run on first use."""
    flow, flow_run = ctx.flow, ctx.flow_run
    assert flow is not None and flow_run is not None
    key = str(flow_run.id)
    record = _flows.get(key)
    if record is not None:
        return record
    with _lock:
        record = _flows.get(key)
        if record is not None:
            return record
        record = _open_flow_run(flow, flow_run, ctx.parameters or {}, options)
        _flows[key] = record
    if attach_hooks and not ctx.detached:
        attach_flow_hooks(flow)
    prefect_ui.emit_started(record.run, ptags.RUN_KIND_FLOW)
    return record


def _open_flow_run(
    flow: Flow[Any, Any], flow_run: FlowRun, parameters: dict[str, Any], options: RunOptions
) -> _Record:
    client = identity.client_for(*identity.current_store())
    parent = _parent_binding(client, flow_run)
    if options.experiment is not None:
        experiment_id = identity.experiment_id_for(client, options.experiment)
    elif parent is not None:
        experiment_id = parent.experiment_id
    else:
        experiment_id = identity.chosen_experiment_id() or identity.experiment_id_for(
            client, flow.name
        )
    inherited = identity.flow_run_tags(flow, flow_run)
    tags = {
        **inherited,
        **identity.owner_tags(),
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
    return _Record(run, client, options, time.perf_counter(), (flow.name,))


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


class FlowAttempt:
    """One execution of a tracked flow's function (a flow retry is another attempt)."""

    def __init__(self) -> None:
        self.record: _Record | None = None
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
            _queue_result_metrics(self.record, result)

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
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
    with _lock:
        record = _flows.pop(key, None)
    identity.forget_binding(flow, key)
    if record is None:
        return
    # The flow run's own URI is its run's key: nothing to add for it.
    _finish(record, _status(state), state, flow_run.run_count or 1, take_deferred(record.run_id))
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


# -- tasks -----------------------------------------------------------------------------------


def open_task_run(ctx: TaskRunContext, options: RunOptions) -> _Record:
    """The record of the context's task run, opening its tracked run on first use."""
    task_run = ctx.task_run
    key = str(task_run.id)
    record = _tasks.get(key)
    if record is not None:
        return record
    binding, flow_name = _task_binding(task_run)
    if binding is not None:
        client = identity.client_for(binding.tracking_uri, binding.artifact_root)
        experiment_id, parent_id = binding.experiment_id, binding.run_id
        inherited = dict(binding.child_tags)
    else:
        client = identity.client_for(*identity.current_store())
        experiment_id, parent_id, inherited = identity.default_experiment_id(), None, {}
    nesting = _enclosing_task_run(task_run)
    if nesting is not None:
        parent_id = nesting.run_id  # a task called inside a task nests under that task's run
    tags = {
        **inherited,
        **identity.owner_tags(),
        ptags.RUN_KIND: ptags.RUN_KIND_TASK,
        ptags.TASK_NAME: ctx.task.name,
        ptags.TASK_RUN_ID: key,
        ptags.ATTEMPT: str(task_run.run_count or 1),
    }
    if not inherited:
        tags.update(identity.child_tags(identity.code_tags(ctx.task.fn)))
    url = identity.ui_url("task-run", task_run.id)
    if url:
        tags[ptags.UI_URL] = url
    run = client.create_run(
        experiment_id,
        tags=tags,
        run_name=task_run.name,
        parent_run_id=parent_id,
        run_key=ptags.task_run_key(key),
    )
    record = _Record(
        run, client, options, time.perf_counter(), (flow_name, ctx.task.name), _upstream(task_run)
    )
    defer_lineage(run.info.run_id)
    client.buffer.add(run.info.run_id, params=options.params.params(ctx.parameters))
    with _lock:
        _tasks[key] = record
    prefect_ui.emit_started(run, ptags.RUN_KIND_TASK, background=True)
    return record


def _task_binding(task_run: TaskRun) -> tuple[FlowRunBinding | None, str | None]:
    """The task's flow run binding (opening the flow's run when the flow is a plain
    ``@flow``) and the flow's name."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow is None or task_run.flow_run_id is None:
        return None, None
    binding = identity.find_binding(str(task_run.flow_run_id), ctx.flow)
    if binding is None and ctx.flow_run is not None and ctx.flow_run.id == task_run.flow_run_id:
        # A tracked task in a plain @flow: the flow run still gets its run (closed by hooks
        # attached to the flow, or by `flowml runs gc` when that cannot happen).
        open_flow_run(ctx, RunOptions(), attach_hooks=True)
        binding = identity.find_binding(str(task_run.flow_run_id), ctx.flow)
    return binding, ctx.flow.name


def _enclosing_task_run(task_run: TaskRun) -> _Record | None:
    for run_input in task_run.task_inputs.get("__parents__", ()):
        record = _tasks.get(str(getattr(run_input, "id", "")))
        if record is not None:
            return record
    return None


def _upstream(task_run: TaskRun) -> list[LineageEntry]:
    """Lineage inputs from Prefect's record of which task and flow runs fed this one."""
    entries: dict[str, LineageEntry] = {}
    for name, inputs in task_run.task_inputs.items():
        if name == "__parents__":
            continue
        for run_input in inputs:
            input_type = getattr(run_input, "input_type", None)
            if input_type == "task_run":
                uri, kind = task_run_uri(run_input.id), KIND_PREFECT_TASK_RUN
            elif input_type == "flow_run":
                uri, kind = flow_run_uri(run_input.id), KIND_PREFECT_FLOW_RUN
            else:
                continue
            entries.setdefault(uri, LineageEntry(INPUT, kind, uri, name=name[:250]))
    return list(entries.values())


class TaskAttempt:
    """One execution of a tracked task's function (a retry is another attempt).

    A successful attempt whose result Prefect will neither persist nor judge (a plain
    value, not a ``State``) is final: the run is closed here, when the function returns.
    Everything else is closed by the task's state hooks, once Prefect has decided: a failure
    (retried or not), a returned state, or a persisted result, which a later cache hit may
    read and must be able to trace back to this run.
    """

    def __init__(self) -> None:
        self.record: _Record | None = None
        self.attempt = 1
        self._final = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TaskAttempt:
        from prefect.context import TaskRunContext

        ctx = TaskRunContext.get()
        if ctx is None:
            return self  # the function was called directly, not by Prefect's engine
        # Options and hooks are read from the running Task, so a copy made with
        # `with_options` (or a plain Task built on a tracked function) behaves the same.
        attach_task_hooks(ctx.task)
        options = getattr(ctx.task, "flowml_options", None) or RunOptions()
        self.record = open_task_run(ctx, options)
        self.attempt = ctx.task_run.run_count or 1
        if self.attempt > 1:  # the first attempt's number was written with the run
            self.record.client.buffer.add(
                self.record.run_id, tags=[RunTag(ptags.ATTEMPT, str(self.attempt))]
            )
        self._stack.enter_context(activate_run(self.record.run, self.record.client, flush=False))
        return self

    def succeeded(self, result: Any) -> None:
        from prefect.context import TaskRunContext

        if self.record is None:
            return
        _queue_result_metrics(self.record, result)
        ctx = TaskRunContext.get()
        if _judged_by_prefect(result) or (ctx is not None and ctx.persist_result):
            if ctx is not None:
                attach_task_hooks(ctx.task, on_completion=True)
        else:
            self._final = True

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        try:
            self._stack.close()
        finally:
            if self.record is None:
                pass
            elif exc_type is None and self._final:
                _close_task_run(self.record, None, RunStatus.FINISHED, None, self.attempt)
            elif exc_type is not None and _is_interruption(exc_type):
                # Prefect calls no state hook for a crash, so the run is closed here.
                _close_task_run(self.record, None, RunStatus.KILLED, "Crashed", self.attempt)


def attach_task_hooks(task: Task[Any, Any], on_completion: bool | None = None) -> None:
    """Make the task's final states close its tracked run (idempotent; keeps user hooks).

    The failure hook is always there. The completion hook is only needed for results Prefect
    persists (``on_completion=None`` decides from the task's settings; ``True`` forces it):
    Prefect logs two lines per hook call, a cost every task would pay for nothing.
    """
    if on_task_final not in task.on_failure_hooks:
        task.on_failure_hooks.append(on_task_final)
    if on_completion is None:
        on_completion = _may_persist(task)
    if on_completion and on_task_final not in task.on_completion_hooks:
        task.on_completion_hooks.append(on_task_final)


def _may_persist(task: Task[Any, Any]) -> bool:
    """Whether the task's results may be persisted, so that a run may be a cache hit."""
    if task.persist_result is not None:
        return bool(task.persist_result)
    from prefect.settings import get_current_settings

    return bool(get_current_settings().results.persist_by_default)


def _judged_by_prefect(result: Any) -> bool:
    """A returned ``State`` (or states) decides the task run's final state, not us."""
    from prefect.client.schemas.objects import State

    if isinstance(result, State):
        return True
    if isinstance(result, (list, tuple, set)) and result:
        return any(isinstance(item, State) for item in result)
    return False


def on_task_final(task: Task[Any, Any], task_run: TaskRun, state: State) -> None:
    """Prefect state hook: the task run reached its final state; close its run."""
    key = str(task_run.id)
    record = _tasks.get(key)
    if record is None:
        if state.is_completed() and state.name == "Cached":
            _on_cache_hit(task, task_run, state)
        return
    _close_task_run(record, state, _status(state), state.name, task_run.run_count or 1)


def _close_task_run(
    record: _Record, state: State | None, status: str, state_name: str | None, attempts: int
) -> None:
    task_run_id = record.run.data.tags[ptags.TASK_RUN_ID]
    with _lock:
        if _tasks.pop(task_run_id, None) is None:
            return  # already closed
    # The task run's own URI is its run's key: only what it read and produced is added.
    entries = take_deferred(record.run_id) + record.upstream
    key = _persisted_result_key(state)
    if key is not None:
        entries.append(LineageEntry(OUTPUT, KIND_PREFECT_RESULT, result_uri(key)))
    _finish(record, status, state, attempts, entries, state_name)
    client = record.client
    flow_run_id = record.run.data.tags.get(ptags.FLOW_RUN_ID)
    prefect_ui.publish_finished(
        client,
        record.run_id,
        kind=ptags.RUN_KIND_TASK,
        key_parts=record.key_parts,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        artifacts=record.options.artifacts,
    )
    if _in_worker_process():
        publisher.flush()


def _on_cache_hit(task: Task[Any, Any], task_run: TaskRun, state: State) -> None:
    """No new run for a cache hit: the run that computed the result also stands for this
    task run (lineage and `run_for_task_run` resolve to it), and the Prefect UI says so."""
    key = _result_key(state)
    if key is None:
        return
    binding, flow_name = _task_binding(task_run)
    client = (
        identity.client_for(binding.tracking_uri, binding.artifact_root)
        if binding is not None
        else identity.client_for(*identity.current_store())
    )
    producers = client.store.search_lineage(uris=[result_uri(key)], direction=OUTPUT)
    if not producers or producers[-1].run_id is None:
        return  # computed by an untracked task or before flowml was installed
    producer = client.get_run(producers[-1].run_id)
    client.store.log_lineage(
        producer.info.run_id,
        [
            LineageEntry(
                OUTPUT, KIND_PREFECT_TASK_RUN, task_run_uri(task_run.id), name=task_run.name
            )
        ],
    )
    prefect_ui.publish_cache_hit(
        producer,
        key_parts=(flow_name, task.name),
        flow_run_id=str(task_run.flow_run_id) if task_run.flow_run_id else None,
        task_run_id=str(task_run.id),
    )
    if _in_worker_process():
        publisher.flush()


# -- shared ----------------------------------------------------------------------------------


def _finish(
    record: _Record,
    status: str,
    state: State | None,
    attempts: int,
    lineage: list[LineageEntry],
    state_name: str | None = None,
) -> None:
    """Close the run in one store transaction: what its attempts queued, its duration and
    attempt count (written once, whatever the number of attempts), the final state's name
    when it is not plain success, its lineage, and the status."""
    now = now_ms()
    metrics, params, tags = record.client.buffer.take(record.run_id)
    auto = {
        ptags.METRIC_DURATION: time.perf_counter() - record.started,
        ptags.METRIC_ATTEMPTS: float(attempts),
    }
    metrics = [*metrics, *to_metrics(auto, now)]
    if status != RunStatus.FINISHED:
        name = state_name or (state.name if state is not None else None) or status
        tags = [*tags, RunTag(ptags.STATE, name)]
    if not _fits_one_batch(metrics, params, tags):
        # A task that queued more than a batch since the last timed flush: write the excess
        # first (one more statement group per thousand values).
        record.client.buffer.add(record.run_id, metrics=metrics, params=params, tags=tags)
        record.client.flush(record.run_id)
        metrics, params, tags = [], [], []
    record.client.store.finish_run(
        record.run_id, status, now, metrics=metrics, params=params, tags=tags, lineage=lineage
    )


def _fits_one_batch(metrics: list[Any], params: list[Any], tags: list[Any]) -> bool:
    return (
        len(metrics) <= MAX_BATCH_METRICS
        and len(params) <= MAX_BATCH_PARAMS
        and len(tags) <= MAX_BATCH_TAGS
        and len(metrics) + len(params) + len(tags) <= MAX_BATCH_ENTRIES
    )


def _queue_result_metrics(record: _Record, result: Any) -> None:
    if record.options.log_result:
        name = record.options.log_result if isinstance(record.options.log_result, str) else None
        values = result_metrics(result, name)
        if values:
            record.client.buffer.add(record.run_id, metrics=to_metrics(values, now_ms()))


def _status(state: State) -> str:
    if state.is_completed():
        return RunStatus.FINISHED
    if state.is_cancelled() or state.is_cancelling() or state.is_crashed():
        return RunStatus.KILLED  # stopped from outside, as MLflow marks an interrupted run
    return RunStatus.FAILED


def _is_interruption(exc_type: type[BaseException]) -> bool:
    """KeyboardInterrupt, SystemExit, cancellation, Prefect's termination signal: the
    attempt was stopped from outside (a Prefect pause or a closed generator is not)."""
    import asyncio

    from prefect.exceptions import TerminationSignal

    return issubclass(
        exc_type, (KeyboardInterrupt, SystemExit, asyncio.CancelledError, TerminationSignal)
    )


def _result_key(state: State | None) -> str | None:
    from prefect.results import ResultRecord

    data = getattr(state, "data", None)
    if isinstance(data, ResultRecord):
        return data.metadata.storage_key
    return None


def _persisted_result_key(state: State | None) -> str | None:
    """The storage key of a completed, persisted result: what a later cache hit reads."""
    from prefect.results import should_persist_result

    if state is None or not state.is_completed() or not should_persist_result():
        return None
    return _result_key(state)


def _in_worker_process() -> bool:
    """Inside a process-pool worker, whose process may end with the task."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and ctx.detached
