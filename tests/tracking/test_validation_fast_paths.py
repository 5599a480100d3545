"""The fast paths in `flowml.tracking.validation` (a cache of valid keys, a plain-types
check for metric points) accept and refuse exactly what the full checks do."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from flowml.exceptions import InvalidParameter
from flowml.tracking import validation as v


@pytest.mark.parametrize(
    ("value", "timestamp", "step"),
    [
        (True, 0, 0),
        ("0.5", 0, 0),
        (None, 0, 0),
        (0.5, 1.0, 0),
        (0.5, 0, False),
        (0.5, 0, 2**63),
        (0.5, -(2**63) - 1, 0),
    ],
)
def test_bad_metric_points_are_refused(value: object, timestamp: object, step: object) -> None:
    with pytest.raises(InvalidParameter):
        v.validate_metric("acc", value, timestamp, step)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5, 0.5), (3, 3.0), (Fraction(1, 4), 0.25), (math.inf, math.inf), (-math.inf, -math.inf)],
)
def test_good_metric_points_become_floats(value: object, expected: float) -> None:
    got = v.validate_metric("acc", value, 2**63 - 1, -(2**63))
    assert type(got) is float and got == expected


def test_nan_is_kept() -> None:
    assert math.isnan(v.validate_metric("acc", math.nan, 0, 0))


def test_a_key_is_judged_the_same_before_and_after_caching() -> None:
    for _ in range(2):
        assert v.validate_key("Metric", "train/loss") == "train/loss"
        for bad in ("../x", "/abs", "a//b", "a/./b", "bad!", "x" * 251):
            with pytest.raises(InvalidParameter):
                v.validate_key("Metric", bad)
    assert "train/loss" in v._valid_keys
    assert not any(k.startswith(("..", "/")) for k in v._valid_keys)


def test_the_key_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v, "_valid_keys", set())
    monkeypatch.setattr(v, "_VALID_KEYS_BOUND", 5)
    for i in range(12):
        v.validate_key("Param", f"k{i}")
        assert len(v._valid_keys) <= 5


def test_str_subclasses_are_checked_every_time() -> None:
    class Key(str):
        pass

    assert v.validate_key("Tag", Key("subclass_key")) == "subclass_key"
    assert "subclass_key" not in v._valid_keys
    with pytest.raises(InvalidParameter):
        v.validate_key("Tag", 42)
