"""``runs:/`` URIs and stored artifact locations, confined to the root they belong to.

A ``runs:/<run_id>/<path>`` URI names a file or directory inside one run's artifact root,
and nothing else: its path obeys the same rule as every artifact path
(`flowml.tracking.artifacts.safe_artifact_path`), so ``..``, absolute paths
(``runs:/<id>//etc``), backslashes and percent-encoded dots or slashes are refused with
`ArtifactPathError` (an `InvalidParameter`) before any file is read.

A location stored elsewhere (a registered model version's source) is checked with
`check_location`: whatever its scheme, its path may not climb out of where it points.

Both the models layer (``load_model``) and the registry (``register_model``) resolve
``runs:/`` URIs through `resolve_runs_uri`, so the rule lives in one place.
"""

from __future__ import annotations

import re
from typing import Any

from flowml.exceptions import ArtifactPathError, InvalidParameter
from flowml.tracking.artifacts import safe_artifact_path
from flowml.tracking.validation import validate_run_id

__all__ = [
    "RUNS_SCHEME",
    "check_location",
    "join_artifact_location",
    "parse_runs_uri",
    "resolve_runs_uri",
]

RUNS_SCHEME = "runs:"

# A URL scheme has two characters or more, so a Windows drive letter ("C:") is not one:
# it stays in the path, where `safe_artifact_path` refuses it.
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/*")


def parse_runs_uri(uri: object) -> tuple[str, str]:
    """Split ``runs:/<run_id>/<path>`` into the run id and a safe artifact path.

    Args:
        uri: e.g. ``runs:/0123abcd/model``.

    Returns:
        ``(run_id, path)``; the path is normalised (``""`` for the run's root).

    Raises:
        InvalidParameter: not a ``runs:/`` URI, or a malformed run id.
        ArtifactPathError: the path could leave the run's artifact root (``..``, an
            absolute path such as ``runs:/<id>//etc``, a backslash, ``%2e``/``%2f``...).

    Example:
        >>> parse_runs_uri("runs:/0123abcd/model")
        ('0123abcd', 'model')
    """
    if not isinstance(uri, str) or not uri.startswith(RUNS_SCHEME):
        raise InvalidParameter(f"Not a runs URI: {uri!r}; expected runs:/<run_id>/<path>")
    run_id, _, path = uri[len(RUNS_SCHEME) :].lstrip("/").partition("/")
    try:
        validate_run_id(run_id)
    except InvalidParameter:
        raise InvalidParameter(
            f"Not a proper runs URI: {uri!r}; expected runs:/<run_id>/<path> with a run id "
            "of letters, digits, '_' and '-'"
        ) from None
    try:
        # Only trailing slashes go: a leading one (runs:/<id>//etc) is an absolute path.
        return run_id, safe_artifact_path(path.rstrip("/"))
    except ArtifactPathError as exc:
        raise ArtifactPathError(
            f"Refusing runs URI {uri!r}: it must name a path inside the run's artifacts "
            f"({exc.message})"
        ) from None


def join_artifact_location(root: str, path: str | None) -> str:
    """``<root>/<path>`` for a relative artifact path, checked by `safe_artifact_path`.

    Raises:
        ArtifactPathError: the path could leave `root`.
    """
    rel = safe_artifact_path(path)
    root = root.rstrip("/")
    return f"{root}/{rel}" if rel else root


def resolve_runs_uri(uri: str, client: Any) -> str:
    """The storage location (local path or fsspec URL) a ``runs:/`` URI names.

    The URI is checked before the run is looked up, so a refused URI reads nothing.

    Args:
        uri: ``runs:/<run_id>/<path>``.
        client: a `TrackingClient` (anything with ``get_run``).

    Returns:
        ``<the run's artifact_uri>/<path>``.

    Raises:
        InvalidParameter: a malformed URI or one whose path leaves the run's artifacts.
        ResourceNotFound: no such run.
    """
    run_id, path = parse_runs_uri(uri)
    return join_artifact_location(str(client.get_run(run_id).info.artifact_uri), path)


def check_location(location: object, what: str = "model location") -> str:
    """A stored location (absolute or relative path, any fsspec URL) that climbs nowhere.

    The path part (after any ``scheme://``) must pass `safe_artifact_path` once its
    leading slashes are set aside: no ``..`` segment, backslash, NUL or percent-encoded
    dot or slash. A ``runs:/`` location must pass `parse_runs_uri`. A registry row
    written before this rule existed may hold ``.../artifacts/../../elsewhere``; such a
    location is refused rather than followed.

    Args:
        location: the location to check.
        what: how to name it in the error message.

    Returns:
        `location`, unchanged.

    Raises:
        InvalidParameter: the location is not a non-empty string or could escape.

    Example:
        >>> check_location("s3://bucket/1/abc/artifacts/model")
        's3://bucket/1/abc/artifacts/model'
    """
    if not isinstance(location, str) or not location.strip():
        raise InvalidParameter(f"A {what} must be a non-empty string, got {location!r}")
    try:
        if location.startswith(RUNS_SCHEME):
            parse_runs_uri(location)
        else:
            safe_artifact_path(_SCHEME_PREFIX.sub("", location, count=1).lstrip("/"))
    except InvalidParameter as exc:
        raise InvalidParameter(
            f"Refusing {what} {location!r}: it could point outside the directory it names "
            f"({exc.message}). Register the model again from runs:/<run_id>/<path> or from "
            "an absolute path without '..'"
        ) from None
    return location
