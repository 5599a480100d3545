"""The tracking server's ASGI app: MLflow's REST API over flowml's stores.

| prefix | what |
|---|---|
| ``/api/2.0/mlflow/`` (and ``/ajax-api/``) | experiments, runs, metrics, artifacts/list, registry |
| ``/api/2.0/mlflow-artifacts/artifacts`` (and ``/ajax-api/``) | the artifact proxy |
| ``/api/2.0/mlflow-artifacts/mpu/`` | multipart uploads through the proxy (`multipart`) |
| ``/ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files`` | a logged model's file |
| ``/api/2.0/flowml/`` | run keys and lineage, for flowml's REST store (`extension`) |
| ``/health`` | ``OK`` |
| ``/version`` | the flowml version, as bare text |
| ``/api/3.0/mlflow/server-info`` | what MLflow 3's client probes: multipart uploads on |

Unknown paths answer 404 and wrong methods 405, both with MLflow's ``ENDPOINT_NOT_FOUND``
error body (its client falls back to another endpoint on that code).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from flowml.registry.store import get_registry_store
from flowml.server import (
    artifacts,
    experiments,
    extension,
    inputs,
    logged_models,
    multipart,
    registry,
    runs,
)
from flowml.server.api import json_endpoint, json_response
from flowml.server.context import ServerContext, ServerRegistryClient
from flowml.server.locations import ArtifactLocations, normalize_destination
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store.engine import get_engine
from flowml.tracking.store.registry import get_store
from flowml.tracking.store.sql_logged_models import SqlLoggedModelStore

__all__ = ["API_PREFIXES", "ServerConfig", "create_app"]

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
    """

    backend_store_uri: str
    artifacts_destination: str
    search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS


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


def _routes() -> list[Route]:
    routes: list[Route] = [
        Route("/health", _health, methods=["GET"]),
        Route("/version", _version, methods=["GET"]),
    ]
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        routes.append(Route(f"{prefix}/mlflow/server-info", _server_info, methods=["GET"]))
    for prefix in API_PREFIXES:
        for group in _JSON_GROUPS:
            for endpoint in group:
                routes.append(
                    Route(
                        f"{prefix}/mlflow{endpoint.path}",
                        json_endpoint(endpoint.handler),
                        methods=[endpoint.method],
                        name=None,
                    )
                )
        for endpoint in extension.ENDPOINTS:  # flowml's own methods, for its REST store
            routes.append(
                Route(
                    f"{prefix}/flowml{endpoint.path}",
                    json_endpoint(endpoint.handler),
                    methods=[endpoint.method],
                )
            )
        proxy = f"{prefix}/mlflow-artifacts/artifacts"
        routes += [
            Route(proxy, artifacts.list_proxied, methods=["GET"]),
            Route(f"{proxy}/{{artifact_path:path}}", artifacts.download, methods=["GET"]),
            Route(f"{proxy}/{{artifact_path:path}}", artifacts.upload, methods=["PUT"]),
            Route(f"{proxy}/{{artifact_path:path}}", artifacts.delete_artifact, methods=["DELETE"]),
        ]
        mpu = f"{prefix}/mlflow-artifacts/mpu"
        routes += [
            Route(f"{mpu}/create/{{artifact_path:path}}", multipart.create, methods=["POST"]),
            Route(f"{mpu}/complete/{{artifact_path:path}}", multipart.complete, methods=["POST"]),
            Route(f"{mpu}/abort/{{artifact_path:path}}", multipart.abort, methods=["POST"]),
            Route(
                f"{mpu}/part/{{upload_id}}/{{part_number:int}}",
                multipart.upload_part,
                methods=["PUT"],
            ),
            Route(
                f"{prefix}/mlflow/logged-models/{{model_id}}/artifacts/files",
                logged_models.download_file,
                methods=["GET"],
            ),
        ]
    return routes


async def _health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def _version(request: Request) -> Response:
    from flowml import __version__

    return PlainTextResponse(__version__)


# MLflow 3's client asks before large uploads and downloads: uploads go in parts through
# the proxy (`multipart`); downloads stream whole.
_SERVER_INFO = {
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


def create_app(config: ServerConfig) -> Starlette:
    """The server app for ``config`` (the store is opened, and migrated, here).

    Example:
        >>> app = create_app(ServerConfig("sqlite:///flowml.db", "./artifacts"))  # doctest: +SKIP
    """
    app = Starlette(routes=_routes(), exception_handlers={HTTPException: _http_error})
    app.state.ctx = _context(config)
    return app
