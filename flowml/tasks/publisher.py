"""A background worker that publishes to the Prefect API off the flow's critical path.

Creating one Prefect artifact is an HTTP round trip of tens of milliseconds on a busy
server, more than a tracked task may cost in all; so artifacts (and the events that need a
read of the final run) are queued here and published by one daemon thread:

- a *job* runs on that thread with Prefect's settings and the flow and task runs of the
  context it was queued from (`_Queued`: so it talks to the same Prefect API, and its
  events carry the same related flow and task runs); it reads
  what it needs, emits its events (`emit_event`: collected as plain JSON) and returns its
  *sends*: artifacts (`artifact`) or coroutines taking a Prefect client;
- jobs are taken in batches of up to `BATCH_SIZE`; the batch's artifacts are created
  concurrently (at most `CONCURRENT_SENDS` at once) and its events sent in one request per
  200 (`flowml.tasks.outbox.send_items`), on the thread's own event loop and client, so the
  server's latency is paid once per batch, not once per artifact;
- the queue holds at most `MAX_QUEUED_JOBS`; beyond that `submit` waits for room (a bound on
  memory when the server is slower than the flow) rather than dropping anything.

Jobs wait until no tracked task run of this process ended for `PUBLISH_DELAY_S` (`quiet`),
so a burst of short tasks is published after the burst rather than competing with it for
the interpreter and the Prefect server; at most `MAX_DEFER_S`, and never once
`HIGH_WATER_JOBS` are queued, so a long flow still shows its artifacts as it goes. A flow
never waits for publication: the outermost flow run hurries the queue and returns. What is
still queued when the program ends is handed to the outbox (`flowml.tasks.outbox`: a file
and a detached process that publishes it) when that is safe, and otherwise published before
Prefect shuts down. Either way the exit hook is
a *threading* exit hook (run before non-daemon threads are joined, hence before ``atexit``
handlers), kept after Prefect's own (so it runs before them: they run last-registered
first), while Prefect's events worker and API client still work (it runs the queued
jobs). An ``atexit`` hook would run too late: Prefect can no longer start anything then
("can't register atexit after shutdown") and whatever was left is lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from flowml.tracking.closer import drain_all
from flowml.tracking.signals import start_background

if TYPE_CHECKING:
    from flowml.tasks.outbox import RunOrigin

__all__ = ["Job", "Send", "artifact", "flush", "stats", "submit"]

logger = logging.getLogger("flowml.tasks")

BATCH_SIZE = 200
CONCURRENT_SENDS = 8
MAX_QUEUED_JOBS = 20_000
PUBLISH_DELAY_S = 1.0
MAX_DEFER_S = 30.0
HIGH_WATER_JOBS = 5_000
# At exit the queue is drained for as long as it makes progress: a server that answers
# nothing for this long is taken as gone.
EXIT_STALL_TIMEOUT_S = 60.0
FULL_QUEUE_TIMEOUT_S = 120.0

Send = Callable[[Any], Awaitable[Any]]  # receives an async PrefectClient
Job = Callable[[], Iterable[Send] | None]


class _ArtifactSend:
    """The send that creates one artifact: sent as an outbox item (`flowml.tasks.outbox`),
    so the publisher's own batches and the outbox process send it the same way."""

    __slots__ = ("create",)

    def __init__(self, create: Any) -> None:
        self.create = create

    async def __call__(self, client: Any) -> None:  # only when sent on its own
        from flowml.tasks.outbox import artifact_item, send_items

        await send_items(client, [artifact_item(self.create)])


def artifact(create: Any) -> Send:
    """The send that creates one artifact (a ``prefect...ArtifactCreate``)."""
    return _ArtifactSend(create)


def emit_event(event: str, **fields: Any) -> None:
    """Emit a Prefect event. From a publication job it is built as plain JSON, with the
    related resources of the job's run context, and sent with the batch's other events in
    one request; elsewhere (or to Prefect Cloud) through Prefect's events worker."""
    from flowml.tasks.outbox import event_item, origin_related

    origin = _origin.get()
    collect = _publisher.collecting()
    if collect is None:
        from prefect.events import emit_event as emit

        if origin is not None:  # a job: its runs are not in its context (`_Queued`)
            known = {r["prefect.resource.id"] for r in fields.get("related") or ()}
            extra = [r for r in origin_related(origin) if r["prefect.resource.id"] not in known]
            fields = {**fields, "related": [*(fields.get("related") or ()), *extra]}
        emit(event, **fields)
        return
    collect.append(event_item(event, fields, origin))


# The runs a job was queued from (`_Queued`).
_origin: contextvars.ContextVar[RunOrigin | None] = contextvars.ContextVar(
    "flowml_publisher_origin", default=None
)


class _Queued(NamedTuple):
    """A queued job and what it needs of the context it was queued from: Prefect's settings
    and the runs of that context (`outbox.RunOrigin`). Not a copy of the caller's context:
    in a task run that holds the run's engine, result store and transaction, which would
    then stay alive until the job ran (the end of a burst of tasks), long enough to reach
    the collector's oldest generation and make its full passes come often."""

    settings: Any
    origin: RunOrigin | None
    job: Job

    @classmethod
    def of(cls, job: Job) -> _Queued:
        from prefect.context import SettingsContext

        from flowml.tasks.outbox import run_origin

        return cls(SettingsContext.get(), run_origin(), job)

    def context(self) -> contextvars.Context:
        """A context for running the job in (`_origin` set, Prefect's settings entered)."""
        context = contextvars.Context()
        context.run(self._enter)
        return context

    def _enter(self) -> None:
        from prefect.context import SettingsContext

        if self.settings is not None:
            SettingsContext.__var__.set(self.settings)
        _origin.set(self.origin)


class _Publisher:
    def __init__(self) -> None:
        self._queue: queue.Queue[_Queued] = queue.Queue(MAX_QUEUED_JOBS)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._hurry = threading.Event()
        self._pending = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[tuple[Any, Any], Any] = {}
        # At exit, with a hand-off: what was not sent yet, as data (`flowml.tasks.outbox`).
        self.handing_off: list[dict[str, Any]] | None = None
        # The events of the job running now on the worker thread (`emit_event`).
        self._collect: list[dict[str, Any]] | None = None
        self.sent = 0
        self.failed = 0
        self.handed_off = 0

    def submit(self, job: Job) -> None:
        _keep_exit_hook_first()
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="flowml-prefect-publisher", daemon=True
                )
                start_background(self._thread)
        try:
            self._queue.put(_Queued.of(job), timeout=FULL_QUEUE_TIMEOUT_S)
        except queue.Full:  # the server has not taken anything for minutes: give up on this
            self._done(1)
            self.failed += 1
            logger.warning("flowml: the Prefect API is not keeping up; an artifact was dropped")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued job ran; False when ``timeout`` passed first."""
        self._hurry.set()
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def hurry(self) -> None:
        """Start on what is queued now instead of waiting for the burst to end."""
        self._hurry.set()

    def drain_while_progressing(self, stall_s: float) -> bool:
        """Flush for as long as jobs keep completing; False if none did for ``stall_s``."""
        self._hurry.set()
        with self._idle:
            while self._pending:

                def progressed(before: int = self._pending) -> bool:
                    return self._pending < before

                if not self._idle.wait_for(progressed, stall_s):
                    return False
                self._hurry.set()  # the queue may hold more than one batch
            return True

    @property
    def pending(self) -> int:
        return self._pending

    def _done(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            if self._pending == 0:
                self._hurry.clear()
            self._idle.notify_all()  # flush waits for zero; the exit hook, for progress

    def _work(self) -> None:
        self._loop = asyncio.new_event_loop()
        while True:
            first = self._queue.get()
            self._wait_for_quiet()  # let a burst of short tasks finish first
            batch = [first]
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run_batch(batch)
            finally:
                self._done(len(batch))
            _keep_exit_hook_first(from_worker=True)

    def _wait_for_quiet(self) -> None:
        start = time.monotonic()
        while not self._hurry.wait(PUBLISH_DELAY_S):
            now = time.monotonic()
            if (
                now - _last_task_end >= PUBLISH_DELAY_S
                or now - start >= MAX_DEFER_S
                or self._queue.qsize() >= HIGH_WATER_JOBS
            ):
                return

    def collecting(self) -> list[dict[str, Any]] | None:
        """Where a job's events go, when the caller is a job on the worker thread."""
        if self._collect is not None and threading.current_thread() is self._thread:
            return self._collect
        return None

    def _run_batch(self, batch: list[_Queued]) -> None:
        from flowml.tasks.outbox import artifact_item, events_by_post

        groups: dict[tuple[Any, Any], tuple[contextvars.Context, list[Send], list[Any]]] = {}
        post: dict[tuple[Any, Any], bool] = {}
        for entry in batch:
            context = entry.context()
            try:
                api = context.run(_api_key)
                if api not in post:
                    post[api] = context.run(events_by_post)
                self._collect = [] if post[api] else None
                try:
                    queued: Iterable[Send] | None = context.run(entry.job)
                    sends = list(queued or ())
                finally:
                    events, self._collect = self._collect or [], None
            except Exception:  # monitoring must never break the work it monitors
                self.failed += 1
                logger.warning("flowml could not publish to Prefect", exc_info=True)
                continue
            group = groups.setdefault(api, (context, [], []))
            group[1].extend(s for s in sends if not isinstance(s, _ArtifactSend))
            group[2].extend(events)
            group[2].extend(artifact_item(s.create) for s in sends if isinstance(s, _ArtifactSend))
        for api, (context, sends, items) in groups.items():
            assert self._loop is not None
            # In the first job's context, so the client is built with that job's settings.
            context.run(self._loop.run_until_complete, self._send_all(api, sends, items))

    async def _send_all(self, api: tuple[Any, Any], sends: list[Send], items: list[Any]) -> None:
        from flowml.tasks.outbox import send_items

        client = await self._client(api)
        limit = asyncio.Semaphore(CONCURRENT_SENDS)

        async def one(send: Send) -> None:
            async with limit:
                try:
                    await send(client)
                    self.sent += 1
                except Exception:  # one refused artifact must not stop the others
                    self.failed += 1
                    logger.warning("flowml could not publish to Prefect", exc_info=True)

        async def all_items() -> None:
            # At exit, what is not sent yet is left to the outbox process instead.
            sent, failed = await send_items(client, items, divert=lambda: self.handing_off)
            self.sent += sent
            self.failed += failed

        await asyncio.gather(*(one(send) for send in sends), all_items())

    async def _client(self, api: tuple[Any, Any]) -> Any:
        client = self._clients.get(api)
        if client is None:
            from prefect.client.orchestration import get_client

            # Bound to this thread's loop, open for the thread's life (one connection pool).
            client = get_client()
            await client.__aenter__()
            self._clients[api] = client
        return client


def _api_key() -> tuple[Any, Any]:
    from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

    return PREFECT_API_URL.value(), PREFECT_API_KEY.value()


_publisher = _Publisher()
_last_task_end = 0.0


def task_ended() -> None:
    """Note that a tracked task run ended (publication waits for a quiet moment)."""
    global _last_task_end
    _last_task_end = time.monotonic()


def submit(job: Job) -> None:
    """Queue ``job`` to run in the background, in the caller's context; its returned sends
    are then run with an async Prefect client."""
    _publisher.submit(job)


def flush(timeout: float | None = None) -> bool:
    """Wait until everything queued so far is published; False if ``timeout`` passed first."""
    return _publisher.flush(timeout)


def hurry() -> None:
    """Publish what is queued without waiting for more (does not wait for it)."""
    _publisher.hurry()


def stats() -> dict[str, int]:
    """How many sends succeeded and failed in this process, how many jobs are queued, and
    how many artifacts and events were left to the outbox's process at exit."""
    return {
        "sent": _publisher.sent,
        "failed": _publisher.failed,
        "pending": _publisher.pending,
        "handed_off": _publisher.handed_off,
    }


def _flush_at_exit() -> None:
    drain_all()  # run ends still being written queue their publication
    if _publisher.pending == 0:
        return
    if _hand_off_at_exit():
        return
    logger.info("flowml: publishing %d queued Prefect jobs before exit", _publisher.pending)
    if not _publisher.drain_while_progressing(EXIT_STALL_TIMEOUT_S):
        logger.warning(
            "flowml: the Prefect API stopped answering; %d publication jobs were not sent",
            _publisher.pending,
        )


def _hand_off_at_exit() -> bool:
    """Run the queued jobs now, leaving what they send (artifacts and events) to a detached
    process (`flowml.tasks.outbox`): the program ends at once instead of waiting for the
    Prefect server to store them one by one. False when a hand-off is not safe here."""
    from flowml.tasks import outbox

    try:
        if not outbox.can_hand_off():
            return False
    except Exception:  # no usable Prefect settings: publish here, as before
        logger.debug("flowml: no outbox hand-off", exc_info=True)
        return False
    spool: list[dict[str, Any]] = []
    _publisher.handing_off = spool
    try:
        if not _publisher.drain_while_progressing(EXIT_STALL_TIMEOUT_S):
            logger.warning(
                "flowml: the Prefect API stopped answering; %d publication jobs were not sent",
                _publisher.pending,
            )
    finally:
        _publisher.handing_off = None
    if not spool:
        return True
    if outbox.hand_off(spool) is None:  # not written (a read-only home, say): send them here
        outbox.publish_items(spool)
        return True
    _publisher.handed_off += len(spool)
    logger.info("flowml: %d Prefect artifacts and events left to the outbox process", len(spool))
    return True


def _keep_exit_hook_first(from_worker: bool = False) -> None:
    """Keep `_flush_at_exit` the last registered threading exit hook, so it runs first.

    Prefect's events worker registers its own hook (which drains and stops it) when it
    starts, possibly after ours; our hook must run before it, while events can still be sent.
    Cheap when nothing changed: one list look-up.
    """
    hooks = threading._threading_atexits  # type: ignore[attr-defined]
    if hooks and getattr(hooks[-1], "func", None) is _flush_at_exit:
        return
    if not from_worker:
        _start_events_worker()  # so its hook comes before ours
    try:
        # CPython's hook for exactly this (concurrent.futures and Prefect use it too).
        threading._register_atexit(_flush_at_exit)  # type: ignore[attr-defined]
    except RuntimeError:  # the interpreter is already shutting down
        pass


def _start_events_worker() -> None:
    try:
        from prefect.events.worker import EventsWorker, should_emit_events

        if should_emit_events():
            EventsWorker.instance()
    except Exception:  # no Prefect API configured: events are not sent anyway
        logger.debug("flowml: Prefect's events worker did not start", exc_info=True)


def _reset_after_fork() -> None:
    # A forked child must not wait for jobs its parent queued.
    global _publisher
    _publisher = _Publisher()


os.register_at_fork(after_in_child=_reset_after_fork)
