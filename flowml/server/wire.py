"""MLflow's JSON wire shapes: reading request fields, writing entities.

Requests arrive as a JSON body (POST) or as query parameters (GET, where a repeated field
is a repeated parameter and every value is a string). `Fields` reads both the same way and
applies protobuf's JSON rules: int64 as a number or a decimal string, floats also as
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, enums by name (or number).

Replies follow what MLflow's server sends: int64 as JSON numbers, timestamps in epoch
milliseconds, enum names, non-finite floats as those three strings, and absent values
left out rather than sent as ``null``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.locations import ArtifactLocations
from flowml.tracking.entities import Experiment, Metric, Run, RunInfo, ViewType
from flowml.tracking.validation import INT64_MAX, INT64_MIN

__all__ = [
    "VIEW_TYPES",
    "Fields",
    "experiment_json",
    "float_json",
    "key_values",
    "metric_json",
    "run_info_json",
    "run_json",
]

VIEW_TYPES = {
    "ACTIVE_ONLY": ViewType.ACTIVE_ONLY,
    "DELETED_ONLY": ViewType.DELETED_ONLY,
    "ALL": ViewType.ALL,
}
_INT_RE = re.compile(r"^-?[0-9]{1,19}$")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Fields:
    """The fields of one request, read with protobuf's JSON rules.

    Every getter raises `InvalidParameter` naming the field when its value has the wrong
    shape, so a malformed request never reaches a store.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> Fields:
        data: dict[str, Any] = {}
        for key, value in items:
            if key in data:
                previous = data[key]
                data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                data[key] = value
        return cls(data)

    def with_values(self, values: Mapping[str, Any]) -> Fields:
        """These fields with ``values`` set over them."""
        return Fields({**self._data, **values})

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def _scalar(self, name: str) -> Any:
        value = self._data.get(name)
        if isinstance(value, list):
            if len(value) != 1:
                raise InvalidParameter(f"Parameter '{name}' takes one value, got {len(value)}")
            value = value[0]
        return value

    def string(self, *names: str, required: bool = False) -> str | None:
        """The first of ``names`` present (MLflow's ``run_id``/``run_uuid`` pairs)."""
        for name in names:
            value = self._scalar(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidParameter(
                    f"Invalid value {value!r} for parameter '{name}': expected a string"
                )
            return value
        if required:
            raise InvalidParameter(f"Missing value for required parameter '{names[0]}'")
        return None

    def required(self, *names: str) -> str:
        value = self.string(*names, required=True)
        assert value is not None
        return value

    def int64(self, name: str, *, required: bool = False) -> int | None:
        value = self._scalar(name)
        if value is None:
            if required:
                raise InvalidParameter(f"Missing value for required parameter '{name}'")
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer() and -(2**63) < value < 2**63:
            # orjson reads an integer beyond 64 bits as a rounded float (-2**63-1 becomes
            # -2.0**63): a float at a bound may be such a rounding, so it is refused.
            number = int(value)
        elif isinstance(value, str) and _INT_RE.match(value):
            number = int(value)
        if number is None or not INT64_MIN <= number <= INT64_MAX:
            raise InvalidParameter(
                f"Invalid value {value!r} for parameter '{name}': expected a 64-bit integer"
            )
        return number

    def double(self, name: str) -> float:
        value = self._scalar(name)
        if value is None:
            raise InvalidParameter(f"Missing value for required parameter '{name}'")
        return _double(name, value)

    def enum(self, name: str, names: Mapping[str, int], default: int) -> int:
        value = self._scalar(name)
        if value is None:
            return default
        if isinstance(value, str) and value in names:
            return names[value]
        if isinstance(value, int | str) and not isinstance(value, bool):
            if str(value).isdigit() and int(value) in names.values():
                return int(value)
        raise InvalidParameter(
            f"Invalid value {value!r} for parameter '{name}': expected one of {', '.join(names)}"
        )

    def boolean(self, name: str, default: bool = False) -> bool:
        """A bool: JSON ``true``/``false``, or ``"true"``/``"false"`` in a query string."""
        value = self._scalar(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidParameter(
            f"Invalid value {value!r} for parameter '{name}': expected true or false"
        )

    def strings(self, name: str) -> list[str]:
        """A repeated string field (absent: empty)."""
        value = self._data.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise InvalidParameter(f"Invalid value for parameter '{name}': expected strings")
        return values

    def raw(self, name: str) -> Any:
        """The field's value as decoded, unchecked (for a hot path that checks it itself)."""
        return self._data.get(name)

    def messages(self, name: str) -> list[Fields]:
        """A repeated message field (absent: empty)."""
        value = self._data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InvalidParameter(
                f"Invalid value for parameter '{name}': expected a list of objects"
            )
        return [Fields(v) for v in value]

    def mapping(self, name: str) -> dict[str, str]:
        """A protobuf map of strings, JSON-encoded as an object (absent: empty)."""
        value = self._data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise InvalidParameter(
                f"Invalid value for parameter '{name}': expected an object of strings"
            )
        return dict(value)

    def messages_one(self, name: str) -> Fields:
        """A required message field."""
        value = self._data.get(name)
        if not isinstance(value, dict):
            raise InvalidParameter(f"Missing or invalid object for parameter '{name}'")
        return Fields(value)


def _double(name: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidParameter(f"Invalid value {value!r} for parameter '{name}': expected a number")


def key_values(items: list[Fields], what: str) -> list[tuple[str, str]]:
    """``[{"key": ..., "value": ...}]`` as pairs (the value must be a string)."""
    out = []
    for item in items:
        key = item.required("key")
        value = item.string("value")
        if value is None:
            raise InvalidParameter(f"Missing value for {what} {key!r}")
        out.append((key, value))
    return out


def float_json(value: float) -> float | str:
    """Protobuf's JSON for a double: NaN and infinities as strings (JSON has no such numbers)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _pairs(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _present(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None and v != []}


def experiment_json(experiment: Experiment, locations: ArtifactLocations) -> dict[str, Any]:
    return _present(
        {
            "experiment_id": experiment.experiment_id,
            "name": experiment.name,
            "artifact_location": locations.to_wire(experiment.artifact_location),
            "lifecycle_stage": experiment.lifecycle_stage,
            "last_update_time": experiment.last_update_time,
            "creation_time": experiment.creation_time,
            "tags": _pairs(experiment.tags),
        }
    )


def run_info_json(info: RunInfo, locations: ArtifactLocations) -> dict[str, Any]:
    payload = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": locations.to_wire(info.artifact_uri),
        "lifecycle_stage": info.lifecycle_stage,
    }
    return {k: v for k, v in payload.items() if v is not None}


def run_json(run: Run, locations: ArtifactLocations) -> dict[str, Any]:
    # A search page serializes thousands of runs: one pass per field, no helper calls per
    # value except for the rare non-finite metric (the shapes equal `run_info_json`'s).
    data = run.data
    points = data.metric_points
    metrics = []
    for key, number in data.metrics.items():
        value: float | str = number
        if number - number != 0:  # NaN or an infinity (for finite x, x - x is 0)
            value = float_json(number)
        point = points.get(key)
        if point is None:
            metrics.append({"key": key, "value": value})
        else:
            metrics.append({"key": key, "value": value, "timestamp": point[0], "step": point[1]})
    body: dict[str, Any] = {}
    if metrics:
        body["metrics"] = metrics
    if data.params:
        body["params"] = [{"key": k, "value": v} for k, v in data.params.items()]
    if data.tags:
        body["tags"] = [{"key": k, "value": v} for k, v in data.tags.items()]
    return {"info": run_info_json(run.info, locations), "data": body, "inputs": {}}


def metric_json(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": float_json(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
