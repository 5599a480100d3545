"""One trace per served request: what ``flowml models serve --trace-sample-rate`` records.

A `RequestTracer` wraps the scoring of a request in a root span (``invocations``) when
the request is sampled, with the request body as inputs and the predictions as outputs,
both after redaction, and tags naming the model (``flowml.model.uri``, ``.name``,
``.version`` or ``.alias``), so production traffic is searchable by model version:
``flowml traces list --filter "tags.\\`flowml.model.version\\` = '3'"``.

Redaction replaces the value of every listed field, at any depth of the JSON body and in
``dataframe_split`` columns, with ``"[REDACTED]"`` before anything is recorded.

Example:
    >>> tracer = RequestTracer(sample_rate=0.1, redact=["ssn"], model_uri="models:/churn/3")
    >>> status, body = tracer.record(score, request_body, "application/json")
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from flowml.exceptions import InvalidParameter

__all__ = ["REDACTED", "RequestTracer", "model_tags", "redact"]

REDACTED = "[REDACTED]"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))?/?$")


def redact(value: Any, fields: frozenset[str]) -> Any:
    """``value`` with the values of ``fields`` (lower-cased names) replaced, at any depth."""
    if not fields:
        return value
    if isinstance(value, dict):
        out = {
            k: REDACTED if str(k).lower() in fields else redact(v, fields) for k, v in value.items()
        }
        columns = value.get("columns")
        if isinstance(columns, list) and isinstance(value.get("data"), list):
            hidden = {i for i, c in enumerate(columns) if str(c).lower() in fields}
            if hidden:
                out["data"] = [
                    [REDACTED if i in hidden else cell for i, cell in enumerate(row)]
                    if isinstance(row, list)
                    else row
                    for row in value["data"]
                ]
        return out
    if isinstance(value, list):
        return [redact(v, fields) for v in value]
    return value


def model_tags(model_uri: str | None) -> dict[str, str]:
    """Tags naming the served model (its URI; name and version or alias for ``models:/``)."""
    if not model_uri:
        return {}
    tags = {"flowml.model.uri": model_uri}
    match = _MODELS_URI.match(model_uri)
    if match:
        tags["flowml.model.name"] = match["name"]
        if match["version"]:
            tags["flowml.model.version"] = match["version"]
        if match["alias"]:
            tags["flowml.model.alias"] = match["alias"]
    return tags


class RequestTracer:
    """Records sampled requests as traces.

    Args:
        sample_rate: the fraction of requests traced, from 0 (none) to 1 (all).
        redact: field names whose values are never recorded (case-insensitive).
        model_uri: the served model's URI, recorded as tags.
        rng: the sampling source (tests pass a seeded one).

    Raises:
        InvalidParameter: a rate outside [0, 1].
    """

    def __init__(
        self,
        sample_rate: float,
        redact: Iterable[str] = (),
        model_uri: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= float(sample_rate) <= 1.0:
            raise InvalidParameter(f"The trace sample rate must be in [0, 1], got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.fields = frozenset(f.strip().lower() for f in redact if f.strip())
        self.tags = model_tags(model_uri)
        self._random = (rng or random.Random()).random

    def record(
        self, score: Callable[[bytes, str], tuple[int, bytes]], body: bytes, content_type: str
    ) -> tuple[int, bytes]:
        """``score(body, content_type)``, traced when this request is sampled."""
        if self.sample_rate <= 0.0 or self._random() >= self.sample_rate:
            return score(body, content_type)
        from flowml.tracing.fluent import update_current_trace
        from flowml.tracing.spans import SpanScope

        with SpanScope("invocations", "CHAIN", {"content_type": content_type}) as span:
            span.set_inputs(self._payload(body, content_type))
            update_current_trace(tags=self.tags)
            status, payload = score(body, content_type)
            span.set_outputs(self._payload(payload, "application/json"))
            span.set_attribute("http.status_code", status)
            if status >= 400:
                span.set_status("ERROR", f"HTTP {status}")
        return status, payload

    def flush(self) -> None:
        """Wait until the traces recorded so far are written (at server shutdown)."""
        from flowml.tracing import writer

        writer.flush(raise_error=False)

    def _payload(self, body: bytes, content_type: str) -> Any:
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            return {"content_type": content_type, "bytes": len(body)}
        try:
            return redact(orjson.loads(body), self.fields)
        except orjson.JSONDecodeError:
            return {"content_type": content_type, "bytes": len(body), "json": False}
