"""The API's routes, dispatched before Starlette's router.

Through Starlette's own stack a request crosses its error and exception middleware, then a
router that tries its 200 path patterns in order: ``runs/search`` is the 38th, the
artifact proxy's come after a hundred others, and that walk cost tens of microseconds per
request, as much as a small file's whole proxy work. `FastRoutes` takes the API's routes
(those under each API prefix) out of the app's own route list and finds a request's route
without the walk:

* a route with a fixed path (``/api/2.0/mlflow/runs/search``) is looked up by its path in
  a dict, unless a route before it in the app's list (one with path parameters) would
  also match that path, in which case that path is left to the router;
* the proxy's routes (``/mlflow-artifacts/...``, with path parameters) are tried in their
  order, and only for paths under the proxy.

Nothing is skipped but the walk and Starlette's exception plumbing:

* the matched request goes through the app's *own* middleware list (Host allow-list, body
  limit, CORS when configured, authentication), built a second time around `run_endpoint`;
* the routes are the app's `Route` objects, matched by their own ``matches`` (the same
  patterns, convertors and methods), and their endpoints are the same `api.json_route`
  and `api.guarded` handlers, so every permission rule, path check, size limit, denial
  log and error body is the one the router would have reached;
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
    """The API's routes among ``routes`` (those under one of ``prefixes``) and the
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
        self.exact = _fixed_paths(routes, tuple(f"{prefix}/" for prefix in prefixes))
        app: ASGIApp = run_endpoint
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        self.app = app

    def match(self, scope: Scope) -> bool:
        """Whether one of the routes fully matches this HTTP request; if so, its endpoint
        and path parameters are put in ``scope`` as Starlette's router would."""
        path = scope["path"]
        fixed = self.exact.get(path)
        if fixed is not None:
            candidates: Sequence[Route] = fixed
        elif path.startswith(self.starts):
            candidates = self.routes
        else:
            return False
        for route in candidates:
            found, child = route.matches(scope)
            if found is Match.FULL:
                scope.update(child)
                return True
        return False


def _fixed_paths(routes: Sequence[BaseRoute], starts: tuple[str, ...]) -> dict[str, list[Route]]:
    """The routes with a fixed path under ``starts``, by path, in the app's order. A path
    that an earlier route with parameters also matches (for one of the methods) is left
    out: the router would give it to that earlier route."""
    found: dict[str, list[Route]] = {}
    shadowed: set[str] = set()
    for index, route in enumerate(routes):
        if not isinstance(route, Route) or route.param_convertors:
            continue
        if not route.path.startswith(starts):
            continue
        for method in route.methods or ("GET",):
            scope = {"type": "http", "path": route.path, "method": method, "root_path": ""}
            if any(
                earlier.matches(scope)[0] is Match.FULL
                and not (isinstance(earlier, Route) and earlier.path == route.path)
                for earlier in routes[:index]
            ):
                shadowed.add(route.path)
        found.setdefault(route.path, []).append(route)
    return {path: found_routes for path, found_routes in found.items() if path not in shadowed}
