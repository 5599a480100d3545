"""The batch scoring flow step: ``flowml.tasks.batch_predict``.

A Prefect task around `flowml.models.batch.predict_file`. Models are loaded once per
process and reused by every task run that scores with the same model, so mapping the task
over hundreds of files does not reload the model for each one.
"""

from __future__ import annotations

import threading

from prefect import task

from flowml.models.api import load_model
from flowml.models.batch import DEFAULT_CHUNK_ROWS, BatchResult, predict_file
from flowml.models.pyfunc import PyFuncModel
from flowml.models.uri import resolve_model_uri

__all__ = ["batch_predict", "clear_model_cache"]

_cache: dict[str, PyFuncModel] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 8


def _model(model_uri: str) -> PyFuncModel:
    # Keyed by the resolved storage URI: a moved alias (models:/m@prod) loads the new model.
    key = resolve_model_uri(model_uri)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = load_model(key)
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[key] = model
        return model


def clear_model_cache() -> None:
    """Forget the models loaded by earlier task runs in this process."""
    with _cache_lock:
        _cache.clear()


@task(name="batch-predict", task_run_name="batch-predict {input_uri}")
def batch_predict(
    model_uri: str,
    input_uri: str,
    output_uri: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    input_format: str | None = None,
    output_format: str | None = None,
    prediction_column: str = "prediction",
    include_input: bool = True,
) -> BatchResult:
    """Score a CSV or Parquet file with a model, chunk by chunk, and write the predictions.

    Args:
        model_uri: Any model URI (path, fsspec URL, ``runs:/``, ``models:/``).
        input_uri: The input file (local path or fsspec URL).
        output_uri: The output file; CSV or Parquet from its extension.
        chunk_rows: Rows per chunk (bounds memory use).
        input_format: ``csv``/``parquet`` when the extension does not tell.
        output_format: ``csv``/``parquet`` when the extension does not tell.
        prediction_column: Name of the prediction column.
        include_input: Keep the input columns next to the predictions.

    Returns:
        A `BatchResult` with the row and chunk counts.

    Raises:
        ResourceNotFound: the model or the input does not exist.
        InvalidParameter: a bad format or a chunk that violates the model signature.

    Example:
        >>> import pandas as pd
        >>> from prefect import flow, unmapped
        >>> from flowml.tasks import batch_predict
        >>> _ = flowml.save_model(python_model=lambda rows: rows["x"] * 2, path="double")
        >>> for day in ("mon", "tue"):
        ...     pd.DataFrame({"x": [1, 2, 3]}).to_csv(f"{day}.csv", index=False)
        >>> @flow
        ... def score_days(files: list[str]):
        ...     return batch_predict.map(
        ...         unmapped("double"),  # or "models:/churn@champion"
        ...         files,
        ...         [f.replace(".csv", ".scored.csv") for f in files],
        ...         chunk_rows=unmapped(2),
        ...     ).result()
        >>> [(r.rows, r.chunks) for r in score_days(["mon.csv", "tue.csv"])]
        [(3, 2), (3, 2)]
        >>> pd.read_csv("tue.scored.csv")["prediction"].tolist()
        [2, 4, 6]
    """
    return predict_file(
        _model(model_uri),
        input_uri,
        output_uri,
        chunk_rows=chunk_rows,
        input_format=input_format,
        output_format=output_format,
        prediction_column=prediction_column,
        include_input=include_input,
    )
