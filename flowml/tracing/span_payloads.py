"""Large span inputs and outputs live in the artifact store, referenced from the span.

A span's inputs or outputs longer than `ARTIFACT_THRESHOLD_CHARS` (as JSON text) are not
kept in the span's row: the trace store writes each to
``<trace artifact location>/payloads/<span id>.<inputs|outputs>.json`` (the location is
the trace's ``mlflow.artifactLocation`` tag, set to ``<experiment artifact location>/
traces/<trace id>/artifacts`` as MLflow's server does) and keeps in the span a short
preview plus the attribute ``flowml.spanInputsArtifact`` (``...OutputsArtifact``) naming
the file. Reading a trace puts the full value back (`restore`), so callers see the span
as it was recorded.

Example:
    >>> if needs_offload(trace.data.spans):   # before the rows are written
    ...     offload(trace.data.spans, location)
    >>> restore(trace.data.spans, location)   # after they are read
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowml.tracing.entities import SpanAttributeKey

if TYPE_CHECKING:
    from flowml.tracing.entities import Span

__all__ = ["ARTIFACT_THRESHOLD_CHARS", "REFERENCES", "needs_offload", "offload", "restore"]

#: Inputs or outputs longer than this (JSON characters) go to the artifact store.
ARTIFACT_THRESHOLD_CHARS = 64_000
#: The payload attribute -> the attribute naming its file.
REFERENCES = {
    SpanAttributeKey.INPUTS: "flowml.spanInputsArtifact",
    SpanAttributeKey.OUTPUTS: "flowml.spanOutputsArtifact",
}
_SUFFIX = {SpanAttributeKey.INPUTS: "inputs", SpanAttributeKey.OUTPUTS: "outputs"}
_PREVIEW_CHARS = 1_000
_log = logging.getLogger(__name__)


def needs_offload(spans: Sequence[Span]) -> bool:
    """Whether any of ``spans`` has a payload over the threshold."""
    for span in spans:
        attributes = span.raw.get("attributes") or {}
        for key in REFERENCES:
            value = attributes.get(key)
            if isinstance(value, str) and len(value) > ARTIFACT_THRESHOLD_CHARS:
                return True
    return False


def offload(spans: Sequence[Span], location: str) -> None:
    """Write the large payloads of ``spans`` under ``location`` and replace them (in the
    spans, in place) by a preview and a reference.

    Raises:
        FlowMLError: the artifact store cannot be written (nothing is replaced).
    """
    import orjson

    from flowml.tracking.artifacts import ArtifactRepository

    repository = None
    for span in spans:
        attributes = span.raw.get("attributes") or {}
        for key, reference in REFERENCES.items():
            value = attributes.get(key)
            if not isinstance(value, str) or len(value) <= ARTIFACT_THRESHOLD_CHARS:
                continue
            if repository is None:
                repository = ArtifactRepository(location)
            path = f"payloads/{span.span_id}.{_SUFFIX[key]}.json"
            repository.write_bytes(path, value.encode())
            preview = f"{value[:_PREVIEW_CHARS]}...[{len(value):,} chars in {path}]"
            attributes[key] = orjson.dumps(preview).decode()
            attributes[reference] = orjson.dumps(path).decode()


def restore(spans: Sequence[Span], location: str | None) -> None:
    """Put back (in place) the payloads `offload` moved to the artifact store. A file that
    cannot be read leaves the preview and logs a warning."""
    import orjson

    from flowml.exceptions import FlowMLError
    from flowml.tracking.artifacts import ArtifactRepository

    repository = None
    for span in spans:
        attributes = span.raw.get("attributes") or {}
        for key, reference in REFERENCES.items():
            encoded = attributes.get(reference)
            if encoded is None:
                continue
            try:
                path = orjson.loads(encoded)
                if location is None or not isinstance(path, str) or ".." in path:
                    raise ValueError(f"bad payload reference {encoded!r}")
                if repository is None:
                    repository = ArtifactRepository(location)
                attributes[key] = repository.read_bytes(path).decode()
            except (FlowMLError, OSError, ValueError) as exc:
                _log.warning("Cannot read a span payload of trace at %s: %s", location, exc)
                continue
            del attributes[reference]
