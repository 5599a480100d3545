"""The custom-model flavor: a `PythonModel` (or a plain function) serialised with cloudpickle.

Written exactly as MLflow writes custom models (``loader_module: mlflow.pyfunc.model``,
``python_model: python_model.pkl``, ``artifacts``), so it loads in MLflow too. The
`flowml.models.python_model` module travels by value inside the pickle, so MLflow's side
does not need flowml installed; a model class defined in a script or notebook travels by
value as well. A class defined in an importable module travels by reference: either ship
that module with ``code_paths`` or pass ``pickle_by_value=True``.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.flavors.base import Flavor, Predictor
from flowml.models.mlmodel import PYFUNC_FLAVOR, Model, model_file
from flowml.models.python_model import PythonModel, PythonModelContext, _FunctionModel

__all__ = ["PythonModelFlavor"]

MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"


class _PythonModelPredictor:
    __slots__ = ("_takes_params", "context", "model")

    def __init__(self, model: Any, context: PythonModelContext) -> None:
        import inspect

        self.model = model
        self.context = context
        self._takes_params = "params" in inspect.signature(model.predict).parameters

    def predict(self, data: Any, params: dict[str, Any]) -> Any:
        if self._takes_params:
            return self.model.predict(self.context, data, params=params or None)
        return self.model.predict(self.context, data)


def _dump(model: Any, by_value: bool) -> bytes:
    import sys

    import cloudpickle

    modules = [sys.modules[PythonModel.__module__]]
    own = sys.modules.get(type(model).__module__)
    if by_value and own is not None and own.__name__ != "__main__":
        modules.append(own)
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(model)
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def _copy_artifacts(artifacts: Mapping[str, str], path: Path) -> dict[str, dict[str, str]]:
    from flowml.models.uri import download_to_local

    saved: dict[str, dict[str, str]] = {}
    for name, uri in artifacts.items():
        if not name or "/" in name or name.startswith("."):
            raise InvalidParameter(f"Invalid artifact name {name!r}: use a plain file name")
        local = Path(download_to_local(str(uri)))
        if not local.exists():
            raise InvalidParameter(f"Artifact {name!r} does not exist: {uri}")
        target = path / ARTIFACTS_DIR / local.name
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            raise InvalidParameter(f"Two artifacts share the file name {local.name!r}")
        if local.is_dir():
            shutil.copytree(local, target)
        else:
            shutil.copy2(local, target)
        saved[name] = {"path": f"{ARTIFACTS_DIR}/{local.name}", "uri": str(uri)}
    return saved


class PythonModelFlavor(Flavor):
    """Custom models: `PythonModel` subclasses and plain functions."""

    name = PYFUNC_FLAVOR
    loader_modules = ("mlflow.pyfunc.model", "flowml.models.flavors.python_model")

    def can_save(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(
        self,
        model: Any,
        path: Path,
        mlmodel: Model,
        *,
        artifacts: Mapping[str, str] | None = None,
        model_config: Mapping[str, Any] | None = None,
        pickle_by_value: bool = False,
        **options: Any,
    ) -> None:
        if options:
            raise InvalidParameter(f"Unknown python_model option(s): {sorted(options)}")
        model = as_python_model(model)
        import cloudpickle

        saved = _copy_artifacts(artifacts or {}, path)
        (path / MODEL_FILE).write_bytes(_dump(model, pickle_by_value))
        conf: dict[str, Any] = {
            "loader_module": self.loader_modules[0],
            "python_model": MODEL_FILE,
            "cloudpickle_version": cloudpickle.__version__,
            "python_version": platform.python_version(),
            "streamable": False,
            "code": None,
        }
        if saved:
            conf["artifacts"] = saved
        if model_config:
            conf["config"] = dict(model_config)
        mlmodel.add_flavor(PYFUNC_FLAVOR, **conf)

    def requirements(self, model: Any, **options: Any) -> list[str]:
        return ["cloudpickle"]

    def load(self, path: Path, mlmodel: Model) -> Any:
        from flowml.models.mlflow_compat import load_custom_model, mlflow_install_hint

        conf = mlmodel.flavor(PYFUNC_FLAVOR)
        source = conf.get("python_model")
        if not isinstance(source, str) or source.endswith(".py"):
            # MLflow's "models from code": a script that calls mlflow.models.set_model.
            raise InvalidParameter(
                "This custom model was saved from code (MLflow's models-from-code, whose "
                "script calls mlflow.models.set_model); flowml loads pickled custom models "
                f"only: load it with MLflow ({mlflow_install_hint(path)})"
            )
        pickled = model_file(path, source, f"flavors.{PYFUNC_FLAVOR}.python_model")
        with open(pickled, "rb") as handle:
            return load_custom_model(handle, path)

    def predictor(self, native: Any, path: Path | None, mlmodel: Model) -> Predictor:
        conf = mlmodel.flavors.get(PYFUNC_FLAVOR, {})
        artifacts = {
            name: (
                str(model_file(path, info["path"], f"flavors.{PYFUNC_FLAVOR}.artifacts.{name}"))
                if path is not None
                else info["uri"]
            )
            for name, info in (conf.get("artifacts") or {}).items()
        }
        context = PythonModelContext(artifacts, conf.get("config"))
        native.load_context(context)
        return _PythonModelPredictor(native, context)


def as_python_model(model: PythonModel | Callable[[Any], Any]) -> PythonModel:
    """`model` itself, or a plain function wrapped as a `PythonModel`.

    Raises:
        InvalidParameter: `model` is neither.
    """
    if isinstance(model, PythonModel):
        return model
    if callable(model):
        return _FunctionModel(model)
    raise InvalidParameter(
        f"python_model must be a flowml PythonModel or a function, got {type(model).__name__}"
    )
