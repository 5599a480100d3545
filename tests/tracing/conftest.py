"""Tracing fixtures: each test records into a fresh SQLite or PostgreSQL tracking store.

`trace_store_uri` is the conformance fixture: a test taking it runs once per SQL backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import flowml
from flowml.tracing import provider, writer


@pytest.fixture(autouse=True)
def _fresh_tracing() -> Iterator[None]:
    yield
    writer.flush(raise_error=False)
    provider.reset()
    provider._state["last_trace_id"] = None
    provider._runs_with_traces.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def trace_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The tracking URI of a fresh SQL store (SQLite, then PostgreSQL), made current."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'traces.db'}"
    else:
        uri = str(request.getfixturevalue("pg_url"))
    flowml.set_tracking_uri(uri)
    yield uri
    writer.flush(raise_error=False)
    writer._stores.pop(uri, None)


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> Iterator[str]:
    """A SQLite tracking store, made current (tests that need one backend only)."""
    uri = f"sqlite:///{tmp_path / 'traces.db'}"
    flowml.set_tracking_uri(uri)
    yield uri
    writer.flush(raise_error=False)
    writer._stores.pop(uri, None)
