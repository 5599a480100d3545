"""MLflow's ``inputs`` rows as flowml lineage entries (shared by the database reader).

MLflow records three kinds of edges in one ``inputs`` table:

| source_type | destination_type | flowml lineage entry of the run |
|---|---|---|
| ``DATASET`` (a ``datasets`` row) | ``RUN`` | input ``dataset`` at the dataset's URI |
| ``RUN_INPUT`` (the run) | ``MODEL_INPUT`` (a logged model) | input ``model`` ``models:/<id>`` |
| ``RUN_OUTPUT`` (the run) | ``MODEL_OUTPUT`` (a logged model) | output ``model`` ``models:/<id>`` |

A dataset's URI is the location its source document names (`dataset_uri`, as the server's
``log-inputs`` endpoint records it). Entries are kept once per run, as flowml stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, or_, select

from flowml.tracking.datasets import dataset_uri
from flowml.tracking.lineage import (
    INPUT,
    KIND_DATASET,
    KIND_MODEL,
    MAX_DIGEST_LENGTH,
    MAX_NAME_LENGTH,
    OUTPUT,
    LineageEntry,
)

__all__ = ["input_entries"]


def input_entries(
    conn: Connection, tables: dict[str, Table], run_ids: Sequence[str] | None
) -> dict[str, list[LineageEntry]]:
    """Lineage entries per run for ``run_ids`` (every run when ``None``), each once."""
    if "inputs" not in tables:
        return {}
    t = tables["inputs"]
    edges = [
        and_(t.c.source_type == "DATASET", t.c.destination_type == "RUN"),
        and_(t.c.source_type.in_(("RUN_INPUT", "RUN_OUTPUT"))),
    ]
    query = select(t.c.source_type, t.c.source_id, t.c.destination_id).where(or_(*edges))
    if run_ids is not None:
        ids = list(run_ids)
        query = query.where(or_(t.c.destination_id.in_(ids), t.c.source_id.in_(ids)))
    rows = list(conn.execute(query))
    datasets = _datasets(conn, tables, {r.source_id for r in rows if r.source_type == "DATASET"})
    found: dict[str, dict[LineageEntry, None]] = {}
    for row in rows:
        if row.source_type == "DATASET":
            dataset = datasets.get(row.source_id)
            if dataset is None:
                continue  # a dangling edge: MLflow shows nothing for it either
            run_id, entry = row.destination_id, dataset
        else:
            direction = INPUT if row.source_type == "RUN_INPUT" else OUTPUT
            model = f"models:/{row.destination_id}"
            run_id = row.source_id
            entry = LineageEntry(direction, KIND_MODEL, model, name=row.destination_id)
        found.setdefault(run_id, {})[entry] = None
    return {run_id: list(entries) for run_id, entries in found.items()}


def _datasets(conn: Connection, tables: dict[str, Table], ids: set[str]) -> dict[str, Any]:
    if not ids or "datasets" not in tables:
        return {}
    t = tables["datasets"]
    out = {}
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        for row in conn.execute(
            select(t.c.dataset_uuid, t.c.name, t.c.digest, t.c.dataset_source).where(
                t.c.dataset_uuid.in_(wanted[start : start + 500])
            )
        ):
            out[row.dataset_uuid] = dataset_entry(row.name, row.digest, row.dataset_source)
    return out


def dataset_entry(name: str, digest: str | None, source: str | None) -> LineageEntry:
    """The input entry of one MLflow dataset (name and digest cut to flowml's limits)."""
    return LineageEntry(
        INPUT,
        KIND_DATASET,
        dataset_uri(name, digest, source),
        name=(name or "")[:MAX_NAME_LENGTH] or None,
        digest=(digest or "")[:MAX_DIGEST_LENGTH] or None,
    )
