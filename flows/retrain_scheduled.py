"""Serve the wine training flow (flows/train.py) as a deployment that retrains on a schedule.

    python flows/retrain_scheduled.py                          # every day at 03:00
    python flows/retrain_scheduled.py --cron "*/30 * * * *"    # every 30 minutes

This process serves the deployment: it stays up and runs the flow at each scheduled time (or
when triggered: ``prefect deployment run 'train-wine/retrain-wine'``). Every run is tracked
like a manual run, with the deployment id in its tags. Serving needs a Prefect server to
hold the schedule: ``prefect server start`` and ``PREFECT_API_URL`` pointing at it.
"""

from __future__ import annotations

import argparse
from typing import Any

try:  # run as a script: flows/ is on sys.path
    from train import train_pipeline
except ImportError:  # imported from the repository root
    from flows.train import train_pipeline

DEFAULT_NAME = "retrain-wine"
DEFAULT_CRON = "0 3 * * *"


def build_deployment(
    name: str = DEFAULT_NAME,
    cron: str = DEFAULT_CRON,
    parameters: dict[str, Any] | None = None,
) -> Any:
    """The deployment of `train_pipeline` with a cron schedule (not started).

    Args:
        name: the deployment name.
        cron: when to retrain, as a cron expression.
        parameters: flow parameters for the scheduled runs (defaults otherwise).

    Returns:
        A ``prefect.deployments.runner.RunnerDeployment``; ``prefect.serve(it)`` runs it.
    """
    return train_pipeline.to_deployment(
        name=name,
        cron=cron,
        parameters=parameters or {},
        tags=["flowml", "retrain"],
        description="Retrain the wine models on a schedule; every run is tracked by flowml.",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--cron", default=DEFAULT_CRON)
    parser.add_argument("--n-estimators", type=int, default=100)
    args = parser.parse_args(argv)
    from prefect import serve

    serve(build_deployment(args.name, args.cron, {"n_estimators": args.n_estimators}))


if __name__ == "__main__":
    main()
