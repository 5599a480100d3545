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

from prefect import flow

from flowml.evaluation import MetricThreshold
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry import RegistryClient, beats_champion
from flowml.registry.entities import is_stage
from flowml.tasks.evaluate import evaluate_model
from flowml.tasks.steps import PromotionResult, promote_model

# short name -> (MLflow's metric name, model type, whether higher is better)
METRICS = {
    "accuracy": ("accuracy_score", "classifier", True),
    "f1": ("f1_score", "classifier", True),
    "roc_auc": ("roc_auc", "classifier", True),
    "r2": ("r2_score", "regressor", True),
    "rmse": ("root_mean_squared_error", "regressor", False),
    "mae": ("mean_absolute_error", "regressor", False),
}


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

    The challenger is evaluated with `flowml.tasks.evaluate_model` (all the standard metrics,
    plots and a per-row table on the task's run), with the champion as the baseline on the
    same rows. The evaluation is the gate: the challenger must beat the champion on
    ``metric`` (by more than ``margin``) and reach ``min_score`` when given.

    Args:
        model_name: the registered model.
        holdout_uri: held-out data (CSV or Parquet), never seen in training.
        target_column: the label column in it.
        metric: accuracy, f1, roc_auc or r2 (higher is better), rmse or mae (lower is better).
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
    key, model_type, higher_is_better = METRICS[metric]
    client = RegistryClient()
    challenger = client.get_model_version_by_alias(model_name, "latest")
    champion = _holder(client, model_name, to)
    if champion is not None and champion.version == challenger.version:
        return None
    result = evaluate_model(
        f"models:/{model_name}/{challenger.version}",
        holdout_uri,
        targets=target_column,
        model_type=model_type,
        baseline_model=None if champion is None else f"models:/{model_name}/{champion.version}",
        dataset_name="holdout",
    )
    evaluations = {challenger.version: result.metrics}
    if champion is not None and result.baseline_metrics is not None:
        evaluations[champion.version] = result.baseline_metrics
    gates: list[Any] = [beats_champion(key, margin=margin, higher_is_better=higher_is_better)]
    if min_score is not None:
        floor = {key: MetricThreshold(threshold=min_score, greater_is_better=higher_is_better)}
        gates.insert(0, result.as_gate(floor))
    return promote_model(
        model_name,
        challenger.version,
        to=to,
        gates=gates,
        evaluations=evaluations,
        require_approval=require_approval,
        reason=f"champion/challenger on {holdout_uri} ({key})",
    )


def _holder(client: RegistryClient, name: str, to: str) -> Any:
    try:
        if is_stage(to):
            return client.store.get_latest_version(name, to)
        return client.get_model_version_by_alias(name, to)
    except ResourceNotFound:
        return None


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
