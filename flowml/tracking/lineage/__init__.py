"""Lineage: what each run read and what it produced, and the graph linking runs through it.

- `flowml.tracking.lineage.entries`: the entries (``LineageEntry``), their kinds and rules;
  re-exported here, so ``from flowml.tracking.lineage import LineageEntry`` is the usual import.
- `flowml.tracking.lineage.inputs`: recording them from the fluent API (``flowml.log_input``,
  ``record_input``, ``record_output``, lineage deferred until a run exists).
- `flowml.tracking.lineage.graph`: reading them back as a graph of runs (``flowml.lineage``).

Only the entries are imported here: the stores import this package, and the other two modules
import the fluent API, which imports the stores.
"""

from __future__ import annotations

from flowml.tracking.lineage.entries import (
    DIRECTIONS,
    INPUT,
    KIND_ARTIFACT,
    KIND_DATASET,
    KIND_MODEL,
    KIND_PREFECT_FLOW_RUN,
    KIND_PREFECT_RESULT,
    KIND_PREFECT_TASK_RUN,
    MAX_DIGEST_LENGTH,
    MAX_KIND_LENGTH,
    MAX_LINEAGE_BATCH,
    MAX_NAME_LENGTH,
    MAX_URI_BYTES,
    OUTPUT,
    LineageEntry,
    flow_run_uri,
    result_uri,
    task_run_uri,
    validate_entries,
)

__all__ = [
    "DIRECTIONS",
    "INPUT",
    "KIND_ARTIFACT",
    "KIND_DATASET",
    "KIND_MODEL",
    "KIND_PREFECT_FLOW_RUN",
    "KIND_PREFECT_RESULT",
    "KIND_PREFECT_TASK_RUN",
    "MAX_DIGEST_LENGTH",
    "MAX_KIND_LENGTH",
    "MAX_LINEAGE_BATCH",
    "MAX_NAME_LENGTH",
    "MAX_URI_BYTES",
    "OUTPUT",
    "LineageEntry",
    "flow_run_uri",
    "result_uri",
    "task_run_uri",
    "validate_entries",
]
