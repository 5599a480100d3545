"""Signature inference from example data, with MLflow's type names.

| example | inferred schema |
|---|---|
| pandas DataFrame, list of dicts, dict of scalars | one named column per key |
| pandas Series, list of scalars, a scalar | one unnamed column |
| numpy array | one unnamed tensor ``(-1, *shape[1:])`` |
| dict of numpy arrays | one named tensor per key |
| params dict | one param per key (type, default, shape ``(-1,)`` for lists) |

numpy and pandas are imported on first use only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.schema import (
    ColSpec,
    DataType,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
)

__all__ = ["infer_params_schema", "infer_schema", "infer_signature", "type_of_dtype"]


def type_of_dtype(dtype: Any) -> DataType | None:
    """The MLflow type of a numpy/pandas dtype, or None when values must be inspected.

    Returns None for ``object`` columns (their values decide) and for dtypes with no
    MLflow equivalent.
    """
    kind = getattr(dtype, "kind", None)
    name = str(dtype)
    if name in ("string", "str") or name.startswith("string["):
        return DataType.string
    if name == "boolean" or kind == "b":
        return DataType.boolean
    if kind in ("i", "u"):
        size = getattr(dtype, "itemsize", 8)
        if kind == "i":
            return DataType.integer if size <= 4 else DataType.long
        return DataType.integer if size <= 2 else DataType.long
    if kind == "f":
        return DataType.float if getattr(dtype, "itemsize", 8) <= 4 else DataType.double
    if kind == "M":
        return DataType.datetime
    if kind == "S":
        return DataType.binary
    if kind == "U":
        return DataType.string
    return None


def _type_of_value(value: Any) -> DataType | None:
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return DataType.boolean
    if isinstance(value, np.integer):
        return type_of_dtype(value.dtype)
    if isinstance(value, int):
        return DataType.long
    if isinstance(value, (float, np.floating)):
        return DataType.float if isinstance(value, np.float32) else DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, (bytes, bytearray)):
        return DataType.binary
    if isinstance(value, (dt.datetime, dt.date, np.datetime64)):
        return DataType.datetime
    return None


def _type_of_values(values: Any, label: str) -> DataType:
    found: set[DataType] = set()
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            continue
        kind = _type_of_value(value)
        if kind is None:
            raise InvalidParameter(
                f"Cannot infer a type for {label}: unsupported value {value!r} "
                f"of type {type(value).__name__}"
            )
        found.add(kind)
    if not found:
        raise InvalidParameter(f"Cannot infer a type for {label}: it holds no values")
    if found <= {DataType.integer, DataType.long}:
        return DataType.long if DataType.long in found else DataType.integer
    if found <= {DataType.integer, DataType.long, DataType.float, DataType.double}:
        return DataType.double
    if len(found) > 1:
        names = sorted(t.value for t in found)
        raise InvalidParameter(f"Cannot infer a type for {label}: it mixes {names}")
    return found.pop()


def _column_type(series: Any, label: str) -> DataType:
    kind = type_of_dtype(series.dtype)
    if kind is not None and kind is not DataType.string:
        return kind
    if kind is DataType.string and str(series.dtype) != "object":
        return kind
    return _type_of_values(series.tolist(), label)


def _schema_of_frame(frame: Any) -> Schema:
    specs = []
    for column in frame.columns:
        specs.append(ColSpec(_column_type(frame[column], f"column {column!r}"), str(column)))
    return Schema(specs)


def _tensor_spec(array: Any, name: str | None = None) -> TensorSpec:
    if array.dtype.kind == "O":
        raise InvalidParameter(
            f"Cannot infer a tensor spec for {name or 'the array'}: object arrays have no dtype; "
            "pass a DataFrame or a typed array"
        )
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return TensorSpec(dtype=str(array.dtype), shape=shape, name=name)


def infer_schema(data: Any) -> Schema:
    """The schema of an example input or output.

    Args:
        data: A pandas DataFrame or Series, a numpy array, a dict of numpy arrays, a dict
            of scalars, a list of dicts, a list of scalars, or a single scalar.

    Returns:
        A column-based schema, or a tensor-based one for numpy arrays.

    Raises:
        InvalidParameter: the data has no MLflow type (mixed or unsupported values).

    Example:
        >>> infer_schema([{"a": 1.0, "b": "x"}]).to_json()
        '[{"type": "double", "name": "a", "required": true}, {"type": "string", "name": "b", "required": true}]'
    """  # noqa: E501
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _schema_of_frame(data)
    if isinstance(data, pd.Series):
        name = str(data.name) if isinstance(data.name, str) else None
        return Schema([ColSpec(_column_type(data, "the series"), name)])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data)])
    if isinstance(data, Mapping):
        if not data:
            raise InvalidParameter("Cannot infer a schema from an empty dict")
        if all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema([_tensor_spec(v, str(k)) for k, v in data.items()])
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in data.values()):
            return _schema_of_frame(pd.DataFrame(dict(data)))
        return Schema(
            [ColSpec(_type_of_values([v], f"key {k!r}"), str(k)) for k, v in data.items()]
        )
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidParameter("Cannot infer a schema from an empty list")
        if all(isinstance(row, Mapping) for row in data):
            return _schema_of_frame(pd.DataFrame.from_records(list(data)))
        if all(isinstance(row, (list, tuple, np.ndarray)) for row in data):
            return Schema([_tensor_spec(np.asarray(data))])
        return Schema([ColSpec(_type_of_values(data, "the list"))])
    return Schema([ColSpec(_type_of_values([data], "the value"))])


def _param_spec(name: str, value: Any) -> ParamSpec:
    import numpy as np

    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        kind = _type_of_values(value, f"param {name!r}")
        return ParamSpec(name, kind, [_jsonable(v) for v in value], (-1,))
    if isinstance(value, Mapping) or value is None:
        raise InvalidParameter(
            f"Param {name!r} must be a scalar or a list of scalars, got {type(value).__name__}"
        )
    return ParamSpec(name, _type_of_values([value], f"param {name!r}"), _jsonable(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def infer_params_schema(params: Mapping[str, Any]) -> ParamSchema:
    """The params schema of example params: each value becomes the param's default.

    Raises:
        InvalidParameter: a value is a dict, None, or of a type MLflow has no name for.
    """
    return ParamSchema(tuple(_param_spec(str(k), v) for k, v in params.items()))


def infer_signature(
    model_input: Any = None,
    model_output: Any = None,
    params: Mapping[str, Any] | None = None,
) -> ModelSignature:
    """A signature from an example input, an optional output and optional params.

    Args:
        model_input: Example input (see `infer_schema` for the accepted kinds).
        model_output: Example output, e.g. ``model.predict(model_input)``.
        params: Example inference params; their values become the defaults.

    Returns:
        The `ModelSignature`, ready to pass to ``save_model``/``log_model``.

    Raises:
        InvalidParameter: an example has no MLflow type.

    Example:
        >>> import pandas as pd
        >>> sig = infer_signature(pd.DataFrame({"x": [1.0]}), [0], params={"k": 3})
        >>> sig.to_dict()["params"]
        '[{"name": "k", "default": 3, "shape": null, "type": "long"}]'
    """
    return ModelSignature(
        inputs=infer_schema(model_input) if model_input is not None else None,
        outputs=infer_schema(model_output) if model_output is not None else None,
        params=infer_params_schema(params) if params else None,
    )
