"""Signature inference and the JSON MLflow writes in MLmodel files."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter
from flowml.models.schema import ColSpec, DataType, ModelSignature, ParamSchema, Schema, TensorSpec
from flowml.models.signature import infer_params_schema, infer_schema, infer_signature


def _specs(data: Any) -> list[dict[str, Any]]:
    return json.loads(infer_schema(data).to_json())


COLUMN_CASES = [
    (np.array([1.0], dtype="float32"), "float"),
    (np.array([1.0], dtype="float64"), "double"),
    (np.array([1], dtype="int8"), "integer"),
    (np.array([1], dtype="int32"), "integer"),
    (np.array([1], dtype="uint8"), "integer"),
    (np.array([1], dtype="int64"), "long"),
    (np.array([True]), "boolean"),
    (["x"], "string"),
    ([b"ab"], "binary"),
    ([dt.datetime(2024, 1, 1)], "datetime"),
]


@pytest.mark.parametrize(("values", "expected"), COLUMN_CASES)
def test_dataframe_column_types_use_mlflow_names(values: Any, expected: str) -> None:
    assert _specs(pd.DataFrame({"c": values})) == [
        {"type": expected, "name": "c", "required": True}
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
            [
                {"type": "long", "name": "a", "required": True},
                {"type": "string", "name": "b", "required": True},
            ],
        ),
        (
            {"a": 1.0, "b": 2},
            [
                {"type": "double", "name": "a", "required": True},
                {"type": "long", "name": "b", "required": True},
            ],
        ),
        (["x", "y"], [{"type": "string", "required": True}]),
        (pd.Series([1, 2]), [{"type": "long", "required": True}]),
        (
            np.zeros((3, 4, 5), dtype="float32"),
            [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4, 5]}}],
        ),
        (
            {"a": np.array([1.0]), "b": np.array([[1, 2]])},
            [
                {"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}},
                {
                    "name": "b",
                    "type": "tensor",
                    "tensor-spec": {"dtype": "int64", "shape": [-1, 2]},
                },
            ],
        ),
        ([1, 2.5], [{"type": "double", "required": True}]),
    ],
    ids=["records", "dict-scalars", "list-str", "series", "ndarray", "dict-arrays", "int+float"],
)
def test_inferred_schemas_match_mlflow_json(data: Any, expected: list[dict[str, Any]]) -> None:
    assert _specs(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"c": [1, "x"]}), "column 'c': it mixes ['long', 'string']"),
        ([{"a": object()}], "unsupported value"),
        ([], "empty list"),
        ({}, "empty dict"),
        (np.array([object()], dtype=object), "object arrays have no dtype"),
    ],
)
def test_uninferable_data_is_refused_with_a_reason(data: Any, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("[", r"\[").replace("]", r"\]")):
        infer_schema(data)


def test_params_schema_infers_type_default_and_shape() -> None:
    schema = infer_params_schema(
        {
            "alpha": 0.5,
            "name": "z",
            "arr": [1, 2],
            "flag": True,
            "k": np.int64(3),
            "when": dt.datetime(2024, 1, 1),
        }
    )
    assert json.loads(schema.to_json()) == [
        {"name": "alpha", "default": 0.5, "shape": None, "type": "double"},
        {"name": "name", "default": "z", "shape": None, "type": "string"},
        {"name": "arr", "default": [1, 2], "shape": [-1], "type": "long"},
        {"name": "flag", "default": True, "shape": None, "type": "boolean"},
        {"name": "k", "default": 3, "shape": None, "type": "long"},
        {"name": "when", "default": "2024-01-01T00:00:00", "shape": None, "type": "datetime"},
    ]


@pytest.mark.parametrize("value", [None, {"a": 1}])
def test_params_must_be_scalars_or_lists(value: Any) -> None:
    with pytest.raises(InvalidParameter, match="Param 'p' must be a scalar"):
        infer_params_schema({"p": value})


def test_signature_dict_is_three_json_strings_as_in_mlflow() -> None:
    signature = infer_signature(
        pd.DataFrame({"a": [1.0], "b": [1]}), np.array([0]), params={"alpha": 0.5}
    )
    assert signature.to_dict() == {
        "inputs": '[{"type": "double", "name": "a", "required": true}, '
        '{"type": "long", "name": "b", "required": true}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": '[{"name": "alpha", "default": 0.5, "shape": null, "type": "double"}]',
    }
    assert ModelSignature.from_dict(signature.to_dict()) == signature


def test_richer_mlflow_types_round_trip_verbatim() -> None:
    text = json.dumps(
        [
            {"type": "array", "items": {"type": "string"}, "name": "tags", "required": False},
            {"type": "double", "name": "x", "required": True},
        ]
    )
    schema = Schema.from_json(text)
    assert json.loads(schema.to_json()) == json.loads(text)
    assert not schema.inputs[0].is_known_type and schema.inputs[1].type is DataType.double


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "must be JSON"),
        ('{"type": "double"}', "JSON list of objects"),
        ('[{"type": "nope", "name": "x"}]', "Unknown column type 'nope'"),
        ('[{"type": "tensor", "tensor-spec": {}}]', "needs 'dtype' and 'shape'"),
        ('[{"name": "x"}]', "needs a string 'type'"),
    ],
)
def test_malformed_schema_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        Schema.from_json(text)


def test_schemas_refuse_mixed_specs_and_partial_names() -> None:
    with pytest.raises(InvalidParameter, match="not both"):
        Schema([ColSpec(DataType.long, "a"), TensorSpec("float64", (-1,), "b")])
    with pytest.raises(InvalidParameter, match="every input"):
        Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.long)])
    with pytest.raises(InvalidParameter, match="JSON list"):
        ParamSchema.from_json('{"a": 1}')
