"""Batch scoring of CSV and Parquet files, in chunks, through fsspec.

Memory is bounded by the chunk (``chunk_rows`` rows; for Parquet also by the file's row
groups), not by the file. The output is written to a temporary sibling and moved into place
when complete, so a failure never leaves a half-written output behind.

Reading arbitrary data URIs is this module's job (artifacts go through
`flowml.tracking.artifacts`); both use the same fsspec filesystems and configuration.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.models.pyfunc import PyFuncModel

__all__ = ["DEFAULT_CHUNK_ROWS", "BatchResult", "predict_file"]

DEFAULT_CHUNK_ROWS = 50_000
FORMATS = ("csv", "parquet")
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class BatchResult:
    """What one batch scoring call did."""

    input_uri: str
    output_uri: str
    rows: int
    chunks: int


def _format_of(uri: str, given: str | None, role: str) -> str:
    if given is not None:
        if given not in FORMATS:
            raise InvalidParameter(f"{role} format must be one of {list(FORMATS)}, got {given!r}")
        return given
    path = uri.split("?", 1)[0].lower()
    for extension, kind in _EXTENSIONS.items():
        if path.endswith(extension):
            return kind
    raise InvalidParameter(
        f"Cannot tell the {role} format of {uri!r} from its extension; pass {role}_format="
        f"{list(FORMATS)}"
    )


def _read_chunks(fs: Any, path: str, kind: str, chunk_rows: int) -> Iterator[Any]:
    if kind == "csv":
        import pandas as pd

        with fs.open(path, "rb") as handle:
            yield from pd.read_csv(handle, chunksize=chunk_rows)
        return
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()


def _prediction_frame(predictions: Any, index: Any, column: str) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return predictions.set_axis(index, axis=0)
    if isinstance(predictions, pd.Series):
        return pd.DataFrame({column: predictions.to_numpy()}, index=index)
    array = np.asarray(predictions)
    if array.ndim == 1:
        return pd.DataFrame({column: array}, index=index)
    if array.ndim == 2:
        names = [f"{column}_{i}" for i in range(array.shape[1])]
        return pd.DataFrame(array, columns=names, index=index)
    raise InvalidParameter(f"Cannot write {array.ndim}-dimensional predictions to a table")


class _Writer:
    def __init__(self, fs: Any, path: str, kind: str) -> None:
        self.kind = kind
        self._handle = fs.open(path, "wb")
        self._parquet: Any = None
        self._started = False

    def write(self, frame: Any) -> None:
        if self.kind == "csv":
            frame.to_csv(self._handle, index=False, header=not self._started)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._parquet = pq.ParquetWriter(self._handle, table.schema)
            else:
                table = pa.Table.from_pandas(
                    frame, schema=self._parquet.schema, preserve_index=False
                )
            self._parquet.write_table(table)
        self._started = True

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self._handle.close()


def predict_file(
    model: PyFuncModel,
    input_uri: str,
    output_uri: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    input_format: str | None = None,
    output_format: str | None = None,
    prediction_column: str = "prediction",
    include_input: bool = True,
) -> BatchResult:
    """Score a CSV or Parquet file chunk by chunk and write the predictions.

    Args:
        model: The loaded model (see `flowml.load_model`).
        input_uri: A local path or any fsspec URL (``s3://``, ``memory://``...).
        output_uri: Where to write the result (its format from its extension).
        chunk_rows: Rows scored at once; bounds memory use.
        input_format: ``csv`` or ``parquet`` when the extension does not tell.
        output_format: ``csv`` or ``parquet`` when the extension does not tell.
        prediction_column: Name of the prediction column (``_0``, ``_1``... suffixes for
            several outputs; DataFrame predictions keep their own names).
        include_input: Write the input columns next to the predictions.

    Returns:
        The URIs, the number of rows and of chunks.

    Raises:
        ResourceNotFound: the input does not exist.
        InvalidParameter: a bad format, chunk size, or a chunk violating the signature
            (the output is then left untouched).
    """
    from fsspec.core import url_to_fs

    if chunk_rows < 1:
        raise InvalidParameter(f"chunk_rows must be at least 1, got {chunk_rows}")
    in_kind = _format_of(input_uri, input_format, "input")
    out_kind = _format_of(output_uri, output_format, "output")
    in_fs, in_path = url_to_fs(input_uri)
    if not in_fs.exists(in_path):
        raise ResourceNotFound(f"No input file at {input_uri!r}")
    out_fs, out_path = url_to_fs(output_uri)
    parent = out_path.rstrip("/").rsplit("/", 1)[0] if "/" in out_path.strip("/") else ""
    if parent:
        out_fs.makedirs(parent, exist_ok=True)
    staging = f"{out_path}.{uuid.uuid4().hex[:8]}.tmp"
    writer = _Writer(out_fs, staging, out_kind)
    rows = chunks = 0
    try:
        for chunk in _read_chunks(in_fs, in_path, in_kind, chunk_rows):
            predictions = model.predict_parsed(chunk)
            frame = _prediction_frame(predictions, chunk.index, prediction_column)
            if include_input:
                import pandas as pd

                frame = pd.concat([chunk, frame], axis=1)
            writer.write(frame)
            rows += len(chunk)
            chunks += 1
        writer.close()
        if out_fs.exists(out_path):
            out_fs.rm(out_path)
        out_fs.mv(staging, out_path)
    except BaseException:
        try:
            writer.close()
        finally:
            if out_fs.exists(staging):
                out_fs.rm(staging)
        raise
    return BatchResult(input_uri=input_uri, output_uri=output_uri, rows=rows, chunks=chunks)
