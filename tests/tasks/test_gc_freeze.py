"""While tracked flow runs are open, the objects that existed when the first opened are
frozen (`gc.freeze`), and unfrozen when the last ends; ``FLOWML_GC_FREEZE=false`` and a
program that froze objects itself leave the collector alone."""

from __future__ import annotations

import gc

import pytest
from prefect import flow

import flowml

seen: dict[str, int] = {}


@flowml.tracked_flow(experiment="gc-freeze", log_result=False)
def inner() -> None:
    seen["inner"] = gc.get_freeze_count()


@flowml.tracked_flow(experiment="gc-freeze", log_result=False)
def outer() -> None:
    seen["outer, before"] = gc.get_freeze_count()
    inner()
    seen["outer, after inner"] = gc.get_freeze_count()


@flowml.tracked_task
def step() -> None:
    seen["task"] = gc.get_freeze_count()


@flow
def plain_flow_with_a_tracked_task() -> None:
    step()


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    seen.clear()
    yield
    gc.unfreeze()  # frozen objects would hide from gc.get_referrers in later tests


def test_objects_are_frozen_while_tracked_flow_runs_are_open():
    before = len(gc.get_objects())
    outer()
    assert seen["outer, before"] >= before // 2  # the program's objects, out of the scans
    assert 0 < seen["inner"] <= seen["outer, before"]  # a nested flow run freezes nothing more
    assert seen["outer, after inner"] > 0  # the outer flow run is still open
    assert gc.get_freeze_count() == 0  # all ended: the collector is as it was


def test_a_tracked_task_in_a_plain_flow_freezes_too():
    plain_flow_with_a_tracked_task()
    assert seen["task"] > 0
    assert gc.get_freeze_count() == 0


def test_off_with_the_setting(monkeypatch):
    monkeypatch.setenv("FLOWML_GC_FREEZE", "false")
    outer()
    assert seen["outer, before"] == 0 and seen["inner"] == 0


def test_a_program_that_froze_objects_itself_keeps_them_frozen():
    gc.freeze()
    frozen = gc.get_freeze_count()
    outer()
    # flowml froze nothing more (frozen objects may be freed meanwhile: thousands of them
    # in a long test session) ...
    assert frozen // 2 <= seen["outer, before"] <= frozen
    assert gc.get_freeze_count() >= frozen // 2  # ... and unfroze nothing (that empties it)
