"""Prefect as the monitoring surface: artifacts and events for every tracked run.

When a tracked flow or task run ends, artifacts are published on its Prefect run:

- a markdown summary: status, duration, attempts, the error of a failed run, lineage in
  words, links (key ``flowml-<flow>-summary`` for a flow run, ``flowml-<flow>-<task>-<n>-summary``
  for the n-th call of a task in its flow run); a task run's also lists its params and final
  metrics (one artifact per task run: each is a write on the Prefect server),
- for a flow run, a table of its params and final metrics (``flowml-<flow>-table``).

Keys are slugs of the flow and task names plus the task's call count in its flow run, so
two calls of one task in a flow run never share a key, while the same call in the flow's
next run adds a version to the same collection in the UI. Every artifact names its tracked
run (run id and ``flowml runs show`` command). Events ``flowml.run.started`` and
``flowml.run.finished`` (run id, experiment, status, key metrics in the payload; resource
``flowml.run.<run id>``) let automations react to a training run. Publication happens in the
background (`flowml.tasks.publisher`), off the task's critical path.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import re
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowml.tasks import publisher
from flowml.tasks import tags as ptags
from flowml.tasks.snapshot import run_name_of
from flowml.tasks.traces import traces_markdown
from flowml.tracking import tags as systags
from flowml.tracking.entities import Experiment, Run
from flowml.tracking.lineage import INPUT, KIND_PREFECT_TASK_RUN, OUTPUT, LineageEntry

if TYPE_CHECKING:
    from flowml.tracking.client import TrackingClient

__all__ = [
    "EVENT_FINISHED",
    "EVENT_STARTED",
    "artifact_key",
    "emit_started",
    "index_of",
    "publish_cache_hit",
    "publish_finished",
    "slugify",
]

EVENT_STARTED = "flowml.run.started"
EVENT_FINISHED = "flowml.run.finished"
MAX_EVENT_METRICS = 50
MAX_KEY_LENGTH = 100


def slugify(text: str) -> str:
    """Lowercase letters, digits and single dashes, as Prefect artifact keys require."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def artifact_key(*parts: str | None, suffix: str) -> str:
    """``flowml-<part>-...-<suffix>``, slugified and at most 100 characters."""
    words = [slugify(p) for p in parts if p]
    body = "-".join(w for w in words if w)[: MAX_KEY_LENGTH - len(suffix) - 8].strip("-")
    return "-".join(w for w in ("flowml", body, suffix) if w)


def index_of(task_run_id: object) -> str:
    """A task run's artifact-key index when its call count is unknown: the start of its id."""
    return slugify(str(task_run_id))[:8] or "0"


def run_artifact_key(key_parts: tuple[str | None, ...], suffix: str) -> str:
    """The key of a run's artifact: ``key_parts`` is ``(flow,)`` for a flow run and
    ``(flow, task, index)`` for a task run (the index survives any truncation)."""
    if len(key_parts) > 2 and key_parts[2]:
        return artifact_key(*key_parts[:2], suffix=f"{slugify(key_parts[2])}-{suffix}")
    return artifact_key(*key_parts[:2], suffix=suffix)


def run_reference(run_id: str) -> str:
    """How an artifact points at its tracked run (shown in its description)."""
    return f"flowml run `{run_id}` (`flowml runs show {run_id}`)"


def _resource(run_id: str, run_name: str, experiment_id: str, kind: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"flowml.run.{run_id}",
        "prefect.resource.name": run_name,
        "flowml.run.kind": kind,
        "flowml.experiment.id": experiment_id,
    }


def emit_started(run: Run, kind: str, background: bool = False) -> None:
    """Emit ``flowml.run.started``.

    With ``background=True`` (task runs) the event is built and sent by the publisher
    thread, stamped with the time the run started: a task pays nothing for it, and since
    Prefect delivers events asynchronously anyway, automations only see it a moment later.
    """
    info = run.info
    occurred = datetime.datetime.fromtimestamp(info.start_time / 1000, datetime.timezone.utc)
    # A partial of plain values, not a closure over the run: a queued job keeps what it
    # refers to alive until it runs.
    emit = functools.partial(
        _emit_started,
        occurred,
        info.run_id,
        info.run_name,
        info.experiment_id,
        kind,
        run.data.tags.get(systags.PARENT_RUN_ID),
    )
    if background:
        publisher.submit(emit)
    else:
        emit()


def _emit_started(
    occurred: datetime.datetime,
    run_id: str,
    run_name: str,
    experiment_id: str,
    kind: str,
    parent_run_id: str | None,
) -> None:
    publisher.emit_event(
        EVENT_STARTED,
        occurred=occurred,
        resource=_resource(run_id, run_name, experiment_id, kind),
        payload={
            "run_id": run_id,
            "run_name": run_name,
            "experiment_id": experiment_id,
            "kind": kind,
            "parent_run_id": parent_run_id,
        },
    )


def publish_finished(
    client: TrackingClient,
    run_id: str,
    *,
    kind: str,
    key_parts: tuple[str | None, ...],
    flow_run_id: str | None,
    task_run_id: str | None,
    artifacts: bool = True,
    run: Run | None = None,
    lineage: list[LineageEntry] | None = None,
) -> None:
    """Queue the ``flowml.run.finished`` event and the run's artifacts.

    ``run`` is the ended run when the caller knows it as the store holds it, and ``lineage``
    its lineage entries (`flowml.tasks.snapshot`): the job then reads neither from the store.
    """
    # A partial, not a closure: a queued job keeps only what it names alive until it runs.
    publisher.submit(
        functools.partial(
            _finished,
            client,
            run_id,
            kind,
            key_parts,
            flow_run_id,
            task_run_id,
            artifacts,
            run,
            lineage,
        )
    )


def _finished(
    client: TrackingClient,
    run_id: str,
    kind: str,
    key_parts: tuple[str | None, ...],
    flow_run_id: str | None,
    task_run_id: str | None,
    artifacts: bool,
    snapshot: Run | None,
    lineage: list[LineageEntry] | None,
) -> list[publisher.Send]:
    """The job of `publish_finished`: the event, then the artifacts to create."""
    run = snapshot if snapshot is not None else client.get_run(run_id)
    experiment = _experiment(client, run.info.experiment_id)
    metrics = dict(sorted(run.data.metrics.items())[:MAX_EVENT_METRICS])
    publisher.emit_event(
        EVENT_FINISHED,
        resource={
            **_resource(run_id, run.info.run_name, experiment.experiment_id, kind),
            "flowml.run.status": run.info.status,
        },
        related=[
            {
                "prefect.resource.id": f"flowml.experiment.{experiment.experiment_id}",
                "prefect.resource.role": "experiment",
                "prefect.resource.name": experiment.name,
            },
            # Named here too: a run closed by a cancellation hook in Prefect's runner has
            # no run context to take them from.
            *_run_resources(flow_run_id, task_run_id),
        ],
        payload={
            "run_id": run_id,
            "run_name": run.info.run_name,
            "experiment_id": experiment.experiment_id,
            "experiment_name": experiment.name,
            "kind": kind,
            "status": run.info.status,
            "metrics": {k: _json_number(v) for k, v in metrics.items()},
            "params": dict(sorted(run.data.params.items())[:MAX_EVENT_METRICS]),
            **_error_payload(run),
        },
    )
    if not artifacts:
        return []
    entries = (
        list(lineage) if lineage is not None else client.store.search_lineage(run_ids=[run_id])
    )
    is_flow = kind == ptags.RUN_KIND_FLOW
    children = _children(client, run) if is_flow else []
    reference = run_reference(run_id)
    traces = traces_markdown(client, run_id, experiment.experiment_id, reference)
    extra = (
        [
            _create(
                "markdown",
                run_artifact_key(key_parts, "traces"),
                traces,
                f"Traces of {reference}",
                flow_run_id,
                task_run_id,
            )
        ]
        if traces
        else []
    )
    summary = _create(
        "markdown",
        run_artifact_key(key_parts, "summary"),
        _markdown(client, run, experiment.name, entries, children, values=not is_flow),
        f"Summary of {reference}: {run.info.status}",
        flow_run_id,
        task_run_id,
    )
    if not is_flow:
        # One summary per task run (plus its traces' when it made some): each artifact
        # costs the Prefect server a write, and a flow of many tasks would spend longer
        # publishing than running.
        return [*extra, summary]
    table = _create(
        "table",
        run_artifact_key(key_parts, "table"),
        json.dumps(_table(run)),
        f"Params and final metrics of {reference}: {run.info.status}",
        flow_run_id,
        task_run_id,
    )
    return [*extra, table, summary]


def publish_cache_hit(
    run: Run, *, key_parts: tuple[str | None, ...], flow_run_id: str | None, task_run_id: str
) -> None:
    """Queue a markdown note on a cached task run naming the run that computed its result."""
    info = run.info
    text = (
        f"### Result served from Prefect's cache\n\n"
        f"No new flowml run was created: the result was computed by run "
        f"`{info.run_name}` (`{info.run_id}`, experiment {info.experiment_id}).\n\n"
        f"`flowml runs show {info.run_id}`\n"
    )

    def job() -> list[publisher.Send]:
        return [
            _create(
                "markdown",
                run_artifact_key(key_parts, "summary"),
                text,
                f"Cached: computed by {run_reference(info.run_id)}",
                flow_run_id,
                task_run_id,
            )
        ]

    publisher.submit(job)


_experiment_cache: dict[tuple[str, str], Experiment] = {}


def _experiment(client: TrackingClient, experiment_id: str) -> Experiment:
    # Names change rarely and only describe: one read per experiment and process is enough.
    key = (client.tracking_uri, experiment_id)
    found = _experiment_cache.get(key)
    if found is None:
        found = _experiment_cache[key] = client.get_experiment(experiment_id)
    return found


def _create(
    kind: str,
    key: str,
    data: str,
    description: str,
    flow_run_id: str | None,
    task_run_id: str | None,
) -> publisher.Send:
    from prefect.client.schemas.actions import ArtifactCreate

    return publisher.artifact(
        ArtifactCreate(
            type=kind,
            key=key,
            data=data,
            description=description,
            flow_run_id=UUID(flow_run_id) if flow_run_id else None,
            task_run_id=UUID(task_run_id) if task_run_id else None,
        )
    )


def _run_resources(flow_run_id: str | None, task_run_id: str | None) -> list[dict[str, str]]:
    ids = (("flow-run", flow_run_id), ("task-run", task_run_id))
    return [
        {"prefect.resource.id": f"prefect.{role}.{run_id}", "prefect.resource.role": role}
        for role, run_id in ids
        if run_id
    ]


def _error_payload(run: Run) -> dict[str, str]:
    tags = run.data.tags
    return {
        name: tags[tag]
        for name, tag in (("error_type", systags.ERROR_TYPE), ("error", systags.ERROR_MESSAGE))
        if tag in tags
    }


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _table(run: Run) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"type": "param", "name": k, "value": v} for k, v in sorted(run.data.params.items())
    ]
    rows += [
        {"type": "metric", "name": k, "value": _json_number(v)}
        for k, v in sorted(run.data.metrics.items())
    ]
    return rows


MAX_SUMMARY_VALUES = 100


def _values_lines(run: Run) -> list[str]:
    """The run's params and final metrics as a markdown table (at most 100 rows)."""
    rows = [("param", k, v) for k, v in sorted(run.data.params.items())]
    rows += [("metric", k, f"{v:.6g}") for k, v in sorted(run.data.metrics.items())]
    if not rows:
        return ["**Params and metrics**: none."]
    lines = ["**Params and metrics**", "", "| | name | value |", "|---|---|---|"]
    lines += [f"| {t} | `{_cell(k)}` | {_cell(v)[:200]} |" for t, k, v in rows[:MAX_SUMMARY_VALUES]]
    if len(rows) > MAX_SUMMARY_VALUES:
        lines.append(f"| | … {len(rows) - MAX_SUMMARY_VALUES} more | `flowml runs show` |")
    return lines


def _children(client: TrackingClient, run: Run) -> list[Run]:
    return list(
        client.search_runs(
            [run.info.experiment_id],
            f"tags.mlflow.parentRunId = '{run.info.run_id}'",
            max_results=200,
            order_by=["attributes.start_time ASC"],
        )
    )


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(
    client: TrackingClient,
    run: Run,
    experiment_name: str,
    entries: list[LineageEntry],
    children: list[Run],
    values: bool = False,
) -> str:
    info, tags = run.info, run.data.tags
    duration = run.data.metrics.get(ptags.METRIC_DURATION)
    attempts = run.data.metrics.get(ptags.METRIC_ATTEMPTS)
    lines = [
        f"### flowml run `{info.run_name}`: {info.status}",
        "",
        "| | |",
        "|---|---|",
        f"| run id | `{info.run_id}` |",
        f"| experiment | {_cell(experiment_name)} (`{info.experiment_id}`) |",
    ]
    if duration is not None:
        lines.append(f"| duration | {duration:.3f} s |")
    if attempts is not None:
        lines.append(f"| attempts | {int(attempts)} |")
    if tags.get(systags.GIT_COMMIT):
        lines.append(f"| git commit | `{tags[systags.GIT_COMMIT][:12]}` |")
    if tags.get(ptags.PREFECT_TAGS):
        lines.append(f"| Prefect tags | {_cell(tags[ptags.PREFECT_TAGS])} |")
    if tags.get(systags.ERROR_TYPE) or tags.get(systags.ERROR_MESSAGE):
        error = f"`{_cell(tags.get(systags.ERROR_TYPE, 'error'))}`"
        lines.append(f"| error | {error}: {_cell(tags.get(systags.ERROR_MESSAGE, ''))[:1000]} |")
    lines.append(f"| artifacts | `{_cell(info.artifact_uri)}` |")
    if values:
        lines += ["", *_values_lines(run)]
    lines += ["", "**Lineage**: " + _lineage_words(client, entries), ""]
    if children:
        lines += ["**Task runs**", "", "| run | status | metrics |", "|---|---|---|"]
        for child in children:
            shown = ", ".join(
                f"{k}={v:.4g}"
                for k, v in sorted(child.data.metrics.items())
                if not k.startswith("flowml.")
            )[:200]
            lines.append(f"| `{child.info.run_name}` | {child.info.status} | {_cell(shown)} |")
        lines.append("")
    links = [f"`flowml runs show {info.run_id}`", f"`flowml runs lineage {info.run_id}`"]
    if tags.get(ptags.UI_URL):
        links.insert(0, f"[Prefect run]({tags[ptags.UI_URL]})")
    lines.append("**Links**: " + " · ".join(links))
    return "\n".join(lines) + "\n"


def _producer(client: TrackingClient, uri: str) -> Run | None:
    # The task run's own run holds the URI as its run key; a cache hit's, as an output.
    run = client.get_run_by_key(uri)
    if run is None:
        for entry in client.store.search_lineage(uris=[uri], direction=OUTPUT):
            return client.get_run(entry.run_id) if entry.run_id else None
    return run


def _lineage_words(client: TrackingClient, entries: list[LineageEntry]) -> str:
    phrases = []
    upstream = [e for e in entries if e.direction == INPUT and e.kind == KIND_PREFECT_TASK_RUN]
    for entry in upstream:
        name = run_name_of(entry.uri)  # a task run this process ended: no read
        if name is None:
            producer = _producer(client, entry.uri)
            name = producer.info.run_name if producer else None
        label = f"`{name}`" if name is not None else f"an untracked task ({entry.uri})"
        phrases.append(
            f"used the result of {label}" + (f" as `{entry.name}`" if entry.name else "")
        )
    for entry in entries:
        if entry.direction == INPUT and entry.kind != KIND_PREFECT_TASK_RUN:
            phrases.append(f"read {entry.kind} `{_cell(entry.name or entry.uri)}`")
        elif entry.direction == OUTPUT and not entry.kind.startswith("prefect-"):
            phrases.append(f"produced {entry.kind} `{_cell(entry.uri)}`")
    return "; ".join(phrases) + "." if phrases else "no recorded inputs or outputs."
