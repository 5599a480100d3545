"""Runs as a pandas DataFrame, in MLflow's column layout (pandas is imported here only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import Run


def runs_to_dataframe(runs: Sequence[Run]) -> Any:
    """One row per run: ``run_id, experiment_id, status, artifact_uri, start_time, end_time,
    metrics.<key>, params.<key>, tags.<key>`` (times as UTC timestamps)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidParameter("output='pandas' needs pandas: pip install pandas") from exc
    rows: list[dict[str, Any]] = []
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
            if info.end_time
            else pd.NaT,
        }
        row.update({f"metrics.{k}": val for k, val in run.data.metrics.items()})
        row.update({f"params.{k}": val for k, val in run.data.params.items()})
        row.update({f"tags.{k}": val for k, val in run.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=base if not rows else None)
