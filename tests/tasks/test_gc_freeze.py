"""With ``FLOWML_GC_FREEZE``, the first tracked flow run of a process freezes what exists
then (`gc.freeze`); later flow runs freeze nothing more. Off by default."""

from __future__ import annotations

import gc

import pytest

import flowml
from flowml.settings import get_settings
from flowml.tasks import flow_runs


@flowml.tracked_flow(experiment="gc-freeze", log_result=False)
def small() -> int:
    return 1


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch):
    gc.unfreeze()  # as in a fresh process: nothing frozen, no tracked flow run yet
    monkeypatch.setattr(flow_runs, "_frozen", False)
    yield
    gc.unfreeze()  # frozen objects would hide from gc.get_referrers in later tests


def test_the_first_tracked_flow_run_freezes_what_exists(unfrozen, monkeypatch):
    monkeypatch.setenv("FLOWML_GC_FREEZE", "true")
    before = len(gc.get_objects())
    small()
    frozen = gc.get_freeze_count()
    assert frozen >= before // 2  # the program's objects, out of the collector's scans
    gc.collect()
    small()  # the second flow run freezes nothing more (a frozen object may be freed)
    assert gc.get_freeze_count() <= frozen


def test_off_by_default(unfrozen):
    assert get_settings().gc_freeze is False
    small()
    assert gc.get_freeze_count() == 0
