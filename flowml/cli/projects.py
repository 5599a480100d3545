"""``flowml run`` (as ``mlflow run``) and ``flowml projects show|deploy``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._output import OutputOption, emit

app = App(name="projects", help="Inspect projects and serve them as scheduled Prefect deployments.")

EntryPointOpt = Annotated[str, Parameter(name=["--entry-point", "-e"], help="Entry point name.")]
ParamsOpt = Annotated[
    list[str] | None,
    Parameter(
        name=["--param-list", "-P"],
        help="A parameter as key=value; repeat for more. Undeclared ones become --key value.",
        negative=(),
    ),
]
VersionOpt = Annotated[
    str | None, Parameter(name=["--version", "-v"], help="Git branch, tag or commit.")
]
EnvManagerOpt = Annotated[
    str | None,
    Parameter(
        name=["--env-manager"],
        help="local, virtualenv or conda (default: from the project's environment file).",
    ),
]
ExperimentNameOpt = Annotated[
    str | None, Parameter(name=["--experiment-name"], help="Experiment name (created if missing).")
]
ExperimentIdOpt = Annotated[str | None, Parameter(name=["--experiment-id"], help="Experiment id.")]


def run_project(
    uri: str = ".",
    /,
    *,
    entry_point: EntryPointOpt = "main",
    param_list: ParamsOpt = None,
    version: VersionOpt = None,
    env_manager: EnvManagerOpt = None,
    experiment_name: ExperimentNameOpt = None,
    experiment_id: ExperimentIdOpt = None,
) -> int:
    """Run a project's entry point as a tracked Prefect flow run (like ``mlflow run``).

    Args:
        uri: Project directory or git URL, optionally with #subdirectory.
    """
    from flowml.projects.params import parse_key_values
    from flowml.projects.runner import run

    result = run(
        uri,
        entry_point,
        parse_key_values(param_list or []),
        version=version,
        env_manager=env_manager,
        experiment=experiment_name,
        experiment_id=experiment_id,
    )
    print(f"Run {result.run_id} {result.status} (experiment {result.experiment_id})")
    return 0


@app.command(name="show")
def show(
    uri: str = ".",
    /,
    *,
    version: VersionOpt = None,
    output: OutputOption = "table",
) -> None:
    """List a project's entry points and their parameters.

    Args:
        uri: Project directory or git URL, optionally with #subdirectory.
    """
    from flowml.projects.sources import fetch_project
    from flowml.projects.spec import load_project

    with fetch_project(uri, version) as source:
        project = load_project(source.work_dir)
    rows, records = [], []
    for entry in project.entry_points.values():
        params = [
            f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default!r}")
            for p in entry.parameters.values()
        ]
        rows.append([entry.name, ", ".join(params), entry.command])
        records.append(
            {
                "name": entry.name,
                "command": entry.command,
                "parameters": [p.model_dump() for p in entry.parameters.values()],
            }
        )
    title = f"Project {project.name} ({project.env_type})"
    emit(output, title, ["entry point", "parameters", "command"], rows, records)


@app.command(name="deploy")
def deploy(
    uri: str = ".",
    /,
    *,
    name: Annotated[str, Parameter(name=["--name", "-n"], help="Deployment name.")],
    entry_point: EntryPointOpt = "main",
    cron: Annotated[str | None, Parameter(help='Cron schedule, e.g. "0 3 * * *".')] = None,
    interval: Annotated[float | None, Parameter(help="Interval schedule, in seconds.")] = None,
    timezone: Annotated[str | None, Parameter(help="Schedule time zone (default UTC).")] = None,
    param_list: ParamsOpt = None,
    version: VersionOpt = None,
    env_manager: EnvManagerOpt = None,
    experiment_name: ExperimentNameOpt = None,
    experiment_id: ExperimentIdOpt = None,
    tag: Annotated[
        list[str] | None, Parameter(help="Prefect tag; repeat for more.", negative=())
    ] = None,
    concurrency_limit: Annotated[
        int | None, Parameter(help="At most this many runs at once (later runs wait).")
    ] = None,
) -> None:
    """Serve a project's entry point as a scheduled Prefect deployment (blocks until Ctrl-C).

    Every scheduled run fetches the project again, so a git branch is followed.

    Args:
        uri: Project directory or git URL, optionally with #subdirectory.
    """
    from flowml.projects.deploy import serve
    from flowml.projects.params import parse_key_values

    serve(
        uri,
        entry_point,
        name=name,
        cron=cron,
        interval=interval,
        timezone=timezone,
        parameters=parse_key_values(param_list or []),
        version=version,
        env_manager=env_manager,
        experiment=experiment_name,
        experiment_id=experiment_id,
        tags=tag,
        concurrency_limit=concurrency_limit,
    )
