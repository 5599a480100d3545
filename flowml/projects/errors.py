"""Errors specific to running projects, rooted in `flowml.exceptions`::

    InvalidParameter
    └── ProjectSpecError        the MLproject (or python_env.yaml, conda.yaml) is malformed
    FlowMLError
    └── ExecutionError          fetching the source or preparing the environment failed
        ├── EnvironmentUnavailable   a required tool (conda, a Docker engine, a Python) is missing
        └── ProjectRunFailed         the entry point's command exited non-zero

Bad caller input (unknown entry point, missing or mistyped parameter) raises plain
`InvalidParameter`.
"""

from __future__ import annotations

from flowml.exceptions import FlowMLError, InvalidParameter

__all__ = [
    "EnvironmentUnavailable",
    "ExecutionError",
    "ProjectRunFailed",
    "ProjectSpecError",
]


class ProjectSpecError(InvalidParameter):
    """The project's MLproject file, or an environment file it names, is invalid."""


class ExecutionError(FlowMLError):
    """The project could not be fetched, prepared or executed."""


class EnvironmentUnavailable(ExecutionError):
    """The environment manager the project needs is not usable on this machine."""

    error_code = "INVALID_STATE"


class ProjectRunFailed(ExecutionError):
    """The entry point's command finished with a non-zero exit code.

    Attributes:
        run_id: The tracked run, marked FAILED.
        exit_code: The command's exit code (negative: killed by that signal).
    """

    def __init__(self, message: str, *, run_id: str, exit_code: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[object, ...]:
        # Prefect pickles a failed flow's exception into its state: keep the
        # keyword-only fields across that round trip.
        return (_rebuild_run_failed, (self.message, self.run_id, self.exit_code))


def _rebuild_run_failed(message: str, run_id: str, exit_code: int) -> ProjectRunFailed:
    return ProjectRunFailed(message, run_id=run_id, exit_code=exit_code)
