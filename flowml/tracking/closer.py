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
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable

__all__ = ["RunCloser", "drain_all"]

logger = logging.getLogger(__name__)


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
            self._idle.wait()
            return
        with self._lock:
            event = self._pending.get(run_id)
        if event is not None:
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
            target=_work, args=(weakref.ref(self), self._wakeup), name="flowml-closer", daemon=True
        )
        self._thread.start()

    def _run_queued(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._idle.set()
                    return
                run_id, job = self._jobs.popleft()
            try:
                job()
            except Exception:  # noqa: BLE001 - a job records its own failures; never stop
                logger.exception("flowml: writing the end of run %s failed", run_id)
            finally:
                with self._lock:
                    # Only the run's last submitted end releases its waiters.
                    if not any(queued == run_id for queued, _ in self._jobs):
                        event = self._pending.pop(run_id, None)
                        if event is not None:
                            event.set()


def _work(ref: weakref.ref[RunCloser], wakeup: threading.Event) -> None:
    while True:
        wakeup.wait(1.0)
        closer = ref()
        if closer is None:
            return
        wakeup.clear()
        closer._run_queued()
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
        closer._thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
