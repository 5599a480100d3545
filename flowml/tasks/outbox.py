"""Prefect artifacts and events still queued when a program ends, published by a process of
their own.

Creating one Prefect artifact costs the server tens of milliseconds on a small machine, so a
flow of 500 short tasks leaves seconds of artifacts queued when it returns (publication waits
for the burst of tasks to end, `flowml.tasks.publisher`). Rather than keep the program alive
for them, its exit hook runs the queued jobs and writes what they would send (artifacts, and
the ``flowml.run.*`` events with the related resources Prefect's events worker would attach
from the run context) to an *outbox* file (``$FLOWML_HOME/outbox/*.jsonl``,
readable by the user only) and starts a detached ``python -m flowml.tasks.outbox FILE``
that publishes them and deletes the file.

Delivery is at least once: nothing is lost, and an artifact whose batch failed part-way may
be created again (a second version under its key). Nothing is lost if that process dies: it
holds a lock on the file while it works and records after every batch how many items were
sent (``FILE.sent``); a file that nobody holds and that is older than `ABANDONED_AFTER_S` is
taken over by the next ``flowml runs gc``, which sends the rest.

Hand-off happens only when it is safe (`can_hand_off`): the Prefect API is a server that
outlives the program (``PREFECT_API_URL`` is set: in Prefect's local mode the temporary
server stops with the program), and the program is not a container's first process (whose
children die with it). ``FLOWML_PUBLISH_AT_EXIT=wait`` keeps publication in the program.
The file holds what the artifacts hold (params, metrics, names); API keys are passed to the
publishing process in its environment, never written.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "artifact_item",
    "can_hand_off",
    "event_item",
    "hand_off",
    "outbox_dir",
    "publish_file",
    "publish_items",
    "send_items",
    "events_by_post",
    "origin_related",
    "run_origin",
    "RunOrigin",
    "replay_abandoned",
    "write_outbox",
]

logger = logging.getLogger("flowml.tasks")

ABANDONED_AFTER_S = 60.0
BATCH = 200
CONCURRENT_SENDS = 8
EVENTS_PER_REQUEST = 200
SEND_ATTEMPTS = 5


def outbox_dir() -> Path:
    from flowml.settings import get_settings

    return get_settings().home / "outbox"


def _api_url() -> str | None:
    """The Prefect API URL when it names a server (not Prefect's local mode)."""
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def can_hand_off() -> bool:
    """Whether what is queued at exit may be left to a detached process."""
    from prefect.events.worker import emit_events_to_cloud

    from flowml.settings import get_settings

    if get_settings().publish_at_exit == "wait" or os.getpid() == 1:
        return False
    # Prefect Cloud takes events over its websocket only: its programs publish before exit.
    return _api_url() is not None and not emit_events_to_cloud()


def artifact_item(create: Any) -> dict[str, Any]:
    """An outbox item creating ``create`` (a ``prefect...ArtifactCreate``)."""
    return {"artifact": create.model_dump(mode="json", exclude_unset=True)}


def event_item(
    event: str, fields: dict[str, Any], origin: RunOrigin | None = None
) -> dict[str, Any]:
    """An outbox item for ``prefect.events.emit_event(event, **fields)``: the event as
    Prefect's events worker would send it, related to the runs of ``origin`` (by default
    the current run context's). Built as plain JSON (the server validates it): Prefect's
    event model reads its settings for every label."""
    import datetime

    related = [dict(r) for r in fields.get("related") or ()]
    known = {r["prefect.resource.id"] for r in related}
    extra = origin_related(origin or run_origin())
    related += [r for r in extra if r["prefect.resource.id"] not in known]
    occurred = fields.get("occurred") or datetime.datetime.now(datetime.timezone.utc)
    body = {
        "id": str(uuid.uuid4()),
        "occurred": occurred.isoformat(),
        "event": event,
        "resource": dict(fields["resource"]),
        "related": related,
        "payload": fields.get("payload") or {},
    }
    return {"event": json.loads(json.dumps(body, default=str))}


class RunOrigin(NamedTuple):
    """The Prefect runs a piece of work comes from, as its events name them.

    Kept by queued work instead of the run context itself, which holds the task run's
    engine, result store and transaction: hundreds of objects per task run that would stay
    alive, and be scanned by the garbage collector, until the work is done.
    """

    flow_run: Any  # the FlowRun, shared by the flow run's tasks
    flow_name: str | None
    task_run_id: Any
    task_run_name: str | None
    task_tags: tuple[str, ...]


def run_origin() -> RunOrigin | None:
    """The flow run and task run of the current run context (None outside any)."""
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
    flow_run = getattr(flow_ctx, "flow_run", None)
    task_run = getattr(task_ctx, "task_run", None)
    if flow_run is None and task_run is None:
        return None
    return RunOrigin(
        flow_run,
        getattr(getattr(flow_ctx, "flow", None), "name", None),
        getattr(task_run, "id", None),
        getattr(task_run, "name", None),
        tuple(getattr(task_run, "tags", None) or ()),
    )


def origin_related(origin: RunOrigin | None) -> list[dict[str, str]]:
    """The flow run, task run, flow, deployment and tags of ``origin``, as related
    resources of an event."""
    if origin is None:
        return []
    flow_run = origin.flow_run
    found: list[dict[str, str]] = []
    tags: set[str] = set(origin.task_tags)
    if flow_run is not None:
        found.append(_resource("flow-run", flow_run.id, flow_run.name))
        found.append(_resource("flow", flow_run.flow_id, origin.flow_name))
        if flow_run.deployment_id:
            found.append(_resource("deployment", flow_run.deployment_id, None))
        tags |= set(flow_run.tags or ())
    if origin.task_run_id is not None:
        found.append(_resource("task-run", origin.task_run_id, origin.task_run_name))
    return found + [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(tags)
    ]


def _resource(kind: str, object_id: object, name: str | None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"prefect.{kind}.{object_id}", "prefect.resource.role": kind}
    if name:
        resource["prefect.resource.name"] = name
    return resource


def hand_off(items: list[dict[str, Any]]) -> Path | None:
    """Write ``items`` to a new outbox file and start the process that publishes them; the
    file, or None when it could not be written."""
    api = _api_url()
    if api is None or not items:
        return None
    try:
        path = write_outbox(api, items)
    except OSError as exc:
        logger.warning("flowml: could not write the Prefect outbox (%s); publishing now", exc)
        return None
    try:
        subprocess.Popen(
            [sys.executable, "-m", "flowml.tasks.outbox", str(path)],
            env=_child_env(api),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the program's process group
            close_fds=True,
        )
    except OSError as exc:
        # The file stays: `flowml runs gc` publishes it once it is abandoned.
        logger.warning("flowml: could not start the outbox publisher (%s): %s", exc, path)
    return path


def write_outbox(api: str, items: list[dict[str, Any]]) -> Path:
    """A new outbox file (readable by the user only) holding ``items`` for ``api``."""
    folder = outbox_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(folder)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps({"api_url": api, "count": len(items)}) + "\n")
        for item in items:
            out.write(json.dumps(item, separators=(",", ":")) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path


def _child_env(api: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    env = dict(os.environ, PREFECT_API_URL=api)
    for setting, name in (
        (PREFECT_API_KEY, "PREFECT_API_KEY"),
        (PREFECT_API_AUTH_STRING, "PREFECT_API_AUTH_STRING"),
    ):
        value = setting.value()
        if value:
            env[name] = (
                value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
            )
    return env


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """An exclusive lock on ``path`` for as long as the block runs; False if held elsewhere."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _sent(path: Path) -> int:
    try:
        return int(Path(f"{path}.sent").read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _note_sent(path: Path, count: int) -> None:
    marker = Path(f"{path}.sent")
    tmp = Path(f"{path}.sent.tmp")
    tmp.write_text(str(count))
    tmp.replace(marker)


def _check_private(folder: Path) -> None:
    """Refuse an outbox folder another user owns or may write: its files name the API that
    this user's Prefect credentials are sent to."""
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{folder} is not private to this user (owner or mode); not used")


def publish_file(path: Path) -> int:
    """Publish what an outbox file holds that was not sent yet, then delete it.

    Returns how many items were sent now (0 when another process holds the file, or when
    the file names another Prefect API than this process's: this process's credentials are
    never sent elsewhere). A file whose API does not answer is kept for a later attempt.
    """
    with _locked(path) as mine:
        if not mine:
            return 0
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines:
            path.unlink(missing_ok=True)
            return 0
        try:
            header = json.loads(lines[0])
            api = str(header["api_url"])
            items = [json.loads(line) for line in lines[1:] if line]
            if not all(isinstance(i, dict) and ("artifact" in i or "event" in i) for i in items):
                raise ValueError("an item is neither an artifact nor an event")
        except (ValueError, KeyError, TypeError) as exc:
            # Kept aside for a person to look at; never sent, never retried.
            path.replace(path.with_suffix(".bad"))
            logger.warning("flowml: an unreadable outbox file was set aside (%s): %s", exc, path)
            return 0
        if api != _api_url():
            logger.warning(
                "flowml: the outbox file %s is for the Prefect API %s, not this one; left for a "
                "process configured for it",
                path,
                api,
            )
            return 0
        done = _sent(path)
        sent = asyncio.run(_publish(api, items, done, path))
        if done + sent >= len(items):
            path.unlink(missing_ok=True)
            Path(f"{path}.sent").unlink(missing_ok=True)
        return sent


def events_by_post() -> bool:
    """Whether events go to the Prefect API in batches (``POST /events``): a Prefect server
    that takes events; Prefect Cloud takes them over its websocket only."""
    from prefect.events.worker import emit_events_to_cloud, should_emit_events

    return should_emit_events() and not emit_events_to_cloud()


async def send_items(
    client: Any,
    items: list[dict[str, Any]],
    *,
    divert: Callable[[], list[dict[str, Any]] | None] | None = None,
    attempts: int = 1,
) -> tuple[int, int]:
    """Send outbox items with a Prefect client: artifacts concurrently, each followed by the
    ``prefect.artifact.created`` event Prefect's client would emit, then all events in
    batches of `EVENTS_PER_REQUEST`. Returns how many were sent and how many failed.

    ``divert`` is asked before each request: a list it returns takes the items not sent yet
    (the program is ending and hands them to the outbox process). Each request is tried
    ``attempts`` times, with a growing pause, when the server fails or is unreachable (an
    events request only: events carry their ids, so Prefect keeps one of each).
    """
    events = [i["event"] for i in items if "event" in i]
    artifacts = [i["artifact"] for i in items if "artifact" in i]
    limit = asyncio.Semaphore(CONCURRENT_SENDS)
    counts = [0, 0]

    async def request(path: str, body: Any, attempts: int = attempts) -> Any:
        for attempt in range(attempts):
            try:
                response = await client.request("POST", path, json=body)
                response.raise_for_status()
                return response
            except Exception:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(2.0**attempt, 30.0))

    async def artifact(body: dict[str, Any]) -> None:
        async with limit:
            spool = divert() if divert is not None else None
            if spool is not None:
                spool.append({"artifact": body})
                return
            try:
                # Once only: Prefect's client already retries what may not have reached the
                # server, and an artifact has no id of ours to make a second try harmless.
                created = (await request("/artifacts/", body, 1)).json()
            except Exception:  # one refused artifact must not stop the others
                counts[1] += 1
                logger.warning("flowml could not publish an artifact to Prefect", exc_info=True)
                return
            counts[0] += 1
            events.append(_artifact_created(created, body))

    await asyncio.gather(*(artifact(body) for body in artifacts))
    for start in range(0, len(events), EVENTS_PER_REQUEST):
        batch = events[start : start + EVENTS_PER_REQUEST]
        spool = divert() if divert is not None else None
        if spool is not None:
            spool.extend({"event": e} for e in batch)
            continue
        try:
            await request("/events", batch)
            counts[0] += len(batch)
        except Exception:
            counts[1] += len(batch)
            logger.warning("flowml could not publish events to Prefect", exc_info=True)
    return counts[0], counts[1]


def _artifact_created(created: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The ``prefect.artifact.created`` event of an artifact the server just created."""
    import datetime

    resource = {"prefect.resource.id": f"prefect.artifact.{created.get('id')}"}
    if created.get("key"):
        resource["prefect.resource.name"] = str(created["key"])
    related = [
        _resource(kind, body[field], None)
        for kind, field in (("flow-run", "flow_run_id"), ("task-run", "task_run_id"))
        if body.get(field)
    ]
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "event": "prefect.artifact.created",
        "resource": resource,
        "related": related,
        "payload": {k: body[k] for k in ("key", "type", "description") if body.get(k) is not None},
    }


def publish_items(items: list[dict[str, Any]]) -> int:
    """Publish outbox items from this process (when no file could be written)."""
    api = _api_url()
    return asyncio.run(_publish(api, items, 0, None)) if api else 0


async def _publish(api: str, items: list[dict[str, Any]], done: int, path: Path | None) -> int:
    """Send ``items[done:]`` in batches, noting progress in ``path.sent`` after each; how
    many were sent. A batch that fails stops the file's publication (kept for later)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    sent = 0
    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            for start in range(done, len(items), BATCH):
                chunk = items[start : start + BATCH]
                _, failed = await send_items(client, chunk, attempts=SEND_ATTEMPTS)
                if failed:
                    # Kept for `flowml runs gc`; a batch sent in part is sent again whole
                    # (Prefect keeps one event per id; an artifact may then show twice).
                    logger.warning("flowml: the Prefect API refused part of the outbox")
                    return sent
                sent += len(chunk)
                if path is not None:
                    _note_sent(path, start + len(chunk))
    return sent


def replay_abandoned(older_than_s: float = ABANDONED_AFTER_S) -> int:
    """Publish the outbox files whose publisher is gone; how many artifacts were sent."""
    folder = outbox_dir()
    if not folder.is_dir():
        return 0
    try:
        _check_private(folder)
    except PermissionError as exc:
        logger.warning("flowml: %s", exc)
        return 0
    sent = 0
    now = time.time()
    for path in sorted(folder.glob("*.jsonl")):
        try:
            if now - path.stat().st_mtime < older_than_s:
                continue  # its publisher may still be starting
        except FileNotFoundError:
            continue
        sent += publish_file(path)
    return sent


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    publish_file(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
