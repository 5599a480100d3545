"""scikit-learn autologging: what fit, score and searches record, with MLflow's names, and
that disabling restores every patched method."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import flowml
from flowml.exceptions import InvalidParameter
from flowml.models.autolog import _patch

CLASSIFIER_METRICS = {
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_accuracy_score",
    "training_log_loss",
    "training_roc_auc",
    "training_score",
}
REGRESSOR_METRICS = {
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
    "training_score",
}


@pytest.fixture(autouse=True)
def _autolog_off() -> Iterator[None]:
    yield
    flowml.autolog(disable=True)


@pytest.fixture
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _runs(**kwargs) -> list:
    return list(flowml.search_runs(search_all_experiments=True, **kwargs))


def _artifacts(run_id: str, path: str | None = None) -> list[str]:
    return sorted(f.path for f in flowml.TrackingClient().list_artifacts(run_id, path))


def test_fit_logs_params_metrics_and_a_model_with_signature(iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    flowml.sklearn.autolog()
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    (run,) = _runs()
    assert run.info.status == "FINISHED"  # the run autolog started ends with fit
    assert run.data.params["C"] == "0.5" and run.data.params["max_iter"] == "300"
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    assert run.data.metrics["training_score"] == pytest.approx(model.score(X, y))
    tags = run.data.tags
    assert tags["estimator_name"] == "LogisticRegression"
    assert tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert tags["mlflow.autologging"] == "sklearn"
    assert "model/input_example.json" in _artifacts(run.info.run_id, "model")

    loaded = flowml.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature.inputs.input_names() == list(X.columns)
    assert (loaded.predict(X.head(10)) == model.predict(X.head(10))).all()
    datasets = [n for n in flowml.lineage(run.info.run_id).nodes.values() if n.kind == "dataset"]
    assert len(datasets) == 1 and datasets[0].uri.startswith("mlflow-dataset:")


def test_regressor_metrics_and_score_calls_named_as_mlflow():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(50, 3))
    y_train = X_train @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=50)
    X_test, y_test = X_train[:10], y_train[:10]
    flowml.autolog()
    reg = LinearRegression().fit(X_train, y_train)
    first = reg.score(X_test, y_test)
    reg.score(X_train, y_train)
    (run,) = _runs()
    metrics = run.data.metrics
    assert REGRESSOR_METRICS <= set(metrics)
    assert metrics["training_root_mean_squared_error"] == pytest.approx(
        np.sqrt(metrics["training_mean_squared_error"])
    )
    assert metrics["LinearRegression_score_X_test"] == pytest.approx(first)
    assert "LinearRegression_score-2_X_train" in metrics


def test_grid_search_logs_best_values_and_one_child_run_per_candidate(iris):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = iris
    flowml.sklearn.autolog(max_tuning_runs=None, log_input_examples=False)
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    search = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=3).fit(X, y)
    runs = _runs()
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(kids) == len(runs) - 1 == 8  # nested fits (candidates, refit) log nothing else
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.params["estimator"].startswith("LogisticRegression")
    assert {"best_estimator", "cv_results.csv", "model"} <= set(_artifacts(parent.info.run_id))
    assert "model/input_example.json" not in _artifacts(parent.info.run_id, "model")
    by_params = {(k.data.params["C"], k.data.params["fit_intercept"]): k for k in kids}
    assert len(by_params) == 8
    for k in kids:
        assert k.info.status == "FINISHED"
        assert k.data.params["max_iter"] == "300"  # the seed's params, updated per candidate
        assert {"mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"} <= set(
            k.data.metrics
        )
        assert not any(m.startswith(("split", "param")) for m in k.data.metrics)
    best = by_params[(str(search.best_params_["C"]), str(search.best_params_["fit_intercept"]))]
    assert best.data.metrics["rank_test_score"] == 1


def test_randomized_search_keeps_mlflows_default_of_five_child_runs(iris):
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    flowml.autolog(log_models=False)
    RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": list(range(1, 9))},
        n_iter=7,
        cv=3,
        random_state=0,
    ).fit(X, y)
    runs = _runs()
    assert len(runs) == 1 + 5
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert _artifacts(parent.info.run_id) == ["cv_results.csv"]  # log_models=False


def test_a_pipeline_is_one_run(iris):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = iris
    flowml.autolog()
    make_pipeline(StandardScaler(), SVC()).fit(X, y)
    (run,) = _runs()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert "svc__C" in run.data.params


def test_fit_inside_a_user_run_logs_there_and_leaves_it_open(iris, caplog):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    flowml.autolog()
    with flowml.start_run() as run:
        DecisionTreeClassifier(max_depth=2).fit(X, y)
        assert flowml.active_run() is run
        # a second fit with other params: MLflow's write-once params conflict is reported,
        # and the run still ends FINISHED
        with caplog.at_level(logging.WARNING, logger="flowml.autolog"):
            DecisionTreeClassifier(max_depth=3).fit(X, y)
    assert "params not logged" in caplog.text
    (stored,) = _runs()
    assert stored.info.run_id == run.info.run_id and stored.info.status == "FINISHED"
    assert stored.data.params["max_depth"] == "2"


def test_exclusive_stays_out_of_user_runs(iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    flowml.autolog(exclusive=True)
    with flowml.start_run() as run:
        DecisionTreeClassifier().fit(X, y)
    stored = flowml.get_run(run.info.run_id)
    assert stored.data.params == {} and stored.data.metrics == {}


def test_a_failing_fit_fails_its_run_and_raises(iris):
    from sklearn.linear_model import LogisticRegression

    X, _ = iris
    flowml.autolog()
    with pytest.raises(ValueError):
        LogisticRegression().fit(X, ["only one label"] * len(X))
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert flowml.active_run() is None


def test_autolog_problems_are_reported_unless_silent(iris, caplog):
    from sklearn.cluster import KMeans

    X, _ = iris

    class Unpicklable(KMeans):
        def __reduce__(self):
            raise TypeError("cannot pickle this estimator")

    for silent, expected in ((False, True), (True, False)):
        caplog.clear()
        flowml.autolog(silent=silent)
        with caplog.at_level(logging.WARNING, logger="flowml.autolog"):
            Unpicklable(n_clusters=2, n_init=1, random_state=0).fit(X)  # fit still works
        assert ("model 'model' not logged" in caplog.text) is expected
    assert all(r.info.status == "FINISHED" for r in _runs())


def test_disable_restores_every_original_method():
    import sklearn.base
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from flowml.models.autolog.sklearn import _targets

    targets = _targets()
    before = {(cls, name): cls.__dict__[name] for cls, name in targets}
    assert (LogisticRegression, "fit") in before
    assert (sklearn.base.ClassifierMixin, "score") in before
    flowml.autolog()
    assert all(cls.__dict__[name] is not before[(cls, name)] for cls, name in targets)
    assert _patch.is_patched("sklearn")
    flowml.autolog(disable=True)
    assert all(cls.__dict__[name] is before[(cls, name)] for cls, name in targets)
    assert not _patch.is_patched("sklearn")
    for cls in (Pipeline, GridSearchCV, LogisticRegression):
        assert "score" not in cls.__dict__ or cls.__dict__["score"] is before[(cls, "score")]
    LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert _runs() == []  # nothing is logged any more


def test_enabling_twice_patches_once_and_unknown_flavors_are_refused():
    from sklearn.linear_model import Ridge

    original = Ridge.__dict__["fit"]
    flowml.sklearn.autolog()
    patched = Ridge.__dict__["fit"]
    flowml.autolog(log_models=False)  # new options, same patch
    assert Ridge.__dict__["fit"] is patched
    assert _patch.config_for("sklearn").log_models is False
    with pytest.raises(InvalidParameter, match="Unknown autolog flavor"):
        flowml.autolog(exclude_flavors=["xgboost"])
    flowml.autolog(disable=True, exclude_flavors=["sklearn"])  # excluded: left enabled
    assert Ridge.__dict__["fit"] is patched
    flowml.sklearn.autolog(disable=True)
    assert Ridge.__dict__["fit"] is original


def test_registered_model_name_and_no_datasets(iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    flowml.sklearn.autolog(
        registered_model_name="iris-tree", log_datasets=False, extra_tags={"team": "ml"}
    )
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    (run,) = _runs()
    assert run.data.tags["team"] == "ml"
    (version,) = flowml.search_model_versions("name = 'iris-tree'")
    assert version.run_id == run.info.run_id
    assert not [n for n in flowml.lineage(run.info.run_id).nodes.values() if n.kind == "dataset"]
