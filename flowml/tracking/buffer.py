"""Buffered writes: metrics, params and tags queued per run, written in batches.

A batch is written (one transaction) when the run's queue fills a batch, on
`flush`, at least once a second from a background thread, at interpreter exit and
on SIGTERM. Values are validated completely when queued, so a bad call fails at
the call site and a queued write can only fail for two reasons:

- a fault of the store (locked, unreachable, a dropped connection): the values stay
  queued, in order, and are retried (every second, on the next flush, at exit);
- a verdict of the store on the data (a param another process already set to another
  value, a run deleted meanwhile): only the refused values are dropped; the rest of
  their batch is written, and the error is raised at the next call into the buffer.
"""

from __future__ import annotations

import atexit
import os
import pickle
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flowml.exceptions import (
    FlowMLError,
    InvalidParameter,
    InvalidState,
    ResourceNotFound,
    StoreError,
)
from flowml.tracking import validation as v
from flowml.tracking.entities import Metric, Param, RunStatus, RunTag
from flowml.tracking.signals import install_sigterm_flush, start_background
from flowml.tracking.store.base import AbstractStore
from flowml.tracking.tags import TRACKING_ERROR

FLUSH_INTERVAL_S = 1.0

Batch = tuple[Sequence[Metric], list[Param], list[RunTag]]


class BufferedWriteError(FlowMLError):
    """Queued values could not be written.

    Attributes:
        run_id: the run they belong to.
        cause: the store's error.
        lost: how many values were refused and dropped.
        kept: how many values are still queued (a store fault), to be retried.
    """

    def __init__(self, run_id: str, cause: BaseException, lost: int, kept: int = 0) -> None:
        reason = f"{type(cause).__name__}: {cause}"
        if kept:
            message = (
                f"Writing {kept} queued values to run {run_id} failed ({reason}); they stay "
                "queued and are retried every second, on flush and at exit"
            )
        else:
            message = f"Writing a batch of {lost} queued values to run {run_id} failed: {reason}"
        super().__init__(message, getattr(cause, "error_code", None))
        self.run_id = run_id
        self.cause = cause
        self.lost = lost
        self.kept = kept

    def __reduce__(self) -> tuple[object, ...]:
        # The cause is a driver's exception, which may not survive pickling itself: a worker
        # process must still deliver this error, so an unpicklable cause travels as text.
        reduced = super().__reduce__()
        state = dict(self.__dict__)
        try:
            pickle.loads(pickle.dumps(self.cause))
        except Exception:
            state["cause"] = StoreError(f"{type(self.cause).__name__}: {self.cause}")
        return (*reduced[:2], state)


def is_store_fault(exc: BaseException) -> bool:
    """A failure worth retrying: anything but flowml's verdicts on the data itself."""
    return isinstance(exc, StoreError) or not isinstance(exc, FlowMLError)


@dataclass(slots=True)
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, RunTag] = field(default_factory=dict)
    # (status, end_time, reason) of an end that could not be written yet: written after the
    # values; a reason (values were lost) ends the run FAILED with it in a tag.
    end: tuple[str, int, str | None] | None = None

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def is_full(self) -> bool:
        return (
            len(self.metrics) >= v.MAX_BATCH_METRICS
            or len(self.params) >= v.MAX_BATCH_PARAMS
            or len(self.tags) >= v.MAX_BATCH_TAGS
            or len(self) >= v.MAX_BATCH_ENTRIES
        )

    def batches(self) -> list[Batch]:
        """Split into store-sized batches (each within MLflow's batch limits)."""
        metrics, params, tags = self.metrics, list(self.params.values()), list(self.tags.values())
        out: list[Batch] = []
        while metrics or params or tags:
            p, params = params[: v.MAX_BATCH_PARAMS], params[v.MAX_BATCH_PARAMS :]
            t, tags = tags[: v.MAX_BATCH_TAGS], tags[v.MAX_BATCH_TAGS :]
            room = min(v.MAX_BATCH_METRICS, v.MAX_BATCH_ENTRIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            out.append((v.CheckedMetrics(m), p, t))  # every point was checked when queued
        return out

    def merge_newer(self, newer: _Pending) -> None:
        self.metrics.extend(newer.metrics)
        self.params.update(newer.params)
        self.tags.update(newer.tags)  # the later value of a tag wins
        self.end = newer.end or self.end


class BatchBuffer:
    """Per-run queues in front of a store; thread-safe."""

    def __init__(self, store: AbstractStore, flush_interval: float | None = None) -> None:
        self._store = store
        self._interval = FLUSH_INTERVAL_S if flush_interval is None else flush_interval
        self._lock = threading.Lock()  # guards _pending, _params and _errors
        self._write_lock = threading.RLock()  # serialises writes so a run's batches stay ordered
        self._pending: dict[str, _Pending] = {}
        # Every param value accepted per run, so a conflicting value fails at the call site
        # even after the first one was written.
        self._params: dict[str, dict[str, str]] = {}
        self._errors: list[BufferedWriteError] = []
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        # Called with a run id (None: every run) before that run's values are written: a
        # client whose runs may not be in the store yet writes them first.
        self.before_write: Callable[[str | None], None] | None = None
        self._pid = os.getpid()
        # Set while the store fails (a fault kept values queued); a full queue then waits
        # for the background thread instead of making every call wait out the store's retries.
        self._store_down = False
        # Runs whose values their owner follows (`watch`): True once any was written.
        self._watched: dict[str, bool] = {}
        _live_buffers.add(self)

    # -- queueing ----------------------------------------------------------------------------

    def add(
        self,
        run_id: str,
        metrics: list[Metric] | tuple[Metric, ...] = (),
        params: list[Param] | tuple[Param, ...] = (),
        tags: list[RunTag] | tuple[RunTag, ...] = (),
    ) -> None:
        """Queue values for ``run_id``.

        Raises:
            InvalidParameter: a value breaks a validation rule (nothing is queued).
            BufferedWriteError: an earlier queued write was refused.
        """
        self.raise_errors()
        # Checked here, once: the store trusts the checked points of the batches below.
        metrics = v.validate_metrics(metrics)
        texts = (
            [
                (v.validate_key("Param", p.key), v.validate_param_value(p.key, p.value))
                for p in params
            ]
            if params
            else ()
        )
        for t in tags:
            v.validate_tag_value(v.validate_key("Tag", t.key), t.value)
        with self._lock:
            known = self._params.setdefault(run_id, {}) if texts else {}
            for key, text in texts:
                if known.get(key, text) != text:
                    raise InvalidParameter(
                        f"Param {key!r} is already {known[key]!r} for run {run_id} and cannot "
                        f"be changed to {text!r}: params are write-once"
                    )
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            pending.metrics.extend(metrics)
            for key, text in texts:
                known[key] = text
                pending.params[key] = Param(key, text)
            for t in tags:
                pending.tags[t.key] = RunTag(t.key, str(t.value))
            full = pending.is_full() and not self._store_down
        if full:
            try:
                self.flush(run_id)
            except BufferedWriteError as exc:
                if not exc.kept:
                    raise
                # The store is unreachable: nothing was lost, so the caller goes on logging;
                # the background thread (not each call) retries until it is back.
                self._ensure_thread()
        else:
            self._ensure_thread()

    def end_later(self, run_id: str, status: str, end_time: int, reason: str | None = None) -> None:
        """Queue the run's end behind its queued values (used when the store is failing)."""
        with self._lock:
            self._pending.setdefault(run_id, _Pending()).end = (status, end_time, reason)
            self._params.pop(run_id, None)
        self._ensure_thread()

    def watch(self, run_id: str) -> None:
        """Note from now on whether any value of the run is written (by this buffer's timer,
        a flush, or a synchronous write of the client, which flushes the run first)."""
        with self._lock:
            self._watched[run_id] = False

    def unwatch(self, run_id: str) -> bool:
        """Stop watching the run; True when nothing of it was written since `watch`."""
        with self._lock:
            return self._watched.pop(run_id, True) is False

    def _mark_written(self, run_id: str) -> None:
        if run_id in self._watched:
            with self._lock:
                if run_id in self._watched:
                    self._watched[run_id] = True

    # -- writing -----------------------------------------------------------------------------

    def flush(self, run_id: str | None = None) -> None:
        """Write what is queued (for one run or all).

        Raises:
            BufferedWriteError: values were refused (``lost``), or the store failed and they
                stay queued (``kept``).
        """
        faults: list[BufferedWriteError] = []
        if run_id is not None:
            self._mark_written(run_id)
        if self.before_write is not None and run_id is None:
            self.before_write(None)  # every run's own values are preceded by it in `_write`
        with self._write_lock:
            with self._lock:
                if run_id is None:
                    taken, self._pending = self._pending, {}
                else:
                    one = self._pending.pop(run_id, None)
                    taken = {run_id: one} if one is not None else {}
            for rid, pending in taken.items():
                fault = self._write(rid, pending)
                self._store_down = fault is not None
                if fault is not None:
                    faults.append(BufferedWriteError(rid, fault, 0, kept=self.queued(rid)))
        self.raise_errors(run_id, faults)

    def take(self, run_id: str) -> tuple[list[Metric], list[Param], list[RunTag]]:
        """Remove and return what is queued for ``run_id``, for the caller to write itself
        (with the run's final values, in one transaction)."""
        with self._write_lock:  # a batch of this run being written right now lands first
            with self._lock:
                pending = self._pending.pop(run_id, None)
                self._params.pop(run_id, None)
        if pending is None:
            return [], [], []
        return pending.metrics, list(pending.params.values()), list(pending.tags.values())

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._pending.pop(run_id, None)
            self._params.pop(run_id, None)

    def forget(self, run_id: str) -> None:
        """The run has ended: stop remembering its param values."""
        with self._lock:
            self._params.pop(run_id, None)

    def _write(self, run_id: str, pending: _Pending) -> BaseException | None:
        """Write one run's queue; returns the store fault that stopped it (what was not
        written is queued again, ahead of anything queued meanwhile) or ``None``."""
        self._mark_written(run_id)
        if self.before_write is not None:
            self.before_write(run_id)
        batches = pending.batches()
        refused: BufferedWriteError | None = None
        for i, (metrics, params, tags) in enumerate(batches):
            try:
                self._store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            except Exception as exc:  # sorted below: retried, partly written, or reported
                if is_store_fault(exc):
                    return self._requeue(run_id, batches[i:], pending.end, exc)
                if isinstance(exc, (ResourceNotFound, InvalidState)):
                    # The run is gone or deleted: nothing of it can be written, nor its end.
                    lost = sum(len(m) + len(p) + len(t) for m, p, t in batches[i:])
                    self._report(BufferedWriteError(run_id, exc, lost))
                    return None
                try:
                    refused = self._write_without_refused(run_id, metrics, params, tags, exc)
                except Exception as again:  # the second attempt failed too
                    if is_store_fault(again):
                        return self._requeue(run_id, batches[i:], pending.end, again)
                    refused = BufferedWriteError(
                        run_id, again, len(metrics) + len(params) + len(tags)
                    )
                self._report(refused)
        if pending.end is not None:
            return self._write_end(run_id, pending.end, refused)
        return None

    def _write_without_refused(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: list[Param],
        tags: list[RunTag],
        exc: Exception,
    ) -> BufferedWriteError:
        """A batch the store refused: only a param set meanwhile by another writer can be the
        reason (every other rule was checked when queueing). Write the batch without it."""
        stored = self._store.get_run(run_id).data.params
        kept = [p for p in params if stored.get(p.key, p.value) == p.value]
        if len(kept) == len(params):  # not a param conflict after all: nothing can be kept
            return BufferedWriteError(run_id, exc, len(metrics) + len(params) + len(tags))
        self._store.log_batch(run_id, metrics=metrics, params=kept, tags=tags)
        dropped = [p.key for p in params if p not in kept]
        cause = InvalidParameter(
            f"Param(s) {', '.join(map(repr, dropped))} already have other values in the store "
            f"(params are write-once); the rest of the batch was written. {exc}"
        )
        return BufferedWriteError(run_id, cause, len(dropped))

    def _write_end(
        self,
        run_id: str,
        end: tuple[str, int, str | None],
        refused: BufferedWriteError | None,
    ) -> BaseException | None:
        status, end_time, reason = end
        if refused is not None:
            reason = str(refused)
        try:
            if reason is None:
                self._store.update_run_info(run_id, status=status, end_time=end_time)
            else:  # values were lost: the run says so instead of looking complete
                self._store.finish_run(
                    run_id,
                    RunStatus.FAILED,
                    end_time,
                    tags=[RunTag(TRACKING_ERROR, reason[:500])],
                )
        except Exception as exc:  # a fault keeps the end queued; a verdict is reported
            if is_store_fault(exc):
                return self._requeue(run_id, [], (status, end_time, reason), exc)
            self._report(BufferedWriteError(run_id, exc, 0))
        return None

    def _requeue(
        self,
        run_id: str,
        batches: list[Batch],
        end: tuple[str, int, str | None] | None,
        fault: Exception,
    ) -> Exception:
        restored = _Pending(end=end)
        for metrics, params, tags in batches:
            restored.metrics.extend(metrics)
            restored.params.update((p.key, p) for p in params)
            restored.tags.update((t.key, t) for t in tags)
        with self._lock:
            newer = self._pending.get(run_id)
            if newer is not None:
                restored.merge_newer(newer)
            self._pending[run_id] = restored
        self._ensure_thread()
        return fault

    def _report(self, error: BufferedWriteError) -> None:
        with self._lock:
            self._errors.append(error)

    def raise_errors(
        self, run_id: str | None = None, extra: list[BufferedWriteError] | None = None
    ) -> None:
        """Raise the first refused write (of ``run_id``, or of any run) and any ``extra``."""
        if not self._errors and not extra:
            return
        with self._lock:
            mine = [e for e in self._errors if run_id is None or e.run_id == run_id]
            self._errors = [e for e in self._errors if e not in mine]
        errors = mine + (extra or [])
        if not errors:
            return
        first = errors[0]
        if len(errors) > 1:
            first.message += f" (and {len(errors) - 1} more failed batches)"
            first.args = (first.message,)
        raise first

    def has_pending(self, run_id: str | None = None) -> bool:
        with self._lock:
            return bool(self._pending if run_id is None else self._pending.get(run_id))

    def queued(self, run_id: str) -> int:
        """How many values of ``run_id`` wait to be written."""
        with self._lock:
            pending = self._pending.get(run_id)
            return len(pending) if pending is not None else 0

    # -- background flushing -----------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            ref = weakref.ref(self)
            self._thread = threading.Thread(
                target=_background_flush,
                args=(ref, self._wakeup, self._interval),
                name="flowml-buffer",
                daemon=True,
            )
            start_background(self._thread)
        install_sigterm_flush()

    def close(self) -> None:
        """Flush everything and stop the background thread."""
        self._wakeup.set()
        try:
            self.flush()
        finally:
            _live_buffers.discard(self)


def _background_flush(
    ref: weakref.ref[BatchBuffer], wakeup: threading.Event, interval: float
) -> None:
    while not wakeup.wait(interval):
        buffer = ref()
        if buffer is None:
            return
        if buffer.has_pending():
            with buffer._write_lock:
                with buffer._lock:
                    taken, buffer._pending = buffer._pending, {}
                for run_id, pending in taken.items():
                    buffer._write(run_id, pending)  # a store fault re-queues: retried next tick
        del buffer


_live_buffers: weakref.WeakSet[BatchBuffer] = weakref.WeakSet()


def flush_all(when: str) -> None:
    """Write every buffer's queue; failures are printed (nobody is left to raise to)."""
    for buffer in list(_live_buffers):
        try:
            buffer.flush()
        except FlowMLError as exc:
            import sys

            print(f"flowml: queued tracking data was not written {when}: {exc}", file=sys.stderr)


@atexit.register
def _flush_at_exit() -> None:
    flush_all("at exit")


def _reset_after_fork() -> None:
    # A forked child starts with empty queues: the parent still owns and writes its data.
    for buffer in list(_live_buffers):
        buffer._lock = threading.Lock()
        buffer._write_lock = threading.RLock()
        buffer._pending = {}
        buffer._params = {}
        buffer._errors = []
        buffer._watched = {}
        buffer._thread = None
        buffer._wakeup = threading.Event()


os.register_at_fork(after_in_child=_reset_after_fork)
