"""The evaluation flow step: ``flowml.tasks.evaluate_model``.

A tracked Prefect task around `flowml.evaluate`: each task run is a child run of its flow
run's run, and the evaluation's metrics, plots, tables and dataset land on it. The result
feeds `promote_model` (as ``evaluations`` or as a gate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prefect.cache_policies import NO_CACHE

from flowml.evaluation.evaluate import evaluate
from flowml.evaluation.result import EvaluationResult
from flowml.evaluation.thresholds import MetricThreshold
from flowml.tasks.decorators import tracked_task

__all__ = ["evaluate_model"]


@tracked_task(
    name="evaluate-model",
    task_run_name="evaluate-{model_type}",
    cache_policy=NO_CACHE,
    log_params=["model_type", "dataset_name"],
    log_result=False,
)
def evaluate_model(
    model: Any,
    data: Any,
    targets: Any = None,
    model_type: str = "classifier",
    evaluators: str | Sequence[Any] | None = None,
    baseline_model: Any = None,
    feature_names: Sequence[str] | None = None,
    validation_thresholds: Mapping[str, MetricThreshold] | None = None,
    dataset_name: str | None = None,
) -> EvaluationResult:
    """Evaluate a model on labelled data as a tracked flow step.

    Args:
        model: a model URI (``models:/churn/3``, ``models:/churn@champion``), a
            `PyFuncModel`, an estimator or a function.
        data: a DataFrame, a 2-D array, a list of dicts, or a CSV/Parquet path or URL.
        targets: the label column's name in ``data``, or the labels.
        model_type: ``"classifier"`` or ``"regressor"``.
        evaluators: see `flowml.evaluate`.
        baseline_model: a model to compare against on the same data.
        feature_names: the columns the model reads.
        validation_thresholds: metric name -> `MetricThreshold`; a miss fails the task.
        dataset_name: the data's name in the run's inputs.

    Returns:
        The `EvaluationResult` (its ``run_id`` is this task run's run).

    Raises:
        ModelValidationFailed: a threshold was missed (the task run fails, the evaluation
            stays logged on its run).
        InvalidParameter: bad data, targets or model type (nothing is logged).

    Example:
        >>> import pandas as pd
        >>> from flowml.tasks import evaluate_model
        >>> holdout = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "churned": [0, 0, 1, 1]})
        >>> @flowml.tracked_flow(experiment="nightly")
        ... def nightly():
        ...     # in production: evaluate_model("models:/churn@challenger", "holdout.csv", ...)
        ...     return evaluate_model(lambda rows: (rows["x"] > 1.5).astype(int), holdout,
        ...                           targets="churned", evaluators=["metrics"])
        >>> result = nightly()
        >>> result.metrics["accuracy_score"], flowml.get_run(result.run_id).info.status
        (1.0, 'FINISHED')
    """
    return evaluate(
        model,
        data,
        targets=targets,
        model_type=model_type,
        evaluators=evaluators,
        baseline_model=baseline_model,
        feature_names=feature_names,
        validation_thresholds=validation_thresholds,
        dataset_name=dataset_name,
    )
