"""Retrain on a schedule: train (flows/train.py), then champion/challenger (flows/promote.py).

Each scheduled run trains and registers a new version of the ``wine`` model, scores it
against the current ``champion`` on the run's held-out split, and promotes it through the
gates when it wins (a refused promotion is recorded, not an error of the retraining).

    python flows/retrain_scheduled.py                          # every day at 03:00
    python flows/retrain_scheduled.py --cron "*/30 * * * *"    # every 30 minutes
    python flows/retrain_scheduled.py --concurrency-limit 2    # allow overlapping runs

This process serves the deployment: it stays up and runs the flow at each scheduled time (or
when triggered: ``prefect deployment run 'train-wine/retrain-wine'``). One run at a time by
default (Prefect's deployment concurrency limit): a retraining that outlasts its interval
makes the next one wait instead of training twice at once. Every run is tracked
like a manual run, with the deployment id in its tags. Serving needs a Prefect server to
hold the schedule: ``prefect server start`` and ``PREFECT_API_URL`` pointing at it.
"""

from __future__ import annotations

import argparse
from typing import Any

import flowml
from flowml.registry.errors import PromotionRefused

try:  # run as a script: flows/ is on sys.path
    from promote import champion_challenger
    from train import EXPERIMENT, train_pipeline
except ImportError:  # imported from the repository root
    from flows.promote import champion_challenger
    from flows.train import EXPERIMENT, train_pipeline

DEFAULT_NAME = "retrain-wine"
DEFAULT_CRON = "0 3 * * *"
DEFAULT_CONCURRENCY_LIMIT = 1


@flowml.tracked_flow(name="retrain-and-promote", experiment=EXPERIMENT)
def retrain_and_promote(
    n_estimators: int = 100, c: float = 1.0, to: str = "champion", margin: float = 0.0
) -> dict[str, Any]:
    """Train and register a new version, then promote it to ``to`` if it beats the holder.

    Returns:
        The training summary plus ``promoted`` (True/False) and, when refused, ``refusal``.
    """
    best = train_pipeline(n_estimators=n_estimators, c=c, registered_model_name=EXPERIMENT)
    try:
        result = champion_challenger(
            EXPERIMENT, best["holdout_uri"], "target", metric="accuracy", to=to, margin=margin
        )
        best["promoted"] = result is not None
    except PromotionRefused as refused:  # the audit trail and the artifact say why
        best["promoted"], best["refusal"] = False, str(refused)
    flowml.set_tag("promoted", str(best["promoted"]).lower())
    return best


def build_deployment(
    name: str = DEFAULT_NAME,
    cron: str = DEFAULT_CRON,
    parameters: dict[str, Any] | None = None,
    concurrency_limit: int | None = DEFAULT_CONCURRENCY_LIMIT,
) -> Any:
    """The deployment of `retrain_and_promote` with a cron schedule (not started).

    Args:
        name: the deployment name.
        cron: when to retrain, as a cron expression.
        parameters: flow parameters for the scheduled runs (defaults otherwise).
        concurrency_limit: at most this many runs at once (``None``: no limit).

    Returns:
        A ``prefect.deployments.runner.RunnerDeployment``; ``prefect.serve(it)`` runs it.
    """
    return retrain_and_promote.to_deployment(
        name=name,
        cron=cron,
        parameters=parameters or {},
        tags=["flowml", "retrain"],
        description="Retrain the wine model and promote it when it beats the champion.",
        concurrency_limit=concurrency_limit,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--cron", default=DEFAULT_CRON)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        default=DEFAULT_CONCURRENCY_LIMIT,
        help="at most this many runs at once; later ones wait (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.concurrency_limit < 1:
        parser.error("--concurrency-limit must be >= 1")
    from prefect import serve

    parameters = {"n_estimators": args.n_estimators}
    serve(build_deployment(args.name, args.cron, parameters, args.concurrency_limit))


if __name__ == "__main__":
    main()
