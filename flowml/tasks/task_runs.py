"""Tracked runs of Prefect task runs: one child run per task run, the same across retries,
none for a cache hit (which is linked to the run that computed the result instead).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flowml.exceptions import FlowMLError, StoreError
from flowml.tasks import identity, prefect_ui, publisher
from flowml.tasks import tags as ptags
from flowml.tasks.flow_runs import call_index, open_flow_run, prefect_tags
from flowml.tasks.identity import FlowRunBinding
from flowml.tasks.recorder import (
    Queued,
    Record,
    RunOptions,
    end_values,
    finish,
    fits_one_batch,
    in_worker_process,
    is_interruption,
    note_refusal,
    open_tasks,
    queue_result_metrics,
    registry_lock,
    status_for,
    take_creation,
)
from flowml.tasks.snapshot import ended_run, remember_name
from flowml.tracking.client import shared_client
from flowml.tracking.closer import BatchedEnd
from flowml.tracking.entities import RunStatus, RunTag, now_ms
from flowml.tracking.fluent import activate_run, current_experiment_id
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
from flowml.tracking.lineage.inputs import defer_lineage, take_deferred
from flowml.tracking.store.sql_ends import RunEnd, can_batch

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.context import TaskRunContext
    from prefect.tasks import Task

__all__ = ["TaskAttempt", "attach_task_hooks", "on_task_final", "open_task_run"]

logger = logging.getLogger(__name__)


def open_task_run(ctx: TaskRunContext, options: RunOptions) -> Record:
    """The record of the context's task run, opening its tracked run on first use."""
    task_run = ctx.task_run
    key = str(task_run.id)
    record = open_tasks.get(key)
    if record is not None:
        return record
    binding, flow_name = _task_binding(task_run)
    if binding is not None:
        client = shared_client(binding.tracking_uri, binding.artifact_root)
        experiment_id, parent_id = binding.experiment_id, binding.run_id
        inherited = dict(binding.child_tags)
    else:
        client = shared_client(*identity.current_store())
        experiment_id, parent_id, inherited = current_experiment_id(), None, {}
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
    if task_run.tags:
        tags.update(prefect_tags(task_run.tags))
    url = identity.ui_url("task-run", task_run.id)
    if url:
        tags[ptags.UI_URL] = url
    spec: dict[str, Any] = {
        "experiment_id": experiment_id,
        "tags": tags,
        "run_name": task_run.name,
        "parent_run_id": parent_id,
        "run_key": ptags.task_run_key(key),
    }
    reopen: dict[str, Any] | None = None
    if (task_run.run_count or 1) <= 1 and not in_worker_process():
        # A first attempt has a new key: its run is returned at once and written in the
        # background or with its end (one round trip in all for a short task). A retry, or
        # a process-pool worker (whose process may end with the task), opens the checked
        # way: get-or-create by key, now.
        run = client.open_run(**spec)
        reopen = spec
    else:
        run = client.create_run(**spec)
        identity.resume(client, run)  # a retry after a failed close finds its run ended
    flow_run_id = str(task_run.flow_run_id) if task_run.flow_run_id else None
    key_parts = (flow_name, ctx.task.name, call_index(flow_run_id, ctx.task.name, key))
    record = Record(
        run, client, options, time.perf_counter(), key_parts, _upstream(task_run), reopen
    )
    defer_lineage(run.info.run_id)
    client.buffer.watch(run.info.run_id)  # its end may then publish it without a read
    client.buffer.add(run.info.run_id, params=options.params.params(ctx.parameters))
    with registry_lock:
        open_tasks[key] = record
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


def _enclosing_task_run(task_run: TaskRun) -> Record | None:
    for run_input in task_run.task_inputs.get("__parents__", ()):
        record = open_tasks.get(str(getattr(run_input, "id", "")))
        if record is not None:
            return record
    return None


def _upstream(task_run: TaskRun) -> list[LineageEntry]:
    """Lineage inputs from Prefect's record of which task and flow runs fed this one."""
    from prefect.client.schemas.objects import FlowRunResult, TaskRunResult

    entries: dict[str, LineageEntry] = {}
    for name, inputs in task_run.task_inputs.items():
        if name == "__parents__":
            continue
        for run_input in inputs:
            if isinstance(run_input, TaskRunResult):
                uri, kind = task_run_uri(run_input.id), KIND_PREFECT_TASK_RUN
            elif isinstance(run_input, FlowRunResult):
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
        self.record: Record | None = None
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
        # The completion hook, when needed, is attached once the result is known
        # (`succeeded`): deciding it here would read Prefect's settings on every run.
        attach_task_hooks(ctx.task, on_completion=False)
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
        queue_result_metrics(self.record, result)
        ctx = TaskRunContext.get()
        if _judged_by_prefect(result) or (ctx is not None and ctx.persist_result):
            if ctx is not None:
                attach_task_hooks(ctx.task, on_completion=True)
        else:
            self._final = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._stack.close()
        finally:
            if self.record is None:
                pass
            elif exc_type is None and self._final:
                _close_task_run(
                    self.record, None, RunStatus.FINISHED, None, self.attempt, defer=True
                )
            elif exc_type is not None and is_interruption(exc_type):
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
    record = open_tasks.get(key)
    if record is None:
        if state.is_completed() and state.name == "Cached":
            _on_cache_hit(task, task_run, state)
        return
    _close_task_run(record, state, status_for(state), state.name, task_run.run_count or 1)


def _close_task_run(
    record: Record,
    state: State | None,
    status: str,
    state_name: str | None,
    attempts: int,
    *,
    defer: bool = False,
) -> None:
    """End the task's run. With ``defer`` (a successful task run inside a flow run of this
    process) the end is written by the client's background closer, off the task's path."""
    task_run_id = record.run.data.tags[ptags.TASK_RUN_ID]
    with registry_lock:
        if open_tasks.pop(task_run_id, None) is None:
            return  # already closed
    # The task run's own URI is its run's key: only what it read and produced is added.
    entries = take_deferred(record.run_id) + record.upstream
    key = _persisted_result_key(state)
    if key is not None:
        entries.append(LineageEntry(OUTPUT, KIND_PREFECT_RESULT, result_uri(key)))
    flow_run_id = record.run.data.tags.get(ptags.FLOW_RUN_ID)
    ended = (now_ms(), time.perf_counter())
    publisher.task_ended()
    deferred = defer and flow_run_id is not None and not in_worker_process()
    # Whether the run's end holds all of its values (nothing of it was written before): the
    # publisher then needs no store read to describe it.
    complete = record.client.buffer.unwatch(record.run_id)
    # A deferred end takes the run's queued creation now, so that the opener's thread does
    # not write it on its own: one round trip for both, later.
    # Its queued values first: a timed write of them under way writes the creation first.
    queued = record.client.buffer.take(record.run_id) if deferred else None
    opens = take_creation(record) if deferred else None

    def published(written: Queued, reopened: bool = False) -> None:
        remember_name(task_run_uri(task_run_id), record.run.info.run_name)
        # A run reopened the checked way may hold what another process wrote.
        run = None
        if complete and not reopened:
            run = ended_run(record.run, status, ended[0], *written)
        prefect_ui.publish_finished(
            record.client,
            record.run_id,
            kind=ptags.RUN_KIND_TASK,
            key_parts=record.key_parts,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            artifacts=record.options.artifacts,
            run=run,
            lineage=entries if run is not None else None,
        )

    def close() -> None:
        reopen = record.reopen
        written = finish(
            record,
            status,
            state,
            attempts,
            entries,
            state_name,
            ended=ended,
            opens=opens,
            queued=queued,
        )
        published(written, reopened=reopen is not None and record.reopen is None)

    if deferred:
        assert flow_run_id is not None and queued is not None
        closer = record.client.closer
        store = record.client.store

        def alone() -> None:
            _close_later(close, flow_run_id)

        if not can_batch(store):
            closer.submit(record.run_id, alone)
            return

        def prepare() -> RunEnd | None:
            assert queued is not None
            values = end_values(record, status, state, attempts, state_name, ended, queued)
            if not fits_one_batch(values):
                return None
            return RunEnd(record.run_id, status, ended[0], *values, entries, opens or [])

        def after(end: RunEnd) -> None:
            published((list(end.metrics), list(end.params), list(end.tags)))

        # Written in one round trip with the other ends queued meanwhile.
        closer.submit(record.run_id, BatchedEnd(store, prepare, after, alone))
        return
    close()
    if in_worker_process():
        publisher.flush()


# Pauses between attempts at a deferred end while the store is failing (about a minute).
CLOSE_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def _close_later(close: Callable[[], None], flow_run_id: str) -> None:
    """A deferred end, retried while the store fails. A refusal (the run already ended
    FAILED with the reason) is kept for the flow run's end, which names it on its run."""
    for delay in (*CLOSE_RETRY_DELAYS_S, None):
        try:
            close()
            return
        except StoreError as exc:
            if delay is None:
                logger.error("flowml: a task run's end could not be written: %s", exc)
                note_refusal(flow_run_id, str(exc))
                return
            time.sleep(delay)
        except FlowMLError as exc:
            logger.error("flowml: a task run's end was refused: %s", exc)
            note_refusal(flow_run_id, str(exc))
            return


def _on_cache_hit(task: Task[Any, Any], task_run: TaskRun, state: State) -> None:
    """No new run for a cache hit: the run that computed the result also stands for this
    task run (lineage and `run_for_task_run` resolve to it), and the Prefect UI says so."""
    key = _result_key(state)
    if key is None:
        return
    binding, flow_name = _task_binding(task_run)
    client = (
        shared_client(binding.tracking_uri, binding.artifact_root)
        if binding is not None
        else shared_client(*identity.current_store())
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
        key_parts=(
            flow_name,
            task.name,
            call_index(str(task_run.flow_run_id), task.name, str(task_run.id)),
        ),
        flow_run_id=str(task_run.flow_run_id) if task_run.flow_run_id else None,
        task_run_id=str(task_run.id),
    )
    if in_worker_process():
        publisher.flush()


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
