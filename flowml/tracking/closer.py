"""Run ends written behind the caller's back.

A tracked task's end is one store round trip (a few milliseconds on a shared PostgreSQL
server, more on a busy machine): more than the whole budget of a tracked task. `RunCloser`
takes that write off the task's path: the caller snapshots what the end will write, submits
the write, and returns; one background thread per store writes the ends in the order they
were submitted. Whoever needs a run as the store will hold it waits for its end first:

- a read or a write of the run through the client (`ensure`), every pending end for a
  search or a flush without a run id;
- the end of the flow run that the tasks belong to, and interpreter exit (`drain_all`), so
  that a parent run never ends before its children and nothing queued is lost.

A job must not raise: it records its own failure (the tracked task's end marks the run
FAILED with the reason, as a refused end always did). Anything that still escapes is logged.

A `BatchedEnd` is a job the thread may write together with the other ends queued at the
same time for the same store: all of them in one round trip (`store.sql_ends`), each then
told (``after``) it was written. Should the store refuse the batch or fail, nothing of it
was written and each end is written on its own, as a plain job (which deals with its own
refusal or failure).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from flowml.tracking.signals import start_background

__all__ = ["BatchedEnd", "RunCloser", "drain_all"]

logger = logging.getLogger(__name__)

# The most ends written in one round trip.
MAX_BATCH = 500
# How long the thread lets ends gather before writing them (unless someone waits for them).
CLOSE_LINGER_S = 0.1


class BatchedEnd:
    """A run end that may be written with others (see the module docstring).

    ``prepare`` returns the end's `RunEnd` (``None``: write it alone); ``after`` is called
    with it once written in a batch; ``alone`` writes it on its own (and does what ``after``
    does).
    """

    def __init__(
        self,
        store: Any,
        prepare: Callable[[], Any],
        after: Callable[[Any], None],
        alone: Callable[[], None],
    ) -> None:
        self.store = store
        self.prepare = prepare
        self.after = after
        self.alone = alone

    def __call__(self) -> None:
        self.alone()


class RunCloser:
    """The queue of one client's run ends written in the background (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[tuple[str, Callable[[], None]]] = deque()
        # Run id -> set once its last submitted end is written.
        self._pending: dict[str, threading.Event] = {}
        self._idle = threading.Event()
        self._idle.set()
        self._wakeup = threading.Event()
        self._hurry = threading.Event()
        self._thread: threading.Thread | None = None
        _live_closers.add(self)

    def submit(self, run_id: str, job: Callable[[], None]) -> None:
        """Queue ``job`` (the run's end) to run in the background thread."""
        with self._lock:
            self._jobs.append((run_id, job))
            self._pending.setdefault(run_id, threading.Event())
            self._idle.clear()
            self._ensure_thread()
        self._wakeup.set()

    def ensure(self, run_id: str | None = None) -> None:
        """Wait until the run's end (every queued end when ``run_id`` is None) is written."""
        if threading.current_thread() is self._thread:
            return  # a job reading its own store: it is the write being waited for
        if run_id is None:
            if not self._idle.is_set():
                self._hurry.set()
                self._idle.wait()
            return
        with self._lock:
            event = self._pending.get(run_id)
        if event is not None:
            self._hurry.set()
            event.wait()

    def pending(self) -> int:
        """How many ends are queued or being written."""
        with self._lock:
            return len(self._pending)

    def _ensure_thread(self) -> None:
        # Called with the lock held.
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(
            target=_work,
            args=(weakref.ref(self), self._wakeup, self._hurry),
            name="flowml-closer",
            daemon=True,
        )
        start_background(self._thread)

    def _run_queued(self, hurry: threading.Event | None = None) -> None:
        """Write what is queued. Ends queued while a batch was being written wait for the
        next linger (they gather into the next batch) unless someone waits for them: a
        hurry (`ensure`) lasts until the queue is empty."""
        first = True
        while True:
            with self._lock:
                if not self._jobs:
                    self._idle.set()
                    if hurry is not None:
                        hurry.clear()
                    return
                if not first and hurry is not None and not hurry.is_set():
                    self._wakeup.set()  # the thread lingers, then writes them together
                    return
                taken = [self._jobs.popleft() for _ in range(min(len(self._jobs), MAX_BATCH))]
            first = False
            try:
                group: list[tuple[str, BatchedEnd]] = []
                for run_id, job in taken:
                    if isinstance(job, BatchedEnd):
                        if group and group[0][1].store is not job.store:
                            _write_group(group)
                            group = []
                        group.append((run_id, job))
                        continue
                    _write_group(group)
                    group = []
                    _run_one(run_id, job)
                _write_group(group)
            finally:
                with self._lock:
                    # Only a run's last submitted end releases its waiters.
                    for run_id in {run_id for run_id, _ in taken}:
                        if not any(queued == run_id for queued, _ in self._jobs):
                            event = self._pending.pop(run_id, None)
                            if event is not None:
                                event.set()


def _run_one(run_id: str, job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:  # noqa: BLE001 - a job records its own failures; never stop
        logger.exception("flowml: writing the end of run %s failed", run_id)


def _write_group(group: list[tuple[str, BatchedEnd]]) -> None:
    """Write the ends in one round trip (each on its own when it has to be)."""
    if len(group) < 2:
        for run_id, job in group:
            _run_one(run_id, job)
        return
    from flowml.tracking.store.sql_ends import finish_runs

    batched: list[tuple[str, BatchedEnd, Any]] = []
    for run_id, job in group:
        try:
            end = job.prepare()
        except Exception:  # noqa: BLE001 - written alone, which reports it
            end = None
        if end is None:
            _run_one(run_id, job)
        else:
            batched.append((run_id, job, end))
    try:
        finish_runs(group[0][1].store, [end for _, _, end in batched])
    except Exception:  # noqa: BLE001 - nothing was written: each end alone names its problem
        logger.debug("flowml: a batch of run ends was not written at once", exc_info=True)
        for run_id, job, _ in batched:
            _run_one(run_id, job)
        return
    for run_id, job, end in batched:
        try:
            job.after(end)
        except Exception:  # noqa: BLE001 - publication must not stop the other ends
            logger.exception("flowml: after the end of run %s", run_id)


def _work(ref: weakref.ref[RunCloser], wakeup: threading.Event, hurry: threading.Event) -> None:
    while True:
        wakeup.wait(1.0)
        if wakeup.is_set():
            hurry.wait(CLOSE_LINGER_S)  # let the ends of a burst of short tasks gather
        closer = ref()
        if closer is None:
            return
        wakeup.clear()
        closer._run_queued(hurry)
        del closer


_live_closers: weakref.WeakSet[RunCloser] = weakref.WeakSet()


@atexit.register
def drain_all() -> None:
    """Wait for every queued run end of every client in this process (also at exit, before
    the buffers' last flush, whose atexit hook was registered earlier and so runs later)."""
    for closer in list(_live_closers):
        closer.ensure()


def _reset_after_fork() -> None:
    # A forked child writes none of its parent's queued ends (the parent does).
    for closer in list(_live_closers):
        closer._lock = threading.Lock()
        closer._jobs = deque()
        closer._pending = {}
        closer._idle = threading.Event()
        closer._idle.set()
        closer._wakeup = threading.Event()
        closer._hurry = threading.Event()
        closer._thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
