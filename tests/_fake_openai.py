"""A small OpenAI-compatible HTTP server on loopback, for tests of LLM integrations.

It answers the official ``openai`` client's calls the way the real API shapes them:

- ``POST /v1/chat/completions``: a reply echoing the last user message (``"echo: <text>"``);
  with ``tools`` given, a tool call of the first tool with ``{"q": <text>}`` arguments;
  with ``stream=True``, server-sent chunks (usage in a last chunk when
  ``stream_options.include_usage``);
- ``POST /v1/responses``: the same echo as a Responses API object, streamed as
  ``response.*`` events when ``stream=True``;
- ``POST /v1/embeddings``: a deterministic 4-dimensional vector per input.

Token counts are words (prompt words in, reply words out). A request whose model is
``"fail"`` gets a 500 error body, one whose model is ``"missing"`` a 404.
Every request body is kept in ``requests`` (path, JSON) for assertions.

Example:
    >>> with FakeOpenAI() as fake:
    ...     client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    ...     client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI"]


def _words(text: str) -> int:
    return len(str(text).split())


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _last_user_text([m for m in value if isinstance(m, dict)])
    return ""


class FakeOpenAI:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append((self.path, body))
                model = body.get("model")
                if model == "fail":
                    return self._json(
                        500, {"error": {"message": "upstream failed", "type": "server_error"}}
                    )
                if model == "missing":
                    return self._json(
                        404,
                        {"error": {"message": "no such model", "type": "invalid_request_error"}},
                    )
                route = {
                    "/v1/chat/completions": fake._chat,
                    "/v1/responses": fake._responses,
                    "/v1/embeddings": fake._embeddings,
                }.get(self.path.split("?", 1)[0])
                if route is None:
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                route(self, body)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, payload in events:
                    text = payload if isinstance(payload, str) else json.dumps(payload)
                    prefix = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{prefix}data: {text}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- endpoints ----------------------------------------------------------------------------

    def _chat(self, handler: Any, body: dict[str, Any]) -> None:
        text = _last_user_text(body.get("messages", []))
        reply = f"echo: {text}"
        usage = {
            "prompt_tokens": _words(text),
            "completion_tokens": _words(reply),
            "total_tokens": _words(text) + _words(reply),
        }
        tools = body.get("tools") or []
        tool_calls = None
        if tools:
            name = tools[0].get("function", {}).get("name", "tool")
            tool_calls = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps({"q": text})},
                }
            ]
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body.get("model")}
        if body.get("stream"):
            events: list[tuple[str | None, Any]] = []
            if tool_calls:
                delta = {"role": "assistant", "tool_calls": [{"index": 0, **tool_calls[0]}]}
                events.append(
                    (
                        None,
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": delta}],
                        },
                    )
                )
            else:
                for i, word in enumerate(reply.split(" ")):
                    piece = word if i == 0 else " " + word
                    events.append(
                        (
                            None,
                            {
                                **base,
                                "object": "chat.completion.chunk",
                                "choices": [{"index": 0, "delta": {"content": piece}}],
                            },
                        )
                    )
            finish = "tool_calls" if tool_calls else "stop"
            events.append(
                (
                    None,
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                    },
                )
            )
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(
                    (
                        None,
                        {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage},
                    )
                )
            events.append((None, "[DONE]"))
            return handler._sse(events)
        message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else reply}
        if tool_calls:
            message["tool_calls"] = tool_calls
        handler._json(
            200,
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if tool_calls else "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _responses(self, handler: Any, body: dict[str, Any]) -> None:
        text = _input_text(body.get("input"))
        reply = f"echo: {text}"
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": int(time.time()),
            "model": body.get("model"),
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": _words(text),
                "output_tokens": _words(reply),
                "total_tokens": _words(text) + _words(reply),
            },
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if not body.get("stream"):
            return handler._json(200, response)
        in_progress = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str | None, Any]] = [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": in_progress},
            ),
        ]
        for i, word in enumerate(reply.split(" ")):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": i + 1,
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": word if i == 0 else " " + word,
                        "logprobs": [],
                    },
                )
            )
        events.append(
            (
                "response.completed",
                {"type": "response.completed", "sequence_number": 99, "response": response},
            )
        )
        handler._sse(events)

    def _embeddings(self, handler: Any, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [float(len(str(x))), float(i), 0.5, -0.5],
            }
            for i, x in enumerate(items)
        ]
        tokens = sum(_words(x) for x in items)
        handler._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
