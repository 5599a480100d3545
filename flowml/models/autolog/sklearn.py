"""``flowml.sklearn.autolog()``: scikit-learn's ``fit`` and ``score`` record themselves.

Every estimator class defining ``fit``, ``fit_transform`` or ``fit_predict`` (and the
mixins' ``score``) is patched. The outermost training call logs: params, tags, training
metrics, the training dataset and the model (see `sklearn_content`); the estimators a
``Pipeline`` or a search fits inside it do not log on their own (a search logs its
candidates as child runs, see `sklearn_search`). A later ``score(X, y)`` on a fitted
estimator logs ``<Estimator>_score_<variable name>`` to the run it was fitted in.

The run is the active one (inside a ``flowml.tracked_task`` that is the task's run, found
through the fluent API's run stack), else one started for the ``fit`` and ended after it,
FAILED if ``fit`` raised. Autologging never breaks ``fit``: its own failures are reported
on the ``flowml.autolog`` logger (quiet with ``silent=True``).

Example:
    >>> import flowml
    >>> flowml.sklearn.autolog()
    >>> LogisticRegression().fit(X, y)   # a run with params, training_* metrics and a model
    >>> flowml.sklearn.autolog(disable=True)  # every patched method is the original again
"""

from __future__ import annotations

import contextvars
import functools
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flowml.models.autolog import _patch
from flowml.models.autolog._patch import AutologConfig, warn
from flowml.models.autolog.sklearn_content import (
    estimator_params,
    log_params,
    log_training_content,
    run_tags,
    split_fit_args,
)
from flowml.models.autolog.sklearn_search import (
    DEFAULT_MAX_TUNING_RUNS,
    is_search,
    log_search_content,
)
from flowml.tracking.entities import Metric, RunStatus, now_ms

__all__ = ["autolog"]

INTEGRATION = "sklearn"
TRAINING_METHODS = ("fit", "fit_transform", "fit_predict")
RUN_ATTRIBUTE = "_flowml_autolog_run_id"

# Set while an autologged training call runs in this context: nested fits stay quiet.
_training: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flowml_sklearn_training", default=False
)
# run id -> metric name -> number of score calls logged (MLflow numbers repeats: name-2)
_score_calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def autolog(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = DEFAULT_MAX_TUNING_RUNS,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Enable (or with ``disable=True`` undo) autologging for scikit-learn.

    Args:
        log_input_examples: save the first rows of ``X`` with the model (MLflow's default
            is False).
        log_model_signatures: infer the model's signature from those rows.
        log_models: log the fitted model (``model``; ``best_estimator`` for searches).
        log_datasets: record the training data as the run's ``train`` input.
        disable: restore every patched method and stop autologging.
        exclusive: do not log into runs the user started (only into autolog's own).
        disable_for_unsupported_versions: accepted for MLflow's signature.
        silent: do not report autologging's own problems.
        max_tuning_runs: child runs for the best N search candidates (None: all).
        log_post_training_metrics: log ``score()`` calls made after ``fit``.
        serialization_format: ``cloudpickle``, ``pickle`` or ``skops``.
        registered_model_name: also register each logged model under this name.
        pos_label: the positive class for binary precision, recall and f1.
        extra_tags: tags added to every autologged run.

    Raises:
        InvalidState: scikit-learn is not installed (``pip install scikit-learn``).

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> flowml.sklearn.autolog(log_models=False)
        >>> with flowml.start_run() as run:
        ...     _ = DecisionTreeClassifier(max_depth=2).fit([[0.0], [1.0]], [0, 1])
        >>> flowml.get_run(run.info.run_id).data.params["max_depth"]
        '2'
        >>> flowml.sklearn.autolog(disable=True)
    """
    del disable_for_unsupported_versions  # flowml supports the scikit-learn it depends on
    if disable:
        _patch.revert(INTEGRATION)
        _score_calls.clear()
        return
    try:
        import sklearn  # noqa: F401
    except ImportError:
        from flowml.exceptions import InvalidState

        raise InvalidState(
            "flowml.sklearn.autolog needs scikit-learn: pip install scikit-learn"
        ) from None
    config = AutologConfig(
        log_models=log_models,
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_datasets=log_datasets,
        exclusive=exclusive,
        silent=silent,
        extra_tags=dict(extra_tags or {}),
        options={
            "max_tuning_runs": max_tuning_runs,
            "log_post_training_metrics": log_post_training_metrics,
            "serialization_format": serialization_format,
            "registered_model_name": registered_model_name,
            "pos_label": pos_label,
        },
    )
    _patch.set_config(INTEGRATION, config)
    for owner, name in _targets():
        maker = _patched_score if name == "score" else _patched_fit
        _patch.patch(INTEGRATION, owner, name, maker)


def _targets() -> list[tuple[type, str]]:
    """(class, method) pairs to patch: each class that defines the method itself."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    classes = [cls for _, cls in all_estimators()] + [Pipeline, GridSearchCV, RandomizedSearchCV]
    out: list[tuple[type, str]] = []
    seen: set[tuple[type, str]] = set()
    for cls in classes:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("sklearn."):
                continue
            for name in (*TRAINING_METHODS, "score"):
                if name in klass.__dict__ and (klass, name) not in seen:
                    seen.add((klass, name))
                    out.append((klass, name))
    return out


def _run_for_fit(config: AutologConfig) -> tuple[Any, bool]:
    """(active run, started here?); the run is None when autolog must stay out
    (``exclusive``)."""
    from flowml.tracking import fluent

    active = fluent.active_run()
    if active is not None:
        return (None, False) if config.exclusive else (active, False)
    return fluent.start_run(), True


def _patched_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _patch.config_for(INTEGRATION)
        if config is None or _training.get():
            return original(self, *args, **kwargs)
        try:
            chosen = _run_for_fit(config)
        except Exception as exc:  # no store reachable: train anyway
            warn(config, "flowml autolog: no run for %s.fit: %s", type(self).__name__, exc)
            chosen = (None, False)
        run, managed = chosen
        if run is None:
            return original(self, *args, **kwargs)
        token = _training.set(True)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            if managed:
                _end(RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED)
            raise
        else:
            _after_fit(run, self, original, args, kwargs, config)
            if managed:
                _end(RunStatus.FINISHED)
            return result
        finally:
            _training.reset(token)

    return fit


def _end(status: str) -> None:
    from flowml.tracking import fluent

    fluent.end_run(status)


def _after_fit(
    run: Any,
    est: Any,
    original: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    config: AutologConfig,
) -> None:
    run_id, client = run.info.run_id, run.client
    try:
        X, y, weight = split_fit_args(original, args, kwargs)
        search = is_search(est)
        client.buffer.add(run_id, tags=run_tags(est, INTEGRATION, config))
        log_params(client, run_id, estimator_params(est, deep=not search), config)
        log_training_content(client, run_id, est, X, y, weight, config)
        if search:
            log_search_content(client, run_id, est, X, INTEGRATION, config)
        if config.options.get("log_post_training_metrics"):
            try:
                setattr(est, RUN_ATTRIBUTE, run_id)
            except AttributeError:  # slotted third-party estimators: no score logging
                pass
    except Exception as exc:  # whatever failed, the user's model is trained: report only
        warn(config, "flowml autolog: logging %s.fit failed: %s", type(est).__name__, exc)


def _dataset_name(value: Any, frame: Any) -> str:
    # MLflow names a post-training metric after the variable holding the data.
    while frame is not None:
        for name, local in frame.f_locals.items():
            if local is value and not name.startswith("_"):
                return name
        frame = frame.f_back if frame.f_code.co_filename == __file__ else None
    return "unknown_dataset"


def _patched_score(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def score(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _patch.config_for(INTEGRATION)
        run_id = getattr(self, RUN_ATTRIBUTE, None)
        if config is None or run_id is None or _training.get():
            return original(self, *args, **kwargs)
        token = _training.set(True)  # score may call predict or other patched methods
        try:
            value = original(self, *args, **kwargs)
        finally:
            _training.reset(token)
        try:
            data = args[0] if args else next(iter(kwargs.values()), None)
            _log_score(run_id, type(self).__name__, value, _dataset_name(data, sys._getframe(1)))
        except Exception as exc:  # the score is returned whatever happens to its logging
            warn(config, "flowml autolog: score of %s not logged: %s", type(self).__name__, exc)
        return value

    return score


def _log_score(run_id: str, estimator: str, value: Any, dataset: str) -> None:
    import numbers

    from flowml.tracking.fluent import get_client

    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return
    name = f"{estimator}_score"
    count = _score_calls[run_id][name]
    _score_calls[run_id][name] = count + 1
    key = f"{name}-{count + 1}_{dataset}" if count else f"{name}_{dataset}"
    get_client().log_batch(run_id, metrics=[Metric(key, float(value), now_ms(), 0)])
