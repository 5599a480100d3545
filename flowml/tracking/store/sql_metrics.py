"""Metric history as packed segments: one row per (run, key) per written batch.

A batch of metric points is grouped by key and each group is stored as one row whose
``points`` column packs the values (float64, NaN and infinities as they are), timestamps
and steps (int64) little-endian. Writing 200 points of 20 keys is 20 rows instead of
200 — the history write costs O(keys), not O(points) — and reading a history is one
indexed range scan plus an unpack. ``latest_metrics`` keeps one plain row per key for
search and ordering, which never needs the history.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from flowml.tracking.entities import Metric
from flowml.tracking.store.schema import metrics as metric_segments


def pack(values: Sequence[float], timestamps: Sequence[int], steps: Sequence[int]) -> bytes:
    n = len(values)
    return struct.pack(f"<{n}d{n}q{n}q", *values, *timestamps, *steps)


def unpack(blob: bytes, n: int) -> tuple[tuple[float, ...], tuple[int, ...], tuple[int, ...]]:
    flat = struct.unpack(f"<{n}d{n}q{n}q", blob)
    return flat[:n], flat[n : 2 * n], flat[2 * n :]


def segment_rows(
    run_id: str, groups: dict[str, tuple[list[float], list[int], list[int]]]
) -> list[dict[str, Any]]:
    """One packed row per key from a batch's points grouped by key."""
    return [
        {
            "run_uuid": run_id,
            "key": key,
            "n": len(values),
            "step_min": min(steps),
            "step_max": max(steps),
            "points": pack(values, timestamps, steps),
        }
        for key, (values, timestamps, steps) in groups.items()
    ]


def read_history(conn: Connection, run_id: str, key: str) -> list[Metric]:
    """Every point of ``key``, ordered by step, then timestamp, then write order."""
    seg = metric_segments.c
    points: list[Metric] = []
    for n, blob in conn.execute(
        select(seg.n, seg.points).where(seg.run_uuid == run_id, seg.key == key).order_by(seg.id)
    ):
        values, timestamps, steps = unpack(blob, n)
        points.extend(map(Metric, [key] * n, values, timestamps, steps))
    points.sort(key=lambda m: (m.step, m.timestamp))
    return points


def count_points(conn: Connection, run_ids: Sequence[str] | None = None) -> int:
    """How many metric points are stored (for all runs, or some)."""
    from sqlalchemy import func

    query = select(func.coalesce(func.sum(metric_segments.c.n), 0))
    if run_ids is not None:
        query = query.where(metric_segments.c.run_uuid.in_(list(run_ids)))
    return int(conn.execute(query).scalar_one())
