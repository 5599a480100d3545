"""``/api/2.0/mlflow/registered-models/*`` and ``model-versions/*``: MLflow's model registry.

The handlers convert wire shapes and call flowml's `RegistryClient` (bound to the server's
stores), so every rule (names, stages, reserved aliases, version numbering under
concurrency, the audit trail) is the library's. Versions travel as strings.

A version's ``source`` is where its files are. MLflow clients send ``runs:/<run>/<path>``
(resolved against the run's artifact location, as the library does), ``models:/...``
(another version's files, or MLflow 3's logged model ``models:/<model_id>``, registered
as that model's location) or ``mlflow-artifacts:/<path>`` (stored as the real location
under the artifact destination and sent back in the proxied form). A remote URL
(``s3://...``) is stored as given. A path on the server's own filesystem is accepted only
inside the artifact destination: anywhere else would let a client point a version, and
whoever downloads it through this server's URIs, at arbitrary server files.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.registry.store.base import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
)
from flowml.registry.uri import version_location
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.registry_wire import model_version_json, registered_model_json
from flowml.server.wire import Fields, key_values

__all__ = ["ENDPOINTS"]

# Sources the registry resolves itself (each form confined by `flowml.tracking.run_uri`).
_RESOLVED_SCHEMES = ("runs", "models")
_LOGGED_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")


def _tags(fields: Fields, what: str) -> dict[str, str]:
    return dict(key_values(fields.messages("tags"), what))


def _model_reply(ctx: ServerContext, name: str) -> dict[str, Any]:
    model = ctx.registry.get_registered_model(name)
    return {"registered_model": registered_model_json(model, ctx.locations)}


def _version_reply(ctx: ServerContext, version: Any) -> dict[str, Any]:
    return {"model_version": model_version_json(version, ctx.locations)}


def _source(ctx: ServerContext, source: str) -> str:
    """The source to register for one a client sent (see the module docstring).

    Raises:
        InvalidParameter: a local path outside the artifact destination, or any form
            whose path could climb out of where it points.
    """
    logged = _LOGGED_MODEL_URI.match(source)
    if logged:
        # MLflow 3 registers a logged model as ``models:/<model_id>``: its files' location.
        return ctx.logged_models.get_logged_model(logged.group(1)).artifact_location
    real = ctx.locations.from_wire(source)
    assert real is not None  # ``source`` is a required, non-empty field
    scheme = urlsplit(real).scheme.lower()
    if scheme in _RESOLVED_SCHEMES:
        return real
    if scheme in ("", "file") or len(scheme) == 1:  # one letter: a Windows drive
        path = real[len("file://") :] if scheme == "file" else real
        if ctx.locations.relative(path) is None:
            raise InvalidParameter(
                f"Model version source {source!r} is a path on the server's filesystem outside "
                "its artifact destination; register runs:/<run_id>/<path>, "
                "mlflow-artifacts:/<path> or a remote URL instead"
            )
        return path
    return real


# -- registered models ---------------------------------------------------------------------


def create_model(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    model = ctx.registry.create_registered_model(
        fields.required("name"),
        tags=_tags(fields, "registered model tag"),
        description=fields.string("description"),
    )
    return {"registered_model": registered_model_json(model, ctx.locations)}


def get_model(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    return _model_reply(ctx, fields.required("name"))


def rename_model(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    model = ctx.registry.rename_registered_model(
        fields.required("name"), fields.required("new_name")
    )
    return {"registered_model": registered_model_json(model, ctx.locations)}


def update_model(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    model = ctx.registry.update_registered_model(
        fields.required("name"), fields.string("description")
    )
    return {"registered_model": registered_model_json(model, ctx.locations)}


def delete_model(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.delete_registered_model(fields.required("name"))
    return {}


def _search_args(fields: Fields, default_max_results: int) -> dict[str, Any]:
    """A search request's filter, page size, order and page token, MLflow's way."""
    max_results = fields.int64("max_results")
    return {
        "filter_string": fields.string("filter") or None,
        "max_results": default_max_results if max_results is None else max_results,
        "order_by": fields.strings("order_by") or None,
        "page_token": fields.string("page_token") or None,
    }


def search_models(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    # Prompts are left out unless the filter asks for them (``tags.`mlflow.prompt.is_prompt`
    # = 'true'``), and the clause MLflow 3's clients append to hide them
    # (``!= 'true'``) means "not a prompt": the registry's search does both.
    page = ctx.registry.search_registered_models(
        **_search_args(fields, SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT)
    )
    reply: dict[str, Any] = {
        "registered_models": [registered_model_json(m, ctx.locations) for m in page]
    }
    if page.token:
        reply["next_page_token"] = page.token
    return reply


def get_latest_versions(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    versions = ctx.registry.get_latest_versions(
        fields.required("name"), fields.strings("stages") or None
    )
    return {"model_versions": [model_version_json(v, ctx.locations) for v in versions]}


def set_model_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.set_registered_model_tag(
        fields.required("name"), fields.required("key"), fields.required("value")
    )
    return {}


def delete_model_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.delete_registered_model_tag(fields.required("name"), fields.required("key"))
    return {}


def set_alias(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.set_registered_model_alias(
        fields.required("name"), fields.required("alias"), fields.required("version")
    )
    return {}


def delete_alias(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.delete_registered_model_alias(fields.required("name"), fields.required("alias"))
    return {}


def get_by_alias(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.get_model_version_by_alias(
        fields.required("name"), fields.required("alias")
    )
    return _version_reply(ctx, version)


# -- model versions ------------------------------------------------------------------------


def create_version(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.create_model_version(
        fields.required("name"),
        _source(ctx, fields.required("source")),
        run_id=fields.string("run_id") or None,
        tags=_tags(fields, "model version tag"),
        run_link=fields.string("run_link") or None,
        description=fields.string("description"),
    )
    return _version_reply(ctx, version)


def get_version(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.get_model_version(fields.required("name"), fields.required("version"))
    return _version_reply(ctx, version)


def update_version(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.update_model_version(
        fields.required("name"), fields.required("version"), fields.string("description")
    )
    return _version_reply(ctx, version)


def delete_version(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.delete_model_version(fields.required("name"), fields.required("version"))
    return {}


def search_versions(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    page = ctx.registry.search_model_versions(
        **_search_args(fields, SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT)
    )
    reply: dict[str, Any] = {"model_versions": [model_version_json(v, ctx.locations) for v in page]}
    if page.token:
        reply["next_page_token"] = page.token
    return reply


def transition_stage(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.transition_model_version_stage(
        fields.required("name"),
        fields.required("version"),
        fields.required("stage"),
        fields.boolean("archive_existing_versions"),
    )
    return _version_reply(ctx, version)


def set_version_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.set_model_version_tag(
        fields.required("name"),
        fields.required("version"),
        fields.required("key"),
        fields.required("value"),
    )
    return {}


def delete_version_tag(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    ctx.registry.delete_model_version_tag(
        fields.required("name"), fields.required("version"), fields.required("key")
    )
    return {}


def get_download_uri(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    version = ctx.registry.get_model_version(fields.required("name"), fields.required("version"))
    # version_location refuses a stored location that could climb out of the version's files.
    return {"artifact_uri": ctx.locations.to_wire(version_location(version))}


_RM = "/registered-models"
_MV = "/model-versions"
ENDPOINTS = (
    Endpoint(f"{_RM}/create", "POST", create_model),
    Endpoint(f"{_RM}/get", "GET", get_model),
    Endpoint(f"{_RM}/rename", "POST", rename_model),
    Endpoint(f"{_RM}/update", "PATCH", update_model),
    Endpoint(f"{_RM}/delete", "DELETE", delete_model),
    Endpoint(f"{_RM}/search", "GET", search_models),
    Endpoint(f"{_RM}/get-latest-versions", "POST", get_latest_versions),
    Endpoint(f"{_RM}/get-latest-versions", "GET", get_latest_versions),
    Endpoint(f"{_RM}/set-tag", "POST", set_model_tag),
    Endpoint(f"{_RM}/delete-tag", "DELETE", delete_model_tag),
    Endpoint(f"{_RM}/alias", "POST", set_alias),
    Endpoint(f"{_RM}/alias", "DELETE", delete_alias),
    Endpoint(f"{_RM}/alias", "GET", get_by_alias),
    Endpoint(f"{_MV}/create", "POST", create_version),
    Endpoint(f"{_MV}/get", "GET", get_version),
    Endpoint(f"{_MV}/update", "PATCH", update_version),
    Endpoint(f"{_MV}/delete", "DELETE", delete_version),
    Endpoint(f"{_MV}/search", "GET", search_versions),
    Endpoint(f"{_MV}/transition-stage", "POST", transition_stage),
    Endpoint(f"{_MV}/set-tag", "POST", set_version_tag),
    Endpoint(f"{_MV}/delete-tag", "DELETE", delete_version_tag),
    Endpoint(f"{_MV}/get-download-uri", "GET", get_download_uri),
)
