"""The flowml exception tree.

Every error flowml raises on purpose derives from `FlowMLError` and carries an
MLflow-style `error_code` string, which maps to an HTTP status for servers::

    FlowMLError                      INTERNAL_ERROR           500
    ├── InvalidParameter             INVALID_PARAMETER_VALUE  400
    │   └── ArtifactPathError        INVALID_PARAMETER_VALUE  400
    ├── ResourceNotFound             RESOURCE_DOES_NOT_EXIST  404
    ├── ResourceAlreadyExists        RESOURCE_ALREADY_EXISTS  400
    ├── InvalidState                 INVALID_STATE            400
    ├── BadRequest                   BAD_REQUEST              400
    └── StoreError                   INTERNAL_ERROR           500

`InvalidParameter` also derives from `ValueError` and `ResourceNotFound` from
`LookupError`, so generic handlers keep working. Every error survives pickling with its
type, message, code and attributes, so it crosses process-pool and Dask workers as itself.
"""

from __future__ import annotations

__all__ = [
    "ArtifactPathError",
    "BadRequest",
    "FlowMLError",
    "InvalidParameter",
    "InvalidState",
    "ResourceAlreadyExists",
    "ResourceNotFound",
    "StoreError",
    "http_status_for",
]

_HTTP_STATUS = {
    "INTERNAL_ERROR": 500,
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "BAD_REQUEST": 400,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}


class FlowMLError(Exception):
    """Root of every error flowml raises on purpose."""

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take their facts as keyword-only arguments, which Exception's default
        # reduction (``cls(*args)``) cannot replay: rebuild without calling __init__, then
        # restore the attributes (message, error_code and each subclass's own).
        return (_rebuild, (type(self), self.args), self.__dict__)

    @property
    def http_status(self) -> int:
        return http_status_for(self.error_code)

    def to_dict(self) -> dict[str, str]:
        """The MLflow REST error body: ``{"error_code": ..., "message": ...}``."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidParameter(FlowMLError, ValueError):
    """A value given by the caller breaks a rule (name, size, type, grammar...)."""

    error_code = "INVALID_PARAMETER_VALUE"


class ArtifactPathError(InvalidParameter):
    """An artifact path would escape its run's artifact root."""


class ResourceNotFound(FlowMLError, LookupError):
    """The experiment, run, model or version asked for does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceAlreadyExists(FlowMLError):
    """Creating something whose unique name or key is already taken."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(FlowMLError):
    """The resource exists but its lifecycle forbids the operation (e.g. a deleted run)."""

    error_code = "INVALID_STATE"


class BadRequest(FlowMLError):
    """A malformed request (payload shape, content) that is not a single bad parameter."""

    error_code = "BAD_REQUEST"


class StoreError(FlowMLError):
    """The backing store failed in a way the caller cannot fix by changing arguments."""

    error_code = "INTERNAL_ERROR"


def _rebuild(cls: type[FlowMLError], args: tuple[object, ...]) -> FlowMLError:
    error = cls.__new__(cls, *args)
    error.args = args
    return error


def http_status_for(error_code: str) -> int:
    """The HTTP status MLflow's servers use for `error_code` (500 when unknown)."""
    return _HTTP_STATUS.get(error_code, 500)
