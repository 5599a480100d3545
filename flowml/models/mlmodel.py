"""The MLmodel file: the YAML at the root of every model directory.

flowml writes the keys MLflow 3 reads (``flavors``, ``model_uuid``, ``utc_time_created``,
``signature``, ``saved_input_example_info``, ``model_size_bytes``, ``run_id``,
``artifact_path``) plus ``flowml_version``. Keys written by other tools (``mlflow_version``,
``model_id``, ...) are kept verbatim, so loading and re-saving never loses information.

Every file an MLmodel names (``data``, ``pickled_model``, ``python_model``, ``code``,
``artifacts``...) must live inside the model directory: `model_file` is the one way to
turn such an entry into a path, and `Model.check_paths` checks them all before a flavor
reads anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.models.schema import ModelSignature, ParamSchema, Schema
from flowml.tracking.artifacts import safe_artifact_path

__all__ = ["MLMODEL_FILE_NAME", "PYFUNC_FLAVOR", "Model", "ModelInfo", "model_file"]

MLMODEL_FILE_NAME = "MLmodel"
PYFUNC_FLAVOR = "python_function"

_KNOWN_KEYS = frozenset(
    {
        "artifact_path",
        "flavors",
        "flowml_version",
        "model_size_bytes",
        "model_uuid",
        "run_id",
        "saved_input_example_info",
        "signature",
        "utc_time_created",
    }
)


# Flavor keys that name a file or directory of the model (MLflow's flavors use these).
_PATH_KEYS = ("code", "data", "model_data", "model_path", "pickled_model", "python_model")


def model_file(root: str | os.PathLike[str], entry: object, key: str) -> Path:
    """The file or directory MLmodel entry `key` names, confined to model directory `root`.

    Args:
        root: the local model directory.
        entry: the entry's value, a path relative to `root`.
        key: the entry's name (``flavors.sklearn.pickled_model``), for the error message.

    Returns:
        The resolved path, inside `root`.

    Raises:
        InvalidParameter: the entry is not a string, is absolute, holds ``..``, a
            backslash or an encoded dot or slash, or reaches outside `root` through a
            symbolic link.
    """
    if not isinstance(entry, str):
        raise InvalidParameter(
            f"MLmodel entry {key} must be a path inside the model directory, got {entry!r}"
        )
    try:
        rel = safe_artifact_path(entry)
    except InvalidParameter as exc:
        raise InvalidParameter(
            f"Refusing to load the model: MLmodel entry {key} = {entry!r} points outside the "
            f"model directory ({exc.message}); a model's files must live inside its directory"
        ) from None
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise InvalidParameter(
            f"Refusing to load the model: MLmodel entry {key} = {entry!r} leads outside the "
            "model directory through a symbolic link"
        )
    return target


def _utc_now() -> str:
    # MLflow's format: str() of a naive UTC datetime.
    return str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


@functools.lru_cache(maxsize=1)
def flowml_version() -> str:
    """The installed flowml version (read from package metadata: this layer never imports
    the top-level package, which reaches into higher layers)."""
    try:
        return importlib.metadata.version("flowml")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class Model:
    """The content of an MLmodel file.

    Attributes:
        flavors: Flavor name -> that flavor's configuration.
        signature: Inputs, outputs and params, or None.
        saved_input_example_info: Where the input example lives and its kind, or None.
        extra: Keys flowml does not interpret, kept for round trips.
    """

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(default_factory=_utc_now)
    run_id: str | None = None
    artifact_path: str | None = None
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    model_size_bytes: int | None = None
    flowml_version: str | None = field(default_factory=flowml_version)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_flavor(self, name: str, **config: Any) -> Model:
        """Record flavor `name` with its configuration (replacing any earlier one)."""
        self.flavors[name] = dict(config)
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        """The configuration of flavor `name`.

        Raises:
            ResourceNotFound: the model was not saved with that flavor.
        """
        if name not in self.flavors:
            raise ResourceNotFound(
                f"The model has no {name!r} flavor; it has {sorted(self.flavors)}"
            )
        return self.flavors[name]

    def check_paths(self, root: str | os.PathLike[str]) -> None:
        """Check that every file this MLmodel names lies inside model directory `root`.

        Called before a flavor reads anything, so a crafted MLmodel (``pickled_model:
        ../../elsewhere.pkl``, ``code: /tmp/evil``) fails without a byte being read.

        Raises:
            InvalidParameter: an entry is absolute, holds ``..`` or similar, or leads
                outside `root` (see `model_file`).
        """
        for name, conf in self.flavors.items():
            for key in _PATH_KEYS:
                if conf.get(key) is not None:
                    model_file(root, conf[key], f"flavors.{name}.{key}")
            artifacts = conf.get("artifacts")
            if artifacts is None:
                continue
            if not isinstance(artifacts, dict):
                raise InvalidParameter(f"MLmodel entry flavors.{name}.artifacts must be a mapping")
            for artifact, info in artifacts.items():
                where = f"flavors.{name}.artifacts.{artifact}.path"
                model_file(root, info.get("path") if isinstance(info, dict) else info, where)
        example = self.saved_input_example_info
        if isinstance(example, dict) and example.get("artifact_path") is not None:
            model_file(root, example["artifact_path"], "saved_input_example_info.artifact_path")

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        return self.signature.params if self.signature is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            flavors=self.flavors,
            model_uuid=self.model_uuid,
            utc_time_created=self.utc_time_created,
        )
        optional = {
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "saved_input_example_info": self.saved_input_example_info,
            "model_size_bytes": self.model_size_bytes,
            "flowml_version": self.flowml_version,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the MLmodel file into directory `path` (or to `path` if it names the file)."""
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE_NAME
        target.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Build from the parsed YAML.

        Raises:
            InvalidParameter: required keys are missing or malformed.
        """
        if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
            raise InvalidParameter("An MLmodel file must be a mapping with a 'flavors' mapping")
        signature = data.get("signature")
        return cls(
            flavors={str(k): dict(v or {}) for k, v in data["flavors"].items()},
            model_uuid=str(data.get("model_uuid") or uuid.uuid4().hex),
            utc_time_created=str(data.get("utc_time_created") or ""),
            run_id=data.get("run_id"),
            artifact_path=data.get("artifact_path"),
            signature=ModelSignature.from_dict(signature) if signature else None,
            saved_input_example_info=data.get("saved_input_example_info"),
            model_size_bytes=data.get("model_size_bytes"),
            flowml_version=data.get("flowml_version"),
            extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read the MLmodel file in local directory `path` (or the file itself).

        Raises:
            ResourceNotFound: there is no MLmodel file there.
            InvalidParameter: the file is not a valid MLmodel YAML.
        """
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE_NAME
        if not target.is_file():
            raise ResourceNotFound(
                f"No {MLMODEL_FILE_NAME} file at {target}: not a model directory"
            )
        try:
            data = yaml.safe_load(target.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{target} is not valid YAML: {exc}") from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class ModelInfo:
    """What `log_model` returns: where the model is and what it is.

    Attributes:
        name: The artifact path of the model inside its run (e.g. ``"model"``).
        model_uri: ``runs:/<run_id>/<name>``, loadable by flowml and by MLflow.
        run_id: The run the model was logged to.
        flavors: The MLmodel flavors block.
        signature: The model signature, or None.
        model_uuid: The model's unique id.
        utc_time_created: When it was saved (UTC, MLflow's format).
        registered_model_version: The version number when `registered_model_name` was given.

    Example:
        >>> with flowml.start_run() as run:
        ...     info = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> info.model_uri == f"runs:/{run.info.run_id}/model", info.name, list(info.flavors)
        (True, 'model', ['python_function'])
    """

    name: str
    model_uri: str
    run_id: str
    flavors: dict[str, dict[str, Any]]
    signature: ModelSignature | None
    model_uuid: str
    utc_time_created: str
    artifact_uri: str | None = None
    registered_model_version: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def artifact_path(self) -> str:
        """MLflow 2's name for `name`."""
        return self.name
