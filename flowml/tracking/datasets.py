"""MLflow-style dataset objects: ``flowml.data.from_pandas`` and ``flowml.data.from_numpy``.

A dataset names data a run used: a name, a content digest, where it came from (its
``source``), a schema and a profile, with MLflow's ``to_dict()`` layout. ``flowml.log_input``
records it as a lineage input under its source's URI, or ``mlflow-dataset:<name>@<digest>``
when it has none (the URI flowml's server gives datasets MLflow clients send), so runs
that used the same data are linked.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    >>> ds = flowml.data.from_pandas(df, source="s3://bucket/train.csv", targets="y")
    >>> with flowml.start_run():
    ...     flowml.log_input(ds, context="training")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.digest import digest_value

__all__ = [
    "Dataset",
    "DatasetSource",
    "NumpyDataset",
    "PandasDataset",
    "dataset_uri",
    "from_numpy",
    "from_pandas",
]

DEFAULT_NAME = "dataset"
MAX_NAME_LENGTH = 250


def dataset_uri(name: str, digest: str | None, source: str | None) -> str:
    """The URI a dataset is recorded under: the location its source JSON names (``uri``,
    ``url`` or ``path``), else ``mlflow-dataset:<name>@<digest>``."""
    if source:
        try:
            document = json.loads(source)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for key in ("uri", "url", "path"):
                value = document.get(key)
                if isinstance(value, str) and value.strip():
                    return value
    return f"mlflow-dataset:{name}@{digest or ''}"


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset came from: a URI (``s3://...``, a path, ``https://...``) or code.

    Attributes:
        uri: the location, or ``None`` for data built in code.
        source_type: MLflow's type name (``local``, ``s3``, ``http``, ``code``...).
    """

    uri: str | None = None
    source_type: str = "code"

    @classmethod
    def from_uri(cls, uri: str) -> DatasetSource:
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidParameter(f"A dataset source must be a non-empty URI, got {uri!r}")
        scheme, sep, _ = uri.partition("://")
        kind = scheme.lower() if sep else "local"
        if kind in ("https", "http"):
            kind = "http"
        elif kind == "file":
            kind = "local"
        return cls(uri=uri, source_type=kind)

    def to_json(self) -> str:
        return json.dumps({"uri": self.uri} if self.uri is not None else {})


@dataclass(frozen=True)
class Dataset:
    """A dataset's description, as MLflow's ``mlflow.data.Dataset``.

    Attributes:
        name: a short name (``"dataset"`` by default).
        digest: the content digest.
        source: where it came from.
        schema: MLflow's schema document (``mlflow_colspec`` or ``mlflow_tensorspec``).
        profile: counts (``num_rows``, ``num_elements``).
    """

    name: str
    digest: str
    source: DatasetSource
    schema: dict[str, Any] | None = None
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The lineage URI the dataset is recorded under."""
        return dataset_uri(self.name, self.digest, self.source.to_json())

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's dataset fields: name, digest, source, source_type, schema, profile."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source.source_type,
            "schema": json.dumps(self.schema) if self.schema is not None else None,
            "profile": json.dumps(self.profile),
        }


@dataclass(frozen=True, eq=False)
class PandasDataset(Dataset):
    """A pandas DataFrame, with its optional ``targets`` and ``predictions`` columns."""

    df: Any = None
    targets: str | None = None
    predictions: str | None = None


@dataclass(frozen=True, eq=False)
class NumpyDataset(Dataset):
    """numpy features (an array or a dict of arrays) and optional targets."""

    features: Any = None
    targets: Any = None


def _source(source: str | DatasetSource | None) -> DatasetSource:
    if source is None:
        return DatasetSource()
    if isinstance(source, DatasetSource):
        return source
    return DatasetSource.from_uri(str(source))


def _name(name: str | None) -> str:
    if name is None:
        return DEFAULT_NAME
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(
            f"A dataset name must be 1 to {MAX_NAME_LENGTH} characters, got {name!r}"
        )
    return name


# numpy dtype kinds/sizes -> MLflow's column types
_COLUMN_TYPES = {
    ("b", 1): "boolean",
    ("i", 4): "integer",
    ("i", 8): "long",
    ("f", 4): "float",
    ("f", 8): "double",
    ("M", 8): "datetime",
}


def _column_type(dtype: Any) -> str:
    kind, size = getattr(dtype, "kind", "O"), getattr(dtype, "itemsize", 0)
    if kind in "iu":
        return "long" if size > 4 or kind == "u" and size == 4 else "integer"
    return _COLUMN_TYPES.get((kind, size), "binary" if kind == "S" else "string")


def from_pandas(
    df: Any,
    source: str | DatasetSource | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """Describe a pandas DataFrame as a dataset (MLflow's ``mlflow.data.from_pandas``).

    Args:
        df: the DataFrame.
        source: where it was read from (a URI or a `DatasetSource`); none for data made in code.
        targets: the label column, if any.
        name: a short name (default ``"dataset"``).
        digest: the content digest (computed from the content by default).
        predictions: the column holding a model's predictions, if any.

    Returns:
        A `PandasDataset`.

    Raises:
        InvalidParameter: ``df`` is not a DataFrame, or ``targets``/``predictions`` name
            a missing column.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidParameter(f"from_pandas takes a pandas DataFrame, got {type(df).__name__}")
    for role, column in (("targets", targets), ("predictions", predictions)):
        if column is not None and column not in df.columns:
            raise InvalidParameter(f"{role} column {column!r} is not in the DataFrame")
    schema = {
        "mlflow_colspec": [
            {"type": _column_type(dtype), "name": str(col), "required": True}
            for col, dtype in df.dtypes.items()
        ]
    }
    return PandasDataset(
        name=_name(name),
        digest=digest or digest_value(df) or "",
        source=_source(source),
        schema=schema,
        profile={"num_rows": int(len(df)), "num_elements": int(df.size)},
        df=df,
        targets=targets,
        predictions=predictions,
    )


def _tensor_spec(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _tensor_spec(v) for k, v in value.items()}
    array = np.asarray(value)
    return {
        "type": "tensor",
        "tensor-spec": {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]},
    }


def from_numpy(
    features: Any,
    source: str | DatasetSource | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """Describe numpy features (and targets) as a dataset (MLflow's ``mlflow.data.from_numpy``).

    Args:
        features: an array, or a dict of arrays.
        source: where they were read from (a URI or a `DatasetSource`).
        targets: an array (or dict of arrays) of labels.
        name: a short name (default ``"dataset"``).
        digest: the content digest (computed from features and targets by default).

    Returns:
        A `NumpyDataset`.

    Raises:
        InvalidParameter: features that are neither an array nor a dict of arrays.
    """
    import numpy as np

    parts = list(features.values()) if isinstance(features, dict) else [features]
    if not parts or not all(isinstance(p, np.ndarray) for p in parts):
        raise InvalidParameter("from_numpy takes a numpy array or a dict of numpy arrays")
    if digest is None:
        extra = list(targets.values()) if isinstance(targets, dict) else [targets]
        pieces = [digest_value(p) or "" for p in [*parts, *extra] if p is not None]
        digest = pieces[0] if len(pieces) == 1 else digest_value("\n".join(pieces)) or ""
    schema: dict[str, Any] = {"mlflow_tensorspec": {"features": json.dumps(_tensor_spec(features))}}
    if targets is not None:
        schema["mlflow_tensorspec"]["targets"] = json.dumps(_tensor_spec(targets))
    return NumpyDataset(
        name=_name(name),
        digest=digest,
        source=_source(source),
        schema=schema,
        profile={
            "features_shape": [list(p.shape) for p in parts],
            "features_size": [int(p.size) for p in parts],
            "features_nbytes": [int(p.nbytes) for p in parts],
        },
        features=features,
        targets=targets,
    )
