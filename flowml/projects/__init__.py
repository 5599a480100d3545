"""Projects: MLproject directories and git repositories run as tracked Prefect flows.

Example:
    >>> import flowml.projects
    >>> result = flowml.projects.run("flows/example_project", "train", {"n_estimators": 50})
    >>> nightly = flowml.projects.to_deployment(
    ...     "https://github.com/acme/models.git#iris", "train", name="nightly", cron="0 3 * * *"
    ... )

Names are loaded lazily: importing `flowml.projects` (or its spec and params modules) does not
import Prefect; the runner does when a flow is built.
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "EntryPoint": "flowml.projects.spec",
    "EnvironmentUnavailable": "flowml.projects.errors",
    "ExecutionError": "flowml.projects.errors",
    "ParameterSpec": "flowml.projects.spec",
    "Project": "flowml.projects.spec",
    "ProjectRun": "flowml.projects.runner",
    "ProjectRunFailed": "flowml.projects.errors",
    "ProjectSpecError": "flowml.projects.errors",
    "as_flow": "flowml.projects.runner",
    "load_project": "flowml.projects.spec",
    "run": "flowml.projects.runner",
    "serve": "flowml.projects.deploy",
    "to_deployment": "flowml.projects.deploy",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
