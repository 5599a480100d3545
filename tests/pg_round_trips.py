"""Counting PostgreSQL round trips the way the Prefect benchmark counts them.

Each statement, commit or pipeline sync whose result is not there yet asks psycopg's
``Connection.wait`` to wait for a readable socket; a statement queued in pipeline mode does
not (it is answered with the pipeline's sync).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def count_round_trips(
    monkeypatch: pytest.MonkeyPatch, counts: Callable[[], bool], tally: Callable[[], None]
) -> None:
    """Call ``tally()`` once per round trip psycopg waits for, for the waits that start where
    ``counts()`` is true (it is asked on the waiting thread, e.g. to count only the caller's)."""
    import psycopg
    from psycopg.waiting import Wait

    wait = psycopg.Connection.wait

    def counted(gen: Iterator[Any]) -> Iterator[Any]:
        waited = not counts()
        try:
            state = next(gen)
        except StopIteration as stop:
            return stop.value
        while True:
            if state == Wait.R and not waited:
                waited = True
                tally()
            try:
                state = gen.send((yield state))
            except StopIteration as stop:
                return stop.value

    monkeypatch.setattr(
        psycopg.Connection, "wait", lambda self, gen, *a, **k: wait(self, counted(gen), *a, **k)
    )
