"""What the UI's registry pages need beyond MLflow's API (``/api/2.0/flowml/...``).

| method | path | what |
|---|---|---|
| GET | ``/registry/audit?name=&max_results=&after_id=`` | a model's audit trail, oldest first |
| GET | ``/model-versions/mlmodel?name=&version=`` | the version's MLmodel file as JSON |

The audit trail says who registered, promoted or approved a version, which gate decided
and why; MLflow has none. The MLmodel file is YAML, which browsers cannot read, so the
server parses it (``yaml.safe_load``, size-bounded) for the signature and input example.
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict
from typing import Any

import yaml

from flowml.exceptions import InvalidParameter
from flowml.registry.store.base import AUDIT_MAX_RESULTS_DEFAULT
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.wire import Fields

__all__ = ["ENDPOINTS", "MAX_MLMODEL_BYTES"]

# An MLmodel file is a few kilobytes; a signature with thousands of columns stays under this.
MAX_MLMODEL_BYTES = 4 * 1024 * 1024


def get_audit_log(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    max_results = fields.int64("max_results")
    max_results = AUDIT_MAX_RESULTS_DEFAULT if max_results is None else max_results
    if not 1 <= max_results <= AUDIT_MAX_RESULTS_DEFAULT:
        raise InvalidParameter(
            f"max_results must be between 1 and {AUDIT_MAX_RESULTS_DEFAULT}, got {max_results}"
        )
    after_id = fields.int64("after_id") or 0
    entries = ctx.registry.get_audit_log(fields.required("name"), max_results, after_id)
    return {"entries": [{k: v for k, v in asdict(e).items() if v is not None} for e in entries]}


def get_mlmodel(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    name, number = fields.required("name"), fields.required("version")
    location = ctx.registry.get_model_version_download_uri(name, number)
    root = ctx.locations.relative(location)
    if root is None:
        raise InvalidParameter(
            f"The files of {name!r} version {number} live at {location!r}, outside this "
            "server's artifact destination"
        )
    handle = ctx.artifacts.open_artifact(posixpath.join(root, "MLmodel") if root else "MLmodel")
    try:
        data = handle.read(MAX_MLMODEL_BYTES + 1)
    finally:
        handle.close()
    if len(data) > MAX_MLMODEL_BYTES:
        raise InvalidParameter(f"The MLmodel file is larger than {MAX_MLMODEL_BYTES} bytes")
    try:
        parsed = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidParameter(f"The MLmodel file is not valid YAML: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidParameter("The MLmodel file does not hold a mapping")
    return {"mlmodel": parsed}


ENDPOINTS = (
    Endpoint("/registry/audit", "GET", get_audit_log),
    Endpoint("/model-versions/mlmodel", "GET", get_mlmodel),
)
