"""The background writer: finished traces go to their store off the traced code's path.

A root span's end queues its trace here and returns at once; one daemon thread takes
everything queued, converts it to MLflow's trace JSON and writes it grouped by store, one
transaction per store per batch. `flush` waits until everything queued so far is written
(the read functions call it, as MLflow flushes its async trace logging), and runs at exit.

A write that fails (store down, unknown experiment) is logged and its traces are dropped:
tracing never breaks the traced program. `flush` re-raises the last such error once, so
tests and explicit callers see it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING

from flowml.tracing.provider import PendingTrace
from flowml.tracking.signals import start_background

if TYPE_CHECKING:
    from flowml.tracing.store import SqlTraceStore

__all__ = ["flush", "store_for", "submit"]

_log = logging.getLogger(__name__)
_MAX_BATCH = 500
#: How long the writer waits for more traces before writing what it has (`flush` waits too).
LINGER_S = 0.05
# Finished traces, and `flush`'s markers, in order.
_items: deque[PendingTrace | threading.Event] = deque()
_wake = threading.Event()  # set when there is work for the idle writer
_hurry = threading.Event()  # set by `flush`: write now, without lingering
_stores: dict[str, SqlTraceStore] = {}
_state: dict[str, object] = {"thread": None, "error": None, "idle": False}
_lock = threading.Lock()


def store_for(uri: str) -> SqlTraceStore:
    """The trace store of a tracking URI (opened once per process).

    A SQL database's `SqlTraceStore`, or for ``http(s)://`` a `RestTraceStore` writing and
    reading through the server.

    Raises:
        InvalidParameter: the URI is neither a SQL database nor a server.
    """
    store = _stores.get(uri)
    if store is None:
        from flowml.exceptions import InvalidParameter
        from flowml.settings import get_settings
        from flowml.tracing.store import SqlTraceStore

        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme in ("http", "https"):
            from flowml.tracing.rest_store import RestTraceStore

            with _lock:
                return _stores.setdefault(uri, RestTraceStore(uri))  # type: ignore[arg-type]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise InvalidParameter(
                f"Traces are stored in a SQL tracking store or a flowml server, not {uri!r}; "
                "point the tracking URI at sqlite://, postgresql:// or http(s)://<server>"
            )
        from flowml.tracking.client import TrackingClient

        # The tracking store first: opening it creates the schema and the Default experiment.
        TrackingClient(uri).store  # noqa: B018
        store = SqlTraceStore(uri, search_timeout_seconds=get_settings().search_timeout_seconds)
        with _lock:
            store = _stores.setdefault(uri, store)
    return store


def submit(pending: PendingTrace) -> None:
    """Queue a finished trace for writing (starts the writer thread on first use)."""
    if _state["thread"] is None:
        _start()
    # A deque append is one C call and takes no lock (a `queue.Queue` put takes two and
    # wakes the writer for every trace); the writer is woken once, when it sleeps.
    _items.append(pending)
    if _state["idle"]:
        _wake.set()


def _start() -> None:
    with _lock:
        if _state["thread"] is None:
            thread = threading.Thread(target=_run, name="flowml-trace-writer", daemon=True)
            start_background(thread)
            _state["thread"] = thread


def _run() -> None:
    while True:
        if not _items:
            _state["idle"] = True
            if not _items:  # checked again after saying so: a submit in between wakes us
                _wake.wait()
            _wake.clear()
            _state["idle"] = False
            # Linger a moment for more: under a steady stream of traces one transaction
            # then writes many, and the traced threads are interrupted far less often.
            if _hurry.wait(LINGER_S):
                _hurry.clear()
        batch: list[PendingTrace] = []
        flushed: list[threading.Event] = []
        while _items and len(batch) < _MAX_BATCH:
            item = _items.popleft()
            if isinstance(item, threading.Event):
                flushed.append(item)
            else:
                batch.append(item)
        try:
            _write(batch)
        finally:
            for event in flushed:
                event.set()


def _write(batch: list[PendingTrace]) -> None:
    by_uri: dict[str, list[PendingTrace]] = {}
    for pending in batch:
        by_uri.setdefault(pending.tracking_uri, []).append(pending)
    for uri, group in by_uri.items():
        try:
            _write_group(store_for(uri), group)
        except Exception as exc:  # the traced program must never fail because of tracing
            _log.error("flowml could not write %d trace(s) to %s: %s", len(group), uri, exc)
            _state["error"] = exc


def _write_group(store: SqlTraceStore, group: list[PendingTrace]) -> None:
    """A SQL store takes rows built straight from the spans (`flowml.tracing.rows`); a
    server, and traces with payloads for the artifact store, take `Trace` entities."""
    from flowml.tracing.convert import pending_to_trace
    from flowml.tracing.rows import pending_rows

    write_rows = getattr(store, "write_rows", None)
    entities = group
    if write_rows is not None:
        rows, entities = [], []
        for pending in group:
            found = pending_rows(pending)
            if found is None:
                entities.append(pending)
            else:
                rows.append(found)
        write_rows(rows)
    if entities:
        store.write_traces([pending_to_trace(p) for p in entities])


def flush(*, raise_error: bool = True) -> None:
    """Wait until every trace finished so far is written.

    Raises:
        FlowMLError: the last write error since the previous flush (with ``raise_error``).
    """
    if _state["thread"] is not None:
        done = threading.Event()  # set by the writer once all queued before it is written
        _items.append(done)
        _hurry.set()
        _wake.set()
        done.wait()
    error, _state["error"] = _state["error"], None
    if error is not None and raise_error:
        raise error  # type: ignore[misc]


def _flush_at_exit() -> None:
    flush(raise_error=False)


def _after_fork() -> None:
    _items.clear()
    _wake.clear()
    _hurry.clear()
    _state["thread"], _state["idle"] = None, False
    _stores.clear()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork)
