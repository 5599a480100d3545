"""Evaluation inputs: features and targets checked and split before anything is computed.

Every rule here runs before a prediction is made or a value is logged, so bad input is a
typed error that leaves the run untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowml.exceptions import InvalidParameter

__all__ = ["EvalData", "check_label_types", "prepare_data", "to_1d"]

MODEL_TYPES = ("classifier", "regressor")


@dataclass
class EvalData:
    """What an evaluation scores.

    Attributes:
        features: the evaluated columns, a pandas DataFrame (the tables are built from it).
        model_input: what the model is given: ``features``, or the caller's numpy array
            when no names were given (an estimator fitted on an array gets an array).
        targets: the true values, a 1-D numpy array aligned with ``features``.
        target_name: the target column's name (``"target"`` when given as an array).
        source: what the caller passed, for the run's dataset record.
    """

    features: Any
    targets: Any
    target_name: str
    source: Any
    model_input: Any = None

    def __post_init__(self) -> None:
        if self.model_input is None:
            self.model_input = self.features


def prepare_data(
    data: Any, targets: Any, feature_names: Sequence[str] | None, model_type: str
) -> EvalData:
    """Split ``data`` into features and targets and check both.

    Args:
        data: a pandas DataFrame, a 2-D numpy array or a list of dicts.
        targets: the target column's name in ``data``, or an array-like of true values.
        feature_names: the columns the model reads (default: every column but the
            target); for a numpy array, the names of its columns.
        model_type: ``"classifier"`` or ``"regressor"``.

    Returns:
        An `EvalData`.

    Raises:
        InvalidParameter: an unknown model type, empty data, targets missing, of the wrong
            length or holding missing values, non-numeric regression targets, or unknown
            feature names.
    """
    import numpy as np
    import pandas as pd

    if model_type not in MODEL_TYPES:
        raise InvalidParameter(
            f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}"
        )
    if targets is None:
        raise InvalidParameter(
            "evaluate needs targets=: the name of the label column in data, or the labels"
        )
    frame = _frame(data, feature_names)
    if len(frame) == 0:
        raise InvalidParameter("The evaluation data is empty: there is nothing to score")
    target_name = "target"
    if isinstance(targets, str):
        if targets not in frame.columns:
            raise InvalidParameter(
                f"The data has no target column {targets!r}; it has: "
                f"{', '.join(map(str, frame.columns[:20]))}"
            )
        target_name = targets
        y = frame[targets].to_numpy()
        frame = frame.drop(columns=[targets])
    else:
        y = to_1d(targets, "targets")
        if len(y) != len(frame):
            raise InvalidParameter(
                f"targets has {len(y)} values but the data has {len(frame)} rows"
            )
    if feature_names is not None and not isinstance(data, np.ndarray):
        missing = [n for n in feature_names if n not in frame.columns]
        if missing:
            raise InvalidParameter(f"feature_names not in the data: {', '.join(missing)}")
        frame = frame[list(feature_names)]
    if frame.shape[1] == 0:
        raise InvalidParameter("The evaluation data has no feature column left")
    if pd.isna(y).any():
        raise InvalidParameter(
            f"targets hold {int(pd.isna(y).sum())} missing value(s): drop or fill those rows"
        )
    if model_type == "regressor" and y.dtype.kind not in "biuf":
        raise InvalidParameter(
            f"A regressor's targets must be numbers, got {y.dtype} values like {y[0]!r}"
        )
    model_input = data if isinstance(data, np.ndarray) and feature_names is None else frame
    return EvalData(frame, y, target_name, data, model_input)


def to_1d(values: Any, label: str) -> Any:
    """``values`` (list, Series, 1-column DataFrame, array) as a 1-D numpy array."""
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise InvalidParameter(f"{label} must be one column, got {values.shape[1]}")
        values = values.iloc[:, 0]
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise InvalidParameter(f"{label} must be an array of values, got {type(values).__name__}")
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidParameter(f"{label} must be one value per row, got shape {array.shape}")
    return array


def check_label_types(y_true: Any, y_pred: Any, model_type: str) -> None:
    """Fail when predictions cannot be compared with the targets.

    Raises:
        InvalidParameter: a classifier predicting strings for numeric labels (or the other
            way round), or a regressor predicting non-numbers.
    """
    true_kind, pred_kind = _kind(y_true), _kind(y_pred)
    if model_type == "regressor":
        if pred_kind != "number":
            raise InvalidParameter(
                f"A regressor must predict numbers, got {y_pred.dtype} values like {y_pred[0]!r}"
            )
        return
    if true_kind != pred_kind:
        raise InvalidParameter(
            f"The labels are {true_kind}s ({y_true[0]!r}) but the model predicts {pred_kind}s "
            f"({y_pred[0]!r}): encode both the same way"
        )


def _kind(values: Any) -> str:
    if values.dtype.kind in "biuf":
        return "number"
    if values.dtype.kind in "US":
        return "string"
    kinds = {type(v) for v in values[:1000]}
    if all(issubclass(k, str) for k in kinds):
        return "string"
    if all(issubclass(k, (int, float)) and not issubclass(k, bool) for k in kinds):
        return "number"
    return "mixed value"


def _frame(data: Any, feature_names: Sequence[str] | None) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(feature_names, str) or (
        feature_names is not None and not all(isinstance(n, str) for n in feature_names)
    ):
        raise InvalidParameter(f"feature_names must be a list of names, got {feature_names!r}")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidParameter(f"A numpy array of data must be 2-D, got shape {data.shape}")
        names = list(feature_names) if feature_names else [f"f{i}" for i in range(data.shape[1])]
        if len(names) != data.shape[1]:
            raise InvalidParameter(
                f"feature_names has {len(names)} names for {data.shape[1]} columns"
            )
        return pd.DataFrame(data, columns=names)
    if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
        return pd.DataFrame(data)
    raise InvalidParameter(
        f"data must be a pandas DataFrame, a 2-D numpy array or a list of dicts, got "
        f"{type(data).__name__}"
    )
