"""Validation thresholds, ModelValidationFailed, and bad input that leaves the store untouched."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest

import flowml
from flowml.evaluation import (
    MetricThreshold,
    ModelValidationFailed,
    validate_evaluation_results,
)
from flowml.exceptions import FlowMLError, InvalidParameter, InvalidState
from flowml.tracking.fluent import get_client


def test_passing_thresholds_are_recorded_on_the_result_and_run(binary):
    frame, model = binary
    result = flowml.evaluate(
        model,
        frame,
        targets="label",
        evaluators=["metrics"],
        validation_thresholds={
            "accuracy_score": MetricThreshold(threshold=0.6, greater_is_better=True),
            "log_loss": MetricThreshold(threshold=2.0, greater_is_better=False),
        },
    )
    assert result.passed and [c.check for c in result.validation] == ["threshold"] * 2
    assert flowml.get_run(result.run_id).data.tags["flowml.evaluation.validation"] == "passed"


def test_failed_thresholds_raise_a_typed_picklable_error_listing_each_check(binary):
    frame, model = binary
    thresholds = {
        "accuracy_score": MetricThreshold(
            threshold=0.99, min_relative_change=0.5, greater_is_better=True
        ),
        "log_loss": MetricThreshold(min_absolute_change=5.0, greater_is_better=False),
        "f1_score": MetricThreshold(threshold=0.1, greater_is_better=True),
        "no_such_metric": MetricThreshold(threshold=1, greater_is_better=True),
    }
    with pytest.raises(ModelValidationFailed) as caught:
        flowml.evaluate(
            model,
            frame,
            targets="label",
            evaluators=["metrics"],
            baseline_model=model,
            validation_thresholds=thresholds,
        )
    error = caught.value
    assert isinstance(error, InvalidState) and isinstance(error, FlowMLError)
    failed = {(c.metric, c.check) for c in error.failures}
    assert failed == {
        ("accuracy_score", "threshold"),
        ("accuracy_score", "min_relative_change"),
        ("log_loss", "min_absolute_change"),
        ("no_such_metric", "missing"),
    }
    assert "4 check(s)" in str(error) and "no_such_metric" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ModelValidationFailed and copy.failures == error.failures
    assert copy.run_id == error.run_id and str(copy) == str(error)
    # the evaluation itself is logged, marked as failed validation
    run = flowml.get_run(error.run_id)
    assert run.data.tags["flowml.evaluation.validation"] == "failed"
    assert "accuracy_score" in run.data.metrics


def test_validate_evaluation_results_compares_two_results(binary):
    frame, model = binary
    good = flowml.evaluate(model, frame, targets="label", evaluators=["metrics"])
    dummy = flowml.evaluate(
        lambda rows: [1] * len(rows), frame, targets="label", evaluators=["metrics"]
    )
    better = {"accuracy_score": MetricThreshold(min_absolute_change=0.05, greater_is_better=True)}
    assert [c.passed for c in validate_evaluation_results(better, good, dummy)] == [True]
    with pytest.raises(ModelValidationFailed, match="accuracy_score"):
        validate_evaluation_results(better, dummy, good)
    with pytest.raises(InvalidParameter, match="baseline"):
        validate_evaluation_results(better, good)
    with pytest.raises(InvalidParameter, match="EvaluationResult"):
        validate_evaluation_results(better, {"accuracy_score": 1.0})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.5}, "greater_is_better"),
        ({"threshold": 0.5, "greater_is_better": "yes"}, "greater_is_better"),
        ({"greater_is_better": True}, "needs threshold"),
        ({"threshold": float("nan"), "greater_is_better": True}, "finite"),
        ({"min_absolute_change": 0, "greater_is_better": True}, "positive"),
        ({"min_relative_change": 1.5, "greater_is_better": True}, "between 0 and 1"),
    ],
)
def test_bad_thresholds_are_typed_errors(kwargs: dict[str, Any], message: str):
    with pytest.raises(InvalidParameter, match=message):
        MetricThreshold(**kwargs)


# -- bad input: a typed error, and nothing written -------------------------------------------


def _store_snapshot() -> tuple[Any, ...]:
    runs = get_client().search_runs(["0"])
    return tuple((r.info.run_id, r.info.status, r.data.metrics, r.data.tags) for r in runs)


def _bad_inputs(binary: Any) -> list[tuple[str, Callable[[], Any], str]]:
    import numpy as np

    frame, model = binary
    strings = frame.assign(label=np.where(frame["label"] == 1, "yes", "no"))
    change = {"f1_score": MetricThreshold(min_absolute_change=0.1, greater_is_better=True)}
    return [
        ("empty", lambda: flowml.evaluate(model, frame.iloc[:0], targets="label"), "empty"),
        ("no targets", lambda: flowml.evaluate(model, frame), "needs targets"),
        ("unknown column", lambda: flowml.evaluate(model, frame, targets="y"), "no target column"),
        (
            "label types",
            lambda: flowml.evaluate(model, strings, targets="label"),
            "labels are strings",
        ),
        (
            "length",
            lambda: flowml.evaluate(model, frame[["x1", "x2"]], targets=[0, 1]),
            "has 2 values",
        ),
        (
            "missing labels",
            lambda: flowml.evaluate(
                model, frame.assign(label=frame["label"].where(frame.index > 3)), targets="label"
            ),
            "missing value",
        ),
        (
            "text regression targets",
            lambda: flowml.evaluate(model, strings, targets="label", model_type="regressor"),
            "must be numbers",
        ),
        (
            "model type",
            lambda: flowml.evaluate(model, frame, targets="label", model_type="ranker"),
            "model_type",
        ),
        (
            "evaluator",
            lambda: flowml.evaluate(model, frame, targets="label", evaluators=["shap"]),
            "Unknown evaluator",
        ),
        (
            "feature names",
            lambda: flowml.evaluate(model, frame, targets="label", feature_names=["x9"]),
            "feature_names",
        ),
        (
            "change without baseline",
            lambda: flowml.evaluate(model, frame, targets="label", validation_thresholds=change),
            "baseline",
        ),
        (
            "not a model",
            lambda: flowml.evaluate(42, frame, targets="label"),
            "model must be",
        ),
        (
            "short predictions",
            lambda: flowml.evaluate(lambda rows: [0, 1], frame, targets="label"),
            "returned 2 predictions",
        ),
        (
            "evaluator metric name",
            lambda: flowml.evaluate(
                model, frame, targets="label", evaluators=[lambda *a: {"../escape": 1.0}]
            ),
            "Metric",
        ),
        (
            "evaluator value",
            lambda: flowml.evaluate(
                model, frame, targets="label", evaluators=[lambda *a: {"x": "high"}]
            ),
            "non-numeric",
        ),
        (
            "continuous predictions for a classifier",
            lambda: flowml.evaluate(lambda rows: rows["x1"].to_numpy(), frame, targets="label"),
            "cannot be scored as a classifier",
        ),
        ("data type", lambda: flowml.evaluate(model, {"x1": [1]}, targets="label"), "data must"),
        (
            "missing file",
            lambda: flowml.evaluate(model, "/nonexistent/holdout.csv", targets="label"),
            "No evaluation data",
        ),
    ]


def test_bad_input_is_a_typed_error_and_starts_no_run(binary):
    flowml.evaluate(binary[1], binary[0], targets="label", evaluators=["metrics"])
    before = _store_snapshot()
    for label, call, message in _bad_inputs(binary):
        with pytest.raises(InvalidParameter, match=message):
            call()
        assert flowml.active_run() is None, label
        assert _store_snapshot() == before, label


def test_bad_input_writes_nothing_to_the_active_run(binary):
    with flowml.start_run() as run:
        for label, call, message in _bad_inputs(binary):
            with pytest.raises(InvalidParameter, match=message):
                call()
            flowml.flush()
            stored = flowml.get_run(run.info.run_id)
            assert stored.data.metrics == {}, label
            assert not any(k.startswith("flowml.evaluation") for k in stored.data.tags), label
            assert get_client().list_artifacts(run.info.run_id) == [], label
            assert get_client().store.search_lineage(run_ids=[run.info.run_id]) == [], label
