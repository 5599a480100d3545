"""Request bodies of MLflow's scoring protocol -> model input and params.

``application/json`` bodies hold exactly one of:

| key | value | model input |
|---|---|---|
| ``dataframe_split`` | ``{"columns": [...], "data": [[...]], "index": [...]?}`` | DataFrame |
| ``dataframe_records`` | ``[{"col": value, ...}, ...]`` | DataFrame |
| ``instances`` / ``inputs`` | list of dicts | DataFrame |
|  | dict of lists / of scalars | DataFrame (column schema), dict of arrays (tensor schema) |
|  | list of values or lists | numpy array |

plus an optional ``params`` object. ``text/csv`` (with a header row) and Parquet bodies
become DataFrames. Every malformed body is a `BadRequest` (HTTP 400).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import orjson

from flowml.exceptions import BadRequest
from flowml.models.schema import Schema

__all__ = [
    "FORMAT_KEYS",
    "parse_csv",
    "parse_json",
    "parse_parquet",
    "predictions_to_json",
]

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
PARAMS = "params"
FORMAT_KEYS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
_REQUIRED = f"The request body must be a JSON object with exactly one of {list(FORMAT_KEYS)}"


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:  # the slow path accepts NaN/Infinity, which Python clients often send
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None


def _split_frame(payload: Any) -> Any:
    import pandas as pd

    if not isinstance(payload, Mapping) or "data" not in payload:
        raise BadRequest(f"'{DF_SPLIT}' must be an object with 'data' (and 'columns')")
    data, columns = payload["data"], payload.get("columns")
    if not isinstance(data, list) or (columns is not None and not isinstance(columns, list)):
        raise BadRequest(f"'{DF_SPLIT}': 'data' must be a list of rows, 'columns' a list")
    if any(not isinstance(row, list) for row in data):
        raise BadRequest(f"'{DF_SPLIT}': each row of 'data' must be a list")
    width = len(columns) if columns is not None else (len(data[0]) if data else 0)
    if any(len(row) != width for row in data):
        raise BadRequest(f"'{DF_SPLIT}': every row must have {width} values")
    names = columns if columns is not None else list(range(width))
    if len(set(map(str, names))) != len(names):
        raise BadRequest(f"'{DF_SPLIT}': duplicate column names {names}")
    # Column-wise construction keeps each column's own dtype (no object round trip).
    frame = pd.DataFrame({name: [row[i] for row in data] for i, name in enumerate(names)})
    # A plain object index: scikit-learn's feature-name checks are slower on Arrow strings.
    frame.columns = pd.Index(names, dtype=object)
    index = payload.get("index")
    if index is not None:
        if not isinstance(index, list) or len(index) != len(data):
            raise BadRequest(f"'{DF_SPLIT}': 'index' must be a list with one entry per row")
        frame.index = index
    return frame


def _records_frame(payload: Any, key: str) -> Any:
    import pandas as pd

    if not isinstance(payload, list) or any(not isinstance(r, Mapping) for r in payload):
        raise BadRequest(f"'{key}' must be a list of objects (one per row)")
    return pd.DataFrame.from_records(payload)


def _tensor_input(payload: Any, schema: Schema | None, key: str) -> Any:
    import numpy as np
    import pandas as pd

    tensors = schema is not None and schema.is_tensor_spec
    try:
        if isinstance(payload, list):
            if payload and all(isinstance(r, Mapping) for r in payload) and not tensors:
                return pd.DataFrame.from_records(payload)
            return np.asarray(payload)
        if isinstance(payload, Mapping):
            if tensors:
                return {k: np.asarray(v) for k, v in payload.items()}
            values = list(payload.values())
            if values and all(not isinstance(v, (list, dict)) for v in values):
                return pd.DataFrame({k: [v] for k, v in payload.items()})
            return pd.DataFrame(dict(payload))
    except ValueError as exc:
        raise BadRequest(f"'{key}' does not form a table or a tensor: {exc}") from None
    return np.asarray([payload])


def parse_json(body: bytes, schema: Schema | None) -> tuple[Any, dict[str, Any] | None]:
    """Model input and params from a JSON request body.

    Raises:
        BadRequest: not JSON, not an object, not exactly one format key, an unknown key,
            or a value of the wrong shape.
    """
    document = _loads(body)
    if not isinstance(document, dict):
        raise BadRequest(f"{_REQUIRED}; got a JSON {type(document).__name__}")
    keys = [k for k in document if k in FORMAT_KEYS]
    unknown = sorted(k for k in document if k not in FORMAT_KEYS and k != PARAMS)
    if len(keys) != 1 or unknown:
        raise BadRequest(f"{_REQUIRED} (and optionally 'params'); got keys {sorted(document)}")
    params = document.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise BadRequest("'params' must be a JSON object")
    key = keys[0]
    payload = document[key]
    if key == DF_SPLIT:
        return _split_frame(payload), params
    if key == DF_RECORDS:
        return _records_frame(payload, key), params
    return _tensor_input(payload, schema, key), params


def parse_csv(body: bytes) -> Any:
    """A DataFrame from a CSV body with a header row.

    Raises:
        BadRequest: the body is not CSV pandas can read.
    """
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise BadRequest(f"The request body is not valid CSV with a header row: {exc}") from None


def parse_parquet(body: bytes) -> Any:
    """A DataFrame from a Parquet body.

    Raises:
        BadRequest: the body is not a Parquet file.
    """
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises many unrelated types for a corrupt file
        raise BadRequest(f"The request body is not a valid Parquet file: {exc}") from None


def _jsonable(predictions: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series):
        return predictions.to_frame().to_dict(orient="records")
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "OUSM":
        return predictions.tolist()
    return predictions


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def predictions_to_json(predictions: Any) -> bytes:
    """``{"predictions": ...}`` as MLflow's server writes it (DataFrames as records)."""
    payload = {"predictions": _jsonable(predictions)}
    try:
        return orjson.dumps(payload, option=_OPTIONS, default=_fallback)
    except TypeError:
        from flowml.models.input_example import to_jsonable

        return orjson.dumps({"predictions": to_jsonable(payload["predictions"])}, option=_OPTIONS)


def _fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
