"""What can be evaluated: a model URI, a loaded `PyFuncModel`, an estimator or a function.

Each becomes a `Scorer`: ``predict`` for the labels or values, and ``predict_proba`` when the
underlying model gives class probabilities (log loss, ROC and PR curves need them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowml.evaluation.data import to_1d
from flowml.exceptions import InvalidParameter

__all__ = ["Scorer", "as_scorer"]


@dataclass
class Scorer:
    """A model reduced to what evaluation calls.

    Attributes:
        predict: features -> predictions.
        predict_proba: features -> class probabilities (n_rows x n_classes), if available.
        classes: the class order of ``predict_proba``'s columns, if known.
        uri: the model URI when the model was given as one.
        name: how the model is named in tags and tables.
        version: ``(name, version)`` of the registered version a ``models:/`` URI named.
    """

    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None
    classes: Any
    uri: str | None
    name: str
    version: tuple[str, int] | None = None

    def predictions(self, features: Any) -> Any:
        """The model's predictions as a 1-D numpy array.

        Raises:
            InvalidParameter: the model returned nothing usable, or not one value per row.
        """
        raw = self.predict(features)
        if raw is None:
            raise InvalidParameter(f"The model {self.name} returned no predictions")
        values = to_1d(raw, "the model's predictions")
        if len(values) != len(features):
            raise InvalidParameter(
                f"The model {self.name} returned {len(values)} predictions for {len(features)} rows"
            )
        return values

    def probabilities(self, features: Any) -> Any:
        """Class probabilities (n_rows x n_classes), or ``None`` when the model has none."""
        import numpy as np

        if self.predict_proba is None:
            return None
        probs = np.asarray(self.predict_proba(features), dtype=float)
        if probs.ndim != 2 or probs.shape[0] != len(features):
            return None
        return probs


def as_scorer(model: Any) -> Scorer:
    """Turn any supported model into a `Scorer`.

    Args:
        model: a model URI (``runs:/``, ``models:/name/3``, ``models:/name@champion``, a path),
            a `PyFuncModel`, an object with ``predict`` (a scikit-learn estimator), or a
            function of the features.

    Raises:
        InvalidParameter: none of those.
        ResourceNotFound: the URI names no model.
    """
    from flowml.models.pyfunc import PyFuncModel

    if isinstance(model, str):
        from flowml.models.api import load_model

        version = None
        target = model
        if model.startswith("models:/"):
            # Pin an alias or stage to the version it names now, so the scores belong to
            # that version even if the alias moves while the evaluation runs.
            from flowml.registry.uri import resolve_model_version

            found = resolve_model_version(model)
            version = (found.name, int(found.version))
            target = f"models:/{found.name}/{found.version}"
        scorer = _from_pyfunc(load_model(target))
        scorer.uri, scorer.name, scorer.version = model, model, version
        return scorer
    if isinstance(model, PyFuncModel):
        return _from_pyfunc(model)
    if hasattr(model, "predict") and callable(model.predict):
        return _from_native(model, model.predict, type(model).__name__)
    if callable(model):
        name = getattr(model, "__qualname__", None) or type(model).__name__
        return Scorer(model, None, None, None, name)
    raise InvalidParameter(
        f"model must be a model URI, a PyFuncModel, an estimator or a function, got "
        f"{type(model).__name__}"
    )


def _from_pyfunc(model: Any) -> Scorer:
    # Probabilities come from the flavor's native estimator, as MLflow's evaluator does: the
    # pyfunc interface itself only predicts labels.
    scorer = _from_native(model.unwrap(), model.predict, f"model {model.model_uuid}")
    scorer.predict = model.predict
    return scorer


def _from_native(native: Any, predict: Callable[[Any], Any], name: str) -> Scorer:
    proba = getattr(native, "predict_proba", None)
    return Scorer(
        predict,
        proba if callable(proba) else None,
        getattr(native, "classes_", None),
        None,
        name,
    )
