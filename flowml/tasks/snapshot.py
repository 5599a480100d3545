"""A finished run as the store now holds it, built from what this process wrote.

Publishing a task run's artifacts and ``flowml.run.finished`` event needs the run as it
ended: its status, params, final metrics and tags. Reading it back costs the publisher a
store read per task (and a lineage search), the largest part of its work on a flow of many
short tasks. A tracked task's end writes in one unit everything its run was given since it
opened, so when nothing of the run was written before (the buffer's timer, a flush, a direct
write: see `BatchBuffer.watch`) the run is the one it was opened as, plus that end.
"""

from __future__ import annotations

import dataclasses

from flowml.tracking.entities import Metric, Param, Run, RunData, RunTag

__all__ = ["ended_run", "remember_name", "run_name_of"]


def ended_run(
    run: Run,
    status: str,
    end_time: int,
    metrics: list[Metric],
    params: list[Param],
    tags: list[RunTag],
) -> Run:
    """``run`` (as opened, or as last read) once its end wrote these values and ``status``."""
    data = run.data
    latest = dict(data.metrics)
    points = dict(data.metric_points)
    for metric in metrics:
        point = (metric.timestamp, metric.step)
        known = points.get(metric.key)
        # The store keeps the highest (step, timestamp), the later one on ties.
        if known is None and metric.key in latest and metric.key not in points:
            known = (-1, -(2**63))  # a value read without its point: any new one wins
        if known is None or (metric.step, metric.timestamp) >= (known[1], known[0]):
            latest[metric.key] = metric.value
            points[metric.key] = point
    info = dataclasses.replace(run.info, status=status, end_time=end_time)
    return Run(
        info=info,
        data=RunData(
            metrics=latest,
            params={**data.params, **{p.key: p.value for p in params}},
            tags={**data.tags, **{t.key: t.value for t in tags}},
            metric_points=points,
        ),
    )


# The names of runs of task runs this process ended, by the task run's URI: a summary names
# the runs whose results its task used without a store read (most flows chain their tasks).
MAX_NAMES = 10_000
_names: dict[str, str] = {}


def remember_name(task_run_uri: str, run_name: str) -> None:
    if len(_names) >= MAX_NAMES:
        _names.clear()  # a long flow's summaries read its recent tasks: start again
    _names[task_run_uri] = run_name


def run_name_of(task_run_uri: str) -> str | None:
    return _names.get(task_run_uri)
