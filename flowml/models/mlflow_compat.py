"""Unpickling MLflow's custom models (``mlflow.pyfunc.PythonModel``) without MLflow.

A custom model MLflow saved is a cloudpickle of the user's class, which refers to MLflow
by name in a few places: its base class ``mlflow.pyfunc.model.PythonModel`` (and with it
``PythonModelContext``) and the type-hint record ``mlflow.models.signature._TypeHints``
MLflow keeps on the instance. When MLflow is not installed, these names are answered with
flowml's equivalents, so a model whose own code does not use MLflow loads and predicts. Any
other MLflow name (the model's code calls MLflow, or its ``predict`` has type hints MLflow
validates) cannot be stood in for: the error names the exact ``pip install`` to run, with
the MLflow version from the model's ``requirements.txt`` (or its MLmodel).

Unpickling runs code from the model: this is only ever applied to the model directory's
own pickle, which `load_model` already treats as trusted code.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import IO, Any

from flowml.exceptions import InvalidParameter
from flowml.models.python_model import PythonModel, PythonModelContext

__all__ = ["load_custom_model", "mlflow_install_hint"]


class _MLflowPythonModel(PythonModel):
    """Stands for ``mlflow.pyfunc.PythonModel``: not abstract, since MLflow's is not, and a
    by-value subclass gets its ``predict`` only after the class is created."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError("this custom model defines no predict()")


class _TypeHints:
    """Stands for ``mlflow.models.signature._TypeHints`` (kept on instances, never read)."""

    def __init__(self, input_: Any = None, output: Any = None) -> None:
        self.input = input_
        self.output = output


_STAND_INS: dict[tuple[str, str], Any] = {
    ("mlflow.pyfunc.model", "PythonModel"): _MLflowPythonModel,
    ("mlflow.pyfunc", "PythonModel"): _MLflowPythonModel,
    ("mlflow.pyfunc.model", "PythonModelContext"): PythonModelContext,
    ("mlflow.pyfunc", "PythonModelContext"): PythonModelContext,
    ("mlflow.models.signature", "_TypeHints"): _TypeHints,
}


class _NeedsMLflow(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _StandInUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "mlflow" or module.startswith("mlflow."):
            stand_in = _STAND_INS.get((module, name))
            if stand_in is None:
                raise _NeedsMLflow(f"{module}.{name}")
            return stand_in
        return super().find_class(module, name)


def mlflow_install_hint(model_dir: Path) -> str:
    """``pip install 'mlflow==X'`` with the model's own MLflow requirement when it has one."""
    requirements = model_dir / "requirements.txt"
    if requirements.is_file():
        for line in requirements.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            name = text.split(";")[0].split("[")[0]
            for sep in ("==", ">=", "<=", "~=", "!=", ">", "<"):
                name = name.split(sep)[0]
            if name.strip().lower() == "mlflow" and "'" not in text:
                return f"pip install '{text}'"
    mlmodel = model_dir / "MLmodel"
    if mlmodel.is_file():
        import yaml

        try:
            version = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get(
                "mlflow_version"
            )
        except yaml.YAMLError:
            version = None
        if isinstance(version, str) and version.replace(".", "").isalnum():
            return f"pip install 'mlflow=={version}'"
    return "pip install mlflow"


def load_custom_model(handle: IO[bytes], model_dir: Path) -> Any:
    """Unpickle a custom model: as is when MLflow is installed, else with flowml's stand-ins.

    Raises:
        InvalidParameter: the model needs MLflow (or another missing module); the message
            says what to install.
    """
    mlflow_installed = importlib.util.find_spec("mlflow") is not None
    try:
        if mlflow_installed:
            return pickle.load(handle)
        return _StandInUnpickler(handle).load()
    except _NeedsMLflow as exc:
        raise InvalidParameter(
            f"This custom model's code uses MLflow ({exc.name}), which flowml cannot stand in "
            f"for: {mlflow_install_hint(model_dir)} to load it"
        ) from None
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "mlflow":
            raise InvalidParameter(
                f"This custom model's code imports mlflow: {mlflow_install_hint(model_dir)} "
                "to load it"
            ) from None
        raise InvalidParameter(
            f"Cannot unpickle the custom model: module {exc.name!r} is missing; install it "
            "(see the model's requirements.txt) or save the model with code_paths"
        ) from None
