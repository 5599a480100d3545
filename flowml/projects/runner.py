"""Run a project's entry point as a Prefect flow run, tracked as one flowml run.

The flow is named after the project and each flow run ``<entry point>-<two words>``, a name
its tracked run shares (with the flow run's Prefect tags and deployment). Its body
fetches the project, resolves the parameters, creates the tracked run (parameters logged,
MLflow's project tags set), prepares the environment and runs the command, streaming every
output line into the Prefect run logs. The command gets ``FLOWML_TRACKING_URI``,
``FLOWML_RUN_ID`` and ``FLOWML_EXPERIMENT_ID``, so ``flowml.log_metric`` in the script logs
into that run; with a tracking server (``http(s)://``) it also gets ``MLFLOW_TRACKING_URI``,
``MLFLOW_RUN_ID`` and ``MLFLOW_EXPERIMENT_ID``, so an unchanged MLflow script's
``mlflow.log_*`` calls log into the same run through the server. Exit code 0 ends the run
FINISHED, any other FAILED (and the flow run fails); an interruption (Ctrl-C, the Prefect
runner's cancellation signal) stops the command's whole process group and ends the run
KILLED. The run then publishes the ``flowml.run.finished`` event and artifacts of a
tracked flow (`flowml.projects.monitor`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flowml._prefect_local import allow_slow_local_start
from flowml.projects import monitor
from flowml.projects.envs import get_env_manager
from flowml.projects.errors import ProjectRunFailed
from flowml.projects.params import build_command, resolve_parameters
from flowml.projects.process import run_streaming
from flowml.projects.signature import flow_arguments, typed_function
from flowml.projects.sources import ProjectSource, absolute_uri, fetch_project
from flowml.projects.spec import EntryPoint, Project, load_project
from flowml.settings import get_settings
from flowml.tracking import tags as systags
from flowml.tracking.entities import Param, RunStatus
from flowml.tracking.owner import current_owner

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import FlowStateHook

    from flowml.tracking.client import TrackingClient

__all__ = ["ProjectRun", "as_flow", "mlflow_env", "run"]

PROJECT_ENTRY_POINT_TAG = "mlflow.project.entryPoint"
PROJECT_ENV_TAG = "mlflow.project.env"
PROJECT_BACKEND_TAG = "mlflow.project.backend"
# Tracking stores take at most this many params per batch (MLflow's limit).
_PARAMS_PER_BATCH = 100
_BANNED_FLOW_NAME_CHARS = "/%&><"


@dataclass(frozen=True)
class ProjectRun:
    """The outcome of one project run.

    Attributes:
        run_id: The tracked run.
        experiment_id: Its experiment.
        status: ``FINISHED`` (``run`` raises for the others).
        exit_code: The command's exit code.
        flow_run_id: The Prefect flow run.
        entry_point: The entry point that ran.
    """

    run_id: str
    experiment_id: str
    status: str
    exit_code: int
    flow_run_id: str | None
    entry_point: str


@dataclass(frozen=True)
class _Config:
    """Everything the flow body needs; picklable, since `serve` ships flows to subprocesses."""

    uri: str
    entry_point: str
    version: str | None
    env_manager: str | None
    experiment: str | None
    experiment_id: str | None
    tracking_uri: str | None
    # Set by `run`, which has already fetched the project; deployments fetch on every run.
    source: ProjectSource | None = None


def as_flow(
    uri: str,
    entry_point: str = "main",
    *,
    version: str | None = None,
    env_manager: str | None = None,
    experiment: str | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
) -> Flow[..., ProjectRun]:
    """The Prefect flow that runs ``entry_point`` of the project at ``uri``.

    The flow's parameters are the entry point's, typed from the MLproject (plus an
    ``extra_parameters`` mapping), so the Prefect UI shows and validates them. A git project
    is fetched again at each flow run: a deployment follows its branch.

    Args:
        uri: A project directory or git URL, optionally with ``#subdirectory``.
        entry_point: The entry point (or a ``.py``/``.sh`` file of the project).
        version: Git branch, tag or commit.
        env_manager: ``local``, ``virtualenv`` or ``conda``; by default from the project.
        experiment: Name of the experiment to log into (created when missing).
        experiment_id: Id of the experiment to log into (wins over ``experiment``).
        tracking_uri: The tracking store (default: ``FLOWML_TRACKING_URI``).

    Returns:
        The flow; calling it runs the project and returns a `ProjectRun`.

    Raises:
        InvalidParameter: Unknown entry point or env manager, or a malformed project.
        ExecutionError: The project could not be fetched.

    Example:
        >>> train = flowml.projects.as_flow("flows/example_project", "train")
        >>> result = train(n_estimators=50)
        >>> result.status
        'FINISHED'
    """
    config = _Config(
        absolute_uri(uri), entry_point, version, env_manager, experiment, experiment_id,
        tracking_uri,
    )  # fmt: skip
    with fetch_project(config.uri, version) as source:
        project = load_project(source.work_dir)
        entry = project.get_entry_point(entry_point)
        get_env_manager(env_manager, project, get_settings().home / "envs")
    return _build_flow(project, entry, config)


def mlflow_env(tracking_uri: str, run_id: str, experiment_id: str) -> dict[str, str]:
    """MLflow's variables pointing an MLflow script at the project's run, for a server URI.

    MLflow's client speaks REST only to a server: a database URI is flowml's schema, not
    MLflow's, so nothing is set for one (``mlflow.log_*`` would log elsewhere, as it would
    without flowml).

    Args:
        tracking_uri: the project run's tracking URI.
        run_id: the project run.
        experiment_id: its experiment.

    Returns:
        ``MLFLOW_TRACKING_URI``, ``MLFLOW_RUN_ID`` and ``MLFLOW_EXPERIMENT_ID`` for an
        ``http(s)://`` URI, else nothing.

    Example:
        >>> mlflow_env("http://127.0.0.1:5000", "4f1c...", "1")["MLFLOW_RUN_ID"]
        '4f1c...'
    """
    if not tracking_uri.lower().startswith(("http://", "https://")):
        return {}
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
    }


def run(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    *,
    version: str | None = None,
    env_manager: str | None = None,
    experiment: str | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
) -> ProjectRun:
    """Run an entry point of a project as a Prefect flow run and wait for it.

    Parameters are checked (required ones present, types, local paths existing) and the
    environment manager's tools looked for before the flow run starts, so a bad call
    creates nothing.

    Args:
        uri: A project directory or git URL, optionally with ``#subdirectory``.
        entry_point: The entry point (or a ``.py``/``.sh`` file of the project).
        parameters: Parameter values (strings are converted to the declared types);
            undeclared ones are appended to the command as ``--key value``.
        version: Git branch, tag or commit.
        env_manager: ``local``, ``virtualenv`` or ``conda``; by default from the project.
        experiment: Name of the experiment to log into (created when missing).
        experiment_id: Id of the experiment to log into (wins over ``experiment``).
        tracking_uri: The tracking store (default: ``FLOWML_TRACKING_URI``).

    Returns:
        The finished run.

    Raises:
        InvalidParameter: Unknown entry point or env manager, a missing or mistyped
            parameter, a missing local path.
        EnvironmentUnavailable: conda, Docker or the requested Python is missing.
        ProjectRunFailed: The command exited non-zero (the run is FAILED).
        ExecutionError: Fetching the project or building its environment failed.
        KeyboardInterrupt: The run was interrupted (the run is KILLED).

    Example:
        >>> flowml.projects.run("flows/example_project", "train", {"n_estimators": 50})
        ProjectRun(run_id='...', status='FINISHED', ...)
    """
    config = _Config(
        absolute_uri(uri), entry_point, version, env_manager, experiment, experiment_id,
        tracking_uri,
    )  # fmt: skip
    with fetch_project(config.uri, version) as source:
        project = load_project(source.work_dir)
        entry = project.get_entry_point(entry_point)
        checked = resolve_parameters(entry, parameters, storage_dir=None)
        get_env_manager(env_manager, project, get_settings().home / "envs").check(project)
        flow = _build_flow(project, entry, replace(config, source=source))
        return flow(**flow_arguments(entry, checked.declared, checked.extra))


def flow_name(project: Project) -> str:
    """The Prefect flow name for ``project`` (characters Prefect refuses become ``-``)."""
    name = project.name
    for char in _BANNED_FLOW_NAME_CHARS:
        name = name.replace(char, "-")
    return name


def _build_flow(project: Project, entry: EntryPoint, config: _Config) -> Flow[..., ProjectRun]:
    from prefect import flow

    allow_slow_local_start()

    def body(parameters: dict[str, Any]) -> ProjectRun:
        return _execute(config, parameters)

    summary = f"Run entry point {entry.name!r} of the project {project.name!r} ({config.uri})."
    function = typed_function(entry, body, name=f"{flow_name(project)}_{entry.name}", doc=summary)
    # The hooks close a run whose process was killed: they run in Prefect's runner.
    # Prefect's FlowStateHook protocol asks for a __name__, which a partial lacks; Prefect
    # names a partial hook after its function.
    killed = [
        cast(
            "FlowStateHook[..., Any]",
            functools.partial(monitor.on_killed, tracking_uri=config.tracking_uri),
        )
    ]
    return flow(
        name=flow_name(project),
        flow_run_name=monitor.RunName(entry.name),
        description=summary,
        validate_parameters=True,
        on_cancellation=killed,
        on_crashed=killed,
    )(function)


def _execute(config: _Config, parameters: dict[str, Any]) -> ProjectRun:
    from prefect import get_run_logger
    from prefect.context import get_run_context

    from flowml.tracking.client import TrackingClient

    logger = get_run_logger()
    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    assert flow_run is not None
    flow_run_id = str(flow_run.id)
    settings = get_settings()
    tracking_uri = config.tracking_uri or settings.resolved_tracking_uri
    with (
        _project_source(config) as source,
        tempfile.TemporaryDirectory(prefix="flowml-params-") as storage,
    ):
        project = load_project(source.work_dir)
        entry = project.get_entry_point(config.entry_point)
        resolved = resolve_parameters(entry, parameters, storage_dir=Path(storage))
        manager = get_env_manager(config.env_manager, project, settings.home / "envs")
        manager.check(project)

        client = TrackingClient(tracking_uri)
        try:
            experiment_id = _experiment_id(client, config)
            run_id = _start_run(client, experiment_id, source, entry, manager.name, flow_run)
            params = [Param(k, v) for k, v in resolved.logged.items()]
            for start in range(0, len(params), _PARAMS_PER_BATCH):
                client.log_batch(run_id, params=params[start : start + _PARAMS_PER_BATCH])
            logger.info("Tracked run %s in experiment %s", run_id, experiment_id)

            status, code = RunStatus.FAILED, -1
            try:
                environment = manager.prepare(project, logger.info)
                command = build_command(entry, resolved)
                logger.info("Running: %s", command.display)
                child_env = {
                    **os.environ,
                    **command.env,  # the parameter values the command refers to
                    "FLOWML_TRACKING_URI": tracking_uri,
                    "FLOWML_RUN_ID": run_id,
                    "FLOWML_EXPERIMENT_ID": experiment_id,
                    "PYTHONUNBUFFERED": "1",  # so the output streams line by line
                    **mlflow_env(tracking_uri, run_id, experiment_id),
                }
                launch = environment.launch(command.command, source.work_dir, child_env)
                code = run_streaming(launch, logger.info)
                status = RunStatus.FINISHED if code == 0 else RunStatus.FAILED
                if code != 0:
                    message = f"Entry point {entry.name!r} exited with code {code}"
                    client.log_batch(run_id, tags=monitor.error_tags("ProjectRunFailed", message))
            except Exception as exc:
                status = RunStatus.FAILED
                client.log_batch(run_id, tags=monitor.error_tags(type(exc).__name__, str(exc)))
                raise
            except BaseException:
                # Ctrl-C, Prefect's termination signal, a cancelled task: the command was
                # stopped by run_streaming before this propagates.
                status = RunStatus.KILLED
                logger.warning("Interrupted: the command was stopped and run %s KILLED", run_id)
                raise
            finally:
                client.set_terminated(run_id, status)
                monitor.publish_end(client, run_id, flow_name(project), flow_run_id)
        finally:
            client.close()
    if code != 0:
        raise ProjectRunFailed(
            f"Entry point {entry.name!r} of {project.name!r} exited with code {code}; "
            f"run {run_id} is FAILED.",
            run_id=run_id,
            exit_code=code,
        )
    return ProjectRun(run_id, experiment_id, status, code, flow_run_id, entry.name)


def _project_source(config: _Config) -> contextlib.AbstractContextManager[ProjectSource]:
    if config.source is not None:
        return contextlib.nullcontext(config.source)
    return fetch_project(config.uri, config.version)


def _experiment_id(client: TrackingClient, config: _Config) -> str:
    from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID

    if config.experiment_id is not None:
        return client.get_experiment(config.experiment_id).experiment_id
    if config.experiment is None:
        return get_settings().experiment_id or DEFAULT_EXPERIMENT_ID
    return client.get_or_create_experiment(config.experiment).experiment_id


def _start_run(
    client: TrackingClient,
    experiment_id: str,
    source: ProjectSource,
    entry: EntryPoint,
    env_manager: str,
    flow_run: FlowRun,
) -> str:
    from flowml.tracking.fluent import active_run

    tags = {
        systags.SOURCE_NAME: source.source_name,
        systags.SOURCE_TYPE: systags.SOURCE_TYPE_PROJECT,
        PROJECT_ENTRY_POINT_TAG: entry.name,
        PROJECT_ENV_TAG: env_manager,
        PROJECT_BACKEND_TAG: "prefect",
        systags.PREFECT_FLOW_RUN_ID: str(flow_run.id),
        **monitor.run_tags(flow_run),
    }
    if source.git_commit:
        tags[systags.GIT_COMMIT] = source.git_commit
    if source.git_repo_url:
        tags[systags.GIT_REPO_URL] = source.git_repo_url
    if source.git_branch:
        tags[systags.GIT_BRANCH] = source.git_branch
    # Inside an active run of the same store (a tracked flow calling a project), nest under it.
    parent = active_run()
    parent_id = (
        parent.info.run_id if parent and parent.client.tracking_uri == client.tracking_uri else None
    )
    run = client.create_run(
        experiment_id,
        tags=tags,
        run_name=flow_run.name,
        parent_run_id=parent_id,
        # A retried flow run resumes its tracked run instead of starting another.
        run_key=monitor.run_key(flow_run.id),
    )
    if run.info.status != RunStatus.RUNNING:
        client.update_run(run.info.run_id, status=RunStatus.RUNNING)
    if run.data.tags.get(systags.OWNER) != current_owner():
        # A resumed run belongs to this process now, not to the one that started it (and
        # may have died): `flowml runs gc` must watch this one.
        client.set_tag(run.info.run_id, systags.OWNER, current_owner())
    return run.info.run_id
