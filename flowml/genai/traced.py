"""Tracing for `flowml.genai.evaluate`: a root span per prediction, rows read back from
recorded traces, and the scores stored as assessments on each row's trace.

Predictions run inside a ``CHAIN`` root span started while the evaluation run is active,
so the trace is linked to that run (``attributes.run_id`` in `flowml.search_traces`). A
``predict_fn`` that is itself ``@flowml.trace``-d becomes that span's child.

Each scorer's verdict is a feedback on the row's trace, sourced as MLflow's evaluation
does: ``CODE`` with the scorer's name, or ``LLM_JUDGE`` with the judge's model; an errored
scorer or judge is an errored feedback. The row's expectations become expectations (those
the trace already holds are not written twice). Every assessment carries the run id in
``mlflow.assessment.sourceRunId`` metadata and is written in one transaction at the end.

Example:
    >>> traces = flowml.search_traces(filter_string="tags.env = 'prod'", return_type="list")
    >>> genai.evaluate(traces, scorers=[genai.scorers.token_count()])  # no predict_fn
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.genai.scorers import Feedback, Scorer

__all__ = [
    "SOURCE_RUN_ID",
    "expectation_assessments",
    "feedback_assessments",
    "is_trace_data",
    "predict_in_span",
    "rows_from_traces",
    "tracing_available",
]

SOURCE_RUN_ID = "mlflow.assessment.sourceRunId"
# The columns of a `flowml.search_traces` DataFrame an evaluation reads.
_FRAME_COLUMNS = ("trace_id", "spans")


def tracing_available(tracking_uri: str) -> bool:
    """Whether traces can be stored for this tracking URI (a SQL store or a flowml server)."""
    from flowml.tracing import writer

    try:
        writer.store_for(tracking_uri)
    except InvalidParameter:
        return False
    return True


def predict_in_span(
    predict_fn: Callable[..., Any], inputs: dict[str, Any]
) -> tuple[Any, str | None, str, str]:
    """Call ``predict_fn(**inputs)`` in a new root span.

    Returns:
        (outputs, error, trace id, root span id): the span records the inputs and the
        outputs, or the exception (then ``error`` names it and the trace is ``ERROR``).
    """
    from flowml.tracing.entities import SpanType
    from flowml.tracing.spans import CurrentSpan, SpanScope

    name = str(getattr(predict_fn, "__name__", None) or "predict")[:250]
    outputs, error = None, None
    span = SpanScope(name, SpanType.CHAIN).start()
    try:
        with CurrentSpan(span):
            span.set_inputs(inputs)
            outputs = predict_fn(**inputs)
            span.set_outputs(outputs)
    except Exception as exc:  # a failed prediction is this row's result, not the run's
        span.record_exception(exc)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        span.end()
    return outputs, error, span.trace_id, span.span_id


def is_trace_data(data: Any) -> bool:
    """Whether ``data`` is a `flowml.search_traces` result (a list of traces or its frame)."""
    from flowml.tracing.entities import Trace

    if type(data).__module__.startswith("pandas"):
        columns = getattr(data, "columns", ())
        return all(c in columns for c in _FRAME_COLUMNS)
    return isinstance(data, list) and bool(data) and all(isinstance(t, Trace) for t in data)


def rows_from_traces(data: Any) -> list[dict[str, Any]]:
    """Evaluation rows from recorded traces: the root span's inputs and outputs, the
    expectations the trace holds in the store now, and its id.

    Raises:
        InvalidParameter: a trace without spans (searched with ``include_spans=False``), or
            whose root span's inputs are not a dict of named arguments.
        ResourceNotFound: a trace that is not in the current tracking store.
    """
    from flowml.exceptions import ResourceNotFound
    from flowml.tracing.entities import Span
    from flowml.tracing.fluent import _store

    if isinstance(data, list):
        items = [(t.info.trace_id, t.data.spans) for t in data]
    else:
        items = [
            (tid, [Span(raw) for raw in (spans or [])])
            for tid, spans in zip(data["trace_id"], data["spans"], strict=True)
        ]
    # Search results carry no assessments: the expectations are read from the store.
    stored = _store().get_trace_infos([tid for tid, _ in items]) if items else {}
    rows = []
    for trace_id, spans in items:
        info = stored.get(trace_id)
        if info is None:
            raise ResourceNotFound(f"Trace {trace_id} is not in the current tracking store")
        root = next((s for s in spans if s.parent_id is None), None)
        if root is None:
            raise InvalidParameter(
                f"Trace {trace_id} has no spans: search with include_spans=True to evaluate it"
            )
        inputs = root.inputs
        if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
            raise InvalidParameter(f"Trace {trace_id}: its root span's inputs are not a dict")
        expectations = {
            a.name: a.value for a in info.assessments if a.kind == "expectation" and a.valid
        }
        rows.append(
            {
                "inputs": dict(inputs),
                "outputs": root.outputs,
                "expectations": expectations or None,
                "trace_id": trace_id,
                "span_id": root.span_id,
                "recorded": set(expectations),
            }
        )
    return rows


def expectation_assessments(expectations: Mapping[str, Any] | None, source_id: str) -> list[Any]:
    """The row's expectations as (not yet stored) expectation assessments, trace id unset.

    Built before anything is logged, so a value too big to store is a typed error up front.

    Raises:
        InvalidParameter: an expectation name or value that cannot be stored.
    """
    from flowml.tracing.assessments import make_assessment
    from flowml.tracing.entities import AssessmentSource

    source = AssessmentSource("HUMAN", source_id[:250] or "unknown")
    return [
        make_assessment("expectation", "", str(name), value, source)
        for name, value in (expectations or {}).items()
    ]


def feedback_assessments(
    trace_id: str,
    span_id: str | None,
    run_id: str,
    verdicts: list[tuple[Scorer, Feedback]],
    expectations: list[Any],
) -> list[Any]:
    """One row's feedback and expectation assessments, on its trace, linked to the run."""
    from flowml.tracing.assessments import MAX_RATIONALE_CHARS, make_assessment
    from flowml.tracing.entities import AssessmentSource

    metadata = {SOURCE_RUN_ID: run_id}
    out = []
    for s, feedback in verdicts:
        if feedback.value is None and feedback.error is None:
            continue  # the scorer abstained (latency of given outputs): nothing to record
        if s.judge_model is not None:
            source = AssessmentSource("LLM_JUDGE", s.judge_model[:250])
        else:
            source = AssessmentSource("CODE", s.name)
        rationale = feedback.rationale[:MAX_RATIONALE_CHARS] if feedback.rationale else None
        value, error = feedback.value, feedback.error
        try:
            assessment = make_assessment(
                "feedback",
                trace_id,
                s.name,
                value,
                source,
                rationale=rationale,
                error=error,
                metadata=metadata,
                span_id=span_id,
            )
        except InvalidParameter as exc:  # a value too big to store: recorded, not a crash
            assessment = make_assessment(
                "feedback",
                trace_id,
                s.name,
                None,
                source,
                error=f"InvalidParameter: {exc}",
                metadata=metadata,
                span_id=span_id,
            )
        out.append(assessment)
    out.extend(
        dataclasses.replace(e, trace_id=trace_id, span_id=span_id, metadata=metadata)
        for e in expectations
    )
    return out
