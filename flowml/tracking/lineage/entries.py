"""Lineage entries: what a run read (inputs) and what it produced (outputs).

Lineage is recorded as facts about one run at a time, each naming a URI:

- ``input  dataset  s3://bucket/wine.parquet``: the run read that dataset;
- ``output model    models:/wine/3``: the run produced that model version;
- ``input  prefect-task-run  prefect-task-run:<uuid>``: the run consumed the result of that
  Prefect task run; the run that computed it holds the matching ``output``.

Runs are linked wherever an output URI of one is an input URI of another, so links are
resolved when the graph is read (`flowml.lineage`), never looked up while a task runs. A run
created with a run key (``prefect-task-run:<uuid>`` for a tracked task run) stands for that
key without storing it again: stores report it as an implicit output entry.
Nothing here knows Prefect: the ``prefect-*`` kinds are plain names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from flowml.exceptions import InvalidParameter

__all__ = [
    "INPUT",
    "KIND_ARTIFACT",
    "KIND_DATASET",
    "KIND_MODEL",
    "KIND_PREFECT_FLOW_RUN",
    "KIND_PREFECT_RESULT",
    "KIND_PREFECT_TASK_RUN",
    "MAX_LINEAGE_BATCH",
    "OUTPUT",
    "LineageEntry",
    "validate_entries",
]

INPUT = "input"
OUTPUT = "output"
DIRECTIONS = (INPUT, OUTPUT)

KIND_DATASET = "dataset"
KIND_MODEL = "model"
KIND_ARTIFACT = "artifact"
KIND_PREFECT_TASK_RUN = "prefect-task-run"
KIND_PREFECT_FLOW_RUN = "prefect-flow-run"
KIND_PREFECT_RESULT = "prefect-result"

MAX_KIND_LENGTH = 64
# Bytes, not characters: (run, direction, kind, uri) is a unique btree key, and PostgreSQL
# caps an index entry at about 2.7 kB.
MAX_URI_BYTES = 2000
MAX_NAME_LENGTH = 250
MAX_DIGEST_LENGTH = 128
MAX_LINEAGE_BATCH = 1000

_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(slots=True, frozen=True)
class LineageEntry:
    """One input or output of a run.

    Attributes:
        direction: ``"input"`` (read by the run) or ``"output"`` (produced by it).
        kind: what the URI names: ``dataset``, ``model``, ``artifact``, ``prefect-task-run``...
        uri: where it lives or what identifies it; runs sharing a URI are linked.
        name: a short human name (``"train"``, ``"wine.csv"``).
        digest: a content digest, when known.
        run_id: the run the entry belongs to (filled in when read from a store).
        timestamp: when it was recorded, epoch ms (filled in when read from a store).
    """

    direction: str
    kind: str
    uri: str
    name: str | None = None
    digest: str | None = None
    run_id: str | None = None
    timestamp: int | None = None


def validate_entries(entries: Iterable[LineageEntry]) -> list[LineageEntry]:
    """Check entries before they reach a store; returns them as a list.

    Raises:
        InvalidParameter: a bad direction, kind, URI, name or digest, or too many entries.
    """
    checked = list(entries)
    if len(checked) > MAX_LINEAGE_BATCH:
        raise InvalidParameter(
            f"At most {MAX_LINEAGE_BATCH} lineage entries may be recorded at once, "
            f"got {len(checked)}"
        )
    for entry in checked:
        if not isinstance(entry, LineageEntry):
            raise InvalidParameter(f"Expected a LineageEntry, got {type(entry).__name__}")
        if entry.direction not in DIRECTIONS:
            raise InvalidParameter(
                f"Lineage direction must be 'input' or 'output', got {entry.direction!r}"
            )
        if (
            not isinstance(entry.kind, str)
            or len(entry.kind) > MAX_KIND_LENGTH
            or not _KIND_RE.match(entry.kind)
        ):
            raise InvalidParameter(
                f"Invalid lineage kind {entry.kind!r}: use at most {MAX_KIND_LENGTH} lowercase "
                "letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if not isinstance(entry.uri, str) or not entry.uri.strip():
            raise InvalidParameter(f"A lineage URI must be a non-empty string, got {entry.uri!r}")
        if len(entry.uri.encode("utf-8")) > MAX_URI_BYTES:
            raise InvalidParameter(
                f"Lineage URI {entry.uri[:60]!r}... is longer than {MAX_URI_BYTES} bytes"
            )
        if entry.name is not None and (
            not isinstance(entry.name, str) or len(entry.name) > MAX_NAME_LENGTH
        ):
            raise InvalidParameter(
                f"A lineage name must be a string of at most {MAX_NAME_LENGTH} characters, "
                f"got {entry.name!r}"
            )
        if entry.digest is not None and (
            not isinstance(entry.digest, str) or len(entry.digest) > MAX_DIGEST_LENGTH
        ):
            raise InvalidParameter(
                f"A lineage digest must be a string of at most {MAX_DIGEST_LENGTH} characters, "
                f"got {entry.digest!r}"
            )
    return checked


def task_run_uri(task_run_id: object) -> str:
    """The URI standing for a Prefect task run's result."""
    return f"{KIND_PREFECT_TASK_RUN}:{task_run_id}"


def flow_run_uri(flow_run_id: object) -> str:
    """The URI standing for a Prefect flow run's result."""
    return f"{KIND_PREFECT_FLOW_RUN}:{flow_run_id}"


def result_uri(storage_key: str) -> str:
    """The URI standing for a persisted Prefect result (what a cache hit reads)."""
    return f"{KIND_PREFECT_RESULT}:{storage_key}"
