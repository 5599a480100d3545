"""Arguments become params (scalars as values, the rest summarised), results become metrics."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowml.tasks.summarize import ParamPolicy, result_metrics, summarize


class Color(enum.Enum):
    RED = "red"


@dataclass
class Config:
    depth: int
    name: str


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.01, "0.01"),
        (3, "3"),
        (True, "True"),
        (None, "None"),
        ("adam", "adam"),
        (np.float32(0.5), "0.5"),
        (np.int64(7), "7"),
        (Color.RED, "red"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
        (Path("/data/x.csv"), "/data/x.csv"),
        ([1, 2, 3], "[1, 2, 3]"),
        ({"a": 1, "b": "x"}, '{"a": 1, "b": "x"}'),
        (Config(3, "rf"), '{"depth": 3, "name": "rf"}'),
    ],
)
def test_scalars_and_small_collections_are_logged_as_values(value, expected):
    assert summarize(value) == expected


def test_large_and_non_scalar_values_are_summarised_with_a_content_digest():
    frame = pd.DataFrame({"a": range(100), "b": range(100)})
    text = summarize(frame)
    assert text.startswith("DataFrame(shape=(100, 2), digest=blake2b:")
    assert summarize(frame.copy()) == text  # same content, same summary
    assert summarize(frame.assign(b=0)) != text
    assert summarize(np.zeros((3, 4))).startswith("ndarray(shape=(3, 4), digest=blake2b:")
    assert summarize(list(range(1000))).startswith("list(len=1000, digest=blake2b:")
    assert summarize("x" * 300).startswith("str(len=300, digest=blake2b:")
    assert summarize(b"\x00" * 10).startswith("bytes(len=10, digest=blake2b:")
    assert summarize(object()) == "builtins.object"  # a bare address says nothing
    assert len(summarize(list(range(30)), max_length=1000)) < 1000


def test_the_policy_selects_and_customises_params():
    arguments = {"lr": 0.1, "secret": "hunter2", "frame": pd.DataFrame({"a": [1]})}
    assert {p.key for p in ParamPolicy.from_option(True).params(arguments)} == set(arguments)
    assert ParamPolicy.from_option(False).params(arguments) == []
    assert [p.key for p in ParamPolicy.from_option(["lr"]).params(arguments)] == ["lr"]
    assert [p.key for p in ParamPolicy.from_option("lr").params(arguments)] == ["lr"]
    excluded = ParamPolicy.from_option(True, exclude=["secret"]).params(arguments)
    assert {p.key for p in excluded} == {"lr", "frame"}
    custom = ParamPolicy.from_option(
        True, summarizer=lambda v: "a frame" if isinstance(v, pd.DataFrame) else None
    )
    assert {p.key: p.value for p in custom.params(arguments)}["frame"] == "a frame"
    # **kwargs are flattened; names MLflow refuses are skipped, not fatal.
    flat = ParamPolicy().params({"kwargs": {"alpha": 1, "bad name!": 2}})
    assert [(p.key, p.value) for p in flat] == [("alpha", "1")]


def test_results_become_metrics_when_numeric():
    assert result_metrics(0.9) == {"result": 0.9}
    assert result_metrics(np.float64(0.5), "accuracy") == {"accuracy": 0.5}
    assert result_metrics({"acc": 1, "model": "rf", "bad key!": 2.0}) == {"acc": 1.0}
    assert result_metrics({"acc": 1}, "test") == {"test.acc": 1.0}
    assert result_metrics(True) == {} and result_metrics("0.9") == {}
    assert result_metrics(np.array([1.0, 2.0])) == {} and result_metrics(None) == {}
