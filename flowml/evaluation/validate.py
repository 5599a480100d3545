"""``validate_evaluation_results``: MLflow 3's check of a candidate against a baseline.

Example:
    >>> candidate = flowml.evaluate("models:/churn/8", holdout, targets="y")
    >>> champion = flowml.evaluate("models:/churn@champion", holdout, targets="y")
    >>> validate_evaluation_results(
    ...     {"f1_score": MetricThreshold(min_absolute_change=0.01, greater_is_better=True)},
    ...     candidate, champion)
"""

from __future__ import annotations

from collections.abc import Mapping

from flowml.evaluation.result import EvaluationResult
from flowml.evaluation.thresholds import (
    MetricThreshold,
    ThresholdCheck,
    check_thresholds,
    raise_for_failures,
)
from flowml.exceptions import InvalidParameter

__all__ = ["validate_evaluation_results"]


def validate_evaluation_results(
    validation_thresholds: Mapping[str, MetricThreshold],
    candidate_result: EvaluationResult,
    baseline_result: EvaluationResult | None = None,
) -> list[ThresholdCheck]:
    """Check a candidate's evaluation against thresholds and, for changes, a baseline's.

    Args:
        validation_thresholds: metric name -> `MetricThreshold`.
        candidate_result: the candidate's `EvaluationResult`.
        baseline_result: the baseline's, required by change limits.

    Returns:
        Every check (all passed).

    Raises:
        ModelValidationFailed: a check failed; ``failures`` lists each one.
        InvalidParameter: a result is not an `EvaluationResult`, or a change limit has no
            baseline.
    """
    for label, value in (
        ("candidate_result", candidate_result),
        ("baseline_result", baseline_result),
    ):
        if value is not None and not isinstance(value, EvaluationResult):
            raise InvalidParameter(f"{label} must be an EvaluationResult, got {value!r}")
    checks = check_thresholds(
        validation_thresholds,
        candidate_result.metrics,
        baseline_result.metrics if baseline_result is not None else None,
    )
    raise_for_failures(checks, candidate_result.run_id)
    return checks
