"""Runs opened without waiting for the store.

`RunOpener.open` validates a new run, chooses its id and artifact URI, and returns it at
once; its creation is queued. A background thread writes what is queued some tens of
milliseconds later (`OPEN_LINGER_S`), every queued creation in one round trip, so the run
shows RUNNING in the store almost at once. Whoever needs the run in the store before that
takes its creation out of the queue:

- the run's close (`take`) sends it with the run's end, in the same round trip (a short task
  costs one round trip in all), or waits for it when it is being written right now;
- a read of the run, or a write of its queued values (`ensure`), writes it first.

A creation that inserted nothing (its key was taken by another process, its experiment was
deleted meanwhile, the store failed) is left for the close to notice: ending a run that does
not exist is refused, and the caller then opens it the checked way.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Sequence

from flowml.exceptions import InvalidState
from flowml.tracking.entities import LifecycleStage, Run, RunTag
from flowml.tracking.signals import start_background
from flowml.tracking.store.base import AbstractStore, NewRun

__all__ = ["OPEN_LINGER_S", "RunOpener"]

# How long the background thread lets creations gather before writing them: a task shorter
# than this sends its creation with its end (one round trip for both). During a burst of
# short tasks the thread wakes once per period: at 10 ms that cost about 0.15 ms of
# interpreter time per task (of a 2 ms budget), at 50 ms a third of that.
OPEN_LINGER_S = 0.05


class RunOpener:
    """The queue of one store's runs opened without waiting (see the module docstring)."""

    def __init__(self, store: AbstractStore, linger: float | None = None) -> None:
        self._store = store
        self._linger = OPEN_LINGER_S if linger is None else linger
        self._lock = threading.Lock()
        self._queued: dict[str, NewRun] = {}
        self._in_flight: dict[str, threading.Event] = {}
        self._locations: dict[str, str] = {}
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        _live_openers.add(self)

    def open(
        self,
        experiment_id: str,
        user_id: str,
        tags: Sequence[RunTag],
        run_name: str | None = None,
        run_key: str | None = None,
    ) -> Run:
        """A new RUNNING run, validated now and written in the background.

        Raises:
            InvalidParameter: a tag or the name is refused (nothing is queued).
            InvalidState: the experiment is deleted.
        """
        location = self._location(experiment_id)
        new = self._store.prepare_run(experiment_id, location, user_id, tags, run_name, run_key)
        with self._lock:
            self._queued[new.run.info.run_id] = new
        self._ensure_thread()
        self._wakeup.set()
        return new.run

    def _location(self, experiment_id: str) -> str:
        """The experiment's artifact location: read once per experiment (it never changes)."""
        found = self._locations.get(experiment_id)
        if found is None:
            experiment = self._store.get_experiment(experiment_id)
            if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {experiment_id!r} is deleted; restore it first")
            found = self._locations[experiment_id] = experiment.artifact_location
        return found

    def take(self, run_id: str) -> list[NewRun]:
        """For the run's close: its creation when still queued, for the caller to write with
        the run's end; nothing when written (after waiting for a write under way)."""
        with self._lock:
            new = self._queued.pop(run_id, None)
            event = self._in_flight.get(run_id)
        if new is not None:
            return [new]
        if event is not None:
            event.wait()
        return []

    def ensure(self, run_id: str | None = None) -> None:
        """Before the run is read or written: write its queued creation (every queued one
        when ``run_id`` is None), or wait for the write under way. Never raises: a creation
        that failed shows as a missing run to whoever uses it."""
        with self._lock:
            if run_id is None:
                taken, self._queued = list(self._queued.values()), {}
                waits = list(set(self._in_flight.values()))
            else:
                one = self._queued.pop(run_id, None)
                taken = [one] if one is not None else []
                event = self._in_flight.get(run_id)
                waits = [event] if event is not None else []
            done = self._mark_in_flight(taken)
        if taken:
            self._write(taken, done)
        for event in waits:
            event.wait()

    def pending(self) -> int:
        """How many creations are queued or being written."""
        with self._lock:
            return len(self._queued) + len(self._in_flight)

    def _mark_in_flight(self, taken: list[NewRun]) -> threading.Event:
        done = threading.Event()
        for new in taken:
            self._in_flight[new.run.info.run_id] = done
        return done

    def _write(self, taken: list[NewRun], done: threading.Event) -> None:
        try:
            self._store.create_runs(taken)
        except Exception:  # noqa: BLE001 - the close opens these runs the checked way
            pass
        finally:
            with self._lock:
                for new in taken:
                    self._in_flight.pop(new.run.info.run_id, None)
            done.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=_background_open,
                args=(weakref.ref(self), self._wakeup, self._linger),
                name="flowml-opener",
                daemon=True,
            )
            start_background(self._thread)


# After a run was opened the thread keeps looking every linger period for this many periods
# before it waits to be woken again: a burst of short tasks then never wakes it (waking a
# waiting thread on every task hands it the interpreter on every task).
POLL_PERIODS = 20


def _background_open(ref: weakref.ref[RunOpener], wakeup: threading.Event, linger: float) -> None:
    while True:
        wakeup.wait(1.0)
        if not wakeup.is_set():
            if ref() is None:
                return
            continue
        quiet = 0
        while quiet < POLL_PERIODS:
            wakeup.clear()
            time.sleep(linger)  # let creations gather; a short task takes its own back
            opener = ref()
            if opener is None:
                return
            with opener._lock:
                taken, opener._queued = list(opener._queued.values()), {}
                done = opener._mark_in_flight(taken)
            if taken:
                opener._write(taken, done)
            del opener
            quiet = 0 if wakeup.is_set() else quiet + 1


_live_openers: weakref.WeakSet[RunOpener] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A forked child starts with an empty queue: the parent writes what it queued.
    for opener in list(_live_openers):
        opener._lock = threading.Lock()
        opener._queued = {}
        opener._in_flight = {}
        opener._wakeup = threading.Event()
        opener._thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
