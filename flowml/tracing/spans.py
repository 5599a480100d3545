"""Live spans: what `flowml.start_span` yields and `@flowml.trace` records into.

A `LiveSpan` wraps an OpenTelemetry SDK span. Its fields are stored as OTel attributes
under MLflow's names with JSON-encoded values (``mlflow.spanInputs``, ``mlflow.spanType``...),
so the same span reads the same in flowml, in MLflow and in any OTLP backend.

`SpanScope` starts a span, makes it current in the OTel context (a contextvar: each
thread and asyncio task sees its own), and ends it; an exception escaping the block marks
the span ``ERROR`` and is recorded as an ``exception`` event, then re-raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

from flowml.tracing.entities import SpanAttributeKey, SpanType
from flowml.tracing.payload import MAX_ATTRIBUTE_CHARS, dumps
from flowml.tracing.provider import get_tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span as OTelSpan

__all__ = [
    "CurrentSpan",
    "LiveSpan",
    "SpanScope",
    "current_live_span",
    "encode_attributes",
    "put_attribute",
    "put_attributes",
]

_log = logging.getLogger(__name__)


class LiveSpan:
    """A span being recorded.

    Example:
        >>> with flowml.start_span("retrieve", span_type="RETRIEVER") as span:
        ...     span.set_inputs({"query": "q"})
        ...     span.set_outputs(["doc1"])
    """

    __slots__ = ("_span",)

    def __init__(self, span: OTelSpan) -> None:
        self._span = span

    @property
    def trace_id(self) -> str:
        return f"tr-{self._span.context.trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self._span.context.span_id:016x}"

    @property
    def name(self) -> str:
        return self._span.name

    def set_inputs(self, inputs: Any) -> None:
        put_attribute(self._span, SpanAttributeKey.INPUTS, dumps(inputs))

    def set_outputs(self, outputs: Any) -> None:
        put_attribute(self._span, SpanAttributeKey.OUTPUTS, dumps(outputs))

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (any JSON-serialisable value)."""
        put_attribute(self._span, key, dumps(value, MAX_ATTRIBUTE_CHARS))

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            put_attribute(self._span, key, dumps(value, MAX_ATTRIBUTE_CHARS))

    def set_span_type(self, span_type: str) -> None:
        put_attribute(self._span, SpanAttributeKey.SPAN_TYPE, dumps(span_type))

    def set_status(self, status: str, description: str | None = None) -> None:
        """``"OK"`` or ``"ERROR"`` (with an optional message)."""
        code = StatusCode.ERROR if str(status).upper() == "ERROR" else StatusCode.OK
        self._span.set_status(Status(code, description if code is StatusCode.ERROR else None))

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self._span.add_event(name, {k: _event_value(v) for k, v in (attributes or {}).items()})

    def record_exception(self, exc: BaseException) -> None:
        self._span.record_exception(exc)
        self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def end(self) -> None:
        self._span.end()

    def __repr__(self) -> str:
        return f"LiveSpan(name={self.name!r}, trace_id={self.trace_id!r}, span_id={self.span_id!r})"


def _event_value(value: Any) -> Any:
    return value if isinstance(value, (str, bool, int, float)) else dumps(value)


class SpanScope:
    """Start a span as the current one for a block (a class, not a generator: it is on
    the path of every traced call)."""

    __slots__ = ("_encoded", "_name", "_span", "_token")

    def __init__(
        self,
        name: str,
        span_type: str | None = SpanType.UNKNOWN,
        attributes: Mapping[str, Any] | None = None,
        *,
        encoded: dict[str, str] | None = None,
    ) -> None:
        self._name = name
        # ``encoded``: attributes already JSON-encoded (a decorator encodes its constant ones
        # once, not on every call); it is never modified here.
        self._encoded = encoded if encoded is not None else encode_attributes(span_type, attributes)
        self._span: LiveSpan | None = None
        self._token: object = None

    def start(self) -> LiveSpan:
        otel_span = cast(  # flowml's provider is the SDK's: its tracer starts SDK spans
            "OTelSpan",
            get_tracer().start_span(
                self._name, record_exception=False, set_status_on_exception=False
            ),
        )
        put_attributes(otel_span, self._encoded)
        self._span = LiveSpan(otel_span)
        return self._span

    def __enter__(self) -> LiveSpan:
        span = self.start()
        self._token = otel_context.attach(otel_trace.set_span_in_context(span._span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        assert span is not None
        otel_context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None and not isinstance(exc, GeneratorExit):
            span.record_exception(exc)
        span._span.end()

    async def __aenter__(self) -> LiveSpan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class CurrentSpan:
    """Make an already started span the current one for a block, without ending it on the
    way out (a generator's step, a client call, a prediction: hooks and child spans see it)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: LiveSpan) -> None:
        self._span = span

    def __enter__(self) -> None:
        self._token = otel_context.attach(otel_trace.set_span_in_context(self._span._span))

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._token)


def encode_attributes(
    span_type: str | None, attributes: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """A span's type and attributes as the JSON-encoded OTel attributes it starts with."""
    out = {SpanAttributeKey.SPAN_TYPE: dumps(span_type or SpanType.UNKNOWN)}
    for key, value in (attributes or {}).items():
        if isinstance(key, str) and key:
            out[key] = dumps(value, MAX_ATTRIBUTE_CHARS)
        else:  # as the SDK does with such a key: dropped (checked here once, not per span)
            _log.warning("invalid span attribute key %r: must be a non-empty string", key)
    return out


def _direct(span: OTelSpan, adding: int) -> dict[str, Any] | None:
    """The SDK span's own attribute dict, when ``adding`` more JSON strings can go straight
    into it: no SDK limit (count, value length) could apply (read under the span's lock)."""
    bounded = getattr(span, "_attributes", None)
    found = getattr(bounded, "_dict", None)
    if type(found) is not dict or getattr(bounded, "max_value_len", 0) is not None:
        return None
    maxlen = getattr(bounded, "maxlen", 0)
    if maxlen is not None and len(found) + adding > maxlen:
        return None
    return found


def put_attributes(span: OTelSpan, attributes: Mapping[str, str]) -> None:
    """Add JSON-encoded attributes (non-empty string keys) to a started SDK span.

    Speed trick: a JSON string is a valid OTel value as it is, so the SDK's per-value
    checks (a dozen calls each) are skipped when no limit applies; otherwise, and on an
    ended span, the SDK's setter runs. Under the span's lock, as the SDK's setter and
    ``end`` take it; a key already present moves to the end, as with the SDK's setter.
    """
    found = _direct(span, len(attributes))
    lock = getattr(span, "_lock", None)
    if found is not None and lock is not None:
        with lock:
            if not getattr(span._attributes, "_immutable", True):  # set by `end`
                for key, value in attributes.items():
                    found.pop(key, None)
                    found[key] = value
                return
    span.set_attributes(attributes)


def put_attribute(span: OTelSpan, key: str, value: str) -> None:
    """`put_attributes` for one attribute (any key: a bad one goes to the SDK's setter)."""
    found = _direct(span, 1) if isinstance(key, str) and key else None
    lock = getattr(span, "_lock", None)
    if found is not None and lock is not None:
        with lock:
            if not getattr(span._attributes, "_immutable", True):
                found.pop(key, None)
                found[key] = value
                return
    span.set_attribute(key, value)


def current_live_span() -> LiveSpan | None:
    """The current flowml span of this context, or ``None``."""
    span = otel_trace.get_current_span()
    if not span.get_span_context().is_valid or not hasattr(span, "set_attribute"):
        return None
    from flowml.tracing.provider import current_pending

    if current_pending(span.get_span_context().trace_id) is None:
        return None  # another tracer's span, or one whose trace is already written
    return LiveSpan(span)  # type: ignore[arg-type]
