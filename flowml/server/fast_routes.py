"""The artifact proxy's routes, dispatched before Starlette's router.

Through Starlette's own stack a request crosses its error and exception middleware, then a
router that tries its 200 path patterns in order; the proxy's come after a hundred others,
and for a 10 KB file that walk cost about as much as the file work. `FastRoutes` picks the
proxy's routes (``/mlflow-artifacts/...`` under each API prefix) out of the app's own route
list, keeping their order, and matches a request against those few only.

Nothing is skipped but the walk and Starlette's exception plumbing:

* the matched request goes through the app's *own* middleware list (Host allow-list, body
  limit, CORS when configured, authentication), built a second time around `run_endpoint`;
* the routes are the app's `Route` objects, matched by their own ``matches`` (the same
  patterns, convertors and methods), and their endpoints are the same `api.guarded`
  handlers, so every permission rule, path check, size limit, denial log and error body is
  the one the router would have reached;
* a request they do not fully match (another method, a path outside them) goes through
  the whole app, which answers it as before (405, 404, CORS preflight).

Endpoints answer their own errors; anything that escapes is answered 500 by uvicorn, as
Starlette's error middleware would.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FastRoutes", "run_endpoint"]

PROXY_MARK = "/mlflow-artifacts/"


async def run_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """The innermost app of the fast stack: the endpoint `FastRoutes.match` put in the scope."""
    request = Request(scope, receive, send)
    response = await scope["endpoint"](request)
    await response(scope, receive, send)


class FastRoutes:
    """The proxy's routes among ``routes``, each under one of ``prefixes``, and the
    ``middleware`` stack (outermost first) their requests cross."""

    def __init__(
        self,
        routes: Sequence[BaseRoute],
        prefixes: Sequence[str],
        middleware: Sequence[Middleware],
    ) -> None:
        self.starts = tuple(f"{prefix}{PROXY_MARK}" for prefix in prefixes)
        self.routes = [
            route
            for route in routes
            if isinstance(route, Route) and route.path.startswith(self.starts)
        ]
        app: ASGIApp = run_endpoint
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        self.app = app

    def match(self, scope: Scope) -> bool:
        """Whether one of the routes fully matches this HTTP request; if so, its endpoint
        and path parameters are put in ``scope`` as Starlette's router would."""
        if not scope["path"].startswith(self.starts):
            return False
        for route in self.routes:
            found, child = route.matches(scope)
            if found is Match.FULL:
                scope.update(child)
                return True
        return False
