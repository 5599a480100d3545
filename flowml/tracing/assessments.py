"""Assessments on traces: feedback (a judgment of an output) and expectations (ground truth).

Each has a name, a JSON value, a source (a ``HUMAN``, an ``LLM_JUDGE`` or ``CODE``, and
which one) and optionally a rationale, metadata and the span it is about, as MLflow's
``log_feedback`` / ``log_expectation``.

Example:
    >>> flowml.log_feedback(trace_id, name="relevance", value=0.9, rationale="on topic",
    ...                     source=flowml.AssessmentSource("LLM_JUDGE", "gpt-judge"))
    >>> flowml.log_expectation(trace_id, name="expected_answer", value="42")
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from flowml.exceptions import InvalidParameter
from flowml.tracing.entities import Assessment, AssessmentSource
from flowml.tracking.entities import now_ms
from flowml.tracking.validation import validate_key

__all__ = ["log_assessments", "log_expectation", "log_feedback", "make_assessment"]

MAX_RATIONALE_CHARS = 10_000
MAX_VALUE_CHARS = 100_000


def _source(source: AssessmentSource | str | None, default_type: str) -> AssessmentSource:
    if source is None:
        return AssessmentSource(default_type, "default")
    if isinstance(source, str):
        source = AssessmentSource(source, "default")
    if not isinstance(source, AssessmentSource) or source.source_type not in AssessmentSource.TYPES:
        raise InvalidParameter(
            f"Invalid assessment source {source!r}; use AssessmentSource(source_type, source_id) "
            f"with source_type one of {', '.join(AssessmentSource.TYPES[:3])}"
        )
    if not source.source_id or len(source.source_id) > 250:
        raise InvalidParameter("An assessment source_id must have 1 to 250 characters")
    return source


def _value(value: Any) -> Any:
    try:
        text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise InvalidParameter(f"An assessment value must be JSON-serialisable: {exc}") from None
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidParameter(
            f"An assessment value is {len(text):,} bytes as JSON; the limit is {MAX_VALUE_CHARS:,}"
        )
    return orjson.loads(text)


def make_assessment(
    kind: str,
    trace_id: str,
    name: str,
    value: Any,
    source: AssessmentSource | str | None,
    *,
    rationale: str | None = None,
    error: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    span_id: str | None = None,
) -> Assessment:
    """A validated feedback or expectation (``kind``), not stored yet: see `log_assessments`.

    Raises:
        InvalidParameter: a bad name, source, value or rationale.
    """
    validate_key("assessment", name)
    if rationale is not None and (
        not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE_CHARS
    ):
        raise InvalidParameter(
            f"rationale must be a string of at most {MAX_RATIONALE_CHARS:,} chars"
        )
    now = now_ms()
    assessment = Assessment(
        assessment_id=f"a-{uuid.uuid4().hex}",
        trace_id=trace_id,
        name=name,
        kind=kind,
        value=_value(value),
        source=_source(source, "CODE" if kind == "feedback" else "HUMAN"),
        create_time_ms=now,
        last_update_time_ms=now,
        rationale=rationale,
        error=error,
        span_id=span_id,
        metadata={str(k): str(v) for k, v in metadata.items()} if metadata else None,
    )
    return assessment


def log_assessments(batch: list[Assessment]) -> None:
    """Store assessments made by `make_assessment`, all in one transaction.

    Raises:
        ResourceNotFound: one of their traces does not exist (nothing is written).
    """
    from flowml.tracing.fluent import _store

    _store().create_assessments(batch)


def _log(kind: str, trace_id: str, name: str, value: Any, source: Any, **extra: Any) -> Assessment:
    from flowml.tracing.fluent import _store

    return _store().create_assessment(make_assessment(kind, trace_id, name, value, source, **extra))


def log_feedback(
    trace_id: str,
    name: str = "feedback",
    value: Any = None,
    source: AssessmentSource | str | None = None,
    error: str | Exception | None = None,
    rationale: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    span_id: str | None = None,
) -> Assessment:
    """Record a judgment of a trace's output (a score, a label, a pass/fail).

    Args:
        trace_id: the judged trace.
        name: the feedback's name (``relevance``, ``thumbs_up``...).
        value: any JSON value.
        source: who judged (default: ``CODE``/``default``).
        error: why the judgment failed, if it did (instead of a value).
        rationale: why this value.
        metadata: extra string facts.
        span_id: the span judged, when not the whole trace.

    Returns:
        The stored `Assessment`.

    Raises:
        ResourceNotFound: no such trace (nothing is written).
        InvalidParameter: a bad name, source, value or rationale.

    Example:
        >>> with flowml.start_span("answer") as span:
        ...     span.set_outputs("Paris")
        >>> trace_id = flowml.get_last_active_trace_id()
        >>> feedback = flowml.log_feedback(trace_id, name="thumbs_up", value=True,
        ...                                source=flowml.AssessmentSource("HUMAN", "ann"))
        >>> feedback.kind, feedback.value
        ('feedback', True)
        >>> [a.name for a in flowml.get_trace(trace_id).info.assessments]
        ['thumbs_up']
    """
    if value is None and error is None:
        raise InvalidParameter("log_feedback needs a value or an error")
    message = f"{type(error).__name__}: {error}" if isinstance(error, Exception) else error
    return _log(
        "feedback",
        trace_id,
        name,
        value,
        source,
        rationale=rationale,
        error=message,
        metadata=metadata,
        span_id=span_id,
    )


def log_expectation(
    trace_id: str,
    name: str,
    value: Any,
    source: AssessmentSource | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    span_id: str | None = None,
) -> Assessment:
    """Record what a trace should have produced (ground truth for evaluation).

    Args:
        trace_id: the trace.
        name: the expectation's name (``expected_response``, ``expected_facts``...).
        value: any JSON value.
        source: who set it (default: ``HUMAN``/``default``).
        metadata: extra string facts.
        span_id: the span it is about, when not the whole trace.

    Returns:
        The stored `Assessment`.

    Raises:
        ResourceNotFound: no such trace (nothing is written).
        InvalidParameter: a bad name, source or value.

    Example:
        >>> with flowml.start_span("answer") as span:
        ...     span.set_outputs("Paris")
        >>> trace_id = flowml.get_last_active_trace_id()
        >>> expectation = flowml.log_expectation(trace_id, name="expected_response", value="Paris")
        >>> expectation.kind, expectation.source.source_type
        ('expectation', 'HUMAN')
    """
    return _log("expectation", trace_id, name, value, source, metadata=metadata, span_id=span_id)
