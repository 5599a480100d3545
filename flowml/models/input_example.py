"""Input examples: ``input_example.json`` and ``serving_input_example.json``, as MLflow writes them.

| example | input_example.json | serving payload | ``type`` |
|---|---|---|---|
| DataFrame | ``{"columns": [..], "data": [[..]]}`` | ``{"dataframe_split": ..}`` | ``dataframe`` |
| numpy array, dict of arrays | nested lists (per key) | ``{"inputs": ...}`` | ``ndarray`` |
| dict, list, scalar | the JSON value | ``{"inputs": ...}`` | ``json_object`` |
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.mlmodel import model_file

__all__ = [
    "INPUT_EXAMPLE_FILE",
    "SERVING_INPUT_EXAMPLE_FILE",
    "load_input_example",
    "save_input_example",
    "to_jsonable",
]

INPUT_EXAMPLE_FILE = "input_example.json"
SERVING_INPUT_EXAMPLE_FILE = "serving_input_example.json"


def to_jsonable(value: Any) -> Any:
    """`value` with numpy/pandas scalars and arrays, datetimes and bytes made JSON-ready.

    Bytes become base64 text, datetimes ISO 8601 text, NaN stays NaN (JSON's ``NaN``).
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if type(value).__name__ == "datetime64":
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _split(frame: Any) -> dict[str, Any]:
    payload = frame.to_dict(orient="split")
    return {"columns": to_jsonable(payload["columns"]), "data": to_jsonable(payload["data"])}


def _encode(example: Any) -> tuple[str, Any, dict[str, Any]]:
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        split = _split(example)
        return "dataframe", split, {"dataframe_split": split}
    if isinstance(example, np.ndarray):
        data = to_jsonable(example)
        return "ndarray", data, {"inputs": data}
    if (
        isinstance(example, dict)
        and example
        and all(isinstance(v, np.ndarray) for v in example.values())
    ):
        data = to_jsonable(example)
        return "ndarray", data, {"inputs": data}
    if isinstance(example, (dict, list, tuple, str, int, float, bool)):
        data = to_jsonable(example)
        return "json_object", data, {"inputs": data}
    raise InvalidParameter(
        f"Unsupported input example type {type(example).__name__}: use a DataFrame, a numpy "
        "array, a dict or a list"
    )


def save_input_example(path: str | Path, example: Any) -> dict[str, Any]:
    """Write both example files into model directory `path`.

    Returns:
        The ``saved_input_example_info`` block for the MLmodel file.

    Raises:
        InvalidParameter: the example is of an unsupported type or not JSON-serialisable.
    """
    kind, data, serving = _encode(example)
    root = Path(path)
    try:
        (root / INPUT_EXAMPLE_FILE).write_text(json.dumps(data), encoding="utf-8")
        (root / SERVING_INPUT_EXAMPLE_FILE).write_text(
            json.dumps(serving, indent=2), encoding="utf-8"
        )
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"The input example is not JSON-serialisable: {exc}") from None
    info: dict[str, Any] = {
        "artifact_path": INPUT_EXAMPLE_FILE,
        "serving_input_path": SERVING_INPUT_EXAMPLE_FILE,
        "type": kind,
    }
    if kind == "dataframe":
        info["pandas_orient"] = "split"
    return info


def load_input_example(path: str | Path, info: dict[str, Any] | None) -> Any:
    """The input example saved with the model at `path`, or None when there is none.

    DataFrames come back as DataFrames, arrays as numpy arrays, the rest as JSON values.
    """
    if not info or "artifact_path" not in info:
        return None
    target = model_file(path, info["artifact_path"], "saved_input_example_info.artifact_path")
    if not target.is_file():
        return None
    data = json.loads(target.read_text(encoding="utf-8"))
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        orient = info.get("pandas_orient", "split")
        if orient == "split":
            return pd.DataFrame(data["data"], columns=data["columns"])
        return pd.DataFrame.from_records(data)
    if kind == "ndarray":
        import numpy as np

        if isinstance(data, dict):
            return {k: np.asarray(v) for k, v in data.items()}
        return np.asarray(data)
    return data
