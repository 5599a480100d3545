"""The flavor contract: how one kind of model is saved, loaded natively and scored.

A flavor writes its files into a model directory and records two blocks in the MLmodel
file: its own (``sklearn: {...}``) and ``python_function`` (the generic interface, with the
``loader_module`` that loads it). flowml recognises a model by that ``loader_module``; a
flavor lists every loader module it can read (MLflow's name first, so the model also loads
in MLflow).

Third-party flavors subclass `Flavor` and register under the ``flowml.flavors`` entry-point
group, e.g. in their ``pyproject.toml``::

    [project.entry-points."flowml.flavors"]
    lightgbm = "flowml_lightgbm:LightGBMFlavor"
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Protocol

from flowml.models.mlmodel import Model

__all__ = ["Flavor", "Predictor"]


class Predictor(Protocol):
    """The scoring half of a loaded model: input already checked against the signature."""

    def predict(self, data: Any, params: dict[str, Any]) -> Any: ...


class Flavor(abc.ABC):
    """One model kind. Subclasses keep heavy imports inside their methods.

    Attributes:
        name: The flavor's key in the MLmodel ``flavors`` block.
        loader_modules: ``python_function.loader_module`` values this flavor loads.
    """

    name: ClassVar[str]
    loader_modules: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def can_save(self, model: Any) -> bool:
        """Whether `model` is an object of this flavor (checked without heavy imports)."""

    @abc.abstractmethod
    def save(self, model: Any, path: Path, mlmodel: Model, **options: Any) -> None:
        """Write `model`'s files into directory `path` and add the flavor blocks to `mlmodel`.

        Raises:
            InvalidParameter: an option is unknown or has a bad value.
        """

    @abc.abstractmethod
    def requirements(self, model: Any, **options: Any) -> list[str]:
        """The distribution names (``scikit-learn``, ...) the saved model needs to load."""

    @abc.abstractmethod
    def load(self, path: Path, mlmodel: Model) -> Any:
        """The native object saved in the local model directory `path`."""

    @abc.abstractmethod
    def predictor(self, native: Any, path: Path | None, mlmodel: Model) -> Predictor:
        """A `Predictor` around a native object (loaded, or still in memory at save time)."""

    def load_predictor(self, path: Path, mlmodel: Model) -> Predictor:
        """Load the model at `path` and wrap it for scoring."""
        return self.predictor(self.load(path, mlmodel), path, mlmodel)
