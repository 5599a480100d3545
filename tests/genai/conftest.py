"""GenAI fixtures: evaluations trace their predictions, so tracing state is reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowml.tracing import provider, writer


@pytest.fixture(autouse=True)
def _fresh_tracing() -> Iterator[None]:
    """Write what a test traced, then drop the provider and the per-store handles (each test
    has its own FLOWML_HOME, so its own SQLite store)."""
    yield
    writer.flush(raise_error=False)
    provider.reset()
    provider._state["last_trace_id"] = None
    provider._runs_with_traces.clear()
    writer._stores.clear()
