"""The generic model interface: every flavor loads as a `PyFuncModel` with one ``predict``.

``predict`` checks the input against the signature (see `flowml.models.enforce`), fills in
the params schema's defaults, then calls the flavor's predictor.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flowml.models.enforce import enforce_params, enforce_schema
from flowml.models.flavors.base import Predictor
from flowml.models.flavors.catalog import flavor_for_loader_module
from flowml.models.mlmodel import PYFUNC_FLAVOR, Model, model_file

__all__ = ["PyFuncModel", "load_pyfunc"]


class PyFuncModel:
    """A loaded model behind MLflow's pyfunc interface.

    Attributes:
        metadata: The MLmodel content.
        path: The local model directory it was loaded from.
    """

    def __init__(self, metadata: Model, predictor: Predictor, path: Path) -> None:
        self.metadata = metadata
        self.path = path
        self._predictor = predictor
        self._inputs = metadata.get_input_schema()
        self._params = metadata.get_params_schema()

    @property
    def model_uuid(self) -> str:
        return self.metadata.model_uuid

    @property
    def loader_module(self) -> str:
        return str(self.metadata.flavors[PYFUNC_FLAVOR].get("loader_module"))

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Score `data` after checking it against the model signature.

        Args:
            data: A DataFrame, numpy array, dict, list of dicts, ... (whatever the model
                takes; with a signature, anything `enforce_schema` can convert).
            params: Inference params, checked against the params schema.

        Returns:
            The flavor's predictions (numpy array, DataFrame, list...).

        Raises:
            InvalidParameter: the input or a param violates the signature.
        """
        return self.predict_parsed(data, params, from_json=False)

    def predict_parsed(
        self, data: Any, params: dict[str, Any] | None = None, *, from_json: bool = True
    ) -> Any:
        """`predict` for data parsed from JSON/CSV (float32, dates and bytes cast leniently)."""
        if self._inputs is not None:
            data = enforce_schema(data, self._inputs, from_json=from_json)
        return self._predictor.predict(data, enforce_params(params, self._params))

    def unwrap(self) -> Any:
        """The flavor's native object (the estimator, the custom `PythonModel`...)."""
        return getattr(self._predictor, "model", self._predictor)

    def __repr__(self) -> str:
        flavors = ", ".join(f for f in self.metadata.flavors if f != PYFUNC_FLAVOR) or "custom"
        return f"<PyFuncModel {flavors} uuid={self.model_uuid} path={str(self.path)!r}>"


def _add_code_path(path: Path, conf: dict[str, Any]) -> None:
    code = conf.get("code")
    if code:
        # MLflow's convention: the model's code directory goes first on sys.path.
        target = str(model_file(path, code, f"flavors.{PYFUNC_FLAVOR}.code"))
        if target not in sys.path:
            sys.path.insert(0, target)


def load_pyfunc(path: str | Path, metadata: Model | None = None) -> PyFuncModel:
    """Load the model directory at local `path` as a `PyFuncModel`.

    Loading runs the model's pickle (and puts its ``code`` directory on ``sys.path``):
    load only models you trust.

    Raises:
        ResourceNotFound: no MLmodel file, no ``python_function`` flavor, or no flavor
            that reads its ``loader_module``.
        InvalidParameter: the MLmodel names a file outside the model directory (checked
            before anything is read).
    """
    root = Path(path)
    mlmodel = metadata or Model.load(root)
    mlmodel.check_paths(root)
    conf = mlmodel.flavor(PYFUNC_FLAVOR)
    flavor = flavor_for_loader_module(str(conf.get("loader_module")))
    _add_code_path(root, conf)
    return PyFuncModel(mlmodel, flavor.load_predictor(root, mlmodel), root)
