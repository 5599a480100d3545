"""``flowml.progress``: a Prefect progress artifact for long training loops.

Example:
    >>> @flowml.tracked_task
    ... def train(epochs: int = 50):
    ...     with flowml.progress(total=epochs, description="epochs") as bar:
    ...         for epoch in range(epochs):
    ...             ...
    ...             bar.advance()

The artifact is created on the first update and updated in place, at most once per
``min_interval`` seconds (the last update always goes out), in the background: a loop pays
a clock read per update, not an HTTP request.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tasks import publisher
from flowml.tasks.prefect_ui import artifact_key, index_of, run_reference, slugify
from flowml.tasks.recorder import open_flows, open_tasks

__all__ = ["Progress", "progress"]

DEFAULT_MIN_INTERVAL_S = 1.0


class Progress:
    """A progress artifact on the current Prefect flow or task run (see `progress`)."""

    def __init__(
        self,
        total: float = 100.0,
        *,
        key: str | None = None,
        description: str | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
    ) -> None:
        if not total > 0:
            raise InvalidParameter(f"progress total must be > 0, got {total!r}")
        if min_interval < 0:
            raise InvalidParameter(f"min_interval must be >= 0, got {min_interval!r}")
        self.total = float(total)
        self.completed = 0.0
        self.description = description
        self.min_interval = min_interval
        self.key, self._flow_run_id, self._task_run_id = _context_ids(key)
        record = open_tasks.get(str(self._task_run_id)) or open_flows.get(str(self._flow_run_id))
        if record is not None:  # the bar names the tracked run it belongs to
            reference = run_reference(record.run_id)
            self.description = f"{description} — {reference}" if description else reference
        self._artifact_id: Any = None
        self._last_sent: float | None = None
        self._last_percent: float | None = None
        self._lock = threading.Lock()
        self._send_lock: Any = None

    @property
    def percent(self) -> float:
        return max(0.0, min(100.0, 100.0 * self.completed / self.total))

    def update(self, completed: float | None = None, *, advance: float = 0.0) -> None:
        """Set the amount done (``completed``) or add to it (``advance``)."""
        with self._lock:
            self.completed = float(completed) if completed is not None else self.completed
            self.completed += advance
            now = time.monotonic()
            due = self._last_sent is None or now - self._last_sent >= self.min_interval
            if due or self.completed >= self.total:
                self._send(now)

    def advance(self, amount: float = 1.0) -> None:
        """Add ``amount`` to the amount done."""
        self.update(advance=amount)

    def close(self) -> None:
        """Send the final value now (100% when the loop completed)."""
        with self._lock:
            self._send(time.monotonic())

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.completed = max(self.completed, self.total)
        self.close()

    def _send(self, now: float) -> None:
        percent = self.percent
        if percent == self._last_percent:
            return
        self._last_sent, self._last_percent = now, percent
        publisher.submit(lambda: [lambda client: self._publish(client, percent)])

    async def _publish(self, client: Any, percent: float) -> None:
        import asyncio

        from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

        # Sends of one batch run concurrently on the publisher's one event loop; this lock
        # (created there, on first use) keeps the bar's create before its updates, in order.
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            if self._artifact_id is None:
                created = await client.create_artifact(
                    artifact=ArtifactCreate(
                        type="progress",
                        key=self.key,
                        data=percent,
                        description=self.description,
                        flow_run_id=self._flow_run_id,
                        task_run_id=self._task_run_id,
                    )
                )
                self._artifact_id = created.id
            else:
                await client.update_artifact(
                    artifact_id=self._artifact_id, artifact=ArtifactUpdate(data=percent)
                )


def progress(
    total: float = 100.0,
    *,
    key: str | None = None,
    description: str | None = None,
    min_interval: float = DEFAULT_MIN_INTERVAL_S,
) -> Progress:
    """A progress artifact for a loop, shown on the current Prefect run's page.

    Args:
        total: the amount of work (epochs, batches...).
        key: the artifact key (slugified); default ``flowml-<flow>-<task>-progress``.
        description: shown next to the bar in the Prefect UI.
        min_interval: seconds between two updates sent to Prefect.

    Returns:
        A `Progress`; use it as a context manager (100% on a clean exit) and call
        ``advance()`` or ``update(completed)``.

    Raises:
        InvalidParameter: ``total`` is not positive or ``min_interval`` is negative.

    Example:
        >>> @flowml.tracked_flow(experiment="loop")
        ... def fit(epochs: int = 3):
        ...     with flowml.progress(total=epochs, description="epochs") as bar:
        ...         for epoch in range(epochs):
        ...             bar.advance()
        ...     return bar.completed
        >>> fit()
        3.0
    """
    return Progress(total, key=key, description=description, min_interval=min_interval)


def _context_ids(key: str | None) -> tuple[str, Any, Any]:
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
    flow_run = getattr(flow_ctx, "flow_run", None)
    task_run = getattr(task_ctx, "task_run", None)
    flow_name = getattr(getattr(flow_ctx, "flow", None), "name", None)
    task_name = getattr(getattr(task_ctx, "task", None), "name", None)
    flow_run_id = getattr(flow_run, "id", None) or getattr(task_run, "flow_run_id", None)
    suffix = "progress"
    if task_run is not None:  # two calls of one task in a flow run get a bar each
        record = open_tasks.get(str(task_run.id))
        index = record.key_parts[2] if record is not None else index_of(task_run.id)
        suffix = f"{index}-progress"
    chosen = slugify(key) if key else artifact_key(flow_name, task_name, suffix=suffix)
    return chosen, flow_run_id, getattr(task_run, "id", None)
