"""flowml.tasks.evaluate_model in real Prefect flow runs, and evaluation results as gates."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow

import flowml
from flowml.evaluation import EvaluationResult, MetricThreshold, ModelValidationFailed
from flowml.registry import RegistryClient
from flowml.registry.errors import PromotionRefused
from flowml.tasks import evaluate_model, promote_model

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _register(model: Any, frame: Any) -> int:
    from flowml.models import log_model

    with flowml.start_run():
        info = log_model(model, "model", registered_model_name="churn")
    return int(info.registered_model_version)


@flow
def evaluate_and_promote(
    version: int, frame: Any, thresholds: dict[str, MetricThreshold] | None = None
) -> tuple[EvaluationResult, Any]:
    result = evaluate_model(
        f"models:/churn/{version}", frame, targets="label", validation_thresholds=thresholds
    )
    promoted = promote_model("churn", version, to="champion", gates=[result])
    return result, promoted


def test_a_passing_evaluation_gates_a_promotion(binary):
    frame, model = binary
    version = _register(model, frame)
    thresholds = {"accuracy_score": MetricThreshold(threshold=0.6, greater_is_better=True)}
    result, promoted = evaluate_and_promote(version, frame, thresholds)
    assert promoted.version == version and promoted.gates[0]["passed"]
    assert promoted.gates[0]["gate"].startswith("evaluation(models:/churn/")
    run = flowml.get_run(result.run_id)
    assert run.data.tags.get("mlflow.parentRunId")  # the task's own run, under the flow's run
    assert run.data.metrics["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])
    assert run.data.params["model_type"] == "classifier"
    assert RegistryClient().get_model_version_by_alias("churn", "champion").version == version


def test_a_missed_threshold_fails_the_task_and_promotes_nothing(binary):
    frame, model = binary
    version = _register(model, frame)
    thresholds = {"accuracy_score": MetricThreshold(threshold=0.999, greater_is_better=True)}
    state = evaluate_and_promote(version, frame, thresholds, return_state=True)
    assert state.is_failed()
    with pytest.raises(ModelValidationFailed, match="accuracy_score"):
        state.result()
    with pytest.raises(flowml.exceptions.ResourceNotFound):
        RegistryClient().get_model_version_by_alias("churn", "champion")


def test_an_evaluation_of_another_version_refuses_the_promotion(binary):
    frame, model = binary
    first = _register(model, frame)
    second = _register(model, frame)
    other = flowml.evaluate(f"models:/churn/{first}", frame, targets="label")

    @flow
    def promote_with(result: EvaluationResult) -> Any:
        return promote_model("churn", second, to="champion", gates=[result])

    state = promote_with(other, return_state=True)
    with pytest.raises(PromotionRefused, match=f"not the candidate {second}"):
        state.result()
