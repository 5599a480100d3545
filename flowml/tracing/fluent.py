"""The tracing API with MLflow's verbs: ``@flowml.trace``, ``flowml.start_span`` & co.

Spans are OpenTelemetry spans made by flowml's own tracer provider; a trace is written
to the tracking store (in the background) when its root span ends, linked to the active
run (inside a tracked Prefect task: that task's run and task run).

Example:
    >>> import flowml
    >>> @flowml.trace(span_type="RETRIEVER")
    ... def retrieve(query: str) -> list[str]:
    ...     return ["doc"]
    >>> @flowml.trace
    ... def answer(question: str) -> str:
    ...     flowml.update_current_trace(tags={"env": "dev"})
    ...     return retrieve(question)[0]
    >>> answer("why?")
    'doc'
    >>> flowml.get_trace(flowml.get_last_active_trace_id()).info.state
    'OK'
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry.context import attach, detach
from opentelemetry.trace import set_span_in_context

from flowml.exceptions import InvalidParameter
from flowml.tracing import provider, writer
from flowml.tracing.entities import SpanAttributeKey, SpanType, Trace
from flowml.tracing.payload import dumps
from flowml.tracing.provider import get_tracer
from flowml.tracing.spans import (
    CurrentSpan,
    LiveSpan,
    SpanScope,
    current_live_span,
    encode_attributes,
    put_attribute,
    put_attributes,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span as OTelSpan

__all__ = [
    "delete_trace_tag",
    "get_current_active_span",
    "get_last_active_trace_id",
    "get_trace",
    "search_traces",
    "set_trace_tag",
    "start_span",
    "trace",
    "update_current_trace",
]

_log = logging.getLogger(__name__)
SEARCH_TRACES_DEFAULT = 100
_INPUTS, _OUTPUTS = SpanAttributeKey.INPUTS, SpanAttributeKey.OUTPUTS


def trace(
    func: Callable[..., Any] | None = None,
    name: str | None = None,
    span_type: str = SpanType.UNKNOWN,
    attributes: Mapping[str, Any] | None = None,
    output_reducer: Callable[[list[Any]], Any] | None = None,
) -> Any:
    """Record a span for every call of a function (sync, async, generator, async generator).

    The call's arguments (bound to parameter names, ``self`` left out) become the span's
    inputs and its return value the outputs, each capped in size; an exception marks the
    span ``ERROR`` and propagates. A generator's span lasts until it is exhausted; its
    outputs are the yielded items (or ``output_reducer(items)``).

    Args:
        func: the function (when used as ``@flowml.trace`` without parentheses).
        name: the span name (default: the function's name).
        span_type: one of `SpanType` (``LLM``, ``RETRIEVER``, ``TOOL``...) or any string.
        attributes: extra span attributes.
        output_reducer: for generators, turns the list of yielded items into the outputs.

    Returns:
        The wrapped function (or a decorator).

    Example:
        >>> @flowml.trace(name="search", span_type=flowml.SpanType.TOOL)
        ... def search(q: str) -> list[str]:
        ...     return [q]
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        return _wrap(fn, name or fn.__name__, span_type, attributes, output_reducer)

    return decorator(func) if func is not None else decorator


class _Binder:
    """Turns a call's arguments into the span's inputs: ``{parameter: value}`` with defaults
    filled in and ``self``/``cls`` left out, as MLflow records them. Plain positional calls
    (the common case) are zipped with the parameter names, without `inspect.Signature.bind`.
    """

    __slots__ = ("_defaults", "_drop", "_names", "_signature", "_simple")

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            self._signature = None
        params = list(self._signature.parameters.values()) if self._signature else []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._simple = bool(params) and all(p.kind in positional for p in params)
        self._names = [p.name for p in params]
        self._defaults = {
            p.name: p.default for p in params if p.default is not inspect.Parameter.empty
        }
        self._drop = [name for name in ("self", "cls") if name in self._names]

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._simple and not kwargs and len(args) <= len(self._names):
            values = dict(zip(self._names, args, strict=False))
            if len(args) < len(self._names):  # the rest from the defaults, in order
                values.update((k, v) for k, v in self._defaults.items() if k not in values)
        elif self._signature is None:
            return {"args": list(args), **kwargs}
        else:
            try:
                bound = self._signature.bind_partial(*args, **kwargs)
            except TypeError:  # the call itself is wrong: let the function raise it
                return {"args": list(args), **kwargs}
            bound.apply_defaults()
            values = dict(bound.arguments)
        for name in self._drop:
            values.pop(name, None)
        return values


def _wrap(
    fn: Callable[..., Any],
    name: str,
    span_type: str,
    attributes: Mapping[str, Any] | None,
    reducer: Callable[[list[Any]], Any] | None,
) -> Callable[..., Any]:
    bind = _Binder(fn)
    # Encoded once here: the per-call path only adds inputs and outputs.
    encoded = encode_attributes(
        span_type, {"mlflow.spanFunctionName": fn.__name__, **(attributes or {})}
    )

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Stream(name, encoded, bind(args, kwargs), reducer) as stream:
                async for item in stream.async_steps(fn(*args, **kwargs)):
                    yield item

        return agen_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Stream(name, encoded, bind(args, kwargs), reducer) as stream:
                yield from stream.steps(fn(*args, **kwargs))

        return gen_wrapper

    # The plain and async paths below are `SpanScope` spelled out (it is on the path of every
    # traced call).
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = _start(name, encoded, dumps(bind(args, kwargs)))
            token = attach(set_span_in_context(span))
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                detach(token)
                _end_failed(span, exc)
                raise
            detach(token)
            put_attribute(span, _OUTPUTS, dumps(result))
            span.end()
            return result

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = _start(name, encoded, dumps(bind(args, kwargs)))
        token = attach(set_span_in_context(span))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            detach(token)
            _end_failed(span, exc)
            raise
        detach(token)
        put_attribute(span, _OUTPUTS, dumps(result))
        span.end()
        return result

    return wrapper


_END = object()


class _Stream:
    """The span of a generator function's call: started before the generator is created,
    current while each step runs (not while the consumer holds an item), its outputs the
    items (or the reducer's value of them); an exception ends it failed."""

    __slots__ = ("_current", "_items", "_reducer", "span")

    def __init__(
        self,
        name: str,
        encoded: dict[str, str],
        inputs: Any,
        reducer: Callable[[list[Any]], Any] | None,
    ) -> None:
        self.span = SpanScope(name, encoded=encoded).start()
        self.span.set_inputs(inputs)
        self._current = CurrentSpan(self.span)
        self._items: list[Any] = []
        self._reducer = reducer

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            _fail(self.span, exc)
            return
        self.span.set_outputs(self._reducer(self._items) if self._reducer else self._items)
        self.span.end()

    def steps(self, gen: Iterator[Any]) -> Iterator[Any]:
        while (item := self._step(gen)) is not _END:
            self._items.append(item)
            yield item

    async def async_steps(self, agen: AsyncIterator[Any]) -> AsyncIterator[Any]:
        while (item := await self._async_step(agen)) is not _END:
            self._items.append(item)
            yield item

    def _step(self, gen: Iterator[Any]) -> Any:
        with self._current:
            return next(gen, _END)

    async def _async_step(self, agen: AsyncIterator[Any]) -> Any:
        with self._current:
            return await anext(agen, _END)


def _start(name: str, encoded: dict[str, str], inputs: str) -> OTelSpan:
    # flowml's provider is the SDK's, whose tracer starts SDK spans (typed as API spans).
    span: OTelSpan = get_tracer().start_span(  # type: ignore[assignment]
        name, record_exception=False, set_status_on_exception=False
    )
    put_attributes(span, {**encoded, _INPUTS: inputs})  # one locked write, not two
    return span


def _end_failed(span: OTelSpan, exc: BaseException) -> None:
    if not isinstance(exc, GeneratorExit):  # closed early by the consumer: not an error
        LiveSpan(span).record_exception(exc)
    span.end()


def _fail(span: LiveSpan, exc: BaseException) -> None:
    if not isinstance(exc, GeneratorExit):  # closed early by the consumer: not an error
        span.record_exception(exc)
    span.end()


def start_span(
    name: str = "span",
    span_type: str | None = SpanType.UNKNOWN,
    attributes: Mapping[str, Any] | None = None,
) -> SpanScope:
    """A context manager recording a span around a block (a child of the current span).

    Args:
        name: the span name.
        span_type: one of `SpanType` or any string.
        attributes: extra span attributes.

    Returns:
        A context manager yielding the `LiveSpan` (``set_inputs``, ``set_outputs``,
        ``set_attribute``...). Usable with ``with`` and ``async with``.

    Example:
        >>> with flowml.start_span("tool", span_type="TOOL") as span:
        ...     span.set_inputs({"x": 1})
        ...     span.set_outputs(2)
    """
    return SpanScope(name, span_type, attributes)


def get_current_active_span() -> LiveSpan | None:
    """The current flowml span in this thread / asyncio task, or ``None``.

    Example:
        >>> flowml.get_current_active_span() is None
        True
        >>> with flowml.start_span("step"):
        ...     flowml.get_current_active_span().name
        'step'
    """
    return current_live_span()


def update_current_trace(
    tags: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None
) -> None:
    """Add tags and metadata to the trace being recorded in this context.

    Outside any trace this logs a warning and does nothing (as MLflow).

    Args:
        tags: mutable trace tags (``tags.<key>`` in searches).
        metadata: write-once request metadata (``metadata.<key>`` in searches).

    Example:
        >>> @flowml.trace
        ... def handle(req):
        ...     flowml.update_current_trace(tags={"user": "ann"}, metadata={"session": "s1"})
    """
    span = current_live_span()
    if span is None:
        _log.warning("update_current_trace: no active trace in this context; nothing updated")
        return
    pending = provider.current_pending(span._span.context.trace_id)
    if pending is None:
        return
    pending.tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    pending.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})


def get_last_active_trace_id() -> str | None:
    """The id of the trace finished last in this process (``None`` before any).

    Example:
        >>> with flowml.start_span("step"):
        ...     pass
        >>> flowml.get_trace(flowml.get_last_active_trace_id()).data.spans[0].name
        'step'
    """
    return provider.last_trace_id()


def _store():  # noqa: ANN202 - SqlTraceStore
    writer.flush()
    # Cached on the settings' inputs: reading the settings scans the whole environment.
    return writer.store_for(provider.destination()[0])


def get_trace(trace_id: str) -> Trace | None:
    """The trace with its spans and assessments, or ``None`` when it does not exist.

    Waits for traces still being written by this process first.

    Example:
        >>> with flowml.start_span("lookup") as span:
        ...     span.set_outputs({"rows": 2})
        >>> trace = flowml.get_trace(flowml.get_last_active_trace_id())
        >>> trace.data.spans[0].outputs
        {'rows': 2}
        >>> flowml.get_trace("tr-0000") is None
        True
    """
    from flowml.exceptions import ResourceNotFound

    if not isinstance(trace_id, str) or not trace_id:
        raise InvalidParameter(f"trace_id must be a non-empty string, got {trace_id!r}")
    store = _store()
    try:
        return store.get_trace(trace_id)
    except ResourceNotFound:
        return None


def search_traces(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] | None = None,
    run_id: str | None = None,
    return_type: Literal["pandas", "list"] | None = None,
    include_spans: bool = True,
) -> Any:
    """Traces matching a filter, newest first (MLflow's ``search_traces``).

    Args:
        experiment_ids: where to search (default: the current experiment).
        filter_string: e.g. ``"attributes.status = 'ERROR' and tags.env = 'prod'"``
            (see `flowml.tracing.search` for the grammar).
        max_results: at most this many (default 100).
        order_by: e.g. ``["attributes.execution_time_ms DESC"]``.
        run_id: only traces recorded inside this run.
        return_type: ``"pandas"`` (a DataFrame) or ``"list"`` of `Trace`; by default a
            DataFrame when pandas is installed, as in MLflow.
        include_spans: load the spans too (set ``False`` for summaries only).

    Returns:
        A pandas DataFrame or a list of `Trace`.

    Raises:
        InvalidParameter: a bad filter, order_by, max_results or return_type.

    Example:
        >>> with flowml.start_span("step"):
        ...     pass
        >>> found = flowml.search_traces(filter_string="attributes.status = 'OK'",
        ...                              return_type="list")
        >>> [t.info.trace_id for t in found] == [flowml.get_last_active_trace_id()]
        True
    """

    if return_type is None:
        import importlib.util

        return_type = "pandas" if importlib.util.find_spec("pandas") else "list"
    if return_type not in ("pandas", "list"):
        raise InvalidParameter(f"return_type must be 'pandas' or 'list', got {return_type!r}")
    store = _store()
    ids = list(experiment_ids) if experiment_ids else [provider.destination()[1]]
    if run_id is not None:
        quoted = str(run_id).replace("'", "''")
        clause = f"attributes.run_id = '{quoted}'"
        filter_string = f"({filter_string}) AND {clause}" if filter_string else clause
    traces = list(
        store.search(
            ids,
            filter_string,
            order_by,
            max_results or SEARCH_TRACES_DEFAULT,
            include_spans=include_spans,
        )
    )
    if return_type == "list":
        return traces
    return _frame(traces)


def _frame(traces: list[Trace]) -> Any:
    import pandas as pd

    columns = [
        "trace_id",
        "request_time",
        "state",
        "execution_duration",
        "request",
        "response",
        "run_id",
        "trace_metadata",
        "tags",
        "assessments",
        "spans",
    ]
    return pd.DataFrame(
        [
            [
                t.info.trace_id,
                t.info.request_time,
                t.info.state,
                t.info.execution_duration,
                t.info.request_preview,
                t.info.response_preview,
                t.info.run_id,
                t.info.trace_metadata,
                t.info.tags,
                [a.to_dict() for a in t.info.assessments],
                [s.to_dict() for s in t.data.spans],
            ]
            for t in traces
        ],
        columns=columns,
    )


def set_trace_tag(trace_id: str, key: str, value: str) -> None:
    """Set a tag on a stored trace.

    Raises:
        ResourceNotFound: no such trace.

    Example:
        >>> with flowml.start_span("step"):
        ...     pass
        >>> trace_id = flowml.get_last_active_trace_id()
        >>> flowml.set_trace_tag(trace_id, "env", "prod")
        >>> flowml.get_trace(trace_id).info.tags["env"]
        'prod'
    """
    _store().set_trace_tag(trace_id, key, value)


def delete_trace_tag(trace_id: str, key: str) -> None:
    """Remove a tag from a stored trace.

    Raises:
        ResourceNotFound: no such trace, or it has no such tag.

    Example:
        >>> with flowml.start_span("step"):
        ...     pass
        >>> trace_id = flowml.get_last_active_trace_id()
        >>> flowml.set_trace_tag(trace_id, "env", "prod")
        >>> flowml.delete_trace_tag(trace_id, "env")
        >>> "env" in flowml.get_trace(trace_id).info.tags
        False
    """
    _store().delete_trace_tag(trace_id, key)
