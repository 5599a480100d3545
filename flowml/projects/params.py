"""Entry-point parameters: validation, conversion, path resolution and the shell command.

No value is ever part of the command's text: the command refers to environment variables
holding the values (see `flowml.projects.template`), so ``"; rm -rf /"`` or ``$(id)`` arrive
in the script as those literal strings, whether the placeholder is bare or inside quotes.
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowml.exceptions import FlowMLError, InvalidParameter, ResourceNotFound
from flowml.projects.errors import ProjectSpecError
from flowml.projects.spec import EntryPoint, ParameterSpec, Scalar
from flowml.projects.template import TemplateError, scan, variable_name

__all__ = [
    "ResolvedParameters",
    "ShellCommand",
    "build_command",
    "parse_key_values",
    "quote",
    "resolve_parameters",
    "validate_parameters",
]


def quote(value: str) -> str:
    """Quote ``value`` as a single POSIX shell word."""
    return shlex.quote(value)


@dataclass(frozen=True)
class ResolvedParameters:
    """Parameters ready for the command line.

    Attributes:
        declared: Declared parameters, converted to their types; local ``path``/``uri`` values
            absolute, remote ``path`` values downloaded (the local copy).
        extra: Undeclared parameters, appended to the command as ``--key value``.
        logged: What the tracked run records for each parameter (a remote path stays its URI).
    """

    declared: dict[str, Scalar] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    logged: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShellCommand:
    """An entry point's command, ready for ``bash -c``.

    Attributes:
        command: The command text; every value is a quoted variable reference.
        env: The variables the command refers to, holding the values; give them to the shell.
        display: The command with each value shell-quoted in place, for logs only.
    """

    command: str
    env: dict[str, str]
    display: str


def parse_key_values(pairs: list[str] | tuple[str, ...], option: str = "-P") -> dict[str, str]:
    """Parse ``key=value`` strings (``-P``, ``--tag``, ...) into a mapping (the first ``=``
    splits; the key is stripped, the value kept as given).

    Args:
        pairs: Strings of the form ``key=value``.
        option: The command-line option they came from, named in the error.

    Returns:
        The pairs, later keys overriding earlier ones.

    Raises:
        InvalidParameter: A string has no ``=`` or an empty key.
    """
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"{option} takes key=value, got {pair!r}.")
        parsed[key.strip()] = value
    return parsed


def validate_parameters(
    entry_point: EntryPoint, user_parameters: Mapping[str, object] | None
) -> tuple[dict[str, Scalar], dict[str, str]]:
    """Check required parameters and convert every value, touching nothing on disk.

    Args:
        entry_point: The entry point the parameters are for.
        user_parameters: The caller's values; ``None`` values count as not given.

    Returns:
        ``(declared, extra)``: declared parameters (defaults filled in) converted to their
        types, and the undeclared ones as strings.

    Raises:
        InvalidParameter: A required parameter is missing, a value has the wrong type, or an
            undeclared parameter has an empty name or a non-scalar value.
    """
    given = {key: value for key, value in (user_parameters or {}).items() if value is not None}
    missing = [
        p.name for p in entry_point.parameters.values() if p.required and p.name not in given
    ]
    if missing:
        raise InvalidParameter(
            f"Entry point {entry_point.name!r} needs a value for {', '.join(map(repr, missing))}; "
            f"it accepts {_describe(entry_point)}."
        )
    declared: dict[str, Scalar] = {}
    for name, spec in entry_point.parameters.items():
        value = given[name] if name in given else spec.default
        declared[name] = spec.convert(value)
    extra: dict[str, str] = {}
    for key, value in given.items():
        if key in entry_point.parameters:
            continue
        if not str(key).strip():
            raise InvalidParameter("An undeclared parameter needs a non-empty name.")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidParameter(
                f"Undeclared parameter {key!r} must be a string or a number, got {value!r}."
            )
        extra[str(key)] = str(value)
    return declared, extra


def resolve_parameters(
    entry_point: EntryPoint,
    user_parameters: Mapping[str, object] | None,
    *,
    storage_dir: Path | None = None,
    cwd: Path | None = None,
) -> ResolvedParameters:
    """Validate, convert, and resolve ``path``/``uri`` parameters.

    Local ``path`` values must exist and become absolute (relative to ``cwd``); remote ones
    (any fsspec URL) are downloaded under ``storage_dir``. Local ``uri`` values become absolute;
    URLs pass unchanged.

    Args:
        entry_point: The entry point the parameters are for.
        user_parameters: The caller's values.
        storage_dir: Where remote ``path`` values are downloaded. ``None`` keeps them as URIs
            (validation only).
        cwd: The directory relative paths are resolved against (default: the current one).

    Returns:
        The resolved parameters.

    Raises:
        InvalidParameter: Any check of `validate_parameters` fails, a local path does not
            exist, or a remote path cannot be downloaded.
    """
    declared, extra = validate_parameters(entry_point, user_parameters)
    base = Path(cwd) if cwd is not None else Path.cwd()
    resolved: dict[str, Scalar] = {}
    logged: dict[str, str] = {}
    for name, value in declared.items():
        spec = entry_point.parameters[name]
        if spec.type == "path":
            local, shown = _resolve_path(spec, str(value), base, storage_dir)
            resolved[name], logged[name] = local, shown
        elif spec.type == "uri":
            uri = str(value) if _remote_scheme(str(value)) else _absolute(str(value), base)
            resolved[name], logged[name] = uri, uri
        else:
            resolved[name], logged[name] = value, str(value)
    logged.update(extra)
    return ResolvedParameters(declared=resolved, extra=extra, logged=logged)


def build_command(entry_point: EntryPoint, parameters: ResolvedParameters) -> ShellCommand:
    """The shell command for ``entry_point``: values in variables, never in the text.

    Args:
        entry_point: The entry point whose command template is filled in.
        parameters: Resolved parameters (see `resolve_parameters`).

    Returns:
        The command and its variables, with undeclared parameters appended as
        ``--key value``.

    Raises:
        ProjectSpecError: The template puts a placeholder where its value could run.
        InvalidParameter: A value holds a NUL character, or undeclared parameters are given
            but the template ends inside a comment, a quote or a here-document.
    """
    numeric = {name: spec.type in ("int", "float") for name, spec in entry_point.parameters.items()}
    try:
        pieces, clean_end = scan(entry_point.command, numeric)
    except TemplateError as exc:
        raise ProjectSpecError(f"Entry point {entry_point.name!r}: {exc}.") from exc
    index = {name: i for i, name in enumerate(entry_point.parameters)}
    env: dict[str, str] = {}
    text: list[str] = []
    shown: list[str] = []
    for literal, slot in pieces:
        text.append(literal)
        shown.append(literal)
        if slot is not None:
            value = _shell_value(slot.name, str(parameters.declared[slot.name]))
            variable = variable_name(index[slot.name])
            env[variable] = value
            text.append(slot.reference(variable))
            shown.append(quote(value))
    if parameters.extra and not clean_end:
        raise InvalidParameter(
            f"Entry point {entry_point.name!r} takes no undeclared parameters: its command ends "
            "inside a comment, a quote or a here-document, where --key value cannot be "
            f"appended ({', '.join(map(repr, parameters.extra))} given)."
        )
    for number, (key, value) in enumerate(parameters.extra.items()):
        key_var, value_var = f"FLOWML_EXTRA_KEY_{number}", f"FLOWML_EXTRA_VALUE_{number}"
        env[key_var], env[value_var] = _shell_value(key, key), _shell_value(key, value)
        text.append(f' --"${{{key_var}}}" "${{{value_var}}}"')
        shown.append(f" --{quote(key)} {quote(value)}")
    return ShellCommand(command="".join(text), env=env, display="".join(shown))


def _shell_value(name: str, value: str) -> str:
    if "\0" in value:
        raise InvalidParameter(f"Parameter {name!r} holds a NUL character, which no argument can.")
    return value


def _describe(entry_point: EntryPoint) -> str:
    if not entry_point.parameters:
        return "no declared parameters"
    return ", ".join(_describe_one(spec) for spec in entry_point.parameters.values())


def _describe_one(spec: ParameterSpec) -> str:
    default = "required" if spec.required else f"default {spec.default!r}"
    return f"{spec.name} ({spec.type}, {default})"


def _remote_scheme(value: str) -> str | None:
    """The URL scheme of ``value`` unless it is a local path (or a ``file:`` URL)."""
    scheme = urllib.parse.urlsplit(value).scheme
    # One letter is a Windows drive, not a scheme.
    if len(scheme) <= 1 or scheme == "file":
        return None
    return scheme


def _absolute(value: str, base: Path) -> str:
    if value.startswith("file:"):
        value = urllib.parse.unquote(urllib.parse.urlsplit(value).path)
    return os.path.normpath(base / Path(value).expanduser())


def _resolve_path(
    spec: ParameterSpec, value: str, base: Path, storage_dir: Path | None
) -> tuple[str, str]:
    if _remote_scheme(value) is None:
        local = _absolute(value, base)
        if not os.path.exists(local):
            raise InvalidParameter(
                f"Parameter {spec.name!r} (path) is {value!r}, but no such file or directory "
                f"exists ({local})."
            )
        return local, local
    if storage_dir is None:
        return value, value
    return _download(spec.name, value, storage_dir), value


def _download(name: str, url: str, storage_dir: Path) -> str:
    # The tracking layer owns fsspec: any protocol it can read, a path parameter can name.
    from flowml.tracking.artifacts import download_uri

    target_dir = Path(storage_dir) / f"param-{name}"
    try:
        return download_uri(url, target_dir)
    except ResourceNotFound as exc:
        raise InvalidParameter(f"Parameter {name!r} (path): nothing found at {url!r}.") from exc
    except (FlowMLError, ValueError, ImportError, OSError) as exc:
        raise InvalidParameter(
            f"Parameter {name!r} (path): cannot download {url!r}: {exc}"
        ) from exc
