"""Signature enforcement at predict time: conversions applied, conversions refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter
from flowml.models.enforce import enforce_params, enforce_schema
from flowml.models.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec


def _one(kind: DataType, required: bool = True) -> Schema:
    return Schema([ColSpec(kind, "c", required)])


ACCEPTED = [
    # values, column type, resulting dtype
    (np.array([1, 2], dtype="int64"), DataType.long, "int64"),
    (np.array([1, 2], dtype="int8"), DataType.long, "int64"),
    (np.array([1, 2], dtype="int64"), DataType.integer, "int32"),
    (np.array([1, 2], dtype="int32"), DataType.double, "float64"),
    (np.array([1, 2], dtype="int64"), DataType.double, "float64"),
    (np.array([1, 2], dtype="int16"), DataType.float, "float32"),
    (np.array([1.5], dtype="float32"), DataType.double, "float64"),
    (np.array([True]), DataType.boolean, "bool"),
    (["x"], DataType.string, None),
    ([b"x"], DataType.binary, "object"),
    (pd.to_datetime(["2024-01-01"]), DataType.datetime, None),
]


@pytest.mark.parametrize(("values", "kind", "dtype"), ACCEPTED)
def test_safe_conversions_are_applied(values: Any, kind: DataType, dtype: str | None) -> None:
    out = enforce_schema(pd.DataFrame({"c": values}), _one(kind))
    if dtype is not None:
        assert str(out["c"].dtype) == dtype
    assert len(out) == len(values)


REFUSED = [
    (np.array([1.5]), DataType.long, "cannot safely convert float64 to long"),
    (np.array([1.0]), DataType.integer, "cannot safely convert float64 to integer"),
    (np.array([1.5]), DataType.float, "cannot safely convert float64 to float"),
    (np.array([2**40]), DataType.integer, "int64 to integer (values out of range)"),
    (np.array([2**60]), DataType.double, "int64 to double (values would lose precision)"),
    (np.array([2**30]), DataType.float, "int64 to float (values would lose precision)"),
    (np.array([True]), DataType.long, "cannot safely convert boolean to long"),
    (np.array([1]), DataType.string, "cannot safely convert long to string"),
    (["x"], DataType.double, "cannot safely convert string to double"),
    ([b"x"], DataType.string, "cannot safely convert binary to string"),
    (["2024-01-01"], DataType.datetime, "cannot safely convert string to datetime"),
    ([1, "x"], DataType.long, "object (mixed values) to long"),
]


@pytest.mark.parametrize(("values", "kind", "message"), REFUSED)
def test_unsafe_conversions_are_refused_naming_column_and_types(
    values: Any, kind: DataType, message: str
) -> None:
    column = pd.Series(values, dtype=object) if isinstance(values, list) else values
    with pytest.raises(InvalidParameter) as info:
        enforce_schema(pd.DataFrame({"c": column}), _one(kind))
    assert "Incompatible input type for column 'c'" in info.value.message
    assert message in info.value.message


def test_json_mode_casts_what_json_cannot_encode() -> None:
    frame = pd.DataFrame({"f": [1.5], "d": ["2024-01-02T03:04:05"], "b": ["eHk="]})
    schema = Schema(
        [
            ColSpec(DataType.float, "f"),
            ColSpec(DataType.datetime, "d"),
            ColSpec(DataType.binary, "b"),
        ]
    )
    out = enforce_schema(frame, schema, from_json=True)
    assert str(out["f"].dtype) == "float32"
    assert out["d"].iloc[0] == pd.Timestamp("2024-01-02T03:04:05")
    assert out["b"].iloc[0] == b"xy"
    with pytest.raises(InvalidParameter, match="not an ISO 8601 date"):
        enforce_schema(pd.DataFrame({"c": ["yesterday"]}), _one(DataType.datetime), from_json=True)
    with pytest.raises(InvalidParameter, match="not base64"):
        enforce_schema(pd.DataFrame({"c": ["*"]}), _one(DataType.binary), from_json=True)


def test_missing_required_column_is_named() -> None:
    schema = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b")])
    with pytest.raises(InvalidParameter) as info:
        enforce_schema(pd.DataFrame({"a": [1.0], "z": [1]}), schema)
    assert info.value.message == (
        "Model is missing input column(s) ['b']; the signature expects ['a', 'b'], "
        "the input has ['a', 'z']"
    )


def test_columns_are_reordered_extras_dropped_optionals_allowed() -> None:
    schema = Schema(
        [
            ColSpec(DataType.long, "b"),
            ColSpec(DataType.double, "a"),
            ColSpec(DataType.string, "opt", required=False),
        ]
    )
    out = enforce_schema(pd.DataFrame({"a": [1.0], "b": [2], "extra": ["x"]}), schema)
    assert list(out.columns) == ["b", "a"]


@pytest.mark.parametrize(
    "data",
    [
        [{"a": 1.0, "b": 2}],
        {"a": 1.0, "b": 2},
        {"a": [1.0], "b": [2]},
    ],
    ids=["records", "dict-scalars", "dict-lists"],
)
def test_other_input_kinds_become_frames(data: Any) -> None:
    schema = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.double, "b")])
    out = enforce_schema(data, schema)
    assert list(out.columns) == ["a", "b"] and len(out) == 1


@pytest.mark.parametrize(
    "data",
    [[[1.0, 2.0]], np.array([[1.0, 2.0]]), [1.0, 2.0], np.array([[1.0, 2.0, 3.0]])],
    ids=["list-of-lists", "2d-array", "1d-list", "wrong-width"],
)
def test_unnamed_arrays_are_refused_by_a_schema_with_named_columns(data: Any) -> None:
    # MLflow refuses these too: matching them by position hides a column-order mistake.
    schema = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.double, "b")])
    with pytest.raises(InvalidParameter) as info:
        enforce_schema(data, schema, from_json=True)
    assert info.value.message.startswith("The signature names its columns ['a', 'b']")
    assert "so none is matched by position" in info.value.message


def test_a_flat_list_fills_a_schema_of_one_named_column() -> None:
    out = enforce_schema([1.0, 2.5], Schema([ColSpec(DataType.double, "a")]), from_json=True)
    assert out["a"].tolist() == [1.0, 2.5]
    with pytest.raises(InvalidParameter, match="names its columns"):
        enforce_schema([[1.0], [2.5]], Schema([ColSpec(DataType.double, "a")]))


def test_array_with_the_wrong_width_is_refused() -> None:
    schema = Schema([ColSpec(DataType.double), ColSpec(DataType.double)])
    with pytest.raises(InvalidParameter, match=r"shape \(1, 3\) does not fit the 2 columns"):
        enforce_schema(np.array([[1.0, 2.0, 3.0]]), schema)


@pytest.mark.parametrize(
    ("kind", "dtype"),
    [
        (DataType.double, "float64"),
        (DataType.float, "float32"),
        (DataType.datetime, "datetime64[ns]"),
        (DataType.string, "object"),
    ],
)
def test_a_json_column_of_only_nulls_becomes_missing_values(kind: DataType, dtype: str) -> None:
    # MLflow's server casts such a column to the schema's type (NaN, NaT) and scores it.
    frame = pd.DataFrame({"c": pd.Series([None, None], dtype=object), "d": [1.0, 2.0]})
    schema = Schema([ColSpec(kind, "c"), ColSpec(DataType.double, "d")])
    out = enforce_schema(frame, schema, from_json=True)
    assert str(out["c"].dtype) == dtype and out["c"].isna().all()


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        (DataType.long, True),
        (DataType.integer, True),
        (DataType.boolean, False),
        (DataType.binary, False),
    ],
)
def test_a_column_of_only_nulls_is_refused_where_the_type_has_no_missing_value(
    kind: DataType, hint: bool
) -> None:
    frame = pd.DataFrame({"c": pd.Series([None], dtype=object)})
    with pytest.raises(InvalidParameter) as info:
        enforce_schema(frame, _one(kind), from_json=True)
    assert info.value.message.startswith(
        f"Incompatible input type for column 'c': it holds only nulls and a {kind.value} column"
    )
    assert ("declare the column double" in info.value.message) is hint


def test_unnamed_column_schema_checks_by_position() -> None:
    out = enforce_schema(["x", "y"], Schema([ColSpec(DataType.string)]))
    assert out.iloc[:, 0].tolist() == ["x", "y"]
    with pytest.raises(InvalidParameter, match="cannot safely convert double to string"):
        enforce_schema([1.5], Schema([ColSpec(DataType.string)]))


def test_tensor_dtype_and_shape() -> None:
    schema = Schema([TensorSpec("float64", (-1, 2))])
    assert enforce_schema(np.array([[1, 2]], dtype="int32"), schema).dtype == np.float64
    with pytest.raises(InvalidParameter, match="cannot safely convert float64 to float32"):
        enforce_schema(np.array([[1.0, 2.0]]), Schema([TensorSpec("float32", (-1, 2))]))
    with pytest.raises(InvalidParameter, match=r"expected \[-1, 2\] \(-1 = any size\), got \[1, 3"):
        enforce_schema(np.zeros((1, 3)), schema)


def test_named_tensors() -> None:
    schema = Schema([TensorSpec("int64", (-1,), "x"), TensorSpec("float64", (-1,), "y")])
    out = enforce_schema({"x": [1, 2], "y": [0.5, 1.5]}, schema)
    assert out["x"].dtype == np.int64 and out["y"].dtype == np.float64
    with pytest.raises(InvalidParameter, match=r"missing input tensor\(s\) \['y'\]"):
        enforce_schema({"x": [1]}, schema)


PARAMS = ParamSchema(
    (
        ParamSpec("k", DataType.long, 1),
        ParamSpec("alpha", DataType.double, 0.5),
        ParamSpec("names", DataType.string, ["a"], (-1,)),
        ParamSpec("flag", DataType.boolean, False),
        ParamSpec("when", DataType.datetime, "2024-01-01"),
    )
)


def test_params_get_defaults_and_conversions() -> None:
    assert enforce_params({"alpha": 2, "unknown": 1}, PARAMS) == {
        "k": 1,
        "alpha": 2.0,
        "names": ["a"],
        "flag": False,
        "when": "2024-01-01",
    }
    when = dt.datetime(2025, 1, 1)
    assert enforce_params({"when": when}, PARAMS)["when"] == when
    assert enforce_params({"k": 3}, None) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 1.5}, "Invalid value 1.5 for param 'k': expected long"),
        ({"k": True}, "Invalid value True for param 'k': expected long"),
        ({"flag": "yes"}, "Invalid value 'yes' for param 'flag': expected boolean"),
        ({"names": "a"}, "Invalid value 'a' for param 'names': expected a list of string"),
        ({"names": ["a", 1]}, "Invalid value 1 for param 'names': expected string"),
    ],
)
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        enforce_params(params, PARAMS)
    assert info.value.message == message
