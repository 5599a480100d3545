"""``flowml experiments list|create|delete|restore|rename``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._clients import tracking_client
from flowml.cli._output import OutputOption, emit, format_ms, print_json

app = App(name="experiments", help="Create, list, delete and restore experiments.")


@app.command(name="list")
def list_experiments(
    *,
    view: Annotated[str, Parameter(help="active, deleted or all")] = "active",
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    output: OutputOption = "table",
) -> None:
    """List experiments."""
    from flowml.exceptions import InvalidParameter
    from flowml.tracking.entities import ViewType

    views = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
    if view not in views:
        raise InvalidParameter(f"--view must be one of {', '.join(views)}, got {view!r}")
    experiments = list(tracking_client().search_experiments(views[view], filter_string=filter))
    emit(
        output,
        "Experiments",
        ["id", "name", "lifecycle", "artifact location", "created"],
        [
            [
                e.experiment_id,
                e.name,
                e.lifecycle_stage,
                e.artifact_location,
                format_ms(e.creation_time),
            ]
            for e in experiments
        ],
        [
            {
                "experiment_id": e.experiment_id,
                "name": e.name,
                "lifecycle_stage": e.lifecycle_stage,
                "artifact_location": e.artifact_location,
                "tags": e.tags,
                "creation_time": e.creation_time,
                "last_update_time": e.last_update_time,
            }
            for e in experiments
        ],
    )


@app.command
def create(
    name: str,
    *,
    artifact_location: str | None = None,
    output: OutputOption = "table",
) -> None:
    """Create an experiment and print its id."""
    experiment_id = tracking_client().create_experiment(name, artifact_location)
    if output == "json":
        print_json({"experiment_id": experiment_id, "name": name})
    else:
        print(f"Created experiment {name!r} with id {experiment_id}")


@app.command
def delete(experiment_id: str) -> None:
    """Move an experiment (and its runs) to the deleted stage."""
    tracking_client().delete_experiment(experiment_id)
    print(f"Deleted experiment {experiment_id}")


@app.command
def restore(experiment_id: str) -> None:
    """Bring a deleted experiment (and its runs) back."""
    tracking_client().restore_experiment(experiment_id)
    print(f"Restored experiment {experiment_id}")


@app.command
def rename(experiment_id: str, new_name: str) -> None:
    """Rename an experiment."""
    tracking_client().rename_experiment(experiment_id, new_name)
    print(f"Renamed experiment {experiment_id} to {new_name!r}")
