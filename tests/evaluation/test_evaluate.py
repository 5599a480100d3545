"""flowml.evaluate on real runs in a real SQLite store: metrics, plots, tables, datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import flowml
from flowml.tracking.fluent import get_client

PNG = b"\x89PNG\r\n\x1a\n"


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def _inputs(run_id: str) -> list[Any]:
    entries = get_client().store.search_lineage(run_ids=[run_id])
    return [e for e in entries if e.direction == "input"]


def test_binary_classifier_logs_metrics_plots_table_and_dataset(binary):
    from sklearn import metrics as m

    frame, model = binary
    result = flowml.evaluate(model, frame, targets="label", model_type="classifier")
    run = flowml.get_run(result.run_id)
    assert run.info.status == "FINISHED"  # a run started for the evaluation is ended
    predicted = model.predict(frame[["x1", "x2"]])
    proba = model.predict_proba(frame[["x1", "x2"]])[:, 1]
    expected = {
        "accuracy_score": m.accuracy_score(frame["label"], predicted),
        "f1_score": m.f1_score(frame["label"], predicted),
        "precision_score": m.precision_score(frame["label"], predicted),
        "recall_score": m.recall_score(frame["label"], predicted),
        "log_loss": m.log_loss(frame["label"], model.predict_proba(frame[["x1", "x2"]])),
        "roc_auc": m.roc_auc_score(frame["label"], proba),
        "example_count": 300,
    }
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value), key
        assert run.data.metrics[key] == pytest.approx(value), key
    assert 0 < result.metrics["precision_recall_auc"] <= 1
    counts = ("true_negatives", "false_positives", "false_negatives", "true_positives")
    assert sum(result.metrics[k] for k in counts) == 300
    assert set(result.artifacts) == {
        "confusion_matrix",
        "roc_curve_plot",
        "precision_recall_curve_plot",
        "eval_results_table",
        "per_class_metrics",
    }
    for name in ("confusion_matrix", "roc_curve_plot", "precision_recall_curve_plot"):
        assert _local(result.artifacts[name]).read_bytes()[:8] == PNG
    table = json.loads(_local(result.artifacts["eval_results_table"]).read_text())
    assert table["columns"] == ["x1", "x2", "label", "prediction", "probability"]
    assert len(table["data"]) == 300 == len(result.tables["eval_results_table"])
    assert list(result.tables["per_class_metrics"]["class"]) == [0, 1]
    assert run.data.tags["flowml.evaluation.model_type"] == "classifier"
    [dataset] = _inputs(result.run_id)
    assert dataset.kind == "dataset" and dataset.digest == result.dataset_digest
    assert dataset.uri == f"digest:{result.dataset_digest}"


def test_logs_to_the_active_run_and_leaves_it_open(binary):
    frame, model = binary
    with flowml.start_run() as run:
        flowml.log_param("stage", "holdout")
        result = flowml.evaluate(model, frame, targets="label", dataset_name="holdout")
        assert result.run_id == run.info.run_id
        assert flowml.get_run(run.info.run_id).info.status == "RUNNING"
    stored = flowml.get_run(run.info.run_id)
    assert stored.data.params == {"stage": "holdout"}
    assert stored.data.metrics["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])
    assert [e.name for e in _inputs(run.info.run_id)] == ["holdout"]


def test_multiclass_with_string_labels_from_a_numpy_array(multiclass):
    features, labels, model = multiclass
    result = flowml.evaluate(model, features, targets=labels)
    for key in ("roc_auc", "precision_recall_auc", "log_loss", "f1_score", "f1_score_macro"):
        assert 0 <= result.metrics[key], key
    assert "true_positives" not in result.metrics  # confusion counts are for binary only
    per_class = result.tables["per_class_metrics"]
    assert sorted(per_class["class"]) == ["blue", "green", "red"]
    assert per_class["support"].sum() == 400
    rows = result.tables["eval_results_table"]
    assert {"probability_blue", "probability_green", "probability_red"} <= set(rows.columns)
    assert list(rows.columns[:6]) == [f"f{i}" for i in range(6)]


def test_regressor_metrics_and_residuals(regression):
    from sklearn import metrics as m

    frame, model = regression
    result = flowml.evaluate(model, frame, targets="y", model_type="regressor")
    predicted = model.predict(frame[["a", "b"]])
    assert result.metrics["mean_absolute_error"] == pytest.approx(
        m.mean_absolute_error(frame["y"], predicted)
    )
    assert result.metrics["root_mean_squared_error"] == pytest.approx(
        m.mean_squared_error(frame["y"], predicted) ** 0.5
    )
    assert result.metrics["r2_score"] == pytest.approx(m.r2_score(frame["y"], predicted))
    assert result.metrics["mean_absolute_percentage_error"] == pytest.approx(
        m.mean_absolute_percentage_error(frame["y"], predicted)
    )
    assert {"max_error", "mean_squared_error", "sum_on_target", "mean_on_target"} <= set(
        result.metrics
    )
    assert _local(result.artifacts["residuals_plot"]).read_bytes()[:8] == PNG
    rows = result.tables["eval_results_table"]
    assert rows["residual"].to_numpy() == pytest.approx(frame["y"] - predicted)
    # An all-float table is written as one array: the same JSON as any other table.
    written = json.loads(_local(result.artifacts["eval_results_table"]).read_text())
    assert written["columns"] == ["a", "b", "y", "prediction", "residual"]
    assert written["data"] == rows.to_numpy().tolist()


def test_table_json_is_the_same_for_float_and_mixed_tables():
    import numpy as np
    import pandas as pd

    from flowml.evaluation.evaluate import _table_json

    floats = pd.DataFrame({"a": [0.1, np.nan, 1e300], "b": [-2.0, 3.5, 1 / 3]})
    mixed = floats.assign(n=[1, 2, 3], s=["x", "y", "z"])
    assert json.loads(_table_json(floats)) == {
        "columns": ["a", "b"],
        "data": [[0.1, -2.0], [None, 3.5], [1e300, 1 / 3]],
    }
    assert json.loads(_table_json(mixed))["data"][1] == [None, 3.5, 2, "y"]


def test_model_as_uri_pyfunc_and_function_give_the_same_scores(binary):
    from flowml.models import log_model

    frame, model = binary
    with flowml.start_run():
        info = log_model(model, "model", registered_model_name="churn")
    by_uri = flowml.evaluate(info.model_uri, frame, targets="label", evaluators=["metrics"])
    by_pyfunc = flowml.evaluate(
        flowml.load_model(info.model_uri), frame, targets="label", evaluators=["metrics"]
    )
    by_fn = flowml.evaluate(
        lambda rows: model.predict(rows), frame, targets="label", evaluators=["metrics"]
    )
    assert by_uri.metrics == by_pyfunc.metrics
    assert by_uri.model_uri == info.model_uri and by_uri.model_version is None
    assert by_fn.metrics["accuracy_score"] == by_uri.metrics["accuracy_score"]
    assert "roc_auc" not in by_fn.metrics  # a plain function has no probabilities
    assert set(by_uri.artifacts) == {"per_class_metrics"}  # metrics only: no plots, no rows
    registered = flowml.evaluate("models:/churn/1", frame, targets="label", evaluators=["metrics"])
    assert registered.model_version == ("churn", 1)
    assert flowml.get_run(registered.run_id).data.tags["flowml.evaluation.model"] == (
        "models:/churn/1"
    )


def test_baseline_comparison_and_custom_metrics(binary):
    frame, model = binary

    def positives(y_true: Any, y_pred: Any, probs: Any) -> dict[str, float]:
        return {"predicted_positive_rate": float((y_pred == 1).mean())}

    result = flowml.evaluate(
        model,
        frame,
        targets="label",
        baseline_model=lambda rows: [0] * len(rows),
        evaluators=["metrics", positives],
    )
    assert 0 < result.metrics["predicted_positive_rate"] < 1
    assert result.baseline_metrics["predicted_positive_rate"] == 0
    comparison = result.tables["baseline_comparison"].set_index("metric")
    assert comparison.loc["accuracy_score", "change"] == pytest.approx(
        result.metrics["accuracy_score"] - result.baseline_metrics["accuracy_score"]
    )
    assert set(result.artifacts) == {"baseline_comparison", "per_class_metrics"}


def test_data_from_a_csv_file_is_recorded_with_its_path_and_digest(binary, tmp_path: Path):
    frame, model = binary
    path = tmp_path / "holdout.csv"
    frame.to_csv(path, index=False)
    result = flowml.evaluate(model, str(path), targets="label", evaluators=["metrics"])
    [dataset] = _inputs(result.run_id)
    assert dataset.uri == str(path.resolve()) and dataset.digest == result.dataset_digest
    assert result.dataset_digest


def test_the_result_pickles(binary):
    import pickle

    frame, model = binary
    result = flowml.evaluate(model, frame, targets="label")
    copy = pickle.loads(pickle.dumps(result))
    assert copy.metrics == result.metrics and copy.artifacts == result.artifacts
    assert copy.tables["eval_results_table"].equals(result.tables["eval_results_table"])
