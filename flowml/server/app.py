"""The tracking server's ASGI app: MLflow's REST API over flowml's stores.

| prefix | what |
|---|---|
| ``/api/2.0/mlflow/`` (and ``/ajax-api/``) | experiments, runs, metrics, artifacts/list, registry |
| ``/api/2.0/mlflow-artifacts/artifacts`` (and ``/ajax-api/``) | the artifact proxy |
| ``/api/2.0/mlflow-artifacts/mpu/`` | multipart uploads through the proxy (`multipart`) |
| ``/ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files`` | a logged model's file |
| ``/api/2.0/flowml/`` | run keys, lineage; for the web UI: thinned histories, audit, previews |
| ``/get-artifact``, ``/model-versions/get-artifact`` | one run or version file (MLflow's) |
| ``/``, ``/ui-config.json``, ``/static/`` | the web UI (`flowml.server.ui`) |
| ``/v1/traces`` | OTLP/HTTP trace intake, protobuf or JSON (`traces`) |
| ``/api/3.0/mlflow/traces`` | StartTraceV3 (`traces`); trace reads, search, tags, deletes |
| ``/api/2.0/mlflow/traces`` | trace tags and deletes, as MLflow's client sends them |
| ``/health`` | ``OK`` |
| ``/version`` | the flowml version, as bare text |
| ``/api/3.0/mlflow/server-info`` | what MLflow 3's client probes: multipart uploads on |

Unknown paths answer 404 and wrong methods 405, both with MLflow's ``ENDPOINT_NOT_FOUND``
error body (its client falls back to another endpoint on that code).

Security (`flowml.server.auth`): every request crosses the Host allow-list and the body
limit, then CORS when configured; with ``auth="token"`` it must authenticate, each route
applies its permission rule, and the user and permission endpoints are mounted.

The API's routes (fixed paths by a dict lookup, the artifact proxy's in order) are matched
before Starlette's router (`fast_routes`), behind the same middleware.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from flowml.exceptions import FlowMLError
from flowml.registry.store import get_registry_store
from flowml.server import (
    artifacts,
    experiments,
    extension,
    history,
    inputs,
    logged_models,
    mlflow_traces,
    multipart,
    previews,
    registry,
    registry_ui,
    run_files,
    runs,
    traces,
    ui,
)
from flowml.server.api import (
    MAX_JSON_BODY_BYTES,
    Endpoint,
    error_response,
    guarded,
    json_endpoint,
    json_response,
)
from flowml.server.auth.access import AuthSettings
from flowml.server.auth.admin import admin_routes
from flowml.server.auth.config import SecurityConfig
from flowml.server.auth.guard import Guard
from flowml.server.auth.middleware import AuthMiddleware, BodyLimitMiddleware, HostMiddleware
from flowml.server.auth.permissions import parse_permission
from flowml.server.auth.store import AuthStore
from flowml.server.context import ServerContext, ServerRegistryClient
from flowml.server.fast_routes import FastRoutes
from flowml.server.locations import ArtifactLocations, normalize_destination
from flowml.server.wire import Fields
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.engine import get_engine
from flowml.tracking.store.schemes import get_store
from flowml.tracking.store.sql_logged_models import SqlLoggedModelStore

__all__ = ["API_PREFIXES", "ServerApp", "ServerConfig", "create_app"]

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
_JSON_GROUPS = (
    experiments.ENDPOINTS,
    runs.ENDPOINTS,
    inputs.ENDPOINTS,
    artifacts.ENDPOINTS,
    logged_models.ENDPOINTS,
    registry.ENDPOINTS,
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What a server serves.

    Attributes:
        backend_store_uri: the tracking store (``sqlite:///...``, ``postgresql://...``).
        artifacts_destination: where proxied artifacts live (a local path or fsspec URL);
            new experiments keep their artifacts below it.
        search_timeout_seconds: the longest one search statement may run.
        security: auth mode, Host allow-list, CORS and body limits.
        prefect_ui_url: Prefect's UI (``http(s)://...``), for the web UI's links to flow runs.
    """

    backend_store_uri: str
    artifacts_destination: str
    search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
    security: SecurityConfig = field(default_factory=SecurityConfig)
    prefect_ui_url: str | None = None


def _context(config: ServerConfig) -> ServerContext:
    destination = normalize_destination(config.artifacts_destination)
    repository = ArtifactRepository(destination)
    store = get_store(
        config.backend_store_uri,
        destination,
        search_timeout_seconds=config.search_timeout_seconds,
    )
    # The registry lives in the tracking database, as with the library's defaults.
    registry_store = get_registry_store(
        config.backend_store_uri, search_timeout_seconds=config.search_timeout_seconds
    )
    return ServerContext(
        store=store,
        locations=ArtifactLocations(destination),
        artifacts=repository,
        registry=ServerRegistryClient(registry_store, store),
        # Opened after the tracking store, which migrated the database.
        logged_models=SqlLoggedModelStore(get_engine(config.backend_store_uri)),
    )


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/health", _health, methods=["GET"]),
        Route("/version", _version, methods=["GET"]),
        # OTLP/HTTP intake: EDIT on the experiment its header names.
        Route("/v1/traces", _otlp_guarded, methods=["POST"]),
    ]
    info = guarded(_server_info, ("raw", "/mlflow/server-info", "GET"))
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        routes.append(Route(f"{prefix}/mlflow/server-info", info, methods=["GET"]))
        # MLflow 3's trace API: reads first (their static paths before `{trace_id}`).
        routes += _json_routes(prefix, "mlflow", mlflow_traces.V3_ENDPOINTS)
        routes += _json_routes(prefix, "mlflow", traces.V3_ENDPOINTS)
    for prefix in API_PREFIXES:
        for group in _JSON_GROUPS:
            routes += _json_routes(prefix, "mlflow", group)
        routes += _json_routes(prefix, "mlflow", mlflow_traces.V2_ENDPOINTS)  # tags, deletes
        # flowml's own methods: for its REST store, and for the web UI.
        flowml_endpoints = (
            *extension.ENDPOINTS,
            *traces.FLOWML_ENDPOINTS,
            *history.ENDPOINTS,
            *registry_ui.ENDPOINTS,
            *previews.ENDPOINTS,
        )
        routes += _json_routes(prefix, "flowml", flowml_endpoints)
        for path, method, handler in _streamed():
            key = ("raw", path, method)
            routes.append(Route(f"{prefix}{path}", guarded(handler, key), methods=[method]))
    for path, handler in (
        ("/get-artifact", run_files.get_run_artifact),
        ("/model-versions/get-artifact", run_files.get_model_version_artifact),
    ):
        routes.append(Route(path, guarded(handler, ("raw", path, "GET")), methods=["GET"]))
    # The UI's page and assets: behind the authentication middleware like everything else
    # (a browser asks for the user name and token once); the data comes through the API.
    routes += ui.routes()
    return routes


def _json_routes(prefix: str, api: str, endpoints: Iterable[Endpoint]) -> list[BaseRoute]:
    """``<prefix>/<api><path>`` for each endpoint, under the auth rule filed for
    ``(api, path, method)``."""
    return [
        Route(
            f"{prefix}/{api}{endpoint.path}",
            json_endpoint(endpoint.handler, (api, endpoint.path, endpoint.method)),
            methods=[endpoint.method],
        )
        for endpoint in endpoints
    ]


def _streamed() -> list[tuple[str, str, Any]]:
    """The routes that stream bytes: ``(path below the API prefix, method, endpoint)``."""
    proxy = "/mlflow-artifacts/artifacts"
    mpu = "/mlflow-artifacts/mpu"
    return [
        (proxy, "GET", artifacts.list_proxied),
        (f"{proxy}/{{artifact_path:path}}", "GET", artifacts.download),
        (f"{proxy}/{{artifact_path:path}}", "PUT", artifacts.upload),
        (f"{proxy}/{{artifact_path:path}}", "DELETE", artifacts.delete_artifact),
        (
            "/mlflow/logged-models/{model_id}/artifacts/files",
            "GET",
            logged_models.download_file,
        ),
        # Multipart uploads, as MLflow 3's client sends large files.
        (f"{mpu}/create/{{artifact_path:path}}", "POST", multipart.create),
        (f"{mpu}/complete/{{artifact_path:path}}", "POST", multipart.complete),
        (f"{mpu}/abort/{{artifact_path:path}}", "POST", multipart.abort),
        (f"{mpu}/part/{{upload_id}}/{{part_number:int}}", "PUT", multipart.upload_part),
    ]


async def _otlp_guarded(request: Request) -> Response:
    guard = request.app.state.guard
    if guard is not None:
        experiment_id = request.headers.get(traces.EXPERIMENT_HEADER, "0").strip() or "0"
        fields = Fields.from_query([("experiment_id", experiment_id)])
        try:
            await run_in_threadpool(
                guard.call, request, ("raw", "/v1/traces", "POST"), lambda ctx, f: {}, fields
            )
        except FlowMLError as exc:
            return error_response(exc)
    return await traces.otlp_intake(request)


async def _health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def _version(request: Request) -> Response:
    from flowml import __version__

    return PlainTextResponse(__version__)


# MLflow 3's client asks before large uploads and downloads: uploads go in parts through
# the proxy (`multipart`); downloads stream whole.
_SERVER_INFO: dict[str, Any] = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": True,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {},
}


async def _server_info(request: Request) -> Response:
    return json_response(_SERVER_INFO)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        return json_response(
            {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"No endpoint {request.method} {request.url.path} on this server",
            },
            exc.status_code,
        )
    return json_response({"error_code": "BAD_REQUEST", "message": str(exc.detail)}, exc.status_code)


class ServerApp(Starlette):
    """Starlette, with the API's requests dispatched by `FastRoutes` first."""

    _fast: FastRoutes | None = None

    @property
    def fast(self) -> FastRoutes:
        """The API's routes behind the app's middleware, built on first use from the final
        routes and middleware list (as Starlette builds its own stack)."""
        if self._fast is None:
            self._fast = FastRoutes(self.routes, API_PREFIXES, self.user_middleware)
        return self._fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.fast.match(scope):
            scope["app"] = self
            await self.fast.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(config: ServerConfig) -> ServerApp:
    """The server app for ``config`` (the store is opened, and migrated, here).

    Example:
        >>> app = create_app(ServerConfig("sqlite:///flowml.db", "./artifacts"))  # doctest: +SKIP
    """
    ctx = _context(config)
    security = config.security
    routes = _routes()
    guard = None
    if security.auth == "token":
        # Opened after the tracking store, which migrated the database.
        settings = AuthSettings(
            AuthStore(get_engine(config.backend_store_uri)),
            parse_permission(security.default_permission),
        )
        guard = Guard(settings)
        routes += admin_routes(API_PREFIXES)
    app = ServerApp(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        middleware=_middleware(security, guard),
        lifespan=_freeze_heap,
    )
    app.state.ctx = ctx
    app.state.ui_config = ui.UIConfig.create(config.prefect_ui_url)
    app.state.guard = guard
    app.state.max_upload_bytes = security.max_upload_bytes
    return app


@contextlib.asynccontextmanager
async def _freeze_heap(_app: Starlette) -> AsyncIterator[None]:
    # What a worker holds when it starts (Prefect's, SQLAlchemy's and flowml's modules, the
    # app) lives as long as it does: out of the collector's reach, a full collection no
    # longer rescans it (about 80 ms each, every few 1,000-run search replies otherwise).
    gc.collect()
    gc.freeze()
    yield


def _middleware(security: SecurityConfig, guard: Guard | None) -> list[Middleware]:
    """Outermost first: Host allow-list, body limit, CORS (if configured), authentication."""
    stack = [
        Middleware(HostMiddleware, allowed_hosts=security.hosts),
        Middleware(
            BodyLimitMiddleware,
            json_limit=MAX_JSON_BODY_BYTES,
            upload_limit=security.max_upload_bytes,
        ),
    ]
    if security.cors_allowed_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(security.cors_allowed_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    if guard is not None:
        stack.append(Middleware(AuthMiddleware, settings=guard.settings))
    return stack
