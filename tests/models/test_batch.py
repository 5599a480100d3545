"""Batch scoring of CSV and Parquet files larger than one chunk, local and through fsspec."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.models.api import load_model, save_model
from flowml.models.batch import predict_file
from flowml.models.pyfunc import PyFuncModel


@pytest.fixture
def big() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.normal(size=2_500), "b": rng.integers(0, 10, size=2_500)})


@pytest.fixture
def model(tmp_path: Path, classifier: Any, frame: Any) -> PyFuncModel:
    save_model(classifier, tmp_path / "clf", input_example=frame.head(2))
    return load_model(str(tmp_path / "clf"))


@pytest.fixture
def memory_root() -> Iterator[str]:
    import fsspec

    root = f"/batch-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}"
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _write(frame: pd.DataFrame, uri: str) -> None:
    if uri.endswith(".csv"):
        frame.to_csv(uri, index=False)
    else:
        frame.to_parquet(uri, index=False)


def _read(uri: str) -> pd.DataFrame:
    return pd.read_csv(uri) if uri.endswith(".csv") else pd.read_parquet(uri)


@pytest.mark.parametrize("src", ["csv", "parquet"])
@pytest.mark.parametrize("dst", ["csv", "parquet"])
@pytest.mark.parametrize("where", ["file", "memory"])
def test_files_larger_than_a_chunk(
    tmp_path: Path,
    memory_root: str,
    model: PyFuncModel,
    classifier: Any,
    big: pd.DataFrame,
    src: str,
    dst: str,
    where: str,
) -> None:
    root = memory_root if where == "memory" else str(tmp_path)
    source, target = f"{root}/in/data.{src}", f"{root}/out/scored.{dst}"
    if where == "file":
        Path(tmp_path / "in").mkdir()
    _write(big, source)
    result = predict_file(model, source, target, chunk_rows=1_000)
    assert (result.rows, result.chunks) == (2_500, 3)
    out = _read(target)
    assert list(out.columns) == ["a", "b", "prediction"]
    np.testing.assert_array_equal(out["prediction"], classifier.predict(big))
    np.testing.assert_allclose(out["a"], big["a"])


def test_multi_output_predictions_and_predictions_only(
    tmp_path: Path, classifier: Any, big: pd.DataFrame
) -> None:
    save_model(classifier, tmp_path / "proba", pyfunc_predict_fn="predict_proba")
    big.to_parquet(tmp_path / "in.parquet")
    predict_file(
        load_model(str(tmp_path / "proba")),
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out.parquet"),
        chunk_rows=999,
        include_input=False,
        prediction_column="p",
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["p_0", "p_1"]
    np.testing.assert_allclose(out.to_numpy(), classifier.predict_proba(big))


def test_a_bad_chunk_leaves_the_existing_output_untouched(
    tmp_path: Path, model: PyFuncModel, big: pd.DataFrame
) -> None:
    broken = big.astype({"b": "float64"})
    broken.loc[1_500, "b"] = 0.5  # only the second chunk violates the signature
    broken.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.csv").write_text("previous results\n")
    with pytest.raises(InvalidParameter, match="column 'b'"):
        predict_file(model, str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), chunk_rows=1_000)
    assert (tmp_path / "out.csv").read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.csv"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"chunk_rows": 0}, InvalidParameter, "chunk_rows must be at least 1"),
        ({"input_format": "xlsx"}, InvalidParameter, "input format must be one of"),
        ({"output_uri": "out.json"}, InvalidParameter, "Cannot tell the output format"),
        ({"input_uri": "missing.csv"}, ResourceNotFound, "No input file"),
    ],
)
def test_bad_arguments(
    tmp_path: Path,
    model: PyFuncModel,
    big: pd.DataFrame,
    kwargs: dict[str, Any],
    error: type,
    message: str,
) -> None:
    big.to_csv(tmp_path / "in.csv", index=False)
    args = {"input_uri": str(tmp_path / "in.csv"), "output_uri": str(tmp_path / "out.csv")}
    for key in ("input_uri", "output_uri"):
        if key in kwargs:
            args[key] = str(tmp_path / kwargs.pop(key))
    with pytest.raises(error, match=message):
        predict_file(model, args["input_uri"], args["output_uri"], **kwargs)
    assert not (tmp_path / "out.csv").exists()
