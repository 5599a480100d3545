"""What scikit-learn autologging records about a fitted estimator, with MLflow's names.

- params: ``get_params()`` (deep, except for search estimators), values cut to 6000
  characters; tags ``estimator_name`` and ``estimator_class``;
- metrics, when labels were given: ``training_precision_score``, ``training_recall_score``,
  ``training_f1_score``, ``training_accuracy_score``, ``training_log_loss``,
  ``training_roc_auc`` (classifiers), ``training_mean_squared_error``,
  ``training_root_mean_squared_error``, ``training_mean_absolute_error``,
  ``training_r2_score`` (regressors), and ``training_score``;
- the model under ``model`` with a signature inferred from the first rows of ``X``.

Every step is guarded: a metric that cannot be computed is skipped and reported, never
raised into the user's ``fit``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from flowml.models.autolog._patch import AutologConfig, warn
from flowml.tracking.entities import Metric, Param, RunTag, now_ms

__all__ = ["estimator_params", "estimator_tags", "log_training_content", "split_fit_args"]

TRAINING_PREFIX = "training_"
INPUT_EXAMPLE_ROWS = 5
MAX_PARAM_VALUE = 6000
PARAMS_PER_BATCH = 100
AUTOLOGGING_TAG = "mlflow.autologging"


def estimator_tags(estimator: Any) -> dict[str, str]:
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def estimator_params(estimator: Any, deep: bool) -> dict[str, str]:
    try:
        params = estimator.get_params(deep=deep)
    except Exception:  # a third-party estimator with a broken get_params: log none
        return {}
    return {str(k): str(v)[:MAX_PARAM_VALUE] for k, v in params.items()}


def log_params(client: Any, run_id: str, params: dict[str, str], config: AutologConfig) -> None:
    """Write params now, in batches: a conflict (the run already holds another value for a
    name, e.g. a second fit in one task) is reported instead of failing the run later."""
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        try:
            client.log_batch(run_id, params=items[start : start + PARAMS_PER_BATCH])
        except Exception as exc:  # the user's fit must not fail because of autologging
            warn(config, "flowml autolog: params not logged to run %s: %s", run_id, exc)


def split_fit_args(fit: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a ``fit(X, y=None, ..., sample_weight=None)`` call."""
    try:
        names = [p for p in inspect.signature(fit).parameters if p != "self"]
    except (TypeError, ValueError):
        names = ["X", "y"]
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    x_name = names[0] if names else "X"
    y_name = names[1] if len(names) > 1 else "y"
    return bound.get(x_name), bound.get(y_name), bound.get("sample_weight")


def _classifier_metrics(est: Any, X: Any, y: Any, weight: Any, pos_label: Any) -> dict[str, Any]:
    from sklearn import metrics as m

    average = "weighted" if pos_label is None else "binary"
    pred = est.predict(X)
    calls: list[tuple[str, Callable[[], Any]]] = [
        (
            "precision_score",
            lambda: m.precision_score(
                y, pred, pos_label=pos_label, average=average, sample_weight=weight
            ),
        ),
        (
            "recall_score",
            lambda: m.recall_score(
                y, pred, pos_label=pos_label, average=average, sample_weight=weight
            ),
        ),
        (
            "f1_score",
            lambda: m.f1_score(y, pred, pos_label=pos_label, average=average, sample_weight=weight),
        ),
        ("accuracy_score", lambda: m.accuracy_score(y, pred, sample_weight=weight)),
    ]
    if callable(getattr(est, "predict_proba", None)):
        proba = est.predict_proba(X)
        score = proba[:, 1] if proba.shape[1] == 2 else proba
        calls.append(("log_loss", lambda: m.log_loss(y, proba, sample_weight=weight)))
        calls.append(
            (
                "roc_auc",
                lambda: m.roc_auc_score(
                    y, score, average="weighted", sample_weight=weight, multi_class="ovo"
                ),
            )
        )
    return _computed(calls)


def _regressor_metrics(est: Any, X: Any, y: Any, weight: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    pred = est.predict(X)
    out = _computed(
        [
            (
                "mean_squared_error",
                lambda: m.mean_squared_error(
                    y, pred, sample_weight=weight, multioutput="uniform_average"
                ),
            ),
            (
                "mean_absolute_error",
                lambda: m.mean_absolute_error(
                    y, pred, sample_weight=weight, multioutput="uniform_average"
                ),
            ),
            (
                "r2_score",
                lambda: m.r2_score(y, pred, sample_weight=weight, multioutput="uniform_average"),
            ),
        ]
    )
    if "mean_squared_error" in out:
        out["root_mean_squared_error"] = float(np.sqrt(out["mean_squared_error"]))
    return out


def _computed(calls: list[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
    out = {}
    for name, call in calls:
        try:
            out[name] = float(call())
        except Exception:  # e.g. roc_auc with one class in y: MLflow skips it too
            continue
    return out


def training_metrics(est: Any, X: Any, y: Any, weight: Any, config: AutologConfig) -> dict:
    """MLflow's ``training_*`` metrics of a fitted estimator on its training data."""
    from sklearn.base import is_classifier, is_regressor

    values: dict[str, Any] = {}
    if y is None:
        return values
    try:
        if is_classifier(est):
            values = _classifier_metrics(est, X, y, weight, config.options.get("pos_label"))
        elif is_regressor(est):
            values = _regressor_metrics(est, X, y, weight)
    except Exception as exc:  # predict failed on the training data: no metrics, no error
        warn(config, "flowml autolog: no training metrics for %s: %s", type(est).__name__, exc)
    if callable(getattr(est, "score", None)):
        try:
            takes_weight = "sample_weight" in inspect.signature(est.score).parameters
            args = (X, y, weight) if takes_weight and weight is not None else (X, y)
            values["score"] = float(est.score(*args))
        except Exception as exc:  # e.g. a clusterer whose score needs other input
            warn(config, "flowml autolog: %s.score failed: %s", type(est).__name__, exc)
    return {TRAINING_PREFIX + k: v for k, v in values.items()}


def _input_example(X: Any) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:INPUT_EXAMPLE_ROWS].copy()
    return X[:INPUT_EXAMPLE_ROWS]


def log_fitted_model(est: Any, X: Any, run_id: str, name: str, config: AutologConfig) -> Any:
    """Log ``est`` under ``name`` with a signature (and input example); ``None`` on failure."""
    from flowml.models.api import log_model
    from flowml.models.signature import infer_signature

    example = signature = None
    try:
        example = _input_example(X)
        if config.log_model_signatures:
            predict = getattr(est, "predict", None) or getattr(est, "transform", None)
            output = predict(example) if callable(predict) else None
            signature = infer_signature(example, output)
    except Exception as exc:  # an unusual X: log the model without them
        warn(config, "flowml autolog: no signature for %s: %s", type(est).__name__, exc)
    try:
        return log_model(
            est,
            name,
            flavor="sklearn",
            run_id=run_id,
            signature=signature,
            input_example=example if config.log_input_examples else None,
            serialization_format=config.options.get("serialization_format", "cloudpickle"),
            registered_model_name=config.options.get("registered_model_name"),
        )
    except Exception as exc:  # e.g. an estimator that cannot be pickled
        warn(config, "flowml autolog: model %r not logged: %s", name, exc)
        return None


def log_dataset(X: Any, y: Any, config: AutologConfig) -> None:
    """Record the training data as the run's ``train`` input (lineage, as MLflow's dataset)."""
    from flowml.tracking.datasets import Dataset, from_numpy, from_pandas
    from flowml.tracking.lineage.inputs import log_input

    dataset: Dataset
    try:
        if hasattr(X, "dtypes") and hasattr(X, "iloc"):
            dataset = from_pandas(X)
        else:
            import numpy as np

            targets = y if isinstance(y, np.ndarray) else None
            dataset = from_numpy(np.asarray(X), targets=targets)
        log_input(dataset, context="train")
    except Exception as exc:  # sparse or exotic inputs: no dataset entry
        warn(config, "flowml autolog: training dataset not recorded: %s", exc)


def log_training_content(
    client: Any, run_id: str, est: Any, X: Any, y: Any, weight: Any, config: AutologConfig
) -> None:
    """Metrics (buffered with the run's other values), the dataset and the model."""
    metrics = training_metrics(est, X, y, weight, config)
    if metrics:
        ts = now_ms()
        client.buffer.add(run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()])
    if config.log_datasets:
        log_dataset(X, y, config)
    if config.log_models:
        log_fitted_model(est, X, run_id, "model", config)


def run_tags(est: Any, integration: str, config: AutologConfig) -> list[RunTag]:
    tags = {**estimator_tags(est), AUTOLOGGING_TAG: integration, **config.extra_tags}
    return [RunTag(k, str(v)) for k, v in tags.items()]
