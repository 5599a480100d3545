"""Trace entities, shaped as MLflow 3's: `Trace` = `TraceInfo` + `TraceData` (its spans).

Spans are kept as MLflow's span JSON (``trace_id``/``span_id`` base64-encoded bytes,
attribute values JSON-encoded strings), which is what the store holds, what
``flowml traces export`` writes and what MLflow's ``Trace.from_dict`` reads. `Span` is a
read-only view over that dictionary that decodes on access.

Example:
    >>> trace = flowml.get_trace(trace_id)
    >>> trace.info.state, [s.name for s in trace.data.spans]
    ('OK', ['answer', 'retrieve'])
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "Assessment",
    "AssessmentSource",
    "Span",
    "SpanAttributeKey",
    "SpanType",
    "Trace",
    "TraceData",
    "TraceInfo",
    "TraceState",
]


class SpanType:
    """MLflow's predefined span types (any other string is accepted too).

    Example:
        >>> @flowml.trace(span_type=flowml.SpanType.RETRIEVER)
        ... def retrieve(query: str) -> list[str]:
        ...     return ["doc-1"]
        >>> _ = retrieve("refunds")
        >>> trace = flowml.get_trace(flowml.get_last_active_trace_id())
        >>> trace.data.spans[0].span_type
        'RETRIEVER'
    """

    LLM = "LLM"
    CHAIN = "CHAIN"
    AGENT = "AGENT"
    TOOL = "TOOL"
    CHAT_MODEL = "CHAT_MODEL"
    RETRIEVER = "RETRIEVER"
    PARSER = "PARSER"
    EMBEDDING = "EMBEDDING"
    RERANKER = "RERANKER"
    MEMORY = "MEMORY"
    UNKNOWN = "UNKNOWN"
    WORKFLOW = "WORKFLOW"
    TASK = "TASK"
    GUARDRAIL = "GUARDRAIL"
    EVALUATOR = "EVALUATOR"


class TraceState:
    OK = "OK"
    ERROR = "ERROR"
    IN_PROGRESS = "IN_PROGRESS"
    ALL = ("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED")


class SpanAttributeKey:
    """Attribute names MLflow gives span fields (values are JSON-encoded strings)."""

    REQUEST_ID = "mlflow.traceRequestId"
    INPUTS = "mlflow.spanInputs"
    OUTPUTS = "mlflow.spanOutputs"
    SPAN_TYPE = "mlflow.spanType"
    FUNCTION_NAME = "mlflow.spanFunctionName"
    CHAT_USAGE = "mlflow.chat.tokenUsage"
    CHAT_TOOLS = "mlflow.chat.tools"
    MODEL = "mlflow.llm.model"
    MESSAGE_FORMAT = "mlflow.message.format"


# Trace metadata/tag keys shared with MLflow, and flowml's Prefect links.
TRACE_NAME_TAG = "mlflow.traceName"
SOURCE_RUN = "mlflow.sourceRun"
TRACE_USER = "mlflow.user"
TRACE_INPUTS = "mlflow.traceInputs"
TRACE_OUTPUTS = "mlflow.traceOutputs"
TOKEN_USAGE = "mlflow.trace.tokenUsage"
SCHEMA_VERSION = "mlflow.trace_schema.version"
PREFECT_TASK_RUN_ID = "flowml.prefect.taskRunId"
PREFECT_FLOW_RUN_ID = "flowml.prefect.flowRunId"
SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"


def encode_id(hex_id: str) -> str:
    """A hex span/trace id as MLflow's JSON writes it (base64 of the bytes)."""
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def decode_id(value: str | None) -> str | None:
    """The hex form of an id from MLflow's JSON (base64) or already hex."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
        if len(raw) in (8, 16):
            return raw.hex()
    except ValueError:
        pass
    return value.lower()


def decode_attribute(value: Any) -> Any:
    """A span attribute as stored (JSON text) back to its value; other text as it is."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


@dataclass(frozen=True)
class Span:
    """One finished span, read from its MLflow JSON dictionary (see `to_dict`)."""

    raw: dict[str, Any]
    # (span id, parent id) in hex when the maker knew them (spans recorded here): saves
    # decoding the base64 of ``raw`` again on the write path.
    hex_ids: tuple[str, str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def trace_id(self) -> str:
        """The MLflow trace id (``tr-<hex>``)."""
        request_id = self.raw.get("attributes", {}).get(SpanAttributeKey.REQUEST_ID)
        return (
            decode_attribute(request_id)
            if request_id
            else "tr-" + (decode_id(self.raw["trace_id"]) or "")
        )

    @property
    def span_id(self) -> str:
        if self.hex_ids is not None:
            return self.hex_ids[0]
        return decode_id(self.raw["span_id"]) or ""

    @property
    def parent_id(self) -> str | None:
        if self.hex_ids is not None:
            return self.hex_ids[1]
        return decode_id(self.raw.get("parent_span_id"))

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def start_time_ns(self) -> int:
        return int(self.raw["start_time_unix_nano"])

    @property
    def end_time_ns(self) -> int | None:
        end = self.raw.get("end_time_unix_nano")
        return int(end) if end is not None else None

    @property
    def status(self) -> str:
        """``OK``, ``ERROR`` or ``UNSET``."""
        return (
            self.raw.get("status", {}).get("code", "STATUS_CODE_UNSET").removeprefix("STATUS_CODE_")
        )

    @property
    def attributes(self) -> dict[str, Any]:
        """Attribute values decoded from their JSON strings."""
        return {k: decode_attribute(v) for k, v in self.raw.get("attributes", {}).items()}

    def get_attribute(self, key: str) -> Any:
        return decode_attribute(self.raw.get("attributes", {}).get(key))

    @property
    def span_type(self) -> str | None:
        return self.get_attribute(SpanAttributeKey.SPAN_TYPE)

    @property
    def inputs(self) -> Any:
        return self.get_attribute(SpanAttributeKey.INPUTS)

    @property
    def outputs(self) -> Any:
        return self.get_attribute(SpanAttributeKey.OUTPUTS)

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.raw.get("events", []))

    def to_dict(self) -> dict[str, Any]:
        return self.raw


@dataclass(frozen=True)
class AssessmentSource:
    """Who judged: ``HUMAN``, ``LLM_JUDGE`` or ``CODE``, and which one (``source_id``).

    Example:
        >>> @flowml.trace
        ... def answer(question: str) -> str:
        ...     return "Paris"
        >>> _ = answer("Capital of France?")
        >>> trace_id = flowml.get_last_active_trace_id()
        >>> source = flowml.AssessmentSource("LLM_JUDGE", "gpt-4o-mini")
        >>> flowml.log_feedback(trace_id, name="correct", value=True, source=source).source
        AssessmentSource(source_type='LLM_JUDGE', source_id='gpt-4o-mini')
    """

    source_type: str = "HUMAN"
    source_id: str = "default"

    TYPES = ("HUMAN", "LLM_JUDGE", "CODE", "SOURCE_TYPE_UNSPECIFIED")

    def to_dict(self) -> dict[str, str]:
        return {"source_type": self.source_type, "source_id": self.source_id}


@dataclass(frozen=True)
class Assessment:
    """A feedback (a judgment of the output) or an expectation (the expected output)."""

    assessment_id: str
    trace_id: str
    name: str
    kind: str  # "feedback" | "expectation"
    value: Any
    source: AssessmentSource
    create_time_ms: int
    last_update_time_ms: int
    rationale: str | None = None
    error: str | None = None
    span_id: str | None = None
    metadata: dict[str, str] | None = None
    valid: bool = True

    def to_dict(self) -> dict[str, Any]:
        """MLflow's assessment JSON."""
        out: dict[str, Any] = {
            "assessment_id": self.assessment_id,
            "assessment_name": self.name,
            "trace_id": self.trace_id,
            "source": self.source.to_dict(),
            "create_time": _iso(self.create_time_ms),
            "last_update_time": _iso(self.last_update_time_ms),
            self.kind: {"value": self.value},
            "valid": self.valid,
        }
        if self.kind == "feedback" and self.error:
            out["feedback"]["error"] = {"error_message": self.error}
        for key, value in (
            ("rationale", self.rationale),
            ("span_id", self.span_id),
            ("metadata", self.metadata),
        ):
            if value:
                out[key] = value
        return out


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class TraceInfo:
    """A trace's summary, as MLflow's TraceInfo (v3)."""

    trace_id: str
    experiment_id: str
    request_time: int
    state: str
    execution_duration: int | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    run_id: str | None = None
    task_run_id: str | None = None
    trace_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    assessments: list[Assessment] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return self.tags.get(TRACE_NAME_TAG)

    @property
    def timestamp_ms(self) -> int:
        return self.request_time

    @property
    def token_usage(self) -> dict[str, int] | None:
        usage = self.trace_metadata.get(TOKEN_USAGE)
        return decode_attribute(usage) if usage else None

    def to_dict(self) -> dict[str, Any]:
        """MLflow's TraceInfo JSON (``Trace.from_dict`` in MLflow reads it)."""
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "trace_location": {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": self.experiment_id},
            },
            "request_time": _iso(self.request_time),
            "state": self.state,
            "trace_metadata": dict(self.trace_metadata),
            "assessments": [a.to_dict() for a in self.assessments],
            "tags": dict(self.tags),
        }
        if self.request_preview is not None:
            out["request_preview"] = self.request_preview
        if self.response_preview is not None:
            out["response_preview"] = self.response_preview
        if self.execution_duration is not None:
            out["execution_duration_ms"] = self.execution_duration
        return out


@dataclass(frozen=True)
class TraceData:
    spans: list[Span] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}


@dataclass(frozen=True)
class Trace:
    """A trace: its info and its spans (root first, then by start time).

    Example:
        >>> @flowml.trace
        ... def add(a: int, b: int) -> int:
        ...     return a + b
        >>> add(1, 2)
        3
        >>> trace = flowml.get_trace(flowml.get_last_active_trace_id())
        >>> trace.info.state, [span.name for span in trace.data.spans]
        ('OK', ['add'])
        >>> trace.data.spans[0].inputs, trace.data.spans[0].outputs
        ({'a': 1, 'b': 2}, 3)
    """

    info: TraceInfo
    data: TraceData

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict()}

    def to_json(self, pretty: bool = False) -> str:
        option = orjson.OPT_INDENT_2 if pretty else 0
        return orjson.dumps(self.to_dict(), option=option).decode()

    def search_spans(self, span_type: str | None = None, name: str | None = None) -> list[Span]:
        """The spans of one type and/or name."""
        return [
            s
            for s in self.data.spans
            if (span_type is None or s.span_type == span_type) and (name is None or s.name == name)
        ]
