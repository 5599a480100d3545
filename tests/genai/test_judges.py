"""LLM judges against a small OpenAI-compatible server on loopback that the tests start."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flowml import genai
from flowml.exceptions import InvalidParameter
from flowml.genai import judges


class _Judge(BaseHTTPRequestHandler):
    """Answers like a chat-completions endpoint; ``server.mode`` picks the behaviour."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: Any = self.server
        server.requests.append((self.path, self.headers.get("Authorization"), body))
        mode = server.modes.pop(0) if server.modes else server.mode
        if mode == "fail":
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        verdict = "no" if "WRONG" in prompt or "shout" in prompt.lower() else "yes"
        content = (
            "I would rather not say"
            if mode == "garbage"
            else f'Sure. {{"rationale": "checked", "result": "{verdict}"}}'
        )
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Any]:
    httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    httpd.mode, httpd.modes, httpd.requests = "ok", [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _client(server: Any, **kwargs: Any) -> judges.JudgeClient:
    uri = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return judges.JudgeClient(uri, model="tiny", api_key="k", **kwargs)


ROWS = [
    {
        "inputs": {"q": "2+2?"},
        "outputs": "4",
        "expectations": {"expected_response": "4", "retrieved_context": "2+2 is 4"},
    },
    {
        "inputs": {"q": "3+3?"},
        "outputs": "WRONG",
        "expectations": {"expected_response": "6", "retrieved_context": "3+3 is 6"},
    },
]


def test_judges_score_rows_with_rationales(server):
    client = _client(server)
    result = genai.evaluate(
        ROWS,
        scorers=[
            judges.correctness(client=client),
            judges.relevance_to_query(client=client),
            judges.retrieval_groundedness(client=client),
            judges.safety(client=client),
            judges.guidelines(["Be brief", "Never {shout}"], name="tone", client=client),
        ],
    )
    assert result.metrics["correctness/mean"] == 0.5
    assert result.metrics["tone/mean"] == 0.0  # the rules mention "shout": the fake says no
    assert result.result_df.iloc[0]["correctness/rationale"] == "checked"
    path, auth, body = server.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k"
    assert body["model"] == "tiny" and body["temperature"] == 0
    assert "Expected answer: 4" in body["messages"][-1]["content"]


def test_a_flaky_endpoint_is_retried(server):
    server.modes = ["fail", "fail"]
    result = genai.evaluate(ROWS[:1], scorers=[judges.safety(client=_client(server, retries=2))])
    assert result.metrics["safety/mean"] == 1.0 and len(server.requests) == 3


@pytest.mark.parametrize(("mode", "reason"), [("fail", "HTTP 500"), ("garbage", "not a verdict")])
def test_failing_or_garbage_answers_are_errored_assessments(server, mode: str, reason: str):
    server.mode = mode
    scorer = judges.correctness(client=_client(server, retries=1))
    result = genai.evaluate(ROWS, scorers=[scorer, genai.scorers.exact_match()])
    assert result.metrics == {"exact_match/mean": 0.5}  # the other scorer still ran
    errors = result.result_df["correctness/error"].tolist()
    assert all("JudgeError" in e and reason in e for e in errors)
    assert len(server.requests) == 4  # two rows, two tries each


def test_unreachable_endpoint_and_missing_expectations_are_recorded(server):
    dead = judges.JudgeClient("http://127.0.0.1:9/v1", model="m", retries=0, timeout=5)
    rows = [{"inputs": {"q": "x"}, "outputs": "y"}]
    result = genai.evaluate(
        rows, scorers=[judges.safety(client=dead), judges.correctness(client=_client(server))]
    )
    row = result.result_df.iloc[0]
    assert "gave no verdict" in row["safety/error"]
    assert "expected_response" in row["correctness/error"]
    assert server.requests == []


def test_bad_judge_configuration_is_a_typed_error(monkeypatch: pytest.MonkeyPatch):
    for var in ("FLOWML_JUDGE_URI", "FLOWML_JUDGE_MODEL", "FLOWML_JUDGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InvalidParameter, match="FLOWML_JUDGE_URI"):
        judges.correctness()
    with pytest.raises(InvalidParameter, match="http"):
        judges.JudgeClient("file:///etc/passwd", model="m")
    with pytest.raises(InvalidParameter, match="FLOWML_JUDGE_MODEL"):
        judges.JudgeClient("http://127.0.0.1:1/v1")
    with pytest.raises(InvalidParameter, match="retries"):
        judges.JudgeClient("http://127.0.0.1:1/v1", model="m", retries=-1)
    with pytest.raises(InvalidParameter, match="guidelines"):
        judges.guidelines([])
    monkeypatch.setenv("FLOWML_JUDGE_URI", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("FLOWML_JUDGE_MODEL", "env-model")
    client = judges.JudgeClient()
    assert (client.uri, client.model) == ("http://127.0.0.1:1/v1", "env-model")
