"""The server's security settings: auth mode, default permission, hosts, CORS, body limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.auth.permissions import parse_permission

__all__ = [
    "AUTH_MODES",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "LOOPBACK_HOSTS",
    "SecurityConfig",
]

AUTH_MODES = ("none", "token")
#: Host names a loopback-bound server answers to (DNS rebinding sends any other name).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: The largest single artifact upload (the proxy has no multipart upload yet).
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """How a server authenticates and what it accepts.

    Attributes:
        auth: ``none`` (loopback only) or ``token`` (service tokens, users, permissions).
        default_permission: the level a user holds on a resource without a permission row
            (NO_PERMISSIONS, READ, EDIT or MANAGE).
        allowed_hosts: the ``Host`` header values answered (``*``: any, ``*.example.com``:
            that domain's subdomains); ``None``: the loopback names.
        cors_allowed_origins: origins a browser may call the API from (none: CORS off).
        max_upload_bytes: the largest artifact upload accepted (413 beyond).

    Raises:
        InvalidParameter: an unknown auth mode or permission, or a non-positive limit.

    Example:
        >>> SecurityConfig(auth="token", allowed_hosts=("mlflow.example.com",)).auth
        'token'
    """

    auth: str = "none"
    default_permission: str = "READ"
    allowed_hosts: tuple[str, ...] | None = None
    cors_allowed_origins: tuple[str, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise InvalidParameter(
                f"Unknown auth mode {self.auth!r}: use one of {', '.join(AUTH_MODES)}"
            )
        parse_permission(self.default_permission)
        if self.max_upload_bytes <= 0:
            raise InvalidParameter(
                f"max_upload_bytes must be positive, got {self.max_upload_bytes}"
            )

    @property
    def hosts(self) -> tuple[str, ...]:
        """The effective Host allow-list."""
        return LOOPBACK_HOSTS if self.allowed_hosts is None else self.allowed_hosts

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SecurityConfig:
        hosts: Any = data.get("allowed_hosts")
        origins: Any = data.get("cors_allowed_origins") or ()
        limit: Any = data.get("max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES)
        return cls(
            auth=str(data.get("auth", "none")),
            default_permission=str(data.get("default_permission", "READ")),
            allowed_hosts=None if hosts is None else tuple(hosts),
            cors_allowed_origins=tuple(origins),
            max_upload_bytes=int(limit),
        )
