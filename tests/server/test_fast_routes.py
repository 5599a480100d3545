"""The API's fast path (`flowml.server.fast_routes`) answers exactly as the router.

Each request is sent twice to one in-process app: through the app itself (the fast path
for the proxy's routes) and through `Starlette.__call__` (the whole stack: error
middleware, security middleware, router). Status, headers, body, files written and denials
logged must be the same, and only the second may have crossed the router (Starlette's
router marks the scope with ``"router"``; the fast path puts the endpoint in it before the
middleware runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Match, Route

from flowml.server.app import API_PREFIXES, ServerApp, ServerConfig, create_app
from flowml.server.auth.config import SecurityConfig
from flowml.server.auth.store import AuthStore
from flowml.server.fast_routes import FastRoutes

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
LIMIT = 64 * 1024


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    scope: dict[str, Any] = field(repr=False)

    def json(self) -> Any:
        return orjson.loads(self.body)


async def _call(
    app: Starlette,
    method: str,
    path: str,
    body: list[bytes],
    headers: list[tuple[bytes, bytes]],
    full: bool,
) -> Reply:
    """One request as uvicorn hands it over (path already percent-decoded); ``body`` in
    pieces, then nothing until the reply is complete."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5000),
    }
    pieces = [
        {"type": "http.request", "body": piece, "more_body": i < len(body) - 1}
        for i, piece in enumerate(body or [b""])
    ]
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pieces:
            return pieces.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    runner = Starlette.__call__ if full else app.__call__
    await runner(app, scope, receive, send) if full else await runner(scope, receive, send)
    start = sent[0]
    data = b"".join(m.get("body", b"") for m in sent[1:])
    return Reply(start["status"], list(start["headers"]), data, scope)


@dataclass
class Team:
    app: ServerApp
    tokens: dict[str, str]
    experiment: str
    destination: Path

    def send(
        self,
        method: str,
        path: str,
        user: str | None = "admin",
        body: bytes | list[bytes] = b"",
        headers: dict[str, str] | None = None,
        full: bool = False,
    ) -> Reply:
        pieces = body if isinstance(body, list) else [body]
        sent = {"host": "127.0.0.1:5000"}
        if user is not None:
            sent["authorization"] = f"Bearer {self.tokens.get(user, user)}"
        if not isinstance(body, list):
            sent["content-length"] = str(len(body))
        sent.update(headers or {})
        raw = [(k.encode(), v.encode()) for k, v in sent.items()]
        return asyncio.run(_call(self.app, method, path, pieces, raw, full))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Team:
    root = tmp_path_factory.mktemp("fast")
    uri = f"sqlite:///{root / 'flowml.db'}"
    security = SecurityConfig(
        auth="token", cors_allowed_origins=("http://ui.example",), max_upload_bytes=LIMIT
    )
    app = create_app(ServerConfig(uri, str(root / "artifacts"), security=security))
    assert isinstance(app, ServerApp)
    store = AuthStore.open(uri)
    tokens = {user: store.create_token(user, create_user=True)[0] for user in ("admin", "al", "ed")}
    store.set_admin("admin", True)
    experiment = app.state.ctx.store.create_experiment("fast")
    store.set_permission("experiment", experiment, "ed", "EDIT", create=True)
    return Team(app, tokens, experiment, root / "artifacts")


@pytest.fixture
def denials() -> Iterator[list[str]]:
    """The denial lines logged meanwhile."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("flowml.server.auth")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def _same(team: Team, denials: list[str], *args: Any, **kwargs: Any) -> Reply:
    """The request through the whole stack, then through the fast path: the same answer
    and the same denials logged (left in ``denials``); returns the fast path's reply."""
    denials.clear()
    full = team.send(*args, full=True, **kwargs)
    logged = list(denials)
    denials.clear()
    fast = team.send(*args, **kwargs)
    assert (fast.status, fast.headers, fast.body) == (full.status, full.headers, full.body)
    assert denials == logged
    # The whole stack stopped in a middleware, or its router picked the endpoint.
    assert "endpoint" not in full.scope or "router" in full.scope
    return fast


def _fast(reply: Reply) -> Reply:
    """``reply``, checked to come from the fast path: it picked the endpoint (before the
    middleware ran) and the router never saw the request."""
    assert "endpoint" in reply.scope and "router" not in reply.scope, "not the fast path"
    return reply


def _error(reply: Reply, status: int, code: str) -> str:
    assert reply.status == status, reply.body
    assert reply.json()["error_code"] == code
    return str(reply.json()["message"])


def test_a_granted_user_uploads_lists_and_downloads(team: Team, denials: list[str]):
    folder = f"{PROXY}/{team.experiment}/run1/artifacts"
    reply = _fast(_same(team, denials, "PUT", f"{folder}/a.txt", "ed", b"hello"))
    assert reply.status == 200 and reply.json() == {}
    assert (team.destination / team.experiment / "run1/artifacts/a.txt").read_bytes() == b"hello"
    got = _fast(_same(team, denials, "GET", f"{folder}/a.txt", "al"))
    assert (got.status, got.body) == (200, b"hello")
    listed = _fast(_same(team, denials, "GET", f"{PROXY}?path={team.experiment}/run1/artifacts"))
    assert listed.json()["files"] == [{"path": "a.txt", "is_dir": False, "file_size": 5}]
    big = bytes(range(256)) * 200  # past the size written on the event loop, under the limit
    assert _fast(_same(team, denials, "PUT", f"{folder}/big.bin", "ed", [big[:100], big[100:]]))
    assert _fast(_same(team, denials, "GET", f"{folder}/big.bin", "ed")).body == big
    assert denials == []


def test_the_host_allow_list(team: Team, denials: list[str]):
    reply = _fast(_same(team, denials, "GET", f"{PROXY}/x.txt", headers={"host": "evil.example"}))
    assert "--allowed-hosts" in _error(reply, 403, "PERMISSION_DENIED")
    assert len(denials) == 1 and "evil.example" in denials[0]


@pytest.mark.parametrize("user", [None, "not-a-token"])
def test_authentication(team: Team, denials: list[str], user: str | None):
    for method in ("GET", "PUT", "DELETE"):
        reply = _fast(_same(team, denials, method, f"{PROXY}/{team.experiment}/r/a.txt", user))
        _error(reply, 401, "UNAUTHENTICATED")
        assert (b"www-authenticate", b'Bearer realm="flowml"') in reply.headers
        assert len(denials) == 1


def test_permissions(team: Team, denials: list[str]):
    inside = f"{PROXY}/{team.experiment}/run1/artifacts/b.txt"
    for method, path in (("PUT", inside), ("DELETE", inside), ("PUT", f"{PROXY}/shared/b.txt")):
        reply = _fast(_same(team, denials, method, path, "al", b"x" if method == "PUT" else b""))
        _error(reply, 403, "PERMISSION_DENIED")
        assert len(denials) == 1 and denials[0].startswith("denied user=al")
    assert not (team.destination / team.experiment / "run1/artifacts/b.txt").exists()
    assert not (team.destination / "shared").exists()


def test_size_limits(team: Team, denials: list[str]):
    path = f"{PROXY}/{team.experiment}/run1/artifacts/huge.bin"
    declared = _fast(_same(team, denials, "PUT", path, body=b"x" * (LIMIT + 1)))
    assert "limit" in _error(declared, 413, "BAD_REQUEST")
    assert len(denials) == 1 and f"body of {LIMIT + 1} bytes" in denials[0]
    assert (b"connection", b"close") in declared.headers
    streamed = _fast(_same(team, denials, "PUT", path, body=[b"x" * 40_000] * 2))
    assert "limit" in _error(streamed, 413, "BAD_REQUEST")
    assert len(denials) == 1 and "limit" in denials[0]
    assert not (team.destination / team.experiment / "run1/artifacts/huge.bin").exists()


@pytest.mark.parametrize(
    "path",
    [
        "../outside.txt",
        "a/../../outside.txt",
        "/etc/passwd",
        "..\\outside.txt",
        "%2e%2e/outside.txt",  # double-encoded on the wire: still encoded once decoded
        "a/%2f../outside.txt",
        "..;/outside.txt",  # a folder named "..;", inside the destination
    ],
)
def test_paths_stay_in_the_destination(team: Team, denials: list[str], path: str):
    refused = ";" not in path
    for method in ("GET", "PUT", "DELETE"):
        reply = _fast(_same(team, denials, method, f"{PROXY}/{path}", body=b"x"))
        assert reply.status in (400, 404) if refused else reply.status in (200, 404), reply.body
    listed = _same(team, denials, "GET", f"{PROXY}?path={path}")
    assert listed.status in (400, 404) if refused else listed.status == 200
    root = team.destination.parent
    assert {p.name for p in root.iterdir() if not p.name.startswith("flowml.db")} == {"artifacts"}


def test_cors_applies_on_the_fast_path(team: Team, denials: list[str]):
    origin = {"origin": "http://ui.example"}
    reply = _fast(_same(team, denials, "GET", f"{PROXY}?path=", headers=origin))
    assert (b"access-control-allow-origin", b"http://ui.example") in reply.headers


def test_other_methods_and_paths_go_through_the_router(team: Team, denials: list[str]):
    for method, path in (("POST", f"{PROXY}/a.txt"), ("GET", f"{PROXY}x/a.txt")):
        reply = _same(team, denials, method, path)
        assert "router" in reply.scope
        _error(reply, 405 if method == "POST" else 404, "ENDPOINT_NOT_FOUND")


def test_the_fast_routes_are_the_ones_the_router_would_pick(team: Team):
    """Every route the fast path serves is the first the router fully matches for its
    paths, and every route under ``/mlflow-artifacts/`` is served by the fast path."""
    fast = team.app.fast.routes
    starts = tuple(f"{prefix}/mlflow-artifacts/" for prefix in API_PREFIXES)
    proxied = [r for r in team.app.routes if isinstance(r, Route) and r.path.startswith(starts)]
    assert fast == proxied and len(fast) >= 2 * 4
    for route in fast:
        path = route.path.replace("{artifact_path:path}", "1/r/a.txt")
        path = path.replace("{upload_id}", "u").replace("{part_number:int}", "3")
        for method in route.methods or ():
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            first = next(r for r in team.app.routes if r.matches(scope)[0] is Match.FULL)
            assert first is route, (method, path)
            assert team.app.fast.match(dict(scope))


def test_the_fixed_paths_are_served_by_the_routes_the_router_would_pick(team: Team):
    """Every API route with a fixed path is looked up by the fast path, unless an earlier
    route would take its path, and the route it finds is the router's first full match."""
    exact = team.app.fast.exact
    starts = tuple(f"{prefix}/" for prefix in API_PREFIXES)
    fixed = [
        r
        for r in team.app.routes
        if isinstance(r, Route) and not r.param_convertors and r.path.startswith(starts)
    ]
    assert len(exact) > 100 and {"/api/2.0/mlflow/runs/search"} <= set(exact)
    for route in fixed:
        for method in route.methods or ():
            scope = {"type": "http", "method": method, "path": route.path, "root_path": ""}
            first = next(r for r in team.app.routes if r.matches(scope)[0] is Match.FULL)
            if route.path not in exact:  # left to the router: an earlier route takes it
                assert first is not route and getattr(first, "path", None) != route.path
                continue
            assert team.app.fast.match(scope)
            assert scope["endpoint"] is first.endpoint, (method, route.path)


def test_a_fixed_path_an_earlier_pattern_takes_is_left_to_the_router():
    def endpoint(request: Any) -> Any:
        raise AssertionError("never called")

    routes = [
        Route("/api/2.0/mlflow/things/{thing_id}", endpoint, methods=["GET"]),
        Route("/api/2.0/mlflow/things/search", endpoint, methods=["GET", "POST"]),
        Route("/api/2.0/mlflow/others/search", endpoint, methods=["POST"]),
    ]
    fast = FastRoutes(routes, API_PREFIXES, [])
    assert set(fast.exact) == {"/api/2.0/mlflow/others/search"}
    scope = {"type": "http", "method": "POST", "path": "/api/2.0/mlflow/things/search"}
    assert not fast.match({**scope, "root_path": ""})  # the router decides


def _json(reply: Reply) -> Any:
    assert reply.status == 200, reply.body
    return reply.json()


def test_json_methods_take_the_fast_path_with_the_router_s_answers(team: Team, denials: list[str]):
    run_id = team.app.state.ctx.store.create_run(team.experiment, "ed", 1, [], "fast").info.run_id
    api = "/api/2.0/mlflow"
    batch = orjson.dumps(
        {"run_id": run_id, "metrics": [{"key": "m", "value": 1.5, "timestamp": 2, "step": 0}]}
    )
    assert _json(_fast(_same(team, denials, "POST", f"{api}/runs/log-batch", "ed", batch))) == {}
    search = orjson.dumps({"experiment_ids": [team.experiment], "filter": "metrics.m > 1"})
    for prefix in API_PREFIXES:
        found = _json(
            _fast(_same(team, denials, "POST", f"{prefix}/mlflow/runs/search", "al", search))
        )
        assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
    got = _json(_fast(_same(team, denials, "GET", f"{api}/runs/get?run_id={run_id}", "al")))
    assert got["run"]["data"]["metrics"] == [{"key": "m", "value": 1.5, "timestamp": 2, "step": 0}]
    # Errors, denials and refusals are the endpoint's and the middleware's, as before.
    _error(
        _fast(_same(team, denials, "POST", f"{api}/runs/log-batch", "al", batch)),
        403,
        "PERMISSION_DENIED",
    )
    assert len(denials) == 1
    _error(
        _fast(_same(team, denials, "POST", f"{api}/runs/search", "al", b"{")), 400, "BAD_REQUEST"
    )
    missing = orjson.dumps({"run_id": "0" * 32, "key": "k", "value": "v"})
    _error(
        _fast(_same(team, denials, "POST", f"{api}/runs/set-tag", "ed", missing)),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(
        _fast(_same(team, denials, "POST", f"{api}/runs/search", None, search)),
        401,
        "UNAUTHENTICATED",
    )
    reply = _same(team, denials, "GET", f"{api}/runs/search")  # a method the path does not take
    assert "router" in reply.scope
    _error(reply, 405, "ENDPOINT_NOT_FOUND")
