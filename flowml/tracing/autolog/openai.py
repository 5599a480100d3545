"""``flowml.openai.autolog()``: trace every call of the official ``openai`` client.

Chat completions, the Responses API and embeddings, sync and async, streamed or not,
each become one span (``CHAT_MODEL`` / ``EMBEDDING``) recording the request (model,
messages or input, tools; never ``extra_headers``, which may carry credentials), the
response, tool calls, token usage (``mlflow.chat.tokenUsage``, summed per trace) and the
latency. A streamed call's span lasts until the stream is consumed or closed; its outputs
are the assembled message. A failed call marks its span ``ERROR`` and re-raises.

Example:
    >>> import flowml, openai
    >>> flowml.openai.autolog()
    >>> client = openai.OpenAI()
    >>> client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # traced
    >>> flowml.openai.autolog(disable=True)  # back to the unpatched client
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from flowml.tracing.entities import SpanAttributeKey, SpanType
from flowml.tracing.spans import CurrentSpan, LiveSpan, SpanScope

__all__ = ["autolog"]

# Request fields never recorded: transport details, and headers that may hold secrets.
_DROPPED = frozenset({"extra_headers", "extra_query", "timeout"})
_patched: dict[tuple[type, str], Callable[..., Any]] = {}
_lock = threading.Lock()


def _targets() -> list[tuple[type, str, str, str]]:
    """(class, method, span name, span type) of every traced client method."""
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import AsyncEmbeddings, Embeddings
    from openai.resources.responses import AsyncResponses, Responses

    return [
        (Completions, "create", "Completions", SpanType.CHAT_MODEL),
        (AsyncCompletions, "create", "AsyncCompletions", SpanType.CHAT_MODEL),
        (Responses, "create", "Responses", SpanType.CHAT_MODEL),
        (AsyncResponses, "create", "AsyncResponses", SpanType.CHAT_MODEL),
        (Embeddings, "create", "Embeddings", SpanType.EMBEDDING),
        (AsyncEmbeddings, "create", "AsyncEmbeddings", SpanType.EMBEDDING),
    ]


def autolog(disable: bool = False) -> None:
    """Trace (or, with ``disable=True``, stop tracing) the ``openai`` client's calls.

    Idempotent: calling it twice patches once.

    Args:
        disable: restore the original methods.

    Raises:
        ImportError: the ``openai`` package is not installed (``pip install openai``).

    Example:
        >>> import httpx, openai
        >>> def endpoint(request):  # a stand-in for the API, so the example runs offline
        ...     return httpx.Response(200, json={
        ...         "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        ...         "choices": [{"index": 0, "finish_reason": "stop",
        ...                      "message": {"role": "assistant", "content": "Hi!"}}],
        ...         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        >>> transport = httpx.MockTransport(endpoint)
        >>> client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1",
        ...                        http_client=httpx.Client(transport=transport))
        >>> flowml.openai.autolog()
        >>> reply = client.chat.completions.create(
        ...     model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
        >>> trace = flowml.get_trace(flowml.get_last_active_trace_id())
        >>> trace.data.spans[0].span_type, trace.info.token_usage
        ('CHAT_MODEL', {'input_tokens': 3, 'output_tokens': 2, 'total_tokens': 5})
        >>> flowml.openai.autolog(disable=True)  # back to the unpatched client
    """
    with _lock:
        for cls, method, name, span_type in _targets():
            key = (cls, method)
            if disable:
                original = _patched.pop(key, None)
                if original is not None:
                    setattr(cls, method, original)
                continue
            if key in _patched:
                continue
            original = getattr(cls, method)
            _patched[key] = original
            wrap = _async_wrapper if _is_async(cls) else _sync_wrapper
            setattr(cls, method, wrap(original, name, span_type))


def _is_async(cls: type) -> bool:
    return cls.__name__.startswith("Async")


def _inputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    import openai

    # The client's "not given" markers (``Omit`` in newer clients, ``NotGiven`` in all).
    markers = tuple({openai.NotGiven, getattr(openai, "Omit", openai.NotGiven)})
    return {k: v for k, v in kwargs.items() if k not in _DROPPED and not isinstance(v, markers)}


def _start(name: str, span_type: str, kwargs: dict[str, Any]) -> LiveSpan:
    inputs = _inputs(kwargs)
    attributes: dict[str, Any] = {SpanAttributeKey.MESSAGE_FORMAT: "openai"}
    if "model" in inputs:
        attributes[SpanAttributeKey.MODEL] = inputs["model"]
    if inputs.get("tools"):
        attributes[SpanAttributeKey.CHAT_TOOLS] = inputs["tools"]
    span = SpanScope(name, span_type, attributes).start()
    span.set_inputs(inputs)
    return span


def _usage(response: Any) -> dict[str, int] | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    read = functools.partial(getattr, usage)
    prompt = read("prompt_tokens", None)
    if prompt is None:
        prompt = read("input_tokens", None)
    completion = read("completion_tokens", None)
    if completion is None:
        completion = read("output_tokens", 0) or 0
    total = read("total_tokens", None)
    if prompt is None:
        return None
    return {
        "input_tokens": int(prompt),
        "output_tokens": int(completion),
        "total_tokens": int(total if total is not None else prompt + completion),
    }


def _finish(span: LiveSpan, outputs: Any, usage: dict[str, int] | None) -> None:
    span.set_outputs(outputs)
    if usage:
        span.set_attribute(SpanAttributeKey.CHAT_USAGE, usage)
    span.end()


def _fail(span: LiveSpan, exc: BaseException) -> None:
    span.record_exception(exc)
    span.end()


class _Call:
    """One client call's span: current while the client runs (so hooks see it), ended with
    the exception if the call raises, or with the reply (a stream's when it is consumed)."""

    __slots__ = ("_current", "_kwargs", "_span")

    def __init__(self, name: str, span_type: str, kwargs: dict[str, Any]) -> None:
        self._kwargs = kwargs
        self._span = _start(name, span_type, kwargs)
        self._current = CurrentSpan(self._span)

    def __enter__(self) -> _Call:
        self._current.__enter__()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._current.__exit__()
        if exc is not None:
            _fail(self._span, exc)

    def returned(self, result: Any, stream: Callable[[Any, LiveSpan], Any]) -> Any:
        if self._kwargs.get("stream") is True:
            return stream(result, self._span)
        _finish(self._span, result, _usage(result))
        return result


def _sync_wrapper(original: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _Call(name, span_type, kwargs) as call:
            result = original(self, *args, **kwargs)
        return call.returned(result, _TracedStream)

    create.__flowml_original__ = original  # type: ignore[attr-defined]
    return create


def _async_wrapper(original: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _Call(name, span_type, kwargs) as call:
            result = await original(self, *args, **kwargs)
        return call.returned(result, _TracedAsyncStream)

    create.__flowml_original__ = original  # type: ignore[attr-defined]
    return create


class _Assembler:
    """Rebuilds a streamed reply from its chunks (chat) or events (Responses API)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, int] | None = None
        self.final: Any = None
        self.model: str | None = None
        self.chunks = 0

    def add(self, item: Any) -> None:
        self.chunks += 1
        kind = getattr(item, "type", None)
        if isinstance(kind, str) and kind.startswith("response."):
            if kind == "response.output_text.delta":
                self.text.append(getattr(item, "delta", "") or "")
            elif kind == "response.completed":
                self.final = getattr(item, "response", None)
                self.usage = _usage(self.final)
            return
        self.model = getattr(item, "model", None) or self.model
        if getattr(item, "usage", None) is not None:
            self.usage = _usage(item)
        for choice in getattr(item, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            if getattr(delta, "content", None):
                self.text.append(delta.content)
            for call in getattr(delta, "tool_calls", None) or []:
                slot = self.tool_calls.setdefault(
                    call.index,
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.id or slot["id"]
                function = getattr(call, "function", None)
                if function is not None:
                    slot["function"]["name"] += function.name or ""
                    slot["function"]["arguments"] += function.arguments or ""

    def outputs(self) -> Any:
        if self.final is not None:
            return self.final
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {
            "model": self.model,
            "choices": [{"index": 0, "message": message}],
            "chunks": self.chunks,
        }


class _StreamSpan:
    """What both stream wrappers share: the span, ended once, and the chunks assembled."""

    def __init__(self, stream: Any, span: LiveSpan) -> None:
        self._stream = stream
        self._span: LiveSpan | None = span
        self._assembler = _Assembler()

    def _take(self, item: Any) -> Any:
        self._assembler.add(item)
        return item

    def _failed(self, exc: BaseException) -> None:
        if self._span is not None:
            _fail(self._span, exc)
            self._span = None

    def _end(self) -> None:
        if self._span is not None:
            _finish(self._span, self._assembler.outputs(), self._assembler.usage)
            self._span = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _TracedStream(_StreamSpan):
    """The client's stream, passing every chunk through, ending the span when done."""

    def __iter__(self) -> _TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._stream)
        except StopIteration:
            self._end()
            raise
        except BaseException as exc:
            self._failed(exc)
            raise
        return self._take(item)

    def close(self) -> None:
        self._end()
        self._stream.close()

    def __enter__(self) -> _TracedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TracedAsyncStream(_StreamSpan):
    """The async client's stream, traced the same way."""

    def __init__(self, stream: Any, span: LiveSpan) -> None:
        super().__init__(stream, span)
        self._iterator: Any = None

    def __aiter__(self) -> _TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        try:
            item = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._end()
            raise
        except BaseException as exc:
            self._failed(exc)
            raise
        return self._take(item)

    async def close(self) -> None:
        self._end()
        await self._stream.close()

    async def __aenter__(self) -> _TracedAsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
