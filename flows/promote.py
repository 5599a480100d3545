"""Champion/challenger: score the newest version of a model against the current champion on
held-out data, and promote it when it wins.

The newest registered version is the challenger; the version holding ``--to`` (an alias such
as ``champion``, or a stage such as ``Production``) is the champion. Both are scored on the
same held-out file, the scores are handed to the gates, and `promote_model` records the
decision: an audit entry, a markdown artifact with the comparison, and events. Serving
``models:/<name>@champion`` picks the new champion up on its next load.

Run it (after ``flows/train.py`` registered a few versions)::

    python flows/promote.py --model-name wine --holdout data/holdout.csv --target-column quality

or from another flow (the scheduled retraining chains training and this flow)::

    champion_challenger("wine", "s3://bucket/holdout.csv", "quality", metric="rmse")
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry import RegistryClient, beats_champion, metric_at_least
from flowml.registry.entities import is_stage
from flowml.tasks.steps import PromotionResult, promote_model

# metric -> whether higher is better
METRICS = {"accuracy": True, "f1": True, "r2": True, "rmse": False, "mae": False}


@task(cache_policy=NO_CACHE)
def load_holdout(uri: str, target_column: str) -> tuple[Any, Any]:
    """Features and labels from a CSV or Parquet file (local path or any fsspec URL)."""
    import pandas as pd

    frame = pd.read_parquet(uri) if uri.endswith(".parquet") else pd.read_csv(uri)
    if target_column not in frame.columns:
        raise InvalidParameter(f"{uri} has no column {target_column!r}")
    return frame.drop(columns=[target_column]), frame[target_column]


@task(task_run_name="score-{model_uri}", cache_policy=NO_CACHE)
def score(model_uri: str, features: Any, labels: Any, metric: str) -> float:
    """The model's ``metric`` on the held-out data."""
    from sklearn import metrics as m

    from flowml.models import load_model

    predicted = load_model(model_uri).predict(features)
    if metric == "accuracy":
        return float(m.accuracy_score(labels, predicted))
    if metric == "f1":
        return float(m.f1_score(labels, predicted, average="macro"))
    if metric == "r2":
        return float(m.r2_score(labels, predicted))
    if metric == "mae":
        return float(m.mean_absolute_error(labels, predicted))
    return float(m.mean_squared_error(labels, predicted) ** 0.5)


@flow(name="champion-challenger")
def champion_challenger(
    model_name: str,
    holdout_uri: str,
    target_column: str,
    metric: str = "accuracy",
    to: str = "champion",
    min_score: float | None = None,
    margin: float = 0.0,
    require_approval: bool = False,
) -> PromotionResult | None:
    """Promote the newest version of ``model_name`` to ``to`` if it wins on held-out data.

    Args:
        model_name: the registered model.
        holdout_uri: held-out data (CSV or Parquet), never seen in training.
        target_column: the label column in it.
        metric: accuracy, f1 or r2 (higher is better), rmse or mae (lower is better).
        to: the alias (``champion``) or stage (``Production``) to promote to.
        min_score: also require this score (a floor for accuracy/f1/r2, a ceiling for rmse/mae).
        margin: how much better than the champion the challenger must be.
        require_approval: pause for a reviewer's approval in the Prefect UI.

    Returns:
        The promotion, or ``None`` when the newest version already holds ``to``.

    Raises:
        PromotionRefused: the challenger lost (the flow run fails, and says why).
    """
    if metric not in METRICS:
        raise InvalidParameter(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    higher_is_better = METRICS[metric]
    client = RegistryClient()
    challenger = client.get_model_version_by_alias(model_name, "latest")
    champion = _holder(client, model_name, to)
    if champion is not None and champion.version == challenger.version:
        return None
    features, labels = load_holdout(holdout_uri, target_column)
    key = f"holdout_{metric}"
    evaluations = {
        challenger.version: {
            key: score(f"models:/{model_name}/{challenger.version}", features, labels, metric)
        }
    }
    if champion is not None:
        evaluations[champion.version] = {
            key: score(f"models:/{model_name}/{champion.version}", features, labels, metric)
        }
    gates = [beats_champion(key, margin=margin, higher_is_better=higher_is_better)]
    if min_score is not None:
        floor = metric_at_least(key, min_score) if higher_is_better else _at_most(key, min_score)
        gates.insert(0, floor)
    return promote_model(
        model_name,
        challenger.version,
        to=to,
        gates=gates,
        evaluations=evaluations,
        require_approval=require_approval,
        reason=f"champion/challenger on {holdout_uri} ({metric})",
    )


def _holder(client: RegistryClient, name: str, to: str) -> Any:
    try:
        if is_stage(to):
            return client.store.get_latest_version(name, to)
        return client.get_model_version_by_alias(name, to)
    except ResourceNotFound:
        return None


def _at_most(key: str, ceiling: float) -> Any:
    """A gate for losses: the challenger's ``key`` must not exceed ``ceiling``."""

    def gate(ctx: Any) -> bool:
        value = ctx.metric(ctx.candidate, key)
        return value is not None and value <= ceiling

    gate.__name__ = gate.__qualname__ = f"metric_at_most({key!r}, {ceiling:g})"
    return gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--holdout", required=True, help="held-out CSV or Parquet")
    parser.add_argument("--target-column", required=True)
    parser.add_argument("--metric", default="accuracy", choices=sorted(METRICS))
    parser.add_argument("--to", default="champion", help="an alias or a stage")
    parser.add_argument("--min-score", type=float)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--require-approval", action="store_true")
    args = parser.parse_args()
    result = champion_challenger(
        args.model_name,
        args.holdout,
        args.target_column,
        args.metric,
        args.to,
        args.min_score,
        args.margin,
        args.require_approval,
    )
    if result is None:
        print(f"The newest version of {args.model_name} already holds {args.to}")
    else:
        print(f"{result.name} version {result.version} now holds {result.target}")


if __name__ == "__main__":
    main()
