"""MLflow's rules for registered model names, versions, aliases and tags.

Every check raises `InvalidParameter` naming the value and the rule, before
anything reaches a store.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from flowml.exceptions import InvalidParameter
from flowml.tracking.run_uri import check_location
from flowml.tracking.validation import MAX_KEY_LENGTH, validate_key

__all__ = [
    "MAX_ALIAS_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_MODEL_NAME_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "validate_alias",
    "validate_description",
    "validate_model_name",
    "validate_optional_text",
    "validate_tag",
    "validate_tags",
    "validate_version",
]

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_TAG_VALUE_LENGTH = 100_000
MAX_DESCRIPTION_LENGTH = 100_000
MAX_SOURCE_LENGTH = 2000

_ALIAS_RE = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
RESERVED_ALIAS_LATEST = "latest"


def validate_model_name(name: object, what: str = "name") -> str:
    """Check a registered model name; returns it unchanged.

    Names are used in ``models:/<name>/...`` URIs and as paths, so they may not
    contain ``/`` or ``:``, nor be empty, blank, or an abnormal path.

    Raises:
        InvalidParameter: the name breaks one of these rules.
    """
    if not isinstance(name, str):
        raise InvalidParameter(
            f"Registered model {what} must be a string, got {type(name).__name__}: {name!r}"
        )
    if not name.strip():
        raise InvalidParameter(f"Registered model {what} cannot be empty")
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name {name!r}: names cannot contain '/' or ':'")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameter(
            f"Registered model {what} {name[:40]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_MODEL_NAME_LENGTH}"
        )
    if posixpath.normpath(name) != name or name == "." or name.startswith(".."):
        # Names become path segments (artifact paths, URIs): no '.' or '..' tricks.
        raise InvalidParameter(
            f"Invalid model name {name!r}: names are used as paths and cannot be '.' "
            "or start with '..'"
        )
    return name


def validate_version(version: object) -> int:
    """A version number from an int or a decimal string (``3``, ``"3"``).

    Raises:
        InvalidParameter: not a positive integer.
    """
    if isinstance(version, bool):
        raise InvalidParameter(f"Model version must be an integer, got {version!r}")
    if isinstance(version, int):
        number = version
    elif isinstance(version, str) and version.strip().isascii() and version.strip().isdigit():
        number = int(version.strip())
    else:
        raise InvalidParameter(f"Model version must be an integer, got {version!r}")
    if number < 1:
        raise InvalidParameter(f"Model version must be 1 or more, got {version!r}")
    return number


def validate_alias(alias: object, *, reserved_ok: bool = False) -> str:
    """Check an alias name; returns it unchanged.

    Aliases hold letters, digits, ``_`` and ``-`` (at most 255). ``latest`` (any case)
    and ``v<digits>`` are reserved: they always mean "the newest version" and "that
    version number" in ``models:/name@alias`` URIs, so they cannot be set or deleted.

    Args:
        alias: the alias.
        reserved_ok: accept the reserved names (for look-ups, where they resolve).

    Raises:
        InvalidParameter: the alias is empty, malformed, too long or reserved.
    """
    if not isinstance(alias, str) or alias == "":
        raise InvalidParameter(f"Registered model alias name cannot be empty, got {alias!r}")
    if not _ALIAS_RE.match(alias):
        raise InvalidParameter(
            f"Invalid alias name {alias!r}: aliases may only contain alphanumerics, "
            "underscores (_) and dashes (-)"
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(
            f"Alias {alias[:40]!r}... is {len(alias)} characters long; "
            f"the limit is {MAX_ALIAS_LENGTH}"
        )
    if not reserved_ok:
        if alias.lower() == RESERVED_ALIAS_LATEST:
            raise InvalidParameter(
                f"Alias {alias!r} is reserved: 'latest' (any case) always means the newest version"
            )
        if _VERSION_ALIAS_RE.match(alias):
            raise InvalidParameter(
                f"Alias {alias!r} is reserved: 'v<number>' always means that version number"
            )
    return alias


def version_alias(alias: str) -> int | None:
    """The version a reserved ``v<digits>`` alias names, or ``None``."""
    if _VERSION_ALIAS_RE.match(alias):
        return int(alias[1:])
    return None


def validate_tag(key: object, value: object) -> tuple[str, str]:
    """Check a registered model or model version tag; returns ``(key, value as str)``.

    Raises:
        InvalidParameter: a bad key (MLflow's key rules, at most 250 characters), a
            missing value, or a value over 100,000 characters.
    """
    validate_key("Tag", key)
    assert isinstance(key, str)
    if len(key) > MAX_KEY_LENGTH:  # pragma: no cover - validate_key already checks
        raise InvalidParameter(f"Tag key is longer than {MAX_KEY_LENGTH} characters")
    if value is None:
        raise InvalidParameter(f"Tag {key!r} value cannot be None")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameter(
            f"Tag {key!r} value is {len(text)} characters long; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return key, text


def validate_description(description: object) -> str | None:
    """``None`` or a string of at most 100,000 characters.

    Raises:
        InvalidParameter: anything else.
    """
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidParameter(
            f"Description must be a string, got {type(description).__name__}: {description!r}"
        )
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameter(
            f"Description is {len(description)} characters long; "
            f"the limit is {MAX_DESCRIPTION_LENGTH}"
        )
    return description


def validate_source(source: object) -> str:
    """A model source URI or path: a non-empty string of at most 2000 characters.

    Its path may not climb out of where it points (see `flowml.tracking.run_uri`).

    Raises:
        InvalidParameter: otherwise.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidParameter(f"Model version source must be a non-empty string, got {source!r}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidParameter(
            f"Model version source is {len(source)} characters long; "
            f"the limit is {MAX_SOURCE_LENGTH}"
        )
    # The store is the last gate before a row exists: a location that climbs out of its
    # directory ('..', encoded dots or slashes) never gets stored, whoever calls.
    return check_location(source, "model version source")


def validate_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Each key and value checked as `validate_tag` does (``None``: no tags)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidParameter(f"tags must be a mapping of key to value, got {type(tags).__name__}")
    return dict(validate_tag(k, val) for k, val in tags.items())


def validate_optional_text(label: str, value: object, limit: int) -> str | None:
    """``None``, or a string of at most ``limit`` characters (a run id, a run link)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidParameter(
            f"{label} must be a string of at most {limit} characters, got {value!r}"
        )
    return value
