"""Custom Python models: subclass `PythonModel` and implement ``predict``.

This module is serialised *by value* together with each custom model (cloudpickle), so a
flowml custom model loads where flowml is not installed, e.g. in MLflow's
``mlflow.pyfunc.load_model``. Keep it free of imports from the rest of flowml.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PythonModel", "PythonModelContext"]


class PythonModelContext:
    """What a custom model gets at load time: local paths of its artifacts and a config.

    Attributes:
        artifacts: Artifact name -> absolute local path inside the loaded model directory.
        model_config: Optional configuration given at save time.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("vocab.txt").write_text("cat dog")
        >>> class Vocab(flowml.PythonModel):
        ...     def load_context(self, context):
        ...         self.words = Path(context.artifacts["vocab"]).read_text().split()
        ...         self.prefix = context.model_config["prefix"]
        ...     def predict(self, context, model_input, params=None):
        ...         return [self.prefix + w for w in model_input if w in self.words]
        >>> _ = flowml.save_model(python_model=Vocab(), path="vocab_model",
        ...                       artifacts={"vocab": "vocab.txt"}, model_config={"prefix": "#"})
        >>> flowml.load_model("vocab_model").predict(["cat", "emu"])
        ['#cat']
    """

    def __init__(
        self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None = None
    ) -> None:
        self._artifacts = dict(artifacts)
        self._model_config = dict(model_config or {})

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any]:
        return self._model_config


class _NoTypeHints:
    # MLflow's pyfunc wrapper reads `predict_type_hints.input` to convert inputs; None
    # means "pass the input through as it is".
    input = None
    output = None


class PythonModel(abc.ABC):
    """Base class of custom models.

    Override ``load_context`` to read artifacts once at load time, and ``predict`` to
    score. The signature of ``predict`` (``context, model_input, params=None``) is
    MLflow's, so the saved model also loads with ``mlflow.pyfunc.load_model``.

    Example:
        >>> class AddN(PythonModel):
        ...     def __init__(self, n):
        ...         self.n = n
        ...     def predict(self, context, model_input, params=None):
        ...         return model_input + self.n
        >>> import flowml
        >>> _ = flowml.save_model(python_model=AddN(5), path="add_n")
        >>> flowml.load_model("add_n").predict(1)
        6
    """

    def load_context(self, context: PythonModelContext) -> None:  # noqa: B027
        """Read artifacts from ``context.artifacts``; called once when the model loads."""

    @abc.abstractmethod
    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Score `model_input` (already checked against the signature) and return predictions."""

    @property
    def predict_type_hints(self) -> _NoTypeHints:
        return _NoTypeHints()


class _FunctionModel(PythonModel):
    """A plain function ``f(model_input) -> predictions`` as a custom model."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        return self.func(model_input)
