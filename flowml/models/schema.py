"""Model schemas: column specs, tensor specs, params and the signature, as MLflow writes them.

An MLmodel file stores its signature as three JSON strings (``inputs``, ``outputs``,
``params``), each a list of specs::

    {"type": "double", "name": "a", "required": true}                       # a column
    {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}  # a tensor
    {"name": "alpha", "default": 0.5, "shape": null, "type": "double"}      # a param

Column types we know how to infer and enforce are the eight names in `DataType`. Richer
types written by newer MLflow versions (``array``, ``object``, ``map``, ``any``) are kept
verbatim so a model round-trips unchanged; their columns are only checked for presence.

This module imports nothing heavy: numpy and pandas stay with inference and enforcement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from flowml.exceptions import InvalidParameter

__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
]


class DataType(str, Enum):
    """MLflow's scalar type names, with the numpy dtype each maps to."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"

    @property
    def numpy_dtype(self) -> str:
        return _NUMPY_DTYPE[self]

    def __str__(self) -> str:
        return self.value


_NUMPY_DTYPE = {
    DataType.boolean: "bool",
    DataType.integer: "int32",
    DataType.long: "int64",
    DataType.float: "float32",
    DataType.double: "float64",
    DataType.string: "object",
    DataType.binary: "object",
    DataType.datetime: "datetime64[ns]",
}


# Richer types newer MLflow versions write; flowml keeps but does not enforce them.
_RICH_TYPES = frozenset({"array", "object", "map", "any", "sparkml_vector"})


def _parse_type(value: Any) -> DataType | dict[str, Any]:
    if isinstance(value, DataType):
        return value
    if isinstance(value, str):
        try:
            return DataType(value)
        except ValueError:
            raise InvalidParameter(
                f"Unknown column type {value!r}; expected one of {[t.value for t in DataType]}"
            ) from None
    if isinstance(value, dict):
        return dict(value)
    raise InvalidParameter(f"Invalid column type {value!r}")


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One column: a `DataType` (or a verbatim richer MLflow type), an optional name."""

    type: DataType | dict[str, Any]
    name: str | None = None
    required: bool = True

    @property
    def is_known_type(self) -> bool:
        return isinstance(self.type, DataType)

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.type, DataType):
            out: dict[str, Any] = {"type": self.type.value}
        else:
            out = {k: v for k, v in self.type.items() if k not in ("name", "required")}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColSpec:
        kind = data.get("type")
        if not isinstance(kind, str):
            raise InvalidParameter(f"A column spec needs a string 'type': {data!r}")
        if kind in _RICH_TYPES:
            # Kept verbatim (minus name/required) so the model round-trips unchanged.
            col_type: DataType | dict[str, Any] = {
                k: v for k, v in data.items() if k not in ("name", "required")
            }
        else:
            col_type = _parse_type(kind)
        return cls(type=col_type, name=data.get("name"), required=bool(data.get("required", True)))

    def __str__(self) -> str:
        flag = "required" if self.required else "optional"
        label = self.type.value if isinstance(self.type, DataType) else self.type.get("type")
        return f"{self.name!r}: {label} ({flag})" if self.name is not None else f"{label} ({flag})"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor: a numpy dtype name and a shape where ``-1`` is any size."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        spec = {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}
        return {"name": self.name, **spec} if self.name is not None else spec

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        spec = data.get("tensor-spec") or {}
        if "dtype" not in spec or "shape" not in spec:
            raise InvalidParameter(f"A tensor spec needs 'dtype' and 'shape': {data!r}")
        return cls(dtype=str(spec["dtype"]), shape=tuple(spec["shape"]), name=data.get("name"))

    def __str__(self) -> str:
        label = f"Tensor({self.dtype!r}, {self.shape})"
        return f"{self.name!r}: {label}" if self.name is not None else label


@dataclass(frozen=True, slots=True)
class Schema:
    """An ordered list of column specs, or of tensor specs (never a mix)."""

    inputs: tuple[ColSpec, ...] | tuple[TensorSpec, ...]

    def __init__(self, inputs: Sequence[ColSpec | TensorSpec]) -> None:
        items = tuple(inputs)
        kinds = {type(item) for item in items}
        if len(kinds) > 1:
            raise InvalidParameter("A schema holds either column specs or tensor specs, not both")
        names = [item.name for item in items]
        if any(n is not None for n in names) and any(n is None for n in names):
            raise InvalidParameter("Either every input in a schema is named, or none is")
        object.__setattr__(self, "inputs", items)

    def __iter__(self) -> Iterator[ColSpec | TensorSpec]:
        return iter(self.inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def is_tensor_spec(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    @property
    def has_input_names(self) -> bool:
        return bool(self.inputs) and self.inputs[0].name is not None

    def input_names(self) -> list[str]:
        return [str(item.name) for item in self.inputs if item.name is not None]

    def required_input_names(self) -> list[str]:
        return [
            str(item.name)
            for item in self.inputs
            if item.name is not None and (not isinstance(item, ColSpec) or item.required)
        ]

    def to_list(self) -> list[dict[str, Any]]:
        return [item.to_dict() for item in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    @classmethod
    def from_list(cls, items: Sequence[dict[str, Any]]) -> Schema:
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidParameter(f"A schema is a JSON list of objects, got {items!r}")
        return cls(
            [
                TensorSpec.from_dict(i) if i.get("type") == "tensor" else ColSpec.from_dict(i)
                for i in items
            ]
        )

    @classmethod
    def from_json(cls, text: str) -> Schema:
        try:
            return cls.from_list(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"A schema must be JSON: {exc}") from None

    def __str__(self) -> str:
        return "[" + ", ".join(str(item) for item in self.inputs) + "]"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One inference parameter with its type, default and shape (``None`` or ``(-1,)``)."""

    name: str
    type: DataType
    default: Any
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        shape = list(self.shape) if self.shape is not None else None
        return {"name": self.name, "default": self.default, "shape": shape, "type": self.type.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamSpec:
        if "name" not in data or "type" not in data:
            raise InvalidParameter(f"A param spec needs 'name' and 'type': {data!r}")
        col_type = _parse_type(data["type"])
        if not isinstance(col_type, DataType):
            raise InvalidParameter(f"Param {data['name']!r} has an unsupported type {col_type!r}")
        shape = data.get("shape")
        return cls(
            name=str(data["name"]),
            type=col_type,
            default=data.get("default"),
            shape=tuple(shape) if shape is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ParamSchema:
    """The params a model accepts at predict time."""

    params: tuple[ParamSpec, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def to_json(self) -> str:
        return json.dumps([p.to_dict() for p in self.params])

    @classmethod
    def from_json(cls, text: str) -> ParamSchema:
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"A params schema must be JSON: {exc}") from None
        if not isinstance(items, list):
            raise InvalidParameter(f"A params schema is a JSON list, got {items!r}")
        return cls(tuple(ParamSpec.from_dict(i) for i in items))


@dataclass(frozen=True, slots=True)
class ModelSignature:
    """What a model takes and returns, and the params it accepts.

    Example:
        >>> import pandas as pd
        >>> signature = flowml.infer_signature(pd.DataFrame({"x": [1.0]}), [0])
        >>> signature.to_dict()["inputs"]
        '[{"type": "double", "name": "x", "required": true}]'
        >>> _ = flowml.save_model(python_model=lambda rows: rows, path="m", signature=signature)
        >>> flowml.load_model("m").metadata.signature == signature
        True
    """

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The three JSON strings MLflow stores under ``signature:`` in an MLmodel file."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        """Read the ``signature:`` block of an MLmodel file.

        Raises:
            InvalidParameter: a part is not the JSON MLflow writes.
        """
        inputs, outputs, params = data.get("inputs"), data.get("outputs"), data.get("params")
        return cls(
            inputs=Schema.from_json(inputs) if inputs else None,
            outputs=Schema.from_json(outputs) if outputs else None,
            params=ParamSchema.from_json(params) if params else None,
        )
