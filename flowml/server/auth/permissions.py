"""Permission levels and the two denial errors (401 and 403, MLflow's codes).

A user holds one level per experiment and per registered model; with no row for a
resource, the server's default level applies (``--default-permission``, READ unless set).
Levels are ordered: each includes everything below it.

| level | may |
|---|---|
| ``NO_PERMISSIONS`` | nothing (hides the resource from searches) |
| ``READ`` | read it, its runs, metrics, artifacts and versions |
| ``EDIT`` | also log to it: create runs, log values, upload artifacts, register versions |
| ``MANAGE`` | also delete and restore it, and grant permissions on it |

Admins may do everything, including the user and permission endpoints.
"""

from __future__ import annotations

from enum import IntEnum

from flowml.exceptions import FlowMLError, InvalidParameter

__all__ = ["PermissionDenied", "Permission", "Unauthenticated", "parse_permission"]


class Permission(IntEnum):
    """One level of access to one resource; compare with ``>=``."""

    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3


def parse_permission(value: str | None) -> Permission:
    """The level named ``value`` (MLflow's names, any case).

    Raises:
        InvalidParameter: not one of NO_PERMISSIONS, READ, EDIT, MANAGE.

    Example:
        >>> parse_permission("edit")
        <Permission.EDIT: 2>
    """
    try:
        return Permission[(value or "").strip().upper()]
    except KeyError:
        names = ", ".join(p.name for p in Permission)
        raise InvalidParameter(f"Invalid permission {value!r}: use one of {names}") from None


class Unauthenticated(FlowMLError):
    """The request carries no valid credentials (HTTP 401)."""

    error_code = "UNAUTHENTICATED"

    @property
    def http_status(self) -> int:
        return 401


class PermissionDenied(FlowMLError):
    """The authenticated user may not do this (HTTP 403)."""

    error_code = "PERMISSION_DENIED"

    @property
    def http_status(self) -> int:
        return 403
