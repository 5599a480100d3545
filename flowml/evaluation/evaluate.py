"""``flowml.evaluate``: score a model on labelled data and log the evaluation to a run.

Everything is computed first (predictions, metrics, plots and tables, in memory), then
written to the run in one go: bad input raises before the run is touched,
and no run is started for an evaluation that cannot happen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowml.evaluation.data import check_label_types, prepare_data
from flowml.evaluation.model import Scorer, as_scorer
from flowml.evaluation.result import EvaluationResult
from flowml.evaluation.thresholds import MetricThreshold, check_thresholds, raise_for_failures
from flowml.exceptions import InvalidParameter
from flowml.tracking.validation import validate_key

__all__ = ["EVALUATORS", "evaluate"]

# The built-in evaluators: "default" is all of them. Metrics are always computed (thresholds
# read them); "plots" and "table" add the PNG files and the per-row table.
EVALUATORS = ("default", "metrics", "plots", "table")
TAG_MODEL_TYPE = "flowml.evaluation.model_type"
TAG_MODEL = "flowml.evaluation.model"
TAG_VALIDATION = "flowml.evaluation.validation"
TABLE_FILE = "eval_results_table.json"

ExtraMetric = Callable[[Any, Any, Any], Mapping[str, float]]


def evaluate(
    model: Any,
    data: Any,
    *,
    targets: Any = None,
    model_type: str = "classifier",
    evaluators: str | Sequence[str | ExtraMetric] | None = None,
    baseline_model: Any = None,
    feature_names: Sequence[str] | None = None,
    validation_thresholds: Mapping[str, MetricThreshold] | None = None,
    dataset_name: str | None = None,
) -> EvaluationResult:
    """Score ``model`` on ``data`` and log metrics, plots and tables to the active run.

    Args:
        model: a model URI (``runs:/``, ``models:/name/3``, ``models:/name@champion``), a
            `PyFuncModel`, a scikit-learn estimator, or a function of the features.
        data: a pandas DataFrame, a 2-D numpy array, a list of dicts, or the path/URL of a
            CSV or Parquet file.
        targets: the label column's name in ``data``, or the labels themselves.
        model_type: ``"classifier"`` or ``"regressor"``.
        evaluators: ``"default"`` (metrics, plots and the per-row table), or a list of
            ``"metrics"``, ``"plots"``, ``"table"`` and functions
            ``(y_true, y_pred, probabilities) -> {name: value}`` adding metrics.
        baseline_model: another model (same forms as ``model``) scored on the same data;
            its metrics are compared in the ``baseline_comparison`` table and feed the
            change limits of ``validation_thresholds``.
        feature_names: the columns the model reads (default: all but the target).
        validation_thresholds: metric name -> `MetricThreshold`; any failed check raises
            `ModelValidationFailed` after the evaluation is logged.
        dataset_name: the name of the data in the run's inputs.

    Returns:
        An `EvaluationResult`. Logs to the active run, or to a new run that is ended after.

    Raises:
        InvalidParameter: empty data, missing targets, labels whose type does not match the
            predictions, an unknown model type or evaluator (nothing is logged).
        ResourceNotFound: the model URI names no model.
        ModelValidationFailed: a validation threshold was missed (the evaluation is logged).

    Example:
        >>> import pandas as pd
        >>> from sklearn.linear_model import LogisticRegression
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        ...                       "churned": [0, 0, 0, 1, 1, 1]})
        >>> model = LogisticRegression().fit(frame[["x"]], frame["churned"])
        >>> with flowml.start_run():
        ...     result = flowml.evaluate(model, frame, targets="churned",
        ...                              model_type="classifier", evaluators=["metrics"])
        >>> result.metrics["f1_score"], result.metrics["true_positives"]
        (1.0, 3.0)
    """
    steps, extras = _evaluators(evaluators)
    frame_source = _read_if_path(data)
    prepared = prepare_data(frame_source, targets, feature_names, model_type)
    thresholds = validation_thresholds or {}
    check_thresholds(thresholds, {}, {} if baseline_model is not None else None)  # types only
    scorer = as_scorer(model)
    baseline = as_scorer(baseline_model) if baseline_model is not None else None
    scored = _score(scorer, prepared.model_input, prepared.targets, model_type, extras)
    baseline_metrics = None
    if baseline is not None:
        baseline_metrics = _score(
            baseline, prepared.model_input, prepared.targets, model_type, extras
        )["metrics"]
    metrics = scored["metrics"]
    checks = check_thresholds(thresholds, metrics, baseline_metrics)
    tables = _tables(prepared, scored, baseline_metrics, steps)
    result = EvaluationResult(
        metrics=metrics,
        tables=tables,
        model_type=model_type,
        model_uri=scorer.uri,
        model_version=scorer.version,
        baseline_metrics=baseline_metrics,
        validation=checks,
    )
    files = _artifact_files(prepared, scored, tables, model_type, steps)
    _log(result, files, data, frame_source, scorer, dataset_name)
    raise_for_failures(checks, result.run_id)
    return result


def _evaluators(
    evaluators: str | Sequence[str | ExtraMetric] | None,
) -> tuple[set[str], list[ExtraMetric]]:
    if evaluators is None or evaluators == "default":
        return {"metrics", "plots", "table"}, []
    if isinstance(evaluators, str) or not isinstance(evaluators, Sequence):
        evaluators = [evaluators]
    steps, extras = {"metrics"}, []
    for item in evaluators:
        if callable(item):
            extras.append(item)
        elif item in EVALUATORS:
            steps |= {"plots", "table"} if item == "default" else {item}
        else:
            raise InvalidParameter(
                f"Unknown evaluator {item!r}: use {', '.join(EVALUATORS)} or a function "
                "(y_true, y_pred, probabilities) -> {name: value}"
            )
    return steps, extras


def _read_if_path(data: Any) -> Any:
    if not isinstance(data, (str, os.PathLike)):
        return data
    import pandas as pd

    text = os.fspath(data)
    try:
        if text.endswith(".parquet"):
            return pd.read_parquet(text)
        return pd.read_csv(text)
    except FileNotFoundError:
        raise InvalidParameter(f"No evaluation data at {text!r}") from None


def _score(
    scorer: Scorer, features: Any, y_true: Any, model_type: str, extras: list[ExtraMetric]
) -> dict[str, Any]:
    from flowml.evaluation import metrics as m

    y_pred = scorer.predictions(features)
    check_label_types(y_true, y_pred, model_type)
    out: dict[str, Any] = {"y_pred": y_pred, "probs": None, "labels": None, "per_class": None}
    if model_type == "classifier":
        try:
            scores = m.classifier_metrics(
                y_true, y_pred, scorer.probabilities(features), scorer.classes
            )
        except ValueError as exc:  # sklearn's word on labels it cannot compare
            raise InvalidParameter(
                f"The predictions of {scorer.name} cannot be scored as a classifier's: {exc}"
            ) from None
        out.update(
            metrics=scores.metrics,
            probs=scores.probabilities,
            labels=scores.labels,
            per_class=scores.per_class,
        )
    else:
        out["metrics"] = m.regressor_metrics(y_true, y_pred.astype(float))
    for extra in extras:
        added = extra(y_true, y_pred, out["probs"])
        if not isinstance(added, Mapping):
            raise InvalidParameter(
                f"The evaluator {extra!r} must return a mapping of metric names to numbers"
            )
        try:
            values = {str(k): float(v) for k, v in added.items()}
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"The evaluator {extra!r} returned a non-numeric value"
            ) from None
        for key in values:  # checked now: a bad name must not fail the run half-logged
            validate_key("Metric", key)
        out["metrics"].update(values)
    return out


def _tables(
    prepared: Any, scored: dict[str, Any], baseline: dict[str, float] | None, steps: set[str]
) -> dict[str, Any]:
    import pandas as pd

    tables: dict[str, Any] = {}
    if "table" in steps:
        rows = prepared.features.reset_index(drop=True).copy()
        rows[prepared.target_name] = prepared.targets
        rows["prediction"] = scored["y_pred"]
        probs, labels = scored["probs"], scored["labels"]
        if probs is not None:
            if len(labels) == 2:
                rows["probability"] = probs[:, 1]
            else:
                for j, label in enumerate(labels):
                    rows[f"probability_{label}"] = probs[:, j]
        if scored["labels"] is None:
            rows["residual"] = prepared.targets - scored["y_pred"]
        tables["eval_results_table"] = rows
    if scored["per_class"] is not None:
        tables["per_class_metrics"] = scored["per_class"]
    if baseline is not None:
        keys = [k for k in scored["metrics"] if k in baseline]
        tables["baseline_comparison"] = pd.DataFrame(
            {
                "metric": keys,
                "candidate": [scored["metrics"][k] for k in keys],
                "baseline": [baseline[k] for k in keys],
                "change": [scored["metrics"][k] - baseline[k] for k in keys],
            }
        )
    return tables


def _artifact_files(
    prepared: Any,
    scored: dict[str, Any],
    tables: dict[str, Any],
    model_type: str,
    steps: set[str],
) -> dict[str, bytes]:
    """Every artifact's content by file name, in memory: they are written straight to the run."""
    from flowml.evaluation import plots

    files: dict[str, bytes] = {}
    if "plots" in steps:
        if model_type == "classifier":
            files.update(
                plots.classifier_plots(
                    prepared.targets, scored["y_pred"], scored["labels"], scored["probs"]
                )
            )
        else:
            files.update(plots.regressor_plots(prepared.targets, scored["y_pred"]))
    for name, table in tables.items():
        if name == "eval_results_table":
            files[TABLE_FILE] = _table_json(table)
        else:
            files[f"{name}.csv"] = table.to_csv(index=False).encode("utf-8")
    return files


def _table_json(table: Any) -> bytes:
    """MLflow's table format, ``{"columns": [...], "data": [[...], ...]}``, which its UI reads.

    Built column by column with orjson: pandas' own ``to_json`` walks the rows in Python
    and takes several times longer on a 10,000-row table.
    """
    import numpy as np
    import orjson

    names = [str(c) for c in table.columns]
    if len(table.columns) and all(dtype == np.float64 for dtype in table.dtypes):
        # All floats (a regressor's table): one array that orjson writes row by row in
        # Rust, the same bytes as the lists below, three times faster.
        data = np.ascontiguousarray(table.to_numpy(dtype=np.float64))
        return orjson.dumps({"columns": names, "data": data}, option=orjson.OPT_SERIALIZE_NUMPY)
    columns = [table[c].tolist() for c in table.columns]
    return orjson.dumps({"columns": names, "data": list(zip(*columns, strict=True))}, default=str)


def _log(
    result: EvaluationResult,
    files: dict[str, bytes],
    data: Any,
    frame: Any,
    scorer: Scorer,
    dataset_name: str | None,
) -> None:
    from flowml.tracking import fluent
    from flowml.tracking.lineage.inputs import log_input

    owned = fluent.active_run() is None
    run = fluent.start_run(run_name="evaluation") if owned else fluent.active_run()
    assert run is not None
    status = "FAILED"
    try:
        source = data if isinstance(data, (str, os.PathLike)) else _dataset_value(frame)
        entry = log_input(source, name=dataset_name or "evaluation-data")
        result.dataset_digest = entry.digest
        fluent.log_metrics(result.metrics)
        fluent.set_tags(
            {
                TAG_MODEL_TYPE: result.model_type,
                TAG_MODEL: scorer.uri or scorer.name,
                **(
                    {TAG_VALIDATION: "passed" if result.passed else "failed"}
                    if result.validation
                    else {}
                ),
            }
        )
        repo = run.client.artifact_repo(run.info.run_id)
        for name, content in files.items():
            repo.write_bytes(name, content)
        result.artifacts = {Path(f).stem: repo.uri_for(f) for f in files}
        result.run_id = run.info.run_id
        status = "FINISHED"
    finally:
        if owned:
            fluent.end_run(status)


def _dataset_value(frame: Any) -> Any:
    import pandas as pd

    # A list of dicts has no digest of its own: record it as the frame it becomes.
    return pd.DataFrame(frame) if isinstance(frame, list) else frame
