"""Span inputs and outputs as JSON text, bounded in size.

Values are serialised with orjson (dataclasses, datetimes, numpy arrays natively; pydantic
models through ``model_dump``; anything else as its ``str``). Payloads over
`flowml.tracing.span_payloads.ARTIFACT_THRESHOLD_CHARS` are kept whole and moved to the
artifact store when the trace is written; only text longer than `MAX_PAYLOAD_CHARS` (a
memory bound for the span processor) is cut and stored as a JSON string ending with a
marker.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MAX_ATTRIBUTE_CHARS", "MAX_PAYLOAD_CHARS", "PREVIEW_CHARS", "dumps", "preview"]

#: The most characters one span's inputs (or outputs) keep (past it they are cut).
MAX_PAYLOAD_CHARS = 16_000_000
#: The most characters any other span attribute keeps.
MAX_ATTRIBUTE_CHARS = 64_000
#: The request/response previews of a trace (what lists and searches show).
PREVIEW_CHARS = 1_000
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic v2 models (openai's responses)
    if callable(dump):
        try:
            return dump(mode="json", exclude_unset=True)
        except Exception:  # a model that cannot dump itself is shown as text
            return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(value: Any, limit: int | None = None) -> str:
    """``value`` as JSON text of at most about ``limit`` characters.

    Example:
        >>> dumps({"q": "hi"})
        '{"q":"hi"}'
    """
    if limit is None:
        limit = MAX_PAYLOAD_CHARS
    if isinstance(value, str) and len(value) < limit:
        return orjson.dumps(value).decode()
    try:
        text = orjson.dumps(value, default=_fallback, option=_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):  # cycles, too-deep nesting, odd keys
        text = orjson.dumps(str(value)).decode()
    if len(text) <= limit:
        return text
    return orjson.dumps(f"{text[:limit]}...[truncated {len(text) - limit} chars]").decode()


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    """The first ``limit`` characters of a JSON payload, for trace lists."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."
