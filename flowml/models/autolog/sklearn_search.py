"""Parameter searches (``GridSearchCV``, ``RandomizedSearchCV``) as MLflow records them.

The search's run gets ``best_<param>`` params, the ``best_cv_score`` metric, the
``cv_results.csv`` artifact and the best estimator's model under ``best_estimator``; each
candidate becomes a child run (the best ``max_tuning_runs`` by ``rank_test_score``; all of
them with ``max_tuning_runs=None``) holding the seed estimator's params updated with the
candidate's, and the numeric ``cv_results_`` columns except ``param_*`` and ``split*``
(``mean_test_score``, ``std_test_score``, ``rank_test_score``, ``mean_fit_time``...).
"""

from __future__ import annotations

import numbers
import os
import tempfile
from typing import Any

from flowml.models.autolog._patch import AutologConfig, warn
from flowml.models.autolog.sklearn_content import (
    estimator_params,
    log_fitted_model,
    log_params,
    run_tags,
)
from flowml.tracking.entities import Metric, Param, RunStatus, now_ms

__all__ = ["is_search", "log_search_content"]

DEFAULT_MAX_TUNING_RUNS = 5


def is_search(estimator: Any) -> bool:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, (GridSearchCV, RandomizedSearchCV))


def best_params(estimator: Any) -> dict[str, str]:
    found = getattr(estimator, "best_params_", None) or {}
    return {f"best_{k}": str(v) for k, v in found.items()}


def _rank_column(frame: Any) -> str | None:
    if "rank_test_score" in frame.columns:
        return "rank_test_score"
    return next((c for c in frame.columns if str(c).startswith("rank_test_")), None)


def _candidates(frame: Any, limit: int | None) -> Any:
    if limit is None:
        return frame
    rank = _rank_column(frame)
    return frame.nsmallest(limit, rank) if rank is not None else frame.head(limit)


def _child_runs(client: Any, parent: Any, est: Any, integration: str, config: AutologConfig) -> int:
    import pandas as pd

    frame = pd.DataFrame(est.cv_results_)
    limit = config.options.get("max_tuning_runs", DEFAULT_MAX_TUNING_RUNS)
    seed = est.estimator
    base = estimator_params(seed, deep=not is_search(seed))
    tags = {t.key: t.value for t in run_tags(seed, integration, config)}
    end = now_ms()
    created = 0
    for _, row in _candidates(frame, limit).iterrows():
        params = dict(base)
        params.update({str(k): str(v)[:6000] for k, v in (row.get("params") or {}).items()})
        metrics = [
            Metric(str(k), float(v), end, 0)
            for k, v in row.items()
            if not str(k).startswith(("param", "split"))
            and isinstance(v, numbers.Real)
            and not isinstance(v, bool)
        ]
        child = client.create_run(
            parent.info.experiment_id,
            start_time=parent.info.start_time,
            tags=tags,
            parent_run_id=parent.info.run_id,
        )
        child_id = child.info.run_id
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            client.log_batch(child_id, params=items[start : start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(child_id, metrics=metrics[start : start + 1000])
        client.set_terminated(child_id, RunStatus.FINISHED, end_time=end)
        created += 1
    return created


def log_search_content(
    client: Any, run_id: str, est: Any, X: Any, integration: str, config: AutologConfig
) -> None:
    """Everything MLflow records for a fitted search estimator, beyond its own params."""
    log_params(client, run_id, best_params(est), config)
    if hasattr(est, "best_score_"):
        client.buffer.add(
            run_id, metrics=[Metric("best_cv_score", float(est.best_score_), now_ms(), 0)]
        )
    if config.log_models and hasattr(est, "best_estimator_"):
        log_fitted_model(est.best_estimator_, X, run_id, "best_estimator", config)
    if not hasattr(est, "cv_results_"):
        return
    try:
        _child_runs(client, client.get_run(run_id), est, integration, config)
    except Exception as exc:  # the search itself succeeded: report, never fail the fit
        warn(config, "flowml autolog: child runs of the search incomplete: %s", exc)
    try:
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="flowml-autolog-") as tmp:
            path = os.path.join(tmp, "cv_results.csv")
            pd.DataFrame(est.cv_results_).to_csv(path, index=False)
            client.log_artifact(run_id, path)
    except Exception as exc:  # an unwritable artifact store: the metrics are still logged
        warn(config, "flowml autolog: cv_results.csv not logged: %s", exc)
