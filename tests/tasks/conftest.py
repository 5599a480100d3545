"""Fixtures for the Prefect integration: real flow runs under the session's Prefect harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowml.tracking.client import TrackingClient


@pytest.fixture
def prefect(prefect_harness: None) -> Iterator[None]:
    """The session-wide Prefect server, with flowml's background publishing drained after
    each test (so one test's artifacts never land in the next)."""
    from flowml.tasks import publisher

    yield
    publisher.flush()


@pytest.fixture
def client(_isolated_flowml) -> Iterator[TrackingClient]:
    """The fluent API's client for this test's own store (what tracked runs write to)."""
    from flowml.tasks import identity, recorder
    from flowml.tracking.fluent import get_client

    yield get_client()
    # Nothing a test opened may stay open in this process.
    assert not recorder.open_tasks and not recorder.open_flows
    identity._experiments.clear()
