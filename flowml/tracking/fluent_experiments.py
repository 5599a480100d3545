"""The fluent experiment functions, with MLflow's names and signatures.

Each delegates to the fluent API's `TrackingClient` (the current tracking URI); the
experiment tag functions act on the current experiment (`flowml.set_experiment`'s, then
``FLOWML_EXPERIMENT_ID``, then the Default experiment), as MLflow's do.

Example:
    >>> exp_id = flowml.create_experiment("wine", tags={"team": "ml"})
    >>> flowml.get_experiment_by_name("wine").experiment_id == exp_id
    True
"""

from __future__ import annotations

from typing import Any

from flowml.tracking.entities import Experiment
from flowml.tracking.fluent import current_experiment_id, get_client

__all__ = [
    "create_experiment",
    "delete_experiment",
    "get_experiment",
    "get_experiment_by_name",
    "set_experiment_tag",
    "set_experiment_tags",
]


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment.

    Args:
        name: a unique name.
        artifact_location: where its runs keep artifacts (a path or any fsspec URL);
            default: a folder named after its id under ``FLOWML_ARTIFACT_ROOT``.
        tags: experiment tags (values are stored as strings).

    Returns:
        The new experiment's id.

    Raises:
        ResourceAlreadyExists: the name is taken (also by a deleted experiment).
        InvalidParameter: an empty name or a bad tag.

    Example:
        >>> experiment_id = flowml.create_experiment("churn", tags={"team": "risk"})
        >>> flowml.get_experiment(experiment_id).name
        'churn'
    """
    return get_client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with that id (deleted ones too).

    Raises:
        ResourceNotFound: no experiment has that id.

    Example:
        >>> flowml.get_experiment("0").name
        'Default'
    """
    return get_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with that name, or ``None``.

    Example:
        >>> experiment_id = flowml.create_experiment("churn")
        >>> flowml.get_experiment_by_name("churn").experiment_id == experiment_id
        True
        >>> flowml.get_experiment_by_name("no such experiment") is None
        True
    """
    return get_client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    """Mark an experiment and its runs deleted (restore with ``flowml experiments restore``).

    Raises:
        ResourceNotFound: no experiment has that id.
        InvalidParameter: the Default experiment, which cannot be deleted.

    Example:
        >>> experiment_id = flowml.create_experiment("scratch")
        >>> flowml.delete_experiment(experiment_id)
        >>> flowml.get_experiment(experiment_id).lifecycle_stage
        'deleted'
    """
    get_client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the current experiment (the value is stored as a string).

    Raises:
        InvalidParameter: a bad key or a value too long.

    Example:
        >>> experiment = flowml.set_experiment("churn")
        >>> flowml.set_experiment_tag("owner", "ann")
        >>> flowml.get_experiment(experiment.experiment_id).tags
        {'owner': 'ann'}
    """
    get_client().set_experiment_tag(current_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the current experiment (see `set_experiment_tag`).

    Example:
        >>> experiment = flowml.set_experiment("churn")
        >>> flowml.set_experiment_tags({"owner": "ann", "quarter": 3})
        >>> flowml.get_experiment(experiment.experiment_id).tags
        {'owner': 'ann', 'quarter': '3'}
    """
    client = get_client()
    experiment_id = current_experiment_id()
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)
