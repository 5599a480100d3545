"""The life cycle of the tracked run behind a Prefect flow run or task run.

    open (first attempt)   a new run under its Prefect id (tags, parent, experiment), returned
                           at once and written in the background or with its end (a retry, a
                           process-pool worker: get-or-create by that id, now); queue the
                           arguments as params, announce ``flowml.run.started``
    each attempt           make the run active, so ``flowml.log_*`` in the body lands in it
    end                    one store transaction: what the attempts queued, duration and
                           attempt count, lineage, the final status; then artifacts and
                           ``flowml.run.finished`` are published in the background

A task run ends where its outcome is known. A successful attempt with a plain result is
final, so its run is closed when the function returns. Everything else follows Prefect's
verdict through state hooks appended after the user's: a failed attempt that will be retried
leaves the run RUNNING; the hook closes it once no retry is left (or Prefect declines one); a
persisted result is closed by the completion hook, which can also tell a later cache hit
which run computed it. A flow run closes on its own terminal state (completed, failed,
crashed, cancelled), never on a task's.

A successful task run inside a flow run of this process ends without waiting: its end
(values, duration, lineage, status: one round trip) is written by the client's `RunCloser`,
off the task's path, and the flow run's end waits for it. Values the store refuses there (a
param another writer set to another value, a run or experiment deleted meanwhile; validation
at call time rules out every other refusal) still end the run FAILED with the reason; the
task has returned by then, so the refusal is logged and named on the flow run's run instead
(``flowml.tracking_error``). Every other end (a failure, a task outside a flow, a process-pool
worker whose process may end with the task) is written before the task returns, and a
refusal there reaches the task.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowml.exceptions import FlowMLError, ResourceNotFound, StoreError
from flowml.tasks import identity
from flowml.tasks import tags as ptags
from flowml.tasks.summarize import ParamPolicy, result_metrics, to_metrics
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient
from flowml.tracking.entities import Metric, Param, Run, RunStatus, RunTag, now_ms
from flowml.tracking.lineage import LineageEntry
from flowml.tracking.store.base import NewRun
from flowml.tracking.validation import (
    MAX_BATCH_ENTRIES,
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
)

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = [
    "Record",
    "RunOptions",
    "end_values",
    "error_tags",
    "finish",
    "fits_one_batch",
    "in_worker_process",
    "is_interruption",
    "note_refusal",
    "open_flows",
    "open_tasks",
    "queue_result_metrics",
    "registry_lock",
    "status_for",
    "take_creation",
    "take_refusals",
]


@dataclass(frozen=True)
class RunOptions:
    """What a tracked flow or task records (set by the decorators)."""

    params: ParamPolicy = field(default_factory=ParamPolicy)
    log_result: bool | str = True
    artifacts: bool = True
    experiment: str | None = None


@dataclass
class Record:
    """A run this process has opened and not closed yet."""

    run: Run
    client: TrackingClient
    options: RunOptions
    started: float  # time.perf_counter() when the run was opened, for the duration metric
    key_parts: tuple[str | None, ...]
    upstream: list[LineageEntry] = field(default_factory=list)
    # How the run was opened when it was opened without waiting (`TrackingClient.open_run`),
    # to open it the checked way should its background creation have inserted nothing.
    reopen: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


TRACKING_ERROR_TAG = "flowml.tracking_error"

# The runs this process has opened and not closed yet, by Prefect task / flow run id.
open_tasks: dict[str, Record] = {}
open_flows: dict[str, Record] = {}
registry_lock = threading.Lock()
# Refusals of task run ends written after their tasks returned, by Prefect flow run id.
_refusals: dict[str, list[str]] = {}


def note_refusal(flow_run_id: str, reason: str) -> None:
    """Keep the refusal of a task run's deferred end for its flow run's end."""
    with registry_lock:
        _refusals.setdefault(flow_run_id, []).append(reason)


def take_refusals(flow_run_id: str) -> list[str]:
    """The refusals noted for the flow run's task runs (forgotten once taken)."""
    with registry_lock:
        return _refusals.pop(flow_run_id, [])


def finish(
    record: Record,
    status: str,
    state: State | None,
    attempts: int,
    lineage: list[LineageEntry],
    state_name: str | None = None,
    ended: tuple[int, float] | None = None,
    opens: list[NewRun] | None = None,
    queued: Queued | None = None,
) -> Queued:
    """Close the run in one store transaction: what its attempts queued, its duration and
    attempt count (written once, whatever the number of attempts), the final state's name
    when it is not plain success, its lineage, and the status.

    ``ended`` is ``(now_ms(), time.perf_counter())`` taken when the run ended, for an end
    written later by a `RunCloser` (default: now); ``opens``, the run's queued creation
    taken from the opener then (default: taken now); ``queued``, the run's queued values taken
    from the buffer then (default: taken now). A caller that passes them retries with them
    when the store fails (`StoreError`); otherwise they go back to the buffer.

    Returns the metrics, params and tags this end wrote (for `snapshot.ended_run`).
    """
    now, stopped = ended if ended is not None else (now_ms(), time.perf_counter())
    if queued is None:
        queued = record.client.buffer.take(record.run_id)
        retried_by_caller = False
    else:
        retried_by_caller = True
    written = metrics, params, tags = end_values(
        record, status, state, attempts, state_name, (now, stopped), queued
    )
    store = record.client.store
    if opens is None:
        opens = take_creation(record)
    try:
        if opens and not _fits_one_batch(metrics, params, tags):
            store.create_runs(opens)
            opens = []
        if not _fits_one_batch(metrics, params, tags):
            # A task that queued more than a batch since the last timed flush: write the
            # excess first (one more statement group per thousand values).
            record.client.buffer.add(record.run_id, metrics=metrics, params=params, tags=tags)
            record.client.flush(record.run_id)
            metrics, params, tags = [], [], []

        def end(opens: Sequence[NewRun] = ()) -> None:
            # ``record.run_id`` read at each call: reopening gives the record another run.
            store.finish_run(
                record.run_id,
                status,
                now,
                metrics=metrics,
                params=params,
                tags=tags,
                lineage=lineage,
                opens=opens,
            )

        try:
            end(opens)
        except ResourceNotFound:
            if record.reopen is None:
                raise
            # Its creation inserted nothing: another process holds the key (this task run
            # was opened there), or the experiment went away. Open it the checked way
            # (which raises what opening would have) and end that run.
            _reopen(record)
            end()
        return written
    except StoreError:
        # The store failed (not a verdict on the values): they go back to the buffer, so
        # that a retry of this end writes them (and the buffer's timer meanwhile).
        if not retried_by_caller and (metrics or params or tags):
            record.client.buffer.add(record.run_id, metrics=metrics, params=params, tags=tags)
        raise
    except FlowMLError as exc:
        # Refused values (a param another writer set to another value...) must not leave the
        # run RUNNING forever, nor cost the values the store accepts: those are written
        # (the buffer drops only what is refused), the run ends FAILED, saying why, and the
        # error goes to the caller.
        if metrics or params or tags:
            with contextlib.suppress(FlowMLError):
                record.client.buffer.add(record.run_id, metrics=metrics, params=params, tags=tags)
                record.client.flush(record.run_id)
        store.finish_run(
            record.run_id,
            RunStatus.FAILED,
            now,
            tags=[RunTag(ptags.STATE, "TrackingError"), RunTag(TRACKING_ERROR_TAG, str(exc)[:500])],
        )
        raise


Queued = tuple[list[Metric], list[Param], list[RunTag]]


def end_values(
    record: Record,
    status: str,
    state: State | None,
    attempts: int,
    state_name: str | None,
    ended: tuple[int, float],
    queued: Queued,
) -> Queued:
    """What a run's end writes: its queued values, duration and attempt count, and for a
    run that did not succeed, the final state's name and the error."""
    now, stopped = ended
    metrics, params, tags = queued
    auto = {
        ptags.METRIC_DURATION: stopped - record.started,
        ptags.METRIC_ATTEMPTS: float(attempts),
    }
    metrics = [*metrics, *to_metrics(auto, now)]
    if status != RunStatus.FINISHED:
        name = state_name or (state.name if state is not None else None) or status
        tags = [*tags, RunTag(ptags.STATE, name), *error_tags(state)]
    return metrics, params, tags


def fits_one_batch(queued: Queued) -> bool:
    """Whether the values fit the one statement group of a run's end."""
    return _fits_one_batch(*queued)


def take_creation(record: Record) -> list[NewRun]:
    """The run's creation when it is still queued (opened without waiting), to be written
    with its end: one round trip for both."""
    opener = record.client.opener if record.reopen is not None else None
    return opener.take(record.run_id) if opener is not None else []


def _reopen(record: Record) -> None:
    assert record.reopen is not None
    spec, record.reopen = record.reopen, None
    record.run = record.client.create_run(**spec)
    identity.resume(record.client, record.run)


def _fits_one_batch(metrics: list[Any], params: list[Any], tags: list[Any]) -> bool:
    return (
        len(metrics) <= MAX_BATCH_METRICS
        and len(params) <= MAX_BATCH_PARAMS
        and len(tags) <= MAX_BATCH_TAGS
        and len(metrics) + len(params) + len(tags) <= MAX_BATCH_ENTRIES
    )


def queue_result_metrics(record: Record, result: Any) -> None:
    if record.options.log_result:
        name = record.options.log_result if isinstance(record.options.log_result, str) else None
        values = result_metrics(result, name)
        if values:
            record.client.buffer.add(record.run_id, metrics=to_metrics(values, now_ms()))


MAX_ERROR_MESSAGE = 4000


def error_tags(state: State | None) -> list[RunTag]:
    """The type and message of the exception that failed (or crashed) a run, as tags."""
    if state is None or not (state.is_failed() or state.is_crashed()):
        return []
    from prefect.results import ResultRecord

    error = state.data.result if isinstance(state.data, ResultRecord) else state.data
    if isinstance(error, BaseException):
        kind, message = type(error).__name__, str(error) or repr(error)
    else:  # the exception is not at hand (a crash seen from another process)
        kind, message = state.name or state.type.value, state.message or ""
    return [
        RunTag(systags.ERROR_TYPE, kind[:250]),
        RunTag(systags.ERROR_MESSAGE, message[:MAX_ERROR_MESSAGE]),
    ]


def status_for(state: State) -> str:
    if state.is_completed():
        return RunStatus.FINISHED
    if state.is_cancelled() or state.is_cancelling() or state.is_crashed():
        return RunStatus.KILLED  # stopped from outside, as MLflow marks an interrupted run
    return RunStatus.FAILED


def is_interruption(exc_type: type[BaseException]) -> bool:
    """KeyboardInterrupt, SystemExit, cancellation, Prefect's termination signal: the
    attempt was stopped from outside (a Prefect pause or a closed generator is not)."""
    import asyncio

    from prefect.exceptions import TerminationSignal

    return issubclass(
        exc_type, (KeyboardInterrupt, SystemExit, asyncio.CancelledError, TerminationSignal)
    )


def in_worker_process() -> bool:
    """Inside a process-pool worker, whose process may end with the task."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and ctx.detached
