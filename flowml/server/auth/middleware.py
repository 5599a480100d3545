"""The security layers every request crosses, outermost first (pure ASGI).

1. `HostMiddleware`: the ``Host`` header must be on the allow-list, so a page on another
   site whose name was rebound to this server's address (DNS rebinding) is refused.
2. `BodyLimitMiddleware`: a declared ``Content-Length`` over the limit is refused with 413
   before any byte is read (the handlers count streamed bodies themselves).
3. CORS (Starlette's middleware), only when origins were configured.
4. `AuthMiddleware` (token auth only): ``Authorization: Bearer <token>`` (what MLflow's
   client sends for ``MLFLOW_TRACKING_TOKEN``) or Basic with the token as the password;
   the `User` goes into the request's state for `flowml.server.auth.guard.Guard`.

Every refusal is logged (`log_denial`) and answered with MLflow's error body:
``UNAUTHENTICATED`` (401), ``PERMISSION_DENIED`` (403) or ``BAD_REQUEST`` (413).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from flowml.server.auth.access import AuthSettings
from flowml.server.auth.guard import log_denial

__all__ = ["AuthMiddleware", "BodyLimitMiddleware", "HostMiddleware", "host_name"]

#: Paths answered without credentials (load balancers' probes).
PUBLIC_PATHS = frozenset({"/health", "/version"})
_UPLOAD_MARK = "/mlflow-artifacts/artifacts/"
#: One challenge per header: Chromium reads only the first challenge of a header, so
#: ``Bearer ..., Basic ...`` on one line would never open the browser's login prompt.
CHALLENGES = (
    (b"www-authenticate", b'Basic realm="flowml", charset="UTF-8"'),
    (b"www-authenticate", b'Bearer realm="flowml"'),
)


async def _reply(send: Send, status: int, code: str, message: str, extra: Any = ()) -> None:
    body = orjson.dumps({"error_code": code, "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without port or IPv6 brackets, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class HostMiddleware:
    """Refuse requests whose ``Host`` is not allowed (403, logged)."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.any = "*" in allowed_hosts
        self.allowed = tuple(host_name(h) for h in allowed_hosts)  # names: ports are ignored

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        name = host_name(host)
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any:
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not self.allows(host):
            reason = f"Host header {host!r} is not allowed"
            log_denial(None, scope["method"], scope["path"], reason)
            await _reply(
                send,
                403,
                "PERMISSION_DENIED",
                f"{reason}; start the server with --allowed-hosts naming it",
            )
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a declared body over the limit (uploads have their own, larger limit)."""

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = _header(scope, b"content-length")
            upload = scope["method"] == "PUT" and _UPLOAD_MARK in scope["path"]
            limit = self.upload_limit if upload else self.json_limit
            if declared is not None and declared.strip().isdigit() and int(declared) > limit:
                log_denial(None, scope["method"], scope["path"], f"body of {declared} bytes")
                await _reply(
                    send,
                    413,
                    "BAD_REQUEST",
                    f"Request body of {declared} bytes is over this server's limit of "
                    f"{limit} bytes",
                    [(b"connection", b"close")],
                )
                return
        await self.app(scope, receive, send)


def credentials(authorization: str | None) -> tuple[str | None, str] | None:
    """``(username or None, token)`` from a Bearer or Basic ``Authorization`` header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return None, value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        return (username, password) if sep and password else None
    return None


class AuthMiddleware:
    """Authenticate every request but `PUBLIC_PATHS`; 401 without valid credentials."""

    def __init__(self, app: ASGIApp, settings: AuthSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        found = credentials(_header(scope, b"authorization"))
        user = None
        why = ""
        if found is not None:
            username, token = found
            user, why = await run_in_threadpool(self.settings.store.check_token, token, username)
        if user is None:
            reason = (
                "Authentication required"
                if found is None
                else "The token is invalid, revoked, expired or not this user's"
            )
            logged = f"{reason} ({why})" if why else reason
            log_denial(found[0] if found else None, scope["method"], scope["path"], logged)
            await _reply(
                send,
                401,
                "UNAUTHENTICATED",
                f"{reason}: send 'Authorization: Bearer <token>' (set MLFLOW_TRACKING_TOKEN "
                "or FLOWML_TRACKING_TOKEN), or in a browser sign in with your user name and "
                "the token as the password; an admin creates tokens with "
                "`flowml server tokens create`",
                CHALLENGES,
            )
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)
