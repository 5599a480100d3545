"""``flowml.openai.autolog()`` against an OpenAI-compatible server on loopback
(`tests/_fake_openai.py`): chat, tools, streaming, Responses, embeddings, async, errors."""

from __future__ import annotations

import asyncio

import openai
import pytest
from _fake_openai import FakeOpenAI  # tests/ is on sys.path (its conftest's directory)

import flowml

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]


@pytest.fixture
def fake(sqlite_uri):
    flowml.openai.autolog()
    with FakeOpenAI() as server:
        yield server
    flowml.openai.autolog(disable=True)


@pytest.fixture
def client(fake):
    return openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)


def _last():
    return flowml.get_trace(flowml.get_last_active_trace_id())


def test_chat_completion_records_model_messages_usage(client):
    reply = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, temperature=0.1, extra_headers={"X-Secret": "s3"}
    )
    assert reply.choices[0].message.content == "echo: hello world"
    trace = _last()
    (span,) = trace.data.spans
    assert (span.name, span.span_type) == ("Completions", "CHAT_MODEL")
    assert span.inputs == {"model": "gpt-test", "messages": MESSAGES, "temperature": 0.1}
    assert "s3" not in str(span.raw)  # extra headers are never recorded
    assert span.outputs["choices"][0]["message"]["content"] == "echo: hello world"
    assert span.get_attribute("mlflow.llm.model") == "gpt-test"
    assert span.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 2,
        "output_tokens": 3,
        "total_tokens": 5,
    }
    assert trace.info.token_usage == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    assert span.end_time_ns > span.start_time_ns


def test_tool_calls_and_nesting_under_an_agent_span(client):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]

    @flowml.trace(span_type="AGENT")
    def agent(question: str) -> str:
        first = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question}], tools=tools
        )
        call = first.choices[0].message.tool_calls[0]
        second = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": call.function.arguments}]
        )
        return second.choices[0].message.content

    agent("capital?")
    trace = _last()
    root, first, second = trace.data.spans
    assert root.name == "agent" and {first.parent_id, second.parent_id} == {root.span_id}
    assert first.get_attribute("mlflow.chat.tools") == tools
    tool_call = first.outputs["choices"][0]["message"]["tool_calls"][0]
    assert tool_call["function"] == {"name": "lookup", "arguments": '{"q": "capital?"}'}
    assert trace.info.token_usage["total_tokens"] == (1 + 2) + (2 + 3)


def test_streamed_chat_is_one_span_with_the_assembled_reply(client):
    stream = client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: hello world"
    (span,) = _last().data.spans
    assert span.outputs["choices"][0]["message"]["content"] == "echo: hello world"
    assert span.get_attribute("mlflow.chat.tokenUsage")["total_tokens"] == 5


def test_streamed_tool_call_and_early_close(client):
    tools = [{"type": "function", "function": {"name": "find", "parameters": {}}}]
    with client.chat.completions.create(
        model="m", messages=MESSAGES, tools=tools, stream=True
    ) as stream:
        chunks = list(stream)
    assert chunks
    (span,) = _last().data.spans
    assert span.outputs["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "find"

    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()  # the consumer stops early: the span still ends
    (span,) = _last().data.spans
    assert span.status == "OK" and span.outputs["choices"][0]["message"]["content"] == "echo:"


def test_responses_api_and_embeddings(client):
    response = client.responses.create(model="m", input="tell me")
    assert response.output_text == "echo: tell me"
    (span,) = _last().data.spans
    assert span.name == "Responses" and span.inputs == {"model": "m", "input": "tell me"}
    assert span.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 2,
        "output_tokens": 3,
        "total_tokens": 5,
    }
    events = list(client.responses.create(model="m", input="stream me", stream=True))
    assert events[-1].type == "response.completed"
    (span,) = _last().data.spans
    assert span.outputs["output"][0]["content"][0]["text"] == "echo: stream me"
    assert span.get_attribute("mlflow.chat.tokenUsage")["output_tokens"] == 3

    vectors = client.embeddings.create(model="emb", input=["a b", "c"])
    assert len(vectors.data) == 2
    (span,) = _last().data.spans
    assert (span.name, span.span_type) == ("Embeddings", "EMBEDDING")
    assert span.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 3,
        "output_tokens": 0,
        "total_tokens": 3,
    }


def test_async_client(fake):
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)

    async def run() -> tuple[str, str]:
        reply = await client.chat.completions.create(model="m", messages=MESSAGES)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return reply.choices[0].message.content, text

    assert asyncio.run(run()) == ("echo: hello world", "echo: hello world")
    (span,) = _last().data.spans
    assert span.name == "AsyncCompletions"
    assert span.outputs["choices"][0]["message"]["content"] == "echo: hello world"


def test_a_failed_call_is_an_error_span_and_the_error_propagates(client):
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fail", messages=MESSAGES)
    trace = _last()
    assert trace.info.state == "ERROR"
    assert "InternalServerError" in trace.data.spans[0].raw["status"]["message"]


def test_disable_restores_the_client(fake, client):
    flowml.openai.autolog()  # twice: patched once
    client.chat.completions.create(model="m", messages=MESSAGES)
    first = flowml.get_last_active_trace_id()
    flowml.openai.autolog(disable=True)
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert flowml.get_last_active_trace_id() == first
    assert len(_last().data.spans) == 1
