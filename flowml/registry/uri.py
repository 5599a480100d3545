"""``models:/`` URIs: parse them, and resolve them to a version and its storage location.

| URI | means |
|---|---|
| ``models:/<name>/<version>`` | that version |
| ``models:/<name>/<stage>`` | the newest version in that stage (any case) |
| ``models:/<name>/latest`` | the newest version, whatever its stage |
| ``models:/<name>@<alias>`` | the version the alias points at (``@latest``, ``@v3`` work too) |

The models layer (`flowml.models.uri`) calls `resolve_models_uri` and downloads
what it returns; the registry itself never touches model files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.registry.entities import ModelVersion, canonical_stage
from flowml.registry.validation import RESERVED_ALIAS_LATEST, validate_alias, validate_model_name
from flowml.tracking.run_uri import check_location

if TYPE_CHECKING:
    from flowml.registry.client import RegistryClient

__all__ = [
    "ParsedModelUri",
    "parse_models_uri",
    "resolve_model_version",
    "resolve_models_uri",
    "version_location",
]

SCHEME = "models"


@dataclass(frozen=True, slots=True)
class ParsedModelUri:
    """The parts of a ``models:/`` URI; at most one of version, stage and alias is set.

    All three unset means "the newest version" (``models:/<name>/latest``).
    """

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None


def _improper(uri: object, problem: str) -> InvalidParameter:
    return InvalidParameter(
        f"Not a proper models:/ URI: {uri!r} ({problem}). Model URIs look like "
        "'models:/<name>/<version>', 'models:/<name>/<stage>', 'models:/<name>/latest' "
        "or 'models:/<name>@<alias>'"
    )


def parse_models_uri(uri: object) -> ParsedModelUri:
    """Split a ``models:/`` URI into its parts.

    Args:
        uri: e.g. ``models:/churn/3``, ``models:/churn/Production``, ``models:/churn@champion``.

    Returns:
        The parsed URI; stages are canonical (``Production``).

    Raises:
        InvalidParameter: not a ``models:/`` URI, or a malformed one (empty name,
            unknown stage, bad alias, extra path segments).

    Example:
        >>> parse_models_uri("models:/churn@champion")
        ParsedModelUri(name='churn', version=None, stage=None, alias='champion')
    """
    if not isinstance(uri, str):
        raise _improper(uri, "it is not a string")
    parts = urlsplit(uri, allow_fragments=False)
    if parts.scheme != SCHEME:
        raise _improper(uri, "the scheme is not 'models:'")
    if parts.netloc:
        raise _improper(uri, f"write models:/{parts.netloc}... with a single slash")
    if parts.query:
        raise _improper(uri, "query strings are not allowed")
    path = parts.path
    if not path.startswith("/") or len(path) <= 1:
        raise _improper(uri, "no model name")
    segments = path[1:].split("/")
    if len(segments) > 2:
        raise _improper(uri, "too many path segments")
    if len(segments) == 2:
        name, suffix = segments
        if not suffix.strip():
            raise _improper(uri, "empty version or stage")
        validate_model_name(name)
        if suffix.isascii() and suffix.isdigit():
            return ParsedModelUri(name, version=int(suffix))
        if suffix.lower() == RESERVED_ALIAS_LATEST:
            return ParsedModelUri(name)
        try:
            return ParsedModelUri(name, stage=canonical_stage(suffix))
        except InvalidParameter:
            raise _improper(
                uri, f"{suffix!r} is neither a version number, a stage nor 'latest'"
            ) from None
    if "@" in segments[0]:
        name, _, alias = segments[0].rpartition("@")
        if not name or not alias:
            raise _improper(uri, "empty model name or alias")
        validate_model_name(name)
        validate_alias(alias, reserved_ok=True)
        return ParsedModelUri(name, alias=alias)
    raise _improper(uri, "a version, stage, 'latest' or '@alias' must follow the name")


def resolve_model_version(uri: str, client: RegistryClient | None = None) -> ModelVersion:
    """The registered version a ``models:/`` URI names.

    Args:
        uri: a ``models:/`` URI.
        client: the registry to ask; a default `RegistryClient` when ``None``.

    Returns:
        The model version.

    Raises:
        InvalidParameter: a malformed URI.
        ResourceNotFound: no such model, version or alias, or no version in that stage.
    """
    parsed = parse_models_uri(uri)
    if client is None:
        from flowml.registry.client import RegistryClient

        client = RegistryClient()
    store = client.store
    if parsed.version is not None:
        return store.get_model_version(parsed.name, parsed.version)
    if parsed.alias is not None:
        return store.get_model_version_by_alias(parsed.name, parsed.alias)
    return store.get_latest_version(parsed.name, parsed.stage)


def resolve_models_uri(uri: str, client: RegistryClient | None = None) -> str:
    """Where the files of the version a ``models:/`` URI names are stored.

    Args:
        uri: a ``models:/`` URI.
        client: the registry to ask; a default `RegistryClient` when ``None``.

    Returns:
        A local path or fsspec URL (never another ``models:/`` URI).

    Raises:
        InvalidParameter: a malformed URI, or a stored location that could point outside
            the version's files (``..``, encoded dots or slashes: a row written before
            locations were checked); nothing is read from it.
        ResourceNotFound: no such model, version or alias, or no version in that stage.

    Example:
        >>> resolve_models_uri("models:/churn@champion")
        '/home/me/.flowml/artifacts/1/4f.../artifacts/model'
    """
    return version_location(resolve_model_version(uri, client))


def version_location(version: ModelVersion) -> str:
    """A version's storage location, once checked to point nowhere outside its files.

    Raises:
        InvalidParameter: the stored location holds ``..``, a backslash or an encoded dot
            or slash (a row written before locations were checked at registration).
    """
    return check_location(
        version.storage_location, f"stored location of {version.name!r} v{version.version}"
    )
