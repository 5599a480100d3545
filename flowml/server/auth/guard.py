"""Authorization at the endpoints: apply each route's `Rule`, log every denial.

The app keeps one `Guard` in ``app.state.guard`` when auth is on (``None`` otherwise).
`flowml.server.api.json_endpoint` runs a JSON handler through `Guard.call`; the streamed
routes (artifact proxy, logged-model files) pass `Guard.check_raw` first. Both run on a
worker thread (the checks read the database). The authenticated `User` was put in the
request's state by `flowml.server.auth.middleware.AuthMiddleware`. Handlers run inside a
registry `audit_context` naming that user, so the audit trail (and a model version's
``user_id``) records who made each change, not the server's OS user.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from flowml.registry.audit import audit_context
from flowml.server.auth.access import Access, AuthSettings
from flowml.server.auth.permissions import PermissionDenied, Unauthenticated
from flowml.server.auth.rules import RULES
from flowml.server.auth.store import User
from flowml.server.context import ServerContext
from flowml.server.wire import Fields

__all__ = ["Guard", "log_denial"]

_log = logging.getLogger("flowml.server.auth")


def log_denial(user: str | None, method: str, path: str, reason: str) -> None:
    """One line per refused request: who, what, why (never the credentials)."""
    _log.warning("denied user=%s %s %s: %s", user or "-", method, path, reason)


class Guard:
    """Checks requests against `RULES` for one app."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    def _access(self, request: Request) -> Access:
        user: User | None = request.scope.get("state", {}).get("user")
        if user is None:  # the middleware lets no such request through; be sure anyway
            raise Unauthenticated("Authentication required")
        return Access(self.settings, request.app.state.ctx, user)

    def call(
        self,
        request: Request,
        key: tuple[str, str, str],
        handler: Any,
        fields: Fields,
    ) -> dict[str, Any]:
        """Check, run ``handler`` (``handler(ctx, fields)``), filter its reply.

        Raises:
            PermissionDenied: the rule refused (logged), or no rule exists for ``key``.
        """
        ctx: ServerContext = request.app.state.ctx
        access = self._access(request)
        try:
            rule = RULES.get(key)
            if rule is None:  # closed table: an endpoint nobody classified is refused
                raise PermissionDenied(f"No permission rule covers {key[2]} {key[1]}")
            checked = rule.check(access, fields)
            if isinstance(checked, dict):
                return checked
            # Registry changes are audited under the authenticated user, not the server's.
            with audit_context(user_id=access.user.username):
                reply = handler(ctx, checked if checked is not None else fields)
            return reply if rule.after is None else rule.after(access, fields, reply)
        except PermissionDenied as exc:
            log_denial(access.user.username, request.method, request.url.path, exc.message)
            raise

    def run_admin(self, request: Request, handler: Any, fields: Fields) -> dict[str, Any]:
        """Run a user/permission endpoint's handler (``handler(access, fields)``)."""
        access = self._access(request)
        try:
            return dict(handler(access, fields))
        except PermissionDenied as exc:
            log_denial(access.user.username, request.method, request.url.path, exc.message)
            raise

    def check_raw(self, request: Request, key: tuple[str, str, str]) -> None:
        """The rule of a streamed route, on its path and query parameters."""
        fields = Fields.from_query(request.query_params.multi_items())
        if request.path_params:
            fields = fields.with_values(request.path_params)
        self.call(request, key, lambda ctx, f: {}, fields)
