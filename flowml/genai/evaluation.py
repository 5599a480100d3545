"""``flowml.genai.evaluate``: score a GenAI app row by row, and log the scores to a run.

Each row holds ``inputs`` (a dict of the app's arguments), and ``outputs`` or a
``predict_fn`` that makes them, plus optional ``expectations``. Every scorer judges every
row; a failing prediction or scorer is recorded as an errored assessment, never a crash of
the whole evaluation. The run gets ``<scorer>/mean`` metrics (a bool scorer's mean is its
pass rate), the results table and the data as an input.

Each prediction is traced (a root span per row, linked to the evaluation run) and every
verdict and expectation is stored as an assessment on the row's trace (`flowml.genai.traced`);
the results table holds each row's ``trace_id``. ``data`` may also be recorded traces (a
`flowml.search_traces` result): their inputs and outputs are scored without predicting.
With a tracking server URI (no SQL store here) predictions are not traced.

Example:
    >>> from flowml import genai
    >>> result = genai.evaluate(
    ...     [{"inputs": {"question": "2+2?"}, "expectations": {"expected_response": "4"}}],
    ...     predict_fn=lambda question: "4",
    ...     scorers=[genai.scorers.exact_match(), genai.scorers.latency()],
    ... )
    >>> result.metrics["exact_match/mean"]
    1.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.genai import traced
from flowml.genai.scorers import Feedback, Scorer

__all__ = ["GenAIEvaluationResult", "evaluate"]
TABLE_FILE = "eval_results_table.json"
MAX_ROWS = 100_000


@dataclass
class GenAIEvaluationResult:
    """What `evaluate` computed.

    Attributes:
        run_id: the run the evaluation was logged to.
        metrics: ``<scorer>/mean`` for every scorer with numeric or bool values.
        result_df: one row per example: inputs, outputs, expectations, latency, its
            ``trace_id``, and each scorer's ``<name>/value`` and ``<name>/error``.

    Example:
        >>> from flowml import genai
        >>> rows = [{"inputs": {"q": "hi"}, "outputs": "Hello"},
        ...         {"inputs": {"q": "help"}, "outputs": "Sure, one moment please"}]
        >>> def short(outputs):  # a plain function is a scorer named after it
        ...     return len(outputs) < 10
        >>> result = genai.evaluate(rows, scorers=[short])
        >>> result.metrics
        {'short/mean': 0.5}
        >>> result.result_df["short/value"].tolist()
        [True, False]
        >>> flowml.get_run(result.run_id).data.metrics
        {'short/mean': 0.5}
    """

    run_id: str
    metrics: dict[str, float]
    result_df: Any = field(repr=False)


def evaluate(
    data: Any,
    scorers: Sequence[Scorer | Callable[..., Any]],
    predict_fn: Callable[..., Any] | None = None,
) -> GenAIEvaluationResult:
    """Run every scorer over every row and log the results to the active (or a new) run.

    Args:
        data: a list of dicts or a pandas DataFrame with ``inputs`` (a dict), ``outputs``
            (when there is no ``predict_fn``) and optional ``expectations`` (a dict); or a
            `flowml.search_traces` result (a list of traces or its DataFrame), whose root
            spans' inputs and outputs are scored and whose expectations are used.
        scorers: `Scorer` objects (``@scorer`` functions, the built-ins); plain functions are
            wrapped.
        predict_fn: called as ``predict_fn(**inputs)`` for each row, in a traced root span.

    Returns:
        A `GenAIEvaluationResult`.

    Raises:
        InvalidParameter: empty data, a row without inputs (or outputs), no scorers, two
            scorers with one name, traces together with a ``predict_fn``, or expectations
            too big to store (nothing is logged).
        ResourceNotFound: a trace in ``data`` is not in the current tracking store.

    Example:
        >>> from flowml import genai
        >>> @genai.scorer
        ... def exact(outputs, expectations):
        ...     return outputs == expectations["answer"]
        >>> data = [
        ...     {"inputs": {"question": "Capital of France?"}, "expectations": {"answer": "Paris"}},
        ...     {"inputs": {"question": "Capital of Peru?"}, "expectations": {"answer": "Lima"}},
        ... ]
        >>> result = genai.evaluate(data, scorers=[exact], predict_fn=lambda question: "Paris")
        >>> result.metrics["exact/mean"], result.result_df["outputs"].tolist()
        (0.5, ['Paris', 'Paris'])
    """
    checked = [s if isinstance(s, Scorer) else Scorer(s) for s in _scorer_list(scorers)]
    names = [s.name for s in checked]
    if len(set(names)) != len(names):
        raise InvalidParameter(f"Scorer names must be unique, got {names}")
    if predict_fn is not None and not callable(predict_fn):
        raise InvalidParameter(f"predict_fn must be callable, got {predict_fn!r}")
    from_traces = traced.is_trace_data(data)
    if from_traces and predict_fn is not None:
        raise InvalidParameter(
            "data holds recorded traces: their outputs are scored, so pass no predict_fn"
        )
    rows = traced.rows_from_traces(data) if from_traces else _rows(data, predict_fn is not None)
    if not rows or len(rows) > MAX_ROWS:
        raise InvalidParameter(f"data must hold 1 to {MAX_ROWS} traces, got {len(rows)}")
    user = _user()
    for row in rows:  # validated now: a value too big to store fails before any logging
        recorded = row.get("recorded", set())
        row["expectation_assessments"] = traced.expectation_assessments(
            {k: v for k, v in (row["expectations"] or {}).items() if k not in recorded}, user
        )
    return _run(rows, checked, predict_fn, from_traces)


def _run(
    rows: list[dict[str, Any]],
    checked: list[Scorer],
    predict_fn: Callable[..., Any] | None,
    from_traces: bool,
) -> GenAIEvaluationResult:
    """Start (or join) the run, then predict and score inside it: its traces link to it."""
    import pandas as pd

    from flowml.tracking import fluent

    owned = fluent.active_run() is None
    run = fluent.start_run(run_name="genai-evaluation") if owned else fluent.active_run()
    assert run is not None
    status = "FAILED"
    try:
        run_id = run.info.run_id
        tracing = traced.tracing_available(run.client.tracking_uri)
        wants_trace = any("trace" in s.arguments for s in checked)
        records, batch = [], []
        for row in rows:
            record, verdicts = _score_row(row, checked, predict_fn, tracing, wants_trace)
            records.append(record)
            if record["trace_id"] is not None:
                batch += traced.feedback_assessments(
                    record["trace_id"],
                    row.get("span_id") or record.pop("_span_id", None),
                    run_id,
                    verdicts,
                    row["expectation_assessments"],
                )
            record.pop("_span_id", None)
        if batch:
            from flowml.tracing.assessments import log_assessments

            log_assessments(batch)  # one transaction, after the traces are written
        metrics = _aggregate(records, [s.name for s in checked])
        _log(rows, records, metrics, from_traces)
        table = pd.DataFrame(records)
        status = "FINISHED"
        return GenAIEvaluationResult(run_id, metrics, table)
    finally:
        if owned:
            fluent.end_run(status)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (some containers)
        return "unknown"


def _scorer_list(scorers: Any) -> list[Any]:
    if isinstance(scorers, (str, bytes)) or not isinstance(scorers, Sequence) or not scorers:
        raise InvalidParameter("scorers must be a non-empty list of scorers")
    return list(scorers)


def _rows(data: Any, predicting: bool) -> list[dict[str, Any]]:
    module = type(data).__module__ or ""
    if module.startswith("pandas"):
        data = data.to_dict(orient="records")
    if not isinstance(data, list) or not data:
        raise InvalidParameter("data must be a non-empty list of rows (or a DataFrame)")
    if len(data) > MAX_ROWS:
        raise InvalidParameter(f"data has {len(data)} rows; at most {MAX_ROWS} per evaluation")
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise InvalidParameter(f"Row {i} must be a dict, got {type(row).__name__}")
        inputs, expectations = row.get("inputs"), row.get("expectations")
        if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
            raise InvalidParameter(f"Row {i} needs 'inputs', a dict of named arguments")
        if expectations is not None and not isinstance(expectations, Mapping):
            raise InvalidParameter(f"Row {i}: 'expectations' must be a dict")
        if not predicting and "outputs" not in row:
            raise InvalidParameter(f"Row {i} has no 'outputs': pass them or a predict_fn")
        rows.append(
            {
                "inputs": dict(inputs),
                "outputs": row.get("outputs"),
                "expectations": None if expectations is None else dict(expectations),
            }
        )
    return rows


def _score_row(
    row: dict[str, Any],
    scorers: list[Scorer],
    predict_fn: Callable[..., Any] | None,
    tracing: bool,
    wants_trace: bool,
) -> tuple[dict[str, Any], list[tuple[Scorer, Feedback]]]:
    record = {k: row[k] for k in ("inputs", "outputs", "expectations")}
    record.update(latency=None, trace_id=row.get("trace_id"), error=None)
    if predict_fn is not None:
        start = time.perf_counter()
        if tracing:
            outputs, error, record["trace_id"], record["_span_id"] = traced.predict_in_span(
                predict_fn, row["inputs"]
            )
        else:
            outputs, error = _predict(predict_fn, row["inputs"])
        record["latency"] = time.perf_counter() - start
        record["outputs"], record["error"] = outputs, error
    trace = None
    if wants_trace and record["trace_id"] is not None:
        from flowml.tracing.fluent import get_trace

        trace = get_trace(record["trace_id"])  # waits for its write
    verdicts = []
    for s in scorers:
        if record["error"] is not None:
            feedback = Feedback(error=f"no output: the prediction failed ({record['error']})")
        else:
            feedback = s(**{k: v for k, v in record.items() if k != "trace_id"}, trace=trace)
        verdicts.append((s, feedback))
        record[f"{s.name}/value"] = feedback.value
        record[f"{s.name}/error"] = feedback.error
        if feedback.rationale is not None:
            record[f"{s.name}/rationale"] = feedback.rationale
    return record, verdicts


def _predict(predict_fn: Callable[..., Any], inputs: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        return predict_fn(**inputs), None
    except Exception as exc:  # a failed prediction is this row's result, not the run's
        return None, f"{type(exc).__name__}: {exc}"


def _aggregate(records: list[dict[str, Any]], names: list[str]) -> dict[str, float]:
    metrics = {}
    for name in names:
        values = [
            float(v)
            for r in records
            if isinstance(v := r.get(f"{name}/value"), (bool, int, float))
            and not (isinstance(v, float) and math.isnan(v))
        ]
        if values:
            metrics[f"{name}/mean"] = sum(values) / len(values)
    return metrics


def _log(
    rows: list[dict[str, Any]],
    records: list[dict[str, Any]],
    metrics: dict[str, float],
    from_traces: bool,
) -> None:
    import orjson

    from flowml.tracking import fluent, fluent_artifacts
    from flowml.tracking.lineage.inputs import log_input

    keys = (
        ("inputs", "outputs", "expectations", "trace_id")
        if from_traces
        else ("inputs", "outputs", "expectations")
    )
    data = [{k: row.get(k) for k in keys} for row in rows]
    data_bytes = orjson.dumps(data, default=str, option=orjson.OPT_SORT_KEYS)
    name = "genai-evaluation-traces" if from_traces else "genai-evaluation-data"
    log_input(data_bytes, name=name, context="eval")
    fluent.log_metrics(metrics)
    # The results table's JSON straight from the records (the DataFrame's columns, in order
    # of first appearance; null where a row has no value), without a pass through pandas.
    columns = list(dict.fromkeys(key for record in records for key in record))
    payload = {
        "columns": [str(c) for c in columns],
        "data": [[record.get(c) for c in columns] for record in records],
    }
    fluent_artifacts.log_text(orjson.dumps(payload, default=str).decode(), TABLE_FILE)
