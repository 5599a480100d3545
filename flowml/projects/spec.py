"""The MLproject format, parsed into validated models.

An MLproject file is YAML::

    name: iris
    python_env: python_env.yaml        # or conda_env: conda.yaml, or docker_env: {image: ...}
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          data: path                   # short form: `name: type`, required
        command: "python train.py --alpha {alpha} --data {data}"

A directory without an MLproject file is still a project: its ``.py`` and ``.sh`` files are
its entry points, and a ``python_env.yaml`` or ``conda.yaml`` beside them is its environment.
"""

from __future__ import annotations

import math
import os
import shlex
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import ProjectSpecError
from flowml.projects.template import TemplateError, scan

__all__ = [
    "PARAMETER_TYPES",
    "DockerEnv",
    "EntryPoint",
    "ParameterSpec",
    "Project",
    "find_mlproject",
    "load_project",
]

MLPROJECT_FILENAME = "MLproject"
DEFAULT_PYTHON_ENV_FILENAME = "python_env.yaml"
DEFAULT_CONDA_ENV_FILENAME = "conda.yaml"

ParameterType = Literal["string", "float", "int", "path", "uri"]
PARAMETER_TYPES: tuple[str, ...] = ("float", "int", "path", "string", "uri")
# Spellings seen in MLproject files in the wild; MLflow never checks the type, so they run there.
_TYPE_ALIASES = {"str": "string", "integer": "int", "number": "float", "double": "float"}

EnvType = Literal["python_env", "conda_env", "docker_env", "none"]
_ENV_KEYS = ("python_env", "conda_env", "docker_env")
_TOP_LEVEL_KEYS = ("name", *_ENV_KEYS, "entry_points")
_PARAMETER_KEYS = ("type", "default", "description")
_SCRIPT_RUNNERS = {".py": "python", ".sh": None}  # None: the user's $SHELL, else bash

Scalar = str | int | float


class ParameterSpec(BaseModel):
    """One declared parameter of an entry point.

    Attributes:
        name: The parameter's name, as used in the command template.
        type: One of ``string``, ``float``, ``int``, ``path``, ``uri``.
        default: The default, already converted to the type; ``None`` means required.
        description: Free text shown in the Prefect parameter form.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: ParameterType = "string"
    default: Scalar | None = None
    description: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, value: object) -> Scalar:
        """Convert a user-given value (a string from the CLI, or a Python value) to the type.

        Args:
            value: The value to convert.

        Returns:
            A ``float`` for ``float``, an ``int`` for ``int``, a ``str`` otherwise.

        Raises:
            InvalidParameter: The value does not fit the type.
        """
        if self.type == "float":
            return _to_float(self.name, value)
        if self.type == "int":
            return _to_int(self.name, value)
        if isinstance(value, (list, tuple, dict, set)) or value is None:
            raise _type_error(self.name, self.type, value)
        return str(value)


class EntryPoint(BaseModel):
    """A command template and the parameters it takes.

    Attributes:
        name: The entry point's name (``main`` by default, or a script's file name).
        command: The shell command, with ``{name}`` placeholders for parameters.
        parameters: The declared parameters, in declaration order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    command: str
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)


class DockerEnv(BaseModel):
    """The ``docker_env`` section: the image to run in, extra mounts and variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    volumes: tuple[str, ...] = ()
    # A bare name copies the host's variable; a [name, value] pair sets it.
    environment: tuple[str | tuple[str, str], ...] = ()


class Project(BaseModel):
    """A loaded project: where it lives, its environment and its entry points.

    Attributes:
        name: The MLproject ``name``, else the directory's name.
        directory: The absolute project directory.
        env_type: Which environment section applies (``none``: run where flowml runs).
        env_file: The python_env or conda file, absolute, when ``env_type`` names one.
        docker_env: The docker section when ``env_type`` is ``docker_env``.
        entry_points: The declared entry points.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    directory: Path
    env_type: EnvType = "none"
    env_file: Path | None = None
    docker_env: DockerEnv | None = None
    entry_points: dict[str, EntryPoint] = Field(default_factory=dict)

    def get_entry_point(self, name: str) -> EntryPoint:
        """The declared entry point ``name``, or a ``.py``/``.sh`` file of the project.

        Args:
            name: An entry point name or a script path relative to the project.

        Returns:
            The entry point; a script gets a parameterless one (extra parameters still
            append as ``--key value``).

        Raises:
            InvalidParameter: ``name`` is neither declared nor a script in the project.
        """
        if name in self.entry_points:
            return self.entry_points[name]
        suffix = Path(name).suffix
        script = (self.directory / name).resolve()
        inside = script.is_relative_to(self.directory.resolve())
        if suffix in _SCRIPT_RUNNERS and inside and script.is_file():
            runner = _SCRIPT_RUNNERS[suffix] or os.environ.get("SHELL") or "bash"
            return EntryPoint(name=name, command=f"{runner} {shlex.quote(name)}")
        declared = ", ".join(sorted(self.entry_points)) or "none"
        raise InvalidParameter(
            f"Unknown entry point {name!r} in project {self.name!r}: declared entry points are "
            f"{declared}; a .py or .sh file of the project also runs as an entry point."
        )


def find_mlproject(directory: Path) -> Path | None:
    """The MLproject file of ``directory`` (name matched case-insensitively), if any."""
    for child in sorted(directory.iterdir()):
        if child.name.lower() == MLPROJECT_FILENAME.lower() and child.is_file():
            return child
    return None


def load_project(directory: str | os.PathLike[str]) -> Project:
    """Load and validate the project in ``directory``.

    Args:
        directory: A project directory, with or without an MLproject file.

    Returns:
        The validated project.

    Raises:
        ProjectSpecError: The MLproject file, or the environment file it names, is invalid.
        InvalidParameter: ``directory`` is not a directory.
    """
    root = Path(directory).resolve()
    if not root.is_dir():
        raise InvalidParameter(f"Project directory {str(root)!r} does not exist.")
    mlproject = find_mlproject(root)
    document: dict[str, Any] = {}
    if mlproject is not None:
        document = _read_yaml_mapping(mlproject)
    where = mlproject.name if mlproject is not None else str(root)
    unknown = sorted(set(document) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise ProjectSpecError(
            f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(_TOP_LEVEL_KEYS)}."
        )
    name = document.get("name") or root.name
    if not isinstance(name, str):
        raise ProjectSpecError(f"{where}: 'name' must be a string, got {name!r}.")
    entry_points = _parse_entry_points(where, document.get("entry_points"))
    env_type, env_file, docker_env = _parse_environment(where, root, document)
    return Project(
        name=name,
        directory=root,
        env_type=env_type,
        env_file=env_file,
        docker_env=docker_env,
        entry_points=entry_points,
    )


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectSpecError(f"{path.name} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProjectSpecError(
            f"{path.name} must be a YAML mapping, got {type(document).__name__}."
        )
    return document


def _parse_environment(
    where: str, root: Path, document: dict[str, Any]
) -> tuple[EnvType, Path | None, DockerEnv | None]:
    present = [key for key in _ENV_KEYS if document.get(key) is not None]
    if len(present) > 1:
        raise ProjectSpecError(
            f"{where}: a project has one environment, found {', '.join(present)}."
        )
    if present == ["docker_env"]:
        return "docker_env", None, _parse_docker_env(where, document["docker_env"])
    if present:
        key = present[0]
        value = document[key]
        if not isinstance(value, str) or not value:
            raise ProjectSpecError(f"{where}: {key!r} must be a file name, got {value!r}.")
        path = (root / value).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ProjectSpecError(f"{where}: {key} file {value!r} not found in the project.")
        return key, path, None  # type: ignore[return-value]
    # Without an environment section, the conventional file names still count (as MLflow).
    for key, filename in (
        ("python_env", DEFAULT_PYTHON_ENV_FILENAME),
        ("conda_env", DEFAULT_CONDA_ENV_FILENAME),
    ):
        if (root / filename).is_file():
            return key, root / filename, None  # type: ignore[return-value]
    return "none", None, None


def _parse_docker_env(where: str, section: object) -> DockerEnv:
    if not isinstance(section, dict) or not isinstance(section.get("image"), str):
        raise ProjectSpecError(f"{where}: docker_env needs an 'image' (a string).")
    unknown = sorted(set(section) - {"image", "volumes", "environment"})
    if unknown:
        raise ProjectSpecError(
            f"{where}: docker_env has unknown key(s) {', '.join(unknown)}; "
            "accepted: image, volumes, environment."
        )
    volumes = section.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        raise ProjectSpecError(
            f"{where}: docker_env volumes must be a list of 'host:container' strings."
        )
    environment: list[str | tuple[str, str]] = []
    for item in section.get("environment") or []:
        if isinstance(item, str):
            environment.append(item)
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(i, str) for i in item):
            environment.append((item[0], item[1]))
        else:
            raise ProjectSpecError(
                f"{where}: docker_env environment entries are a variable name to copy or a "
                f"[name, value] pair, got {item!r}."
            )
    return DockerEnv(image=section["image"], volumes=tuple(volumes), environment=tuple(environment))


def _parse_entry_points(where: str, section: object) -> dict[str, EntryPoint]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ProjectSpecError(f"{where}: 'entry_points' must be a mapping of name to entry point.")
    entry_points: dict[str, EntryPoint] = {}
    for name, body in section.items():
        context = f"{where}: entry point {name!r}"
        if not isinstance(body, dict):
            raise ProjectSpecError(f"{context} must be a mapping with a 'command'.")
        unknown = sorted(set(body) - {"parameters", "command"})
        if unknown:
            raise ProjectSpecError(
                f"{context} has unknown key(s) {', '.join(map(str, unknown))}; "
                "accepted: command, parameters."
            )
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ProjectSpecError(f"{context} needs a 'command' (a non-empty string).")
        parameters = _parse_parameters(context, body.get("parameters"))
        _check_placeholders(context, command, parameters)
        entry_points[str(name)] = EntryPoint(name=str(name), command=command, parameters=parameters)
    return entry_points


def _parse_parameters(context: str, section: object) -> dict[str, ParameterSpec]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ProjectSpecError(f"{context}: 'parameters' must be a mapping of name to type.")
    parameters: dict[str, ParameterSpec] = {}
    for raw_name, definition in section.items():
        name = str(raw_name)
        where = f"{context}, parameter {name!r}"
        if isinstance(definition, str):  # the short form `name: type`
            definition = {"type": definition}
        if definition is None:
            definition = {}
        if not isinstance(definition, dict):
            raise ProjectSpecError(
                f"{where}: expected a type name or a mapping with type/default, got {definition!r}."
            )
        unknown = sorted(set(map(str, definition)) - set(_PARAMETER_KEYS))
        if unknown:
            raise ProjectSpecError(
                f"{where}: unknown key(s) {', '.join(unknown)}; accepted: "
                f"{', '.join(_PARAMETER_KEYS)}."
            )
        type_name = _normalise_type(where, definition.get("type", "string"))
        spec = ParameterSpec(
            name=name, type=type_name, description=_optional_str(where, definition)
        )
        default = definition.get("default")
        if default is not None:
            try:
                spec = spec.model_copy(update={"default": spec.convert(default)})
            except InvalidParameter as exc:
                raise ProjectSpecError(f"{where}: invalid default: {exc.message}") from exc
        parameters[name] = spec
    return parameters


def _normalise_type(where: str, value: object) -> ParameterType:
    type_name = _TYPE_ALIASES.get(str(value), str(value))
    if type_name not in PARAMETER_TYPES:
        raise ProjectSpecError(
            f"{where}: unknown type {value!r}; accepted: {', '.join(PARAMETER_TYPES)}."
        )
    return type_name  # type: ignore[return-value]


def _optional_str(where: str, definition: dict[str, Any]) -> str | None:
    description = definition.get("description")
    if description is not None and not isinstance(description, str):
        raise ProjectSpecError(f"{where}: 'description' must be a string.")
    return description


def _check_placeholders(context: str, command: str, parameters: dict[str, ParameterSpec]) -> None:
    try:
        parsed = [
            (field, spec, conversion)
            for _, field, spec, conversion in string.Formatter().parse(command)
            if field is not None
        ]
    except ValueError as exc:
        raise ProjectSpecError(f"{context}: malformed command template: {exc}") from exc
    for field, spec, conversion in parsed:
        if spec or conversion:
            # A conversion such as !r would re-wrap the shell-quoted value and undo the quoting.
            raise ProjectSpecError(
                f"{context}: placeholders are plain {{name}}; {{{field}"
                f"{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                "is not accepted."
            )
        if field not in parameters:
            declared = ", ".join(parameters) or "none"
            raise ProjectSpecError(
                f"{context}: the command uses {{{field}}} but declares no such parameter "
                f"(declared: {declared}); write literal braces as {{{{ and }}}}."
            )
    numeric = {name: spec.type in ("int", "float") for name, spec in parameters.items()}
    try:
        scan(command, numeric)
    except TemplateError as exc:
        raise ProjectSpecError(f"{context}: {exc}.") from exc


def _type_error(name: str, type_name: str, value: object) -> InvalidParameter:
    article = "an" if type_name[0] in "aeiou" else "a"
    return InvalidParameter(f"Parameter {name!r} expects {article} {type_name}, got {value!r}.")


def _to_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise _type_error(name, "float", value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _type_error(name, "float", value)


def _to_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise _type_error(name, "int", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _type_error(name, "int", value)
