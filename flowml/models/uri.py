"""Model URIs: where a model directory lives, and how to get it onto local disk.

| URI | resolved through |
|---|---|
| ``/path/to/model``, ``file:///...`` | used in place (no copy) |
| ``s3://bucket/m``, ``memory://m``, any fsspec URL | downloaded to a temporary directory |
| ``runs:/<run_id>/<artifact path>`` | the run's artifact root, via the tracking client |
| ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``.../<stage>`` | the registry |
"""

from __future__ import annotations

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.registry.uri import resolve_models_uri
from flowml.tracking.run_uri import RUNS_SCHEME, parse_runs_uri, resolve_runs_uri

__all__ = [
    "download_to_local",
    "parse_runs_uri",
    "resolve_model_uri",
]

MODELS_SCHEME = "models:"


def _resolve_models_uri(uri: str) -> str:
    resolved = str(resolve_models_uri(uri))
    if resolved.startswith(MODELS_SCHEME):
        raise InvalidState(f"The registry resolved {uri!r} to another models:/ URI: {resolved!r}")
    return resolved


def resolve_model_uri(uri: str) -> str:
    """The storage URI (local path or fsspec URL) of the model directory at `uri`.

    ``runs:/`` URIs become ``<artifact root>/<path>``; ``models:/`` URIs go through the
    registry (and may resolve to a ``runs:/`` URI, resolved in turn). Both stay inside
    the run's (or the registered version's) artifacts: a path with ``..``, an absolute
    path, a backslash or a percent-encoded dot or slash is refused before anything is read.

    Raises:
        InvalidParameter: the URI is empty or malformed, or its location could leave the
            run's or the model version's artifacts.
        ResourceNotFound: the run or registered model does not exist.
        InvalidState: the registry resolved a ``models:/`` URI to another one.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidParameter(f"A model URI must be a non-empty string, got {uri!r}")
    uri = str(uri)
    if uri.startswith(MODELS_SCHEME):
        uri = _resolve_models_uri(uri)
    if uri.startswith(RUNS_SCHEME):
        from flowml.tracking.fluent import get_client

        return resolve_runs_uri(uri, get_client())
    return uri


def _proxy_url(uri: str) -> str:
    # ``mlflow-artifacts:/`` locations are served by the server that named them: the
    # registry's for models:/ URIs, the tracking server's for runs:/ URIs.
    from flowml.tracking.fluent import get_tracking_uri

    if uri.startswith(MODELS_SCHEME):
        from flowml.settings import get_settings

        return get_settings().registry_uri or get_tracking_uri()
    return get_tracking_uri()


def download_to_local(uri: str, dst_path: str | None = None) -> str:
    """A local path holding the file or directory at model URI `uri`.

    Local paths are returned as they are; remote ones are copied under `dst_path` (a new
    temporary directory when None).

    Raises:
        InvalidParameter: see `resolve_model_uri` (checked before anything is read).
        ResourceNotFound: nothing exists at the URI.
    """
    from flowml.tracking.artifacts import download_uri

    location = resolve_model_uri(uri)
    try:
        return download_uri(location, dst_path, proxy_url=_proxy_url(uri))
    except (FileNotFoundError, ResourceNotFound):
        where = f"{uri!r}" if location == uri else f"{uri!r} (resolved to {location!r})"
        raise ResourceNotFound(f"No model at {where}: nothing exists there") from None
