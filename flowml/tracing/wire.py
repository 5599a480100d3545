"""Traces on the wire between flowml's REST trace store and ``flowml server``.

The fields of the entities as JSON, spans as MLflow's span JSON (as stored): what
`flowml.tracing.rest_store.RestTraceStore` sends and `flowml.server.traces` answers
(``/api/2.0/flowml/traces/*``). Every reader raises `InvalidParameter` on a malformed
value, so a bad request never reaches the store.
"""

from __future__ import annotations

from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracing import entities as e

__all__ = [
    "assessment_from_json",
    "assessment_to_json",
    "info_from_json",
    "info_to_json",
    "trace_from_json",
    "trace_to_json",
]


def assessment_to_json(a: e.Assessment) -> dict[str, Any]:
    return {
        "assessment_id": a.assessment_id,
        "trace_id": a.trace_id,
        "name": a.name,
        "kind": a.kind,
        "value": a.value,
        "source": a.source.to_dict(),
        "create_time_ms": a.create_time_ms,
        "last_update_time_ms": a.last_update_time_ms,
        "rationale": a.rationale,
        "error": a.error,
        "span_id": a.span_id,
        "metadata": a.metadata,
        "valid": a.valid,
    }


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidParameter(f"Field {key!r} must be a string, got {value!r}")
    return value


def _int(data: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParameter(f"Field {key!r} must be an integer, got {value!r}")
    return value


def _strings(data: dict[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidParameter(f"Field {key!r} must map strings to strings")
    return dict(value)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter(f"A {what} must be a JSON object, got {type(value).__name__}")
    return value


def assessment_from_json(value: Any) -> e.Assessment:
    data = _object(value, "assessment")
    source = _object(data.get("source"), "assessment source")
    kind = _str(data, "kind")
    if kind not in ("feedback", "expectation"):
        raise InvalidParameter(f"An assessment kind is 'feedback' or 'expectation', got {kind!r}")
    source_type = _str(source, "source_type")
    if source_type not in e.AssessmentSource.TYPES:
        raise InvalidParameter(f"Invalid assessment source type {source_type!r}")
    metadata = data.get("metadata")
    return e.Assessment(
        assessment_id=_str(data, "assessment_id") or "",
        trace_id=_str(data, "trace_id") or "",
        name=_str(data, "name") or "",
        kind=kind,
        value=data.get("value"),
        source=e.AssessmentSource(source_type, _str(source, "source_id") or ""),
        create_time_ms=_int(data, "create_time_ms") or 0,
        last_update_time_ms=_int(data, "last_update_time_ms") or 0,
        rationale=_str(data, "rationale", required=False),
        error=_str(data, "error", required=False),
        span_id=_str(data, "span_id", required=False),
        metadata=_strings(data, "metadata") if metadata is not None else None,
        valid=bool(data.get("valid", True)),
    )


def info_to_json(info: e.TraceInfo) -> dict[str, Any]:
    return {
        "trace_id": info.trace_id,
        "experiment_id": info.experiment_id,
        "request_time": info.request_time,
        "state": info.state,
        "execution_duration": info.execution_duration,
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "run_id": info.run_id,
        "task_run_id": info.task_run_id,
        "trace_metadata": info.trace_metadata,
        "tags": info.tags,
        "assessments": [assessment_to_json(a) for a in info.assessments],
    }


def info_from_json(value: Any) -> e.TraceInfo:
    data = _object(value, "trace info")
    state = _str(data, "state")
    if state not in e.TraceState.ALL:
        raise InvalidParameter(f"Invalid trace state {state!r}; expected one of {e.TraceState.ALL}")
    assessments = data.get("assessments") or []
    if not isinstance(assessments, list):
        raise InvalidParameter("Field 'assessments' must be a list")
    return e.TraceInfo(
        trace_id=_str(data, "trace_id") or "",
        experiment_id=_str(data, "experiment_id") or "",
        request_time=_int(data, "request_time") or 0,
        state=state,
        execution_duration=_int(data, "execution_duration", required=False),
        request_preview=_str(data, "request_preview", required=False),
        response_preview=_str(data, "response_preview", required=False),
        run_id=_str(data, "run_id", required=False),
        task_run_id=_str(data, "task_run_id", required=False),
        trace_metadata=_strings(data, "trace_metadata"),
        tags=_strings(data, "tags"),
        assessments=[assessment_from_json(a) for a in assessments],
    )


def trace_to_json(trace: e.Trace) -> dict[str, Any]:
    return {"info": info_to_json(trace.info), "spans": [s.raw for s in trace.data.spans]}


def _span(value: Any) -> e.Span:
    raw = _object(value, "span")
    if not (
        isinstance(raw.get("span_id"), str)
        and isinstance(raw.get("name"), str)
        and isinstance(raw.get("start_time_unix_nano"), int)
        and isinstance(raw.get("attributes", {}), dict)
        and isinstance(raw.get("status", {}), dict)
    ):
        raise InvalidParameter("A span needs span_id, name, start_time_unix_nano and attributes")
    return e.Span(raw)


def trace_from_json(value: Any) -> e.Trace:
    data = _object(value, "trace")
    spans = data.get("spans") or []
    if not isinstance(spans, list):
        raise InvalidParameter("Field 'spans' must be a list")
    return e.Trace(info_from_json(data.get("info")), e.TraceData([_span(s) for s in spans]))
