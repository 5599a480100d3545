"""MLflow's JSON wire shapes, read and written by the REST store (the client side).

Protobuf's JSON rules, as the tracking server (and MLflow's) send them: int64 as a number
or a decimal string, doubles also as ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``,
enums by name, absent fields left out. Only what a client needs lives here; the server
reads requests with its own strict reader (`flowml.server.wire`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import StoreError
from flowml.tracking import validation as v
from flowml.tracking.entities import Experiment, Metric, Run, RunData, RunInfo
from flowml.tracking.lineage import LineageEntry

__all__ = [
    "experiment_from_json",
    "float_from_json",
    "float_to_json",
    "lineage_from_json",
    "lineage_to_json",
    "metric_from_json",
    "metric_to_json",
    "pairs",
    "run_from_json",
    "run_info_from_json",
]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def float_to_json(value: float) -> float | str:
    """A double as protobuf's JSON: non-finite values as strings (JSON has no such numbers)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def float_from_json(value: Any) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StoreError(f"The tracking server sent {value!r} where a number belongs") from None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def pairs(items: Mapping[str, str] | Sequence[Any]) -> list[dict[str, str]]:
    """``{"key": ..., "value": ...}`` objects from a mapping or from Param/RunTag entities."""
    if isinstance(items, Mapping):
        return [{"key": k, "value": val} for k, val in items.items()]
    return [{"key": item.key, "value": item.value} for item in items]


def _dict(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def metric_to_json(metric: Metric) -> dict[str, Any]:
    """One metric point; checked here first (a non-number cannot be sent as JSON)."""
    value = v.validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
    return {
        "key": metric.key,
        "value": float_to_json(value),
        "timestamp": int(metric.timestamp),
        "step": int(metric.step),
    }


def metric_from_json(data: Mapping[str, Any]) -> Metric:
    return Metric(
        key=data["key"],
        value=float_from_json(data.get("value")),
        timestamp=_int(data.get("timestamp")) or 0,
        step=_int(data.get("step")) or 0,
    )


def experiment_from_json(data: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=data.get("name", ""),
        artifact_location=data.get("artifact_location", ""),
        lifecycle_stage=data.get("lifecycle_stage", "active"),
        tags=_dict(data.get("tags")),
        creation_time=_int(data.get("creation_time")),
        last_update_time=_int(data.get("last_update_time")),
    )


def run_info_from_json(data: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=data.get("run_id") or data["run_uuid"],
        experiment_id=str(data.get("experiment_id", "")),
        run_name=data.get("run_name", ""),
        user_id=data.get("user_id", ""),
        status=data.get("status", "RUNNING"),
        start_time=_int(data.get("start_time")) or 0,
        end_time=_int(data.get("end_time")),
        artifact_uri=data.get("artifact_uri", ""),
        lifecycle_stage=data.get("lifecycle_stage", "active"),
    )


def run_from_json(data: Mapping[str, Any]) -> Run:
    body = data.get("data") or {}
    return Run(
        info=run_info_from_json(data["info"]),
        data=RunData(
            metrics={m["key"]: float_from_json(m.get("value")) for m in body.get("metrics", ())},
            params=_dict(body.get("params")),
            tags=_dict(body.get("tags")),
            metric_points={
                m["key"]: (_int(m.get("timestamp")) or 0, _int(m.get("step")) or 0)
                for m in body.get("metrics", ())
                if "timestamp" in m
            },
        ),
    )


def lineage_to_json(entry: LineageEntry) -> dict[str, Any]:
    data = {
        "direction": entry.direction,
        "kind": entry.kind,
        "uri": entry.uri,
        "name": entry.name,
        "digest": entry.digest,
        "run_id": entry.run_id,
        "timestamp": entry.timestamp,
    }
    return {k: val for k, val in data.items() if val is not None}


def lineage_from_json(data: Mapping[str, Any]) -> LineageEntry:
    return LineageEntry(
        direction=data["direction"],
        kind=data["kind"],
        uri=data["uri"],
        name=data.get("name"),
        digest=data.get("digest"),
        run_id=data.get("run_id"),
        timestamp=_int(data.get("timestamp")),
    )
