"""Downsampled metric histories for charts: ``POST /api/2.0/flowml/metrics/history``.

A chart is at most a few thousand pixels wide, so sending a million-point history to draw it
wastes the network and the browser. This endpoint returns, for each (run, metric key) pair,
at most ``max_points`` points: the history (ordered by step, then timestamp) is cut into
buckets and each bucket keeps its first, lowest, highest and last points, so spikes and
drops stay visible however far a series is thinned (the "min/max" downsampling MLflow's
bulk-interval endpoint lacks). Non-finite values are kept as MLflow sends them.
"""

from __future__ import annotations

import math
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import Fields, float_json
from flowml.tracking.entities import Metric

__all__ = ["ENDPOINTS", "MAX_HISTORY_SERIES", "downsample"]

DEFAULT_MAX_POINTS = 1000
# Bounds one request's work: 100 runs x 100 keys would already read 10,000 histories.
MAX_HISTORY_SERIES = 1000
MAX_POINTS_LIMIT = 100_000


def downsample(points: list[Metric], max_points: int) -> list[Metric]:
    """At most ``max_points`` of ``points`` (in order), keeping each bucket's extremes.

    Args:
        points: one series, already ordered by step and timestamp.
        max_points: the most points to return (at least 4).

    Returns:
        ``points`` itself when short enough; otherwise a subsequence holding the first and
        last point and, per bucket, its first, minimum, maximum and last points (NaN ranks
        below every number, so a NaN bucket still keeps its largest value).

    Raises:
        InvalidParameter: ``max_points`` is below 4.

    Example:
        >>> len(downsample(history, 400))  # doctest: +SKIP
        400
    """
    if max_points < 4:
        raise InvalidParameter(f"max_points must be at least 4, got {max_points}")
    if len(points) <= max_points:
        return points
    values = [p.value for p in points]
    if any(v != v for v in values):  # NaN compares false with everything: rank it lowest
        values = [-math.inf if v != v else v for v in values]
    rank = values.__getitem__  # a bound method: far cheaper than a lambda per point
    buckets = max_points // 4
    size = len(points) / buckets
    kept: list[int] = []
    for b in range(buckets):
        start, end = int(b * size), int((b + 1) * size)
        if start >= end:
            continue
        chunk = range(start, end)
        kept.extend(sorted({start, min(chunk, key=rank), max(chunk, key=rank), end - 1}))
    return [points[i] for i in kept]


def _series_json(run_id: str, key: str, points: list[Metric], total: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "key": key,
        "total": total,
        "steps": [p.step for p in points],
        "timestamps": [p.timestamp for p in points],
        "values": [float_json(p.value) for p in points],
    }


def get_histories(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    """``{"series": [...]}``: each requested run's history of each requested key, thinned.

    A key a run never logged answers an empty series rather than an error, so one chart
    can ask every selected run for the same keys.
    """
    run_ids = fields.strings("run_ids")
    keys = fields.strings("metric_keys")
    max_points = fields.int64("max_points")
    max_points = DEFAULT_MAX_POINTS if max_points is None else max_points
    if not run_ids or not keys:
        raise InvalidParameter("run_ids and metric_keys must each name at least one value")
    if len(run_ids) * len(keys) > MAX_HISTORY_SERIES:
        raise InvalidParameter(
            f"{len(run_ids)} runs x {len(keys)} keys is more than {MAX_HISTORY_SERIES} "
            "series in one request: ask for fewer runs or keys"
        )
    if not 4 <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidParameter(
            f"max_points must be between 4 and {MAX_POINTS_LIMIT}, got {max_points}"
        )
    series = []
    for run_id in run_ids:
        for key in keys:
            # An unknown run raises ResourceNotFound here: an error, not an empty chart.
            history = ctx.store.get_metric_history(run_id, key)  # ordered by step, time
            series.append(_series_json(run_id, key, downsample(history, max_points), len(history)))
    return {"series": series}


ENDPOINTS = (Endpoint("/metrics/history", "POST", get_histories),)
