"""``flowml.genai.evaluate``: score a GenAI app row by row, and log the scores to a run.

Each row holds ``inputs`` (a dict of the app's arguments), and ``outputs`` or a
``predict_fn`` that makes them, plus optional ``expectations``. Every scorer judges every
row; a failing prediction or scorer is recorded as an errored assessment in the results
table, never a crash of the whole evaluation. The run gets ``<scorer>/mean`` metrics (a
bool scorer's mean is its pass rate), the results table and the data as an input.

TRACING HOOK: predictions are not traced yet. When ``flowml.tracing`` exists it sets
`TRACE_HOOK` to ``hook(predict_fn, inputs) -> (outputs, trace)``; scorers then receive that
trace (``None`` until then), and assessments can be attached to it.

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
from flowml.genai.scorers import Feedback, Scorer

__all__ = ["TRACE_HOOK", "GenAIEvaluationResult", "evaluate"]

# Set by flowml.tracing: (predict_fn, inputs) -> (outputs, trace). See the module docstring.
TRACE_HOOK: Callable[[Callable[..., Any], dict[str, Any]], tuple[Any, Any]] | None = None
TABLE_FILE = "eval_results_table.json"
MAX_ROWS = 100_000


@dataclass
class GenAIEvaluationResult:
    """What `evaluate` computed.

    Attributes:
        run_id: the run the evaluation was logged to.
        metrics: ``<scorer>/mean`` for every scorer with numeric or bool values.
        result_df: one row per example: inputs, outputs, expectations, latency, and each
            scorer's ``<name>/value`` and ``<name>/error``.
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
            (when there is no ``predict_fn``) and optional ``expectations`` (a dict).
        scorers: `Scorer` objects (``@scorer`` functions, the built-ins); plain functions are
            wrapped.
        predict_fn: called as ``predict_fn(**inputs)`` for each row.

    Returns:
        A `GenAIEvaluationResult`.

    Raises:
        InvalidParameter: empty data, a row without inputs (or outputs), no scorers, or two
            scorers with one name (nothing is logged).
    """
    checked = [s if isinstance(s, Scorer) else Scorer(s) for s in _scorer_list(scorers)]
    names = [s.name for s in checked]
    if len(set(names)) != len(names):
        raise InvalidParameter(f"Scorer names must be unique, got {names}")
    if predict_fn is not None and not callable(predict_fn):
        raise InvalidParameter(f"predict_fn must be callable, got {predict_fn!r}")
    rows = _rows(data, predict_fn is not None)
    records = [_score_row(row, checked, predict_fn) for row in rows]
    metrics = _aggregate(records, names)
    import pandas as pd

    table = pd.DataFrame(records)
    run_id = _log(rows, table, metrics)
    return GenAIEvaluationResult(run_id, metrics, table)


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
    row: dict[str, Any], scorers: list[Scorer], predict_fn: Callable[..., Any] | None
) -> dict[str, Any]:
    record = dict(row)
    record.update(latency=None, trace=None, error=None)
    if predict_fn is not None:
        start = time.perf_counter()
        try:
            if TRACE_HOOK is not None:
                record["outputs"], record["trace"] = TRACE_HOOK(predict_fn, row["inputs"])
            else:
                record["outputs"] = predict_fn(**row["inputs"])
        except Exception as exc:  # a failed prediction is this row's result, not the run's
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["latency"] = time.perf_counter() - start
    for s in scorers:
        if record["error"] is not None:
            feedback = Feedback(error=f"no output: the prediction failed ({record['error']})")
        else:
            feedback = s(**record)
        record[f"{s.name}/value"] = feedback.value
        record[f"{s.name}/error"] = feedback.error
        if feedback.rationale is not None:
            record[f"{s.name}/rationale"] = feedback.rationale
    record.pop("trace")
    return record


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


def _log(rows: list[dict[str, Any]], table: Any, metrics: dict[str, float]) -> str:
    import orjson

    from flowml.tracking import fluent
    from flowml.tracking.inputs import log_input

    owned = fluent.active_run() is None
    run = fluent.start_run(run_name="genai-evaluation") if owned else fluent.active_run()
    assert run is not None
    status = "FAILED"
    try:
        data_bytes = orjson.dumps(rows, default=str, option=orjson.OPT_SORT_KEYS)
        log_input(data_bytes, name="genai-evaluation-data")
        fluent.log_metrics(metrics)
        columns = [str(c) for c in table.columns]
        payload = {"columns": columns, "data": table.to_numpy(dtype=object).tolist()}
        fluent.log_text(orjson.dumps(payload, default=str).decode(), TABLE_FILE)
        status = "FINISHED"
        return run.info.run_id
    finally:
        if owned:
            fluent.end_run(status)
