"""`EvaluationResult`: what `flowml.evaluate` computed and where it logged it.

A result is plain data (it pickles, so it crosses Prefect task boundaries) and doubles as a
promotion gate: ``promote_model(..., gates=[result])`` passes when every validation check of
the evaluation passed and the evaluated model is the candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowml.evaluation.thresholds import MetricThreshold, ThresholdCheck, check_thresholds

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """The outcome of one evaluation.

    Attributes:
        metrics: metric name -> value (MLflow's names: ``accuracy_score``, ``roc_auc``,
            ``root_mean_squared_error``...).
        artifacts: artifact name -> URI of each logged file (plots, tables).
        tables: table name -> pandas DataFrame (``eval_results_table``: one row per example;
            ``per_class_metrics``; ``baseline_comparison``).
        run_id: the run the evaluation was logged to.
        model_type: ``"classifier"`` or ``"regressor"``.
        model_uri: the evaluated model's URI, when given as one.
        model_version: ``(name, version)`` when the model was a ``models:/`` URI.
        baseline_metrics: the baseline model's metrics, when one was evaluated.
        validation: every threshold check run at evaluation time.
        dataset_digest: the digest of the evaluation data recorded as the run's input.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "label": [0, 0, 1, 1]})
        >>> result = flowml.evaluate(lambda rows: (rows["x"] > 1.5).astype(int), frame,
        ...                          targets="label", model_type="classifier",
        ...                          evaluators=["metrics"])
        >>> result.metrics["accuracy_score"], result.metrics["example_count"]
        (1.0, 4.0)
        >>> flowml.get_run(result.run_id).data.metrics["accuracy_score"]
        1.0
    """

    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    model_type: str = "classifier"
    model_uri: str | None = None
    model_version: tuple[str, int] | None = None
    baseline_metrics: dict[str, float] | None = None
    validation: list[ThresholdCheck] = field(default_factory=list)
    dataset_digest: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every validation check passed (``True`` when there were none)."""
        return all(check.passed for check in self.validation)

    def validate(
        self,
        thresholds: Mapping[str, MetricThreshold],
        baseline: EvaluationResult | Mapping[str, float] | None = None,
    ) -> list[ThresholdCheck]:
        """Check this result against ``thresholds`` without raising.

        Args:
            thresholds: metric name -> `MetricThreshold`.
            baseline: another result (or its metrics) for the change limits; default: this
                evaluation's own baseline model.

        Returns:
            Every check; see `flowml.evaluation.raise_for_failures` to raise on failures.
        """
        reference = baseline.metrics if isinstance(baseline, EvaluationResult) else baseline
        return check_thresholds(thresholds, self.metrics, reference or self.baseline_metrics)

    def as_gate(
        self,
        thresholds: Mapping[str, MetricThreshold] | None = None,
        baseline: EvaluationResult | Mapping[str, float] | None = None,
    ) -> Any:
        """This evaluation as a promotion gate (see `flowml.registry.gates`).

        The gate fails when the evaluation was of another version than the candidate, or
        when a validation check (those run by `evaluate` plus ``thresholds``) failed.

        Example:
            >>> promote_model("churn", 8, to="champion", gates=[result.as_gate(thresholds)])
        """
        checks = list(self.validation)
        if thresholds:
            checks.extend(self.validate(thresholds, baseline))
        where = f"run {self.run_id}" if self.run_id else "unlogged"
        name = f"evaluation({self.model_uri or self.model_type}, {where})"

        def gate(ctx: Any) -> Any:
            from flowml.registry.gates import GateResult

            if self.model_version is not None and self.model_version != (
                ctx.name,
                ctx.candidate.version,
            ):
                return GateResult(
                    name,
                    False,
                    f"the evaluation scored {self.model_version[0]} version "
                    f"{self.model_version[1]}, not the candidate {ctx.candidate.version}",
                )
            failed = [c for c in checks if not c.passed]
            if failed:
                detail = "; ".join(f"{c.metric}: {c.detail}" for c in failed)
                first = failed[0]
                return GateResult(name, False, detail, first.candidate, first.baseline)
            return GateResult(name, True, f"{len(checks)} validation check(s) passed")

        gate.__name__ = gate.__qualname__ = name
        return gate

    def to_dict(self) -> dict[str, Any]:
        """The result without its tables, as JSON-ready values."""
        return {
            "metrics": dict(self.metrics),
            "artifacts": dict(self.artifacts),
            "run_id": self.run_id,
            "model_type": self.model_type,
            "model_uri": self.model_uri,
            "model_version": list(self.model_version) if self.model_version else None,
            "baseline_metrics": self.baseline_metrics,
            "validation": [c.to_dict() for c in self.validation],
            "dataset_digest": self.dataset_digest,
        }
