"""OpenTelemetry wiring: flowml's own tracer provider and the processor that gathers traces.

flowml uses a private `TracerProvider` (the global one stays the application's), so its
spans never leak into another exporter by accident and another library's spans never land
in the tracking store. The SDK does the span bookkeeping (ids, parents, context, timing);
`TraceProcessor` collects the finished spans of each trace in memory and, when the root
span ends, hands the whole trace to the background writer (`flowml.tracing.writer`).

Where a trace belongs (tracking URI, experiment, run, Prefect task run) is decided when
its root span starts, on the caller's thread: from the active run of `flowml.tracking`
and from the context providers higher layers register (`register_context_provider`;
`flowml.tasks` registers one giving the Prefect task run), so this layer never imports
Prefect.

With ``FLOWML_OTLP_ENDPOINT`` set, every span is also exported over OTLP/HTTP.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import (
        ReadableSpan,
        Span,
        SpanProcessor,
        SynchronousMultiSpanProcessor,
    )
    from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
    from opentelemetry.trace import Link, SpanKind, Tracer, TraceState
    from opentelemetry.util.types import Attributes

__all__ = [
    "PendingTrace",
    "current_pending",
    "destination",
    "get_tracer",
    "register_context_provider",
    "reset",
    "took_traces",
]

_log = logging.getLogger(__name__)

# Returns extra trace metadata ({key: value}) for the trace starting now, or None.
ContextProvider = Callable[[], "dict[str, str] | None"]
_providers: list[ContextProvider] = []


def register_context_provider(provider: ContextProvider) -> None:
    """Add metadata to every trace started from now on (called when its root span starts).

    A higher layer uses it to link traces to what it knows: `flowml.tasks` adds the Prefect
    task and flow run ids. A provider that raises is skipped (tracing never breaks the
    traced code).

    Args:
        provider: a callable returning ``{metadata key: value}`` or ``None``.
    """
    if provider not in _providers:
        _providers.append(provider)


@dataclass(slots=True)
class PendingTrace:
    """A trace being recorded: where it goes, and its spans finished so far."""

    trace_id: str
    root_span_id: int
    tracking_uri: str
    experiment_id: str
    run_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    spans: list[ReadableSpan] = field(default_factory=list)
    late: bool = False


_pending: dict[int, PendingTrace] = {}
#: Traces being recorded at once; past it the oldest is dropped (a root span that never
#: ends, such as a stream nobody consumes, must not grow memory without bound).
MAX_PENDING_TRACES = 10_000
_lock = threading.Lock()
_state: dict[str, Any] = {"tracer": None, "last_trace_id": None}
# Runs this process recorded traces in since they were last asked about (`took_traces`).
_runs_with_traces: set[str] = set()


def current_pending(otel_trace_id: int) -> PendingTrace | None:
    return _pending.get(otel_trace_id)


def last_trace_id() -> str | None:
    return _state["last_trace_id"]


def took_traces(run_id: str) -> bool:
    """Whether traces were recorded inside ``run_id`` here (and forget it: asked once)."""
    if run_id in _runs_with_traces:
        _runs_with_traces.discard(run_id)
        return True
    return False


# The settings' environment variables a destination depends on, as `os.environ` keys them.
_DESTINATION_ENV = tuple(
    os.environ.encodekey(name)
    for name in ("FLOWML_TRACKING_URI", "FLOWML_HOME", "FLOWML_EXPERIMENT_ID")
)
_destinations: dict[tuple[str | bytes | None, ...], tuple[str, str]] = {}


def _import_fluent() -> Any:
    """`flowml.tracking.fluent`, imported on first use and kept (not an import statement
    per root span; this module stays light to import)."""
    from flowml.tracking import fluent

    _state["fluent"] = fluent
    return fluent


def destination() -> tuple[str, str, str | None]:
    """(tracking URI, experiment id, run id) for a trace starting in this context."""
    fluent = _state.get("fluent") or _import_fluent()
    run = fluent.active_run()
    if run is not None:
        return run.client.tracking_uri, run.info.experiment_id, run.info.run_id
    uri, experiment_id = fluent.tracking_uri_override(), fluent.experiment_id_override()
    if uri and experiment_id:
        return uri, experiment_id, None  # chosen in code: the settings have no say
    # Cached on the few inputs that decide it: reading the settings scans the whole
    # environment, which would cost more than the span itself. Speed trick: the variables
    # are read from `os.environ`'s own dict (its ``get`` raises and catches a KeyError per
    # missing variable, ~1 µs each on every root span).
    env = os.environ._data  # type: ignore[attr-defined]
    key = (uri, experiment_id, *(env.get(name) for name in _DESTINATION_ENV))
    found = _destinations.get(key)
    if found is None:
        found = _destinations[key] = (fluent.get_tracking_uri(), fluent.current_experiment_id())
    return found[0], found[1], None


class TraceProcessor:
    """An OTel span processor collecting each trace's spans until its root ends.

    It is the provider's active processor itself, and calls the processors added after it
    (the OTLP exporter's): the SDK's multi-processor would add a layer of calls to every
    span's start and end for the common case of none.
    """

    def __init__(self) -> None:
        from flowml.tracing import writer  # here, not per trace: it imports this module

        self._writer = writer
        self._then: tuple[SpanProcessor, ...] = ()

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self._then = (*self._then, processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._then:
            processor.on_start(span, parent_context=parent_context)
        trace_id = span.context.trace_id
        if trace_id in _pending:
            return
        # A root span (or the first local span of a trace started elsewhere).
        uri, experiment_id, run_id = destination()
        pending = PendingTrace(
            trace_id=f"tr-{trace_id:032x}",
            root_span_id=span.context.span_id,
            tracking_uri=uri,
            experiment_id=experiment_id,
            run_id=run_id,
        )
        if len(_pending) >= MAX_PENDING_TRACES:
            _drop_oldest()
        for provider in _providers:
            try:
                extra = provider()
            except Exception:  # a broken provider must not break the traced code
                _log.exception("trace context provider %r failed", provider)
                continue
            if extra:
                pending.metadata.update(extra)
        with _lock:
            _pending[trace_id] = pending

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._then:
            processor.on_end(span)
        trace_id = span.context.trace_id
        pending = _pending.get(trace_id)
        if pending is None:
            return  # its trace was already written (a span outliving its root): dropped
        pending.spans.append(span)
        if span.context.span_id != pending.root_span_id:
            return
        with _lock:
            _pending.pop(trace_id, None)
        _state["last_trace_id"] = pending.trace_id
        if pending.run_id:
            _runs_with_traces.add(pending.run_id)
        self._writer.submit(pending)

    def shutdown(self) -> None:
        for processor in self._then:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._then)

    def _on_ending(self, span: Span) -> None:  # newer SDKs call it
        for processor in self._then:
            processor._on_ending(span)


def _drop_oldest() -> None:
    with _lock:
        if _pending:
            oldest = next(iter(_pending))  # dicts keep insertion order
            dropped = _pending.pop(oldest)
            _log.warning(
                "flowml dropped trace %s: more than %d traces were open at once (a root span "
                "that never ended?)",
                dropped.trace_id,
                MAX_PENDING_TRACES,
            )


def get_tracer() -> Tracer:
    """flowml's tracer (its provider is created on first use)."""
    tracer = _state["tracer"]
    if tracer is None:
        with _lock:
            tracer = _state["tracer"]
            if tracer is None:
                tracer = _state["tracer"] = _build()
    return tracer


def _build() -> Tracer:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from flowml.settings import get_settings

    provider = TracerProvider(
        sampler=_sampler(),
        resource=Resource.create({"service.name": "flowml"}),
        shutdown_on_exit=True,
        # TraceProcessor implements the SDK's processor methods without subclassing them,
        # so that importing this module does not load the SDK.
        active_span_processor=cast("SynchronousMultiSpanProcessor", TraceProcessor()),
    )
    endpoint = get_settings().otlp_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint)))
        )
    _state["provider"] = provider
    return provider.get_tracer("flowml")


def _sampler() -> Sampler | None:
    """The SDK's default sampler (``parentbased_always_on``) in one call, unless
    ``OTEL_TRACES_SAMPLER`` names another (``None``: the SDK reads it)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import get_current_span

    drop = SamplingResult(Decision.DROP)
    # The usual answer, made once: sampled, no attributes added, an empty trace state
    # (flowml starts its spans without attributes; it sets them afterwards).
    sample = SamplingResult(Decision.RECORD_AND_SAMPLE)

    class ParentBasedAlwaysOn(Sampler):
        """What the SDK's ``ParentBased(ALWAYS_ON)`` decides: a root span is sampled, a
        child follows its parent's flag. The SDK's takes four calls and reads the parent
        twice per span; this one call and one read, and no new result in the usual case."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            parent = get_current_span(parent_context).get_span_context()
            if parent is None or not parent.is_valid:
                if not attributes:
                    return sample
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            if not parent.trace_flags.sampled:
                return drop
            if not attributes and not parent.trace_state:
                return sample
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)

        def get_description(self) -> str:
            return "ParentBased{root:AlwaysOnSampler}"

    return ParentBasedAlwaysOn()


def _traces_url(endpoint: str) -> str:
    """OTLP/HTTP's convention: a base endpoint gets ``/v1/traces`` appended."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def reset() -> None:
    """Drop the provider (exporting what it holds) and pending traces: settings are re-read
    on next use. Used by tests and after fork."""
    provider = _state.pop("provider", None)
    _state["tracer"] = None
    if provider is not None:
        provider.force_flush()
        provider.shutdown()
    with _lock:
        _pending.clear()


def _after_fork() -> None:
    _state["tracer"] = None
    _state.pop("provider", None)
    _pending.clear()


os.register_at_fork(after_in_child=_after_fork)
