"""Signature enforcement at predict time.

A column-based schema turns the input into a DataFrame holding exactly the schema's columns
in the schema's order (extra columns are dropped), after checking each column's type:

| column holds | schema says | result |
|---|---|---|
| the same type | any | kept |
| integers | ``integer``/``long``/``float``/``double`` | cast when every value fits exactly |
| ``float32`` | ``double`` | widened |
| floats | ``integer``/``long`` | refused (cast when from JSON and every value is whole) |
| ``float64`` | ``float`` | refused (cast when the data came from JSON, which has no float32) |
| strings | ``datetime``/``binary`` | refused (parsed / base64-decoded when from JSON) |
| only nulls (from JSON) | ``float``/``double`` | NaN (as MLflow's server does) |
| only nulls (from JSON) | ``datetime`` / ``string`` | NaT / kept as ``None`` |
| only nulls | ``integer``/``long``/``boolean``/``binary`` | refused (no missing value) |
| anything else | anything | refused, naming the column and both types |

A schema with named columns matches input columns by name: a list of lists or a 2-D array
has no names and is refused (a 1-D list fills a schema of exactly one column), so a
column-order mistake fails loudly instead of scoring shuffled features.

A tensor-based schema checks dtype (numpy's "safe" casting) and shape (``-1`` = any size).
Every refusal is an `InvalidParameter` (HTTP 400 behind the scoring server).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.schema import ColSpec, DataType, ParamSchema, Schema, TensorSpec
from flowml.models.signature import type_of_dtype

__all__ = ["enforce_params", "enforce_schema"]

_log = logging.getLogger(__name__)

_INT_RANGE = {DataType.integer: (-(2**31), 2**31 - 1), DataType.long: (-(2**63), 2**63 - 1)}
# Integers a float type represents exactly (its mantissa width).
_FLOAT_EXACT = {DataType.float: 2**24, DataType.double: 2**53}
_NUMERIC = (DataType.integer, DataType.long, DataType.float, DataType.double)


def _refuse(column: str, source: str, target: DataType, why: str = "") -> InvalidParameter:
    extra = f" ({why})" if why else ""
    return InvalidParameter(
        f"Incompatible input type for column {column!r}: cannot safely convert "
        f"{source} to {target.value}{extra}"
    )


def _object_type(series: Any) -> DataType | None:
    from flowml.models.signature import _type_of_values

    try:
        return _type_of_values(series.tolist(), "column")
    except InvalidParameter:
        return None


def _integral_floats(series: Any, target: DataType) -> bool:
    import numpy as np

    values = series.to_numpy()
    low, high = _INT_RANGE[target]
    return bool(
        np.isfinite(values).all()
        and (values == np.round(values)).all()
        and (values.size == 0 or (values.min() >= low and values.max() <= high))
    )


def _cast_numeric(
    column: str, series: Any, source: DataType, target: DataType, from_json: bool
) -> Any:
    import numpy as np

    if source in (DataType.float, DataType.double) and target in _INT_RANGE:
        # JSON writers often print whole numbers as 2.0: accept them when nothing is lost.
        if from_json and _integral_floats(series, target):
            return series.astype(target.numpy_dtype)
        raise _refuse(column, str(series.dtype), target)
    if source is DataType.double and target is DataType.float:
        raise _refuse(column, str(series.dtype), target)
    values = series.to_numpy()
    if target in _INT_RANGE and source in _INT_RANGE:
        low, high = _INT_RANGE[target]
        if values.size and (values.min() < low or values.max() > high):
            raise _refuse(column, str(series.dtype), target, "values out of range")
    if target in _FLOAT_EXACT and source in _INT_RANGE:
        limit = _FLOAT_EXACT[target]
        if values.size and np.abs(values).max() > limit:
            raise _refuse(column, str(series.dtype), target, "values would lose precision")
    return series.astype(target.numpy_dtype)


def _from_json_text(column: str, series: Any, target: DataType) -> Any:
    import base64
    import binascii

    import pandas as pd

    if target is DataType.datetime:
        try:
            return pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise _refuse(column, "string", target, f"not an ISO 8601 date: {exc}") from None
    try:
        return series.map(lambda v: base64.b64decode(v, validate=True) if isinstance(v, str) else v)
    except (binascii.Error, ValueError) as exc:
        raise _refuse(column, "string", target, f"not base64: {exc}") from None


def _only_nulls(column: str, series: Any, target: DataType) -> Any:
    # JSON spells a missing value null; a column of nothing but nulls has no type of its own.
    if target in (DataType.float, DataType.double):
        return series.astype(target.numpy_dtype)
    if target is DataType.datetime:
        return series.astype("datetime64[ns]")
    if target is DataType.string:
        return series
    hint = " or declare the column double in the signature" if target in _INT_RANGE else ""
    raise InvalidParameter(
        f"Incompatible input type for column {column!r}: it holds only nulls and a "
        f"{target.value} column has no missing value (send values{hint})"
    )


def _enforce_column(column: str, series: Any, spec: ColSpec, from_json: bool) -> Any:
    target = spec.type
    if not isinstance(target, DataType):
        return series
    if from_json and str(series.dtype) == "object" and series.isna().all():
        return _only_nulls(column, series, target)
    source = type_of_dtype(series.dtype)
    if source is None or (source is DataType.string and str(series.dtype) == "object"):
        source = _object_type(series)
    if source is target:
        return series
    if source is None:
        raise _refuse(column, f"{series.dtype} (mixed values)", target)
    if source in _NUMERIC and target in _NUMERIC:
        if from_json and source is DataType.double and target is DataType.float:
            return series.astype("float32")
        return _cast_numeric(column, series, source, target, from_json)
    if from_json and source is DataType.string and target in (DataType.datetime, DataType.binary):
        return _from_json_text(column, series, target)
    if source is DataType.binary and target is DataType.string:
        raise _refuse(column, "binary", target)
    raise _refuse(column, source.value if source else str(series.dtype), target)


def _to_frame(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    names = schema.input_names()
    if isinstance(data, Mapping):
        values = list(data.values())
        if values and all(np.ndim(v) == 0 for v in values):
            return pd.DataFrame({k: [v] for k, v in data.items()})
        return pd.DataFrame(dict(data))
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame.from_records(list(data))
    array = np.asarray(data, dtype=object if isinstance(data, (list, tuple)) else None)
    if names and not (array.ndim == 1 and len(schema) == 1):
        raise InvalidParameter(
            f"The signature names its columns {names}, but the input is an array of shape "
            f"{array.shape} without column names: send named columns (dataframe_split with "
            "'columns', dataframe_records, or a dict of columns) so none is matched by position"
        )
    if array.ndim == 1:
        array = array.reshape(-1, 1) if len(schema) == 1 else array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != len(schema):
        raise InvalidParameter(
            f"Input of shape {array.shape} does not fit the {len(schema)} columns of the schema "
            f"{schema}"
        )
    frame = pd.DataFrame(array, columns=names if names else list(range(len(schema))))
    return frame.infer_objects()


# Types whose pandas dtype is exactly the schema's numpy dtype (no value inspection needed).
_EXACT = {
    kind: kind.numpy_dtype
    for kind in (DataType.boolean, DataType.integer, DataType.long, DataType.float, DataType.double)
}


def _already_conforms(frame: Any, specs: list[ColSpec]) -> bool:
    # The scoring hot path: a frame that already has exactly the schema's columns, in order,
    # with exactly its dtypes, is returned as it is instead of being rebuilt column by column.
    if len(frame.columns) != len(specs):
        return False
    for spec, column, dtype in zip(specs, frame.columns, frame.dtypes, strict=True):
        expected = _EXACT.get(spec.type) if isinstance(spec.type, DataType) else None
        if expected is None or column != spec.name or dtype != expected:
            return False
    return True


def _enforce_columns(data: Any, schema: Schema, from_json: bool) -> Any:
    frame = _to_frame(data, schema)
    specs: list[ColSpec] = [s for s in schema.inputs if isinstance(s, ColSpec)]
    if schema.has_input_names and _already_conforms(frame, specs):
        return frame
    if not schema.has_input_names:
        if frame.shape[1] < len(specs):
            raise InvalidParameter(
                f"Input has {frame.shape[1]} column(s) but the schema {schema} needs {len(specs)}"
            )
        frame = frame.iloc[:, : len(specs)]
        for index, spec in enumerate(specs):
            column = frame.columns[index]
            frame[column] = _enforce_column(str(column), frame[column], spec, from_json)
        return frame
    present = set(map(str, frame.columns))
    missing = [s.name for s in specs if s.required and s.name not in present]
    if missing:
        raise InvalidParameter(
            f"Model is missing input column(s) {missing}; the signature expects "
            f"{schema.input_names()}, the input has {sorted(present)}"
        )
    extra = present.difference(schema.input_names())
    if extra:
        _log.debug("Ignoring input columns not in the signature: %s", sorted(extra))
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    out = {}
    for spec in specs:
        if spec.name in present:
            name = str(spec.name)
            out[name] = _enforce_column(name, frame[name], spec, from_json)
    import pandas as pd

    return pd.DataFrame(out, index=frame.index, copy=False)


def _enforce_tensor(name: str, value: Any, spec: TensorSpec) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    array = np.asarray(value)
    target = np.dtype(spec.dtype)
    if array.dtype != target:
        if array.dtype.kind == "O" or not np.can_cast(array.dtype, target, casting="safe"):
            raise InvalidParameter(
                f"Incompatible input type for tensor {name}: cannot safely convert "
                f"{array.dtype} to {target}"
            )
        array = array.astype(target)
    shape = spec.shape
    if len(shape) != array.ndim or any(
        want != -1 and want != got for want, got in zip(shape, array.shape, strict=True)
    ):
        raise InvalidParameter(
            f"Incompatible input shape for tensor {name}: expected {list(shape)} "
            f"(-1 = any size), got {list(array.shape)}"
        )
    return array


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    specs = [s for s in schema.inputs if isinstance(s, TensorSpec)]
    if not schema.has_input_names:
        return _enforce_tensor("input", data, specs[0])
    if not isinstance(data, Mapping):
        if len(specs) == 1:
            return {specs[0].name: _enforce_tensor(repr(specs[0].name), data, specs[0])}
        raise InvalidParameter(
            f"The schema {schema} names several tensors: pass a dict of arrays keyed by name"
        )
    missing = [s.name for s in specs if s.name not in data]
    if missing:
        raise InvalidParameter(f"Model is missing input tensor(s) {missing}")
    return {s.name: _enforce_tensor(repr(s.name), data[s.name], s) for s in specs}


def enforce_schema(data: Any, schema: Schema, *, from_json: bool = False) -> Any:
    """Check `data` against `schema` and return it in the shape the model expects.

    Args:
        data: Model input (DataFrame, Series, dict, list of dicts, numpy array, list).
        schema: The signature's input schema.
        from_json: The data was parsed from JSON/CSV, where float32, datetimes and bytes
            have no encoding of their own: cast doubles to float, parse ISO dates and
            base64-decode binary columns.

    Returns:
        A DataFrame with the schema's columns, or a numpy array / dict of arrays.

    Raises:
        InvalidParameter: a column or tensor is missing or cannot be converted safely.
    """
    if not len(schema):
        return data
    if schema.is_tensor_spec:
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema, from_json)


def _convert_param(name: str, value: Any, kind: DataType) -> Any:
    import datetime as dt

    ok = {
        DataType.boolean: lambda v: isinstance(v, bool),
        DataType.integer: lambda v: isinstance(v, int) and not isinstance(v, bool),
        DataType.long: lambda v: isinstance(v, int) and not isinstance(v, bool),
        DataType.float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        DataType.double: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        DataType.string: lambda v: isinstance(v, str),
        DataType.binary: lambda v: isinstance(v, (bytes, str)),
        DataType.datetime: lambda v: isinstance(v, (str, dt.datetime, dt.date)),
    }[kind]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if not ok(value):
        raise InvalidParameter(f"Invalid value {value!r} for param {name!r}: expected {kind.value}")
    if kind in (DataType.float, DataType.double):
        return float(value)
    return value


def enforce_params(params: Mapping[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any]:
    """The params to pass to the model: schema defaults overridden by valid given values.

    Params the schema does not declare are dropped (as MLflow does); without a schema no
    params reach the model.

    Raises:
        InvalidParameter: a value does not match its param's type or shape.
    """
    if schema is None:
        if params:
            _log.debug("Ignoring params %s: the model declares no params schema", sorted(params))
        return {}
    given = dict(params or {})
    out: dict[str, Any] = {}
    for spec in schema:
        if spec.name not in given:
            out[spec.name] = spec.default
            continue
        value = given.pop(spec.name)
        if spec.shape is not None:
            if not isinstance(value, (list, tuple)):
                raise InvalidParameter(
                    f"Invalid value {value!r} for param {spec.name!r}: expected a list of "
                    f"{spec.type.value}"
                )
            out[spec.name] = [_convert_param(spec.name, v, spec.type) for v in value]
        else:
            out[spec.name] = _convert_param(spec.name, value, spec.type)
    if given:
        _log.debug("Ignoring params not in the params schema: %s", sorted(given))
    return out
