"""What the server's wire tests share: the API prefix and checks of MLflow's reply shapes."""

from __future__ import annotations

import uuid

import httpx

API = "/api/2.0/mlflow"


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one server)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(reply: httpx.Response) -> dict:
    """The JSON body of a successful reply."""
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def error(reply: httpx.Response, status: int, code: str) -> str:
    """The message of an MLflow-shaped error reply with ``status`` and ``code``."""
    assert reply.status_code == status, reply.text
    payload = reply.json()
    assert set(payload) == {"error_code", "message"}
    assert payload["error_code"] == code, payload
    return payload["message"]
