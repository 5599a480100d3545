"""Buffered writes: metrics, params and tags queued per run, written in batches.

A batch is written (one transaction) when the run's queue fills a batch, on
`flush`, at least once a second from a background thread, and at interpreter
exit. Invalid values are refused when queued, so a bad call fails at the call
site; a write that fails later (a param re-logged with another value, a deleted
run, a lost database) is kept and raised at the next call into the buffer.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from dataclasses import dataclass, field

from flowml.exceptions import FlowMLError, InvalidParameter
from flowml.tracking import validation as v
from flowml.tracking.entities import Metric, Param, RunTag
from flowml.tracking.store.base import AbstractStore

FLUSH_INTERVAL_S = 1.0


class BufferedWriteError(FlowMLError):
    """A queued batch could not be written; raised at the next call into the buffer."""

    def __init__(self, run_id: str, cause: BaseException, lost: int) -> None:
        message = (
            f"Writing a batch of {lost} queued values to run {run_id} failed: "
            f"{type(cause).__name__}: {cause}"
        )
        code = getattr(cause, "error_code", None)
        super().__init__(message, code)
        self.run_id = run_id
        self.cause = cause


@dataclass(slots=True)
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, RunTag] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def is_full(self) -> bool:
        return (
            len(self.metrics) >= v.MAX_BATCH_METRICS
            or len(self.params) >= v.MAX_BATCH_PARAMS
            or len(self.tags) >= v.MAX_BATCH_TAGS
            or len(self) >= v.MAX_BATCH_ENTRIES
        )

    def batches(self):
        """Split into store-sized batches (each within MLflow's batch limits)."""
        metrics, params, tags = self.metrics, list(self.params.values()), list(self.tags.values())
        while metrics or params or tags:
            p, params = params[: v.MAX_BATCH_PARAMS], params[v.MAX_BATCH_PARAMS :]
            t, tags = tags[: v.MAX_BATCH_TAGS], tags[v.MAX_BATCH_TAGS :]
            room = min(v.MAX_BATCH_METRICS, v.MAX_BATCH_ENTRIES - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            yield m, p, t


class BatchBuffer:
    """Per-run queues in front of a store; thread-safe."""

    def __init__(self, store: AbstractStore, flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self._store = store
        self._interval = flush_interval
        self._lock = threading.Lock()  # guards _pending and _errors
        self._write_lock = threading.RLock()  # serialises writes so a run's batches stay ordered
        self._pending: dict[str, _Pending] = {}
        self._errors: list[BufferedWriteError] = []
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
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
            BufferedWriteError: an earlier queued write failed.
        """
        self.raise_errors()
        for m in metrics:
            v.validate_metric(v.validate_key("Metric", m.key), m.value, m.timestamp, m.step)
        for p in params:
            v.validate_param_value(v.validate_key("Param", p.key), p.value)
        for t in tags:
            v.validate_tag_value(v.validate_key("Tag", t.key), t.value)
        with self._lock:
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            for p in params:
                queued = pending.params.get(p.key)
                if queued is not None and queued.value != str(p.value):
                    raise InvalidParameter(
                        f"Param {p.key!r} is already {queued.value!r} for run {run_id} and cannot "
                        f"be changed to {p.value!r}: params are write-once"
                    )
            pending.metrics.extend(metrics)
            for p in params:
                pending.params[p.key] = Param(p.key, str(p.value))
            for t in tags:
                pending.tags[t.key] = RunTag(t.key, str(t.value))
            full = pending.is_full()
        if full:
            self.flush(run_id)
        else:
            self._ensure_thread()

    # -- writing -----------------------------------------------------------------------------

    def flush(self, run_id: str | None = None) -> None:
        """Write what is queued (for one run or all), then raise any failed write."""
        with self._write_lock:
            with self._lock:
                if run_id is None:
                    taken, self._pending = self._pending, {}
                else:
                    one = self._pending.pop(run_id, None)
                    taken = {run_id: one} if one is not None else {}
            for rid, pending in taken.items():
                self._write(rid, pending)
        self.raise_errors()

    def take(self, run_id: str) -> tuple[list[Metric], list[Param], list[RunTag]]:
        """Remove and return what is queued for ``run_id``, for the caller to write itself
        (with the run's final values, in one transaction)."""
        with self._write_lock:  # a batch of this run being written right now lands first
            with self._lock:
                pending = self._pending.pop(run_id, None)
        if pending is None:
            return [], [], []
        return pending.metrics, list(pending.params.values()), list(pending.tags.values())

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._pending.pop(run_id, None)

    def _write(self, run_id: str, pending: _Pending) -> None:
        for metrics, params, tags in pending.batches():
            try:
                self._store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            except Exception as exc:  # kept and re-raised to the caller, never swallowed
                with self._lock:
                    self._errors.append(
                        BufferedWriteError(run_id, exc, len(metrics) + len(params) + len(tags))
                    )

    def raise_errors(self) -> None:
        if not self._errors:
            return
        with self._lock:
            errors, self._errors = self._errors, []
        first = errors[0]
        if len(errors) > 1:
            first.message += f" (and {len(errors) - 1} more failed batches)"
            first.args = (first.message,)
        raise first

    def has_pending(self, run_id: str | None = None) -> bool:
        with self._lock:
            return bool(self._pending if run_id is None else self._pending.get(run_id))

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
            self._thread.start()

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
                    buffer._write(run_id, pending)
        del buffer


_live_buffers: weakref.WeakSet[BatchBuffer] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_live_buffers):
        try:
            buffer.flush()
        except FlowMLError as exc:  # nobody is left to raise to: say it loudly
            import sys

            print(f"flowml: queued tracking data was not written at exit: {exc}", file=sys.stderr)


def _reset_after_fork() -> None:
    # A forked child starts with empty queues: the parent still owns and writes its data.
    for buffer in list(_live_buffers):
        buffer._lock = threading.Lock()
        buffer._write_lock = threading.RLock()
        buffer._pending = {}
        buffer._errors = []
        buffer._thread = None
        buffer._wakeup = threading.Event()


os.register_at_fork(after_in_child=_reset_after_fork)
