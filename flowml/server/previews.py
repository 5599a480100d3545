"""``GET /api/2.0/flowml/artifacts/table``: the first rows of a run's Parquet file, as JSON.

Browsers read CSV themselves but not Parquet, so the run page asks the server for a
preview: at most ``max_rows`` rows (from the first record batches only, never the whole
file), the column names and the file's total row count. The file is opened through the
destination's repository like every other artifact read. Reading Parquet needs ``pyarrow``
on the server (``pip install pyarrow``); without it the reply says so.
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.api import Endpoint
from flowml.server.context import ServerContext
from flowml.server.run_files import run_file
from flowml.server.wire import Fields

__all__ = ["ENDPOINTS", "MAX_PREVIEW_ROWS"]

DEFAULT_PREVIEW_ROWS = 200
MAX_PREVIEW_ROWS = 1000
# Long strings and binary cells are cut: a preview is for looking, not for downloading.
MAX_CELL_CHARS = 500


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value[:MAX_CELL_CHARS] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)[:MAX_CELL_CHARS]


def preview_table(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    rel = run_file(ctx, fields)
    if not rel.lower().endswith(".parquet"):
        raise InvalidParameter(f"{rel.rsplit('/', 1)[-1]!r} is not a .parquet file")
    max_rows = fields.int64("max_rows")
    max_rows = DEFAULT_PREVIEW_ROWS if max_rows is None else max_rows
    if not 1 <= max_rows <= MAX_PREVIEW_ROWS:
        raise InvalidParameter(f"max_rows must be between 1 and {MAX_PREVIEW_ROWS}, got {max_rows}")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidParameter(
            "Previewing Parquet files needs pyarrow on the server: pip install pyarrow"
        ) from None
    handle = ctx.artifacts.open_artifact(rel)
    try:
        try:
            parquet = pq.ParquetFile(handle)
            columns = parquet.schema_arrow.names
            batch = next(parquet.iter_batches(batch_size=max_rows), None)
        except Exception as exc:  # pyarrow raises many unrelated types for a corrupt file
            raise InvalidParameter(
                f"{rel.rsplit('/', 1)[-1]!r} is not a valid Parquet file: {exc}"
            ) from None
        rows = (
            [] if batch is None else [[_cell(v) for v in row.values()] for row in batch.to_pylist()]
        )
        return {"columns": columns, "rows": rows, "total_rows": parquet.metadata.num_rows}
    finally:
        handle.close()


ENDPOINTS = (Endpoint("/artifacts/table", "GET", preview_table),)
