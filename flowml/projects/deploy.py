"""Schedule a project: its entry point as a Prefect deployment, served by this process.

The deployment's flow fetches the project again at every run, so a deployment of a git
repository's branch retrains on whatever the branch holds when the schedule fires. Its
entrypoint is a small generated module under ``$FLOWML_HOME/deployments`` that rebuilds the
flow, so ``prefect.serve`` (or a process worker on this machine) can load it like any other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowml.projects.params import validate_parameters
from flowml.projects.runner import as_flow
from flowml.projects.signature import flow_arguments
from flowml.projects.sources import absolute_uri, fetch_project
from flowml.projects.spec import load_project
from flowml.settings import get_settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

__all__ = ["serve", "to_deployment"]


def to_deployment(
    uri: str,
    entry_point: str = "main",
    *,
    name: str,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    timezone: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    version: str | None = None,
    env_manager: str | None = None,
    experiment: str | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
    tags: Iterable[str] | None = None,
    description: str | None = None,
    concurrency_limit: int | None = None,
) -> RunnerDeployment:
    """A Prefect deployment of a project's entry point, with an optional schedule.

    Args:
        uri: A project directory or git URL, optionally with ``#subdirectory``.
        entry_point: The entry point.
        name: The deployment's name.
        cron: A cron schedule, e.g. ``"0 3 * * *"``.
        interval: Or an interval schedule (seconds or a ``timedelta``).
        timezone: The schedule's time zone (default UTC).
        parameters: Default parameter values of the deployment's runs (checked against the
            MLproject; required parameters without one must be given per run).
        version: Git branch, tag or commit to follow.
        env_manager: ``local``, ``virtualenv`` or ``conda``; by default from the project.
        experiment: Experiment name for the runs.
        experiment_id: Experiment id for the runs.
        tracking_uri: The tracking store.
        tags: Prefect tags of the deployment.
        description: Shown in Prefect (default: the flow's description).
        concurrency_limit: At most this many of the deployment's runs at once (Prefect's
            deployment concurrency limit; later runs wait). ``None``: no limit.

    Returns:
        The deployment, to pass to `prefect.serve` (or use `serve`).

    Raises:
        InvalidParameter: Unknown entry point, bad defaults, or both cron and interval.

    Example:
        >>> nightly = to_deployment("flows/example_project", "train", name="nightly",
        ...                         cron="0 3 * * *")
        >>> prefect.serve(nightly)
    """
    from flowml.exceptions import InvalidParameter, InvalidState

    if concurrency_limit is not None and concurrency_limit < 1:
        raise InvalidParameter(f"concurrency_limit must be >= 1, got {concurrency_limit}.")
    if cron is not None and interval is not None:
        raise InvalidParameter("A deployment takes a cron or an interval schedule, not both.")
    flow = as_flow(
        uri,
        entry_point,
        version=version,
        env_manager=env_manager,
        experiment=experiment,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
    )
    defaults: dict[str, Any] = {}
    if parameters:
        with fetch_project(uri, version) as source:
            entry = load_project(source.work_dir).get_entry_point(entry_point)
        # Only what was given: the MLproject's own defaults live in the flow's signature.
        given = {k: v for k, v in parameters.items() if v is not None}
        declared, extra = validate_parameters(entry, given)
        declared = {k: v for k, v in declared.items() if k in given}
        defaults = flow_arguments(entry, declared, extra)
    schedule: dict[str, Any] = {}
    try:
        if cron is not None or interval is not None:
            from prefect.schedules import Cron, Interval

            if cron is not None:
                schedule["schedule"] = Cron(cron, timezone=timezone or "UTC")
            elif interval is not None:
                every = interval if isinstance(interval, timedelta) else timedelta(seconds=interval)
                schedule["schedule"] = Interval(every, timezone=timezone or "UTC")
        deployment = flow.to_deployment(
            name=name,
            parameters=defaults,
            tags=list(tags or []),
            description=description,
            concurrency_limit=concurrency_limit,
            **schedule,
        )
    except ValueError as exc:  # a bad cron string, time zone or deployment name
        raise InvalidParameter(f"Cannot build deployment {name!r}: {exc}") from exc
    from prefect.deployments.runner import RunnerDeployment

    if not isinstance(deployment, RunnerDeployment):
        # Inside a running event loop Prefect returns the coroutine of its async variant.
        deployment.close()
        raise InvalidState("to_deployment is synchronous: call it outside a running event loop")
    options = {
        "version": version,
        "env_manager": env_manager,
        "experiment": experiment,
        "experiment_id": experiment_id,
        "tracking_uri": tracking_uri,
    }
    deployment.entrypoint = _write_entrypoint(flow.name, name, uri, entry_point, options)
    return deployment


def _write_entrypoint(
    flow_name: str, deployment_name: str, uri: str, entry_point: str, options: dict[str, Any]
) -> str:
    """Write a module that rebuilds the flow, and return it as the deployment's entrypoint.

    The flow is built at run time from the MLproject, so no module of the user's defines it;
    Prefect's runner (and a process worker on this machine) load a deployment's flow by
    importing its entrypoint, so flowml writes one under ``$FLOWML_HOME/deployments``.
    """
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    source = (
        f'"""Entrypoint of the Prefect deployment {flow_name}/{deployment_name}, written by '
        'flowml.projects.to_deployment."""\n\n'
        "from flowml.projects.runner import as_flow\n\n"
        f"flow = as_flow({absolute_uri(uri)!r}, {entry_point!r}, {arguments})\n"
    )
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{flow_name}-{deployment_name}").strip("-")
    digest = hashlib.sha256(f"{flow_name}/{deployment_name}".encode()).hexdigest()[:8]
    path = get_settings().home / "deployments" / f"{slug}-{digest}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return f"{path}:flow"


def serve(
    uri: str, entry_point: str = "main", *, name: str, **options: Any
) -> None:  # pragma: no cover - blocks until interrupted; the deployment itself is tested
    """Serve `to_deployment`'s deployment from this process until interrupted.

    Scheduled runs execute in subprocesses of this one (Prefect's runner); cancelling a run
    from Prefect stops its command and marks the tracked run KILLED.

    Args:
        uri: A project directory or git URL.
        entry_point: The entry point.
        name: The deployment's name.
        **options: Any other argument of `to_deployment`.
    """
    import prefect

    prefect.serve(to_deployment(uri, entry_point, name=name, **options))
