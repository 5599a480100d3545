"""Classic model evaluation: metrics, plots and tables logged to a run, and the thresholds
that gate promotion.

Names load on first use (pandas, scikit-learn and matplotlib only when evaluating).

Example:
    >>> import flowml
    >>> from flowml.evaluation import MetricThreshold
    >>> result = flowml.evaluate(
    ...     "models:/churn/3", holdout, targets="churned", model_type="classifier",
    ...     validation_thresholds={"f1_score": MetricThreshold(threshold=0.8,
    ...                                                        greater_is_better=True)},
    ... )
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

_EXPORTS = {
    "EvaluationResult": "flowml.evaluation.result",
    "MetricThreshold": "flowml.evaluation.thresholds",
    "ModelValidationFailed": "flowml.evaluation.thresholds",
    "ThresholdCheck": "flowml.evaluation.thresholds",
    "evaluate": "flowml.evaluation.evaluate",
    "validate_evaluation_results": "flowml.evaluation.validate",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
