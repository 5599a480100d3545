"""The first tracked flow run of a process freezes what exists then (`gc.freeze`), unless
``FLOWML_GC_FREEZE`` is off; later flow runs freeze nothing more."""

from __future__ import annotations

import gc

import pytest

import flowml
from flowml.settings import get_settings
from flowml.tasks import flow_runs


@flowml.tracked_flow(experiment="gc-freeze", log_result=False)
def small() -> int:
    return len(gc.get_objects())


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch):
    gc.unfreeze()  # as in a fresh process: nothing frozen, no tracked flow run yet
    monkeypatch.setattr(flow_runs, "_frozen", False)
    yield
    gc.unfreeze()


def test_the_first_tracked_flow_run_freezes_what_exists(unfrozen):
    before = len(gc.get_objects())
    assert gc.get_freeze_count() == 0
    small()
    frozen = gc.get_freeze_count()
    assert frozen >= before // 2  # the program's objects, out of the collector's scans
    gc.collect()
    small()  # the second flow run freezes nothing more (a frozen object may be freed)
    assert gc.get_freeze_count() <= frozen


def test_off_when_the_setting_says_so(unfrozen, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLOWML_GC_FREEZE", "false")
    assert get_settings().gc_freeze is False
    small()
    assert gc.get_freeze_count() == 0
