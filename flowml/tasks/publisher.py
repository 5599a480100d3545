"""A background worker that publishes to the Prefect API off the task's critical path.

Creating one Prefect artifact is an HTTP round trip of several milliseconds, more than a
tracked task may cost in all; so artifacts (and the events that need a read of the final
run) are queued here and sent by one daemon thread, in order. Each job runs in a copy of
the context it was queued from, so it talks to the same Prefect API with the same settings
and its events carry the same related flow and task runs.

Jobs wait up to `PUBLISH_DELAY_S` before the worker starts on them, so a burst of short
tasks is published after the burst rather than competing with it for the interpreter; a
long run's artifacts still appear within about a second. The queue is drained at once by
`flush`: when the outermost flow run ends (so a flow run's monitoring surface is complete
when it returns, while Prefect's events worker can still start), at the end of a task run in
a process-pool worker (whose process may not outlive the task), by ``flowml.testing``, and as
a last resort at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["flush", "submit"]

logger = logging.getLogger("flowml.tasks")

EXIT_FLUSH_TIMEOUT_S = 30.0
PUBLISH_DELAY_S = 1.0

Job = Callable[[Any], None]  # receives a SyncPrefectClient


class _Publisher:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[contextvars.Context, Job] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, Any], Any] = {}
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._hurry = threading.Event()

    def submit(self, job: Job) -> None:
        global _exit_hook_registered
        if not _exit_hook_registered:
            # Registered on first use, so after Prefect's own exit handlers (its local
            # server, its events worker): handlers run last-registered first, and the
            # queue must drain while those are still up.
            _exit_hook_registered = True
            atexit.register(_flush_at_exit)
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="flowml-prefect-publisher", daemon=True
                )
                self._thread.start()
        self._queue.put((contextvars.copy_context(), job))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued job ran; False when ``timeout`` passed first."""
        self._hurry.set()
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._hurry.wait(PUBLISH_DELAY_S)
            self._run_one(item)
            while True:  # everything that arrived meanwhile, without waiting again
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    return
                self._run_one(item)
            with self._lock:
                if self._pending == 0:
                    self._hurry.clear()

    def _run_one(self, item: tuple[contextvars.Context, Job]) -> None:
        context, job = item
        try:
            context.run(self._run, job)
        except Exception:  # monitoring must never break the work it monitors
            logger.warning("flowml could not publish to Prefect", exc_info=True)
        finally:
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()

    def _run(self, job: Job) -> None:
        job(self._client())

    def _client(self) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.context import SyncClientContext
        from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

        key = (PREFECT_API_URL.value(), PREFECT_API_KEY.value())
        client = self._clients.get(key)
        if client is None:
            # The job's context is a copy of the run's, whose client closes with the run:
            # this thread keeps a client of its own (the change stays in the copy).
            SyncClientContext.__var__.set(None)  # type: ignore[arg-type]
            client = get_client(sync_client=True)
            client.__enter__()
            self._clients[key] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.__exit__(None, None, None)
            except Exception:  # the server may be gone already
                pass
        self._clients.clear()


_publisher = _Publisher()


def submit(job: Job) -> None:
    """Queue ``job(prefect_client)`` to run in the background, in the caller's context."""
    _publisher.submit(job)


def flush(timeout: float | None = None) -> bool:
    """Wait until everything queued so far is published; False if ``timeout`` passed first."""
    return _publisher.flush(timeout)


_exit_hook_registered = False


def _flush_at_exit() -> None:
    if not _publisher.flush(EXIT_FLUSH_TIMEOUT_S):
        logger.warning("flowml: some Prefect artifacts were not published before exit")
    _publisher.close()


def _reset_after_fork() -> None:
    # A forked child must not wait for jobs its parent queued.
    global _publisher
    _publisher = _Publisher()


os.register_at_fork(after_in_child=_reset_after_fork)
