"""Prepared search plans answer exactly as the generic search path, on SQLite and PostgreSQL.

Every search here runs twice, through `search_plans.select_run_page` and through
`sql_search.select_run_page`, and every page must match: the same runs with the same
columns, in the same order, with the same next-page token.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_sql_search import (
    BACKENDS,
    BAD_REQUESTS,
    FILTERS,
    ORDERS,
    RUNS,
    R,
    _postgres_engine,
    _sqlite_engine,
    add_experiments,
    add_runs,
)

from flowml.exceptions import InvalidParameter
from flowml.tracking.store import search_plans, sql_search


def _generated(count: int) -> list[R]:
    """Runs with ties, NaN, infinities and missing keys everywhere a search looks."""
    rng = random.Random(11)
    runs = []
    for i in range(count):
        metrics: dict[str, float] = {}
        if rng.random() < 0.85:
            metrics["acc"] = rng.choice([0.1, 0.5, 0.5, 0.9, 1.0, math.nan, -math.inf, 0.25])
        if rng.random() < 0.5:
            metrics["loss"] = rng.choice([0.3, 0.7, math.inf])
        params = {"lr": rng.choice(["0.01", "0.1", "0.001"])} if rng.random() < 0.8 else {}
        tags = (
            {"team": rng.choice(["Vision", "vision", "NLP", "a_b"])} if rng.random() < 0.7 else {}
        )
        runs.append(
            R(
                f"g{i:03d}",
                rng.choice([1000, 1100, 1200, 1300]),  # many start-time ties
                rng.choice(["alpha", "beta", "Alpha-2"]),
                rng.choice(["FINISHED", "FAILED", "RUNNING"]),
                end=rng.choice([None, 1500, 2500]),
                experiment=rng.choice([1, 1, 2]),
                stage=rng.choice(["active", "active", "deleted"]),
                metrics=metrics,
                params=params,
                tags=tags,
            )
        )
    return runs


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        engines = _sqlite_engine(tmp_path_factory.mktemp("plans"))
    else:
        engines = _postgres_engine()
    engine = next(engines)
    with engine.begin() as conn:
        add_experiments(conn, [1, 2])
        add_runs(conn, [*RUNS, *_generated(80)])
    yield engine
    next(engines, None)


def _pages(
    select: object,
    engine: sa.Engine,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    page_size: int,
    experiments: Sequence[str] = ("1",),
    stages: Sequence[str] = ("active",),
) -> list[tuple[list[tuple[object, ...]], str | None]]:
    pages = []
    token = None
    with engine.connect() as conn:
        while True:
            rows, token = select(  # type: ignore[operator]
                conn, experiments, filter_string, stages, page_size, order_by, token
            )
            pages.append(([tuple(row)[:13] for row in rows], token))
            if token is None:
                return pages


def _same(engine: sa.Engine, filter_string: str | None, order_by: Sequence[str] | None, **kw):
    size = kw.pop("page_size", 1000)
    planned = _pages(search_plans.select_run_page, engine, filter_string, order_by, size, **kw)
    generic = _pages(sql_search.select_run_page, engine, filter_string, order_by, size, **kw)
    assert planned == generic
    return planned


SAME_KEY = [
    # The filter requires the ordered key: the plan drops its rank clause.
    ("metrics.acc > 0.2", ["metrics.acc DESC"]),
    ("metrics.acc <= 0.5", ["metrics.acc"]),
    ("metrics.acc >= 0.5 and params.lr = '0.01'", ["metrics.acc DESC"]),
    ("params.lr = '0.01'", ["params.lr", "metrics.acc ASC"]),
    ("params.lr != '0.1'", ["params.lr DESC"]),
    ("tags.team LIKE 'V%'", ["tags.team DESC", "start_time"]),
    ("tags.team IN ('NLP', 'vision') and metrics.loss > 0", ["tags.team", "metrics.loss DESC"]),
    # ... and where it must keep it: NaN passes these, or the key may be missing.
    ("metrics.acc != 0.5", ["metrics.acc DESC"]),
    ("params.lr IS NOT NULL and metrics.acc != 1", ["metrics.acc"]),
    ("metrics.acc > 0.5 or params.lr = '0.1'", ["metrics.acc DESC"]),
    ("tags.team IS NULL", ["tags.team"]),
]


@pytest.mark.parametrize("order_by", [None, ["metrics.acc DESC"], ["params.lr", "tags.team DESC"]])
@pytest.mark.parametrize("filter_string", [f for f, _ in FILTERS])
def test_every_filter_pages_as_the_generic_path(
    seeded: sa.Engine, filter_string: str | None, order_by: list[str] | None
) -> None:
    _same(seeded, filter_string, order_by, page_size=7)


@pytest.mark.parametrize("page_size", [1, 4, 1000])
@pytest.mark.parametrize("order_by", [o for o, _ in ORDERS], ids=[str(o) for o, _ in ORDERS])
def test_every_order_pages_as_the_generic_path(
    seeded: sa.Engine, order_by: list[str], page_size: int
) -> None:
    pages = _same(seeded, None, order_by, page_size=page_size)
    assert sum(len(rows) for rows, _ in pages) > 30  # the generated runs are in it


@pytest.mark.parametrize("page_size", [1, 3, 1000])
@pytest.mark.parametrize(("filter_string", "order_by"), SAME_KEY, ids=[f for f, _ in SAME_KEY])
def test_filters_on_the_ordered_key_page_as_the_generic_path(
    seeded: sa.Engine, filter_string: str, order_by: list[str], page_size: int
) -> None:
    pages = _same(seeded, filter_string, order_by, page_size=page_size)
    assert any(rows for rows, _ in pages)  # never vacuous


@pytest.mark.parametrize(
    ("experiments", "stages"),
    [(["1", "2"], ["active"]), (["2"], ["active", "deleted"]), ([], ["active"]), (["1"], [])],
)
def test_experiments_and_stages_as_the_generic_path(
    seeded: sa.Engine, experiments: list[str], stages: list[str]
) -> None:
    for filter_string, order_by in SAME_KEY[:3]:
        _same(seeded, filter_string, order_by, page_size=5, experiments=experiments, stages=stages)


def test_a_shape_is_compiled_once_and_reused_with_other_values(seeded: sa.Engine) -> None:
    search_plans._plans.clear()
    for threshold in (0.1, 0.3, 0.5, 0.9):
        pages = _same(seeded, f"metrics.acc > {threshold}", ["metrics.acc DESC"], page_size=3)
        assert all(row[0] is not None for rows, _ in pages for row in rows)
    # One plan per dialect-shape for the first pages, one for the later ones.
    assert len(search_plans._plans) == 2
    _same(seeded, "params.lr IN ('0.01', '0.1')", None)
    _same(seeded, "params.lr IN ('0.01', '0.1', '0.001')", None)  # another IN length
    assert len(search_plans._plans) == 4


def test_old_shapes_are_dropped_past_the_limit(
    seeded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_plans, "MAX_PLANS", 3)
    search_plans._plans.clear()
    for key in ("acc", "loss", "x", "y", "z"):
        _same(seeded, f"metrics.{key} > 0", None)
    assert len(search_plans._plans) == 3


@pytest.mark.parametrize(("kwargs", "message"), BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_bad_requests_are_refused_alike(
    seeded: sa.Engine, kwargs: dict[str, object], message: str
) -> None:
    args = {
        "experiment_ids": ["1"],
        "filter_string": None,
        "lifecycle_stages": ["active"],
        "max_results": 10,
        "order_by": None,
        "page_token": None,
    }
    renamed = {"experiments": "experiment_ids", "stages": "lifecycle_stages"}
    args.update({renamed.get(k, k): v for k, v in kwargs.items()})
    with seeded.connect() as conn:
        with pytest.raises(InvalidParameter, match=message) as planned:
            search_plans.select_run_page(conn, **args)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameter) as generic:
            sql_search.select_run_page(conn, **args)  # type: ignore[arg-type]
    assert str(planned.value) == str(generic.value)


def test_a_generic_page_token_continues_on_the_plan(seeded: sa.Engine, tmp_path: Path) -> None:
    with seeded.connect() as conn:
        first, token = sql_search.select_run_page(
            conn, ["1"], "metrics.acc > 0", ["active"], 4, ["metrics.acc DESC"], None
        )
        rest, _ = search_plans.select_run_page(
            conn, ["1"], "metrics.acc > 0", ["active"], 1000, ["metrics.acc DESC"], token
        )
        everything, _ = sql_search.select_run_page(
            conn, ["1"], "metrics.acc > 0", ["active"], 1000, ["metrics.acc DESC"], None
        )
    assert [r.run_uuid for r in [*first, *rest]] == [r.run_uuid for r in everything]


def test_an_order_on_a_key_the_filter_does_not_require_is_read_rank_by_rank(
    seeded: sa.Engine,
) -> None:
    """Led by a metric some runs lack or hold as NaN, the search reads the runs with a value
    first (a statement without the "no value last" rank, so in the key's index order), then
    NaN, then no value; a page that starts past a rank counts it."""
    search_plans._plans.clear()
    for size in (1, 4, 1000):
        _same(seeded, None, ["metrics.acc ASC"], page_size=size)
    plans = {key[-3:]: plan for key, plan in search_plans._plans.items()}  # (first, rank, count)
    assert {rank for _, rank, _ in plans} == {0, 1, 2}  # never the single statement
    assert {(False, 0, True), (False, 1, True)} <= set(plans)
    assert "CASE" not in plans[True, 0, False].sql.upper()


@pytest.mark.parametrize("order_by", [["params.lr DESC"], ["tags.team", "metrics.acc"]])
def test_params_and_tags_have_two_ranks(seeded: sa.Engine, order_by: list[str]) -> None:
    search_plans._plans.clear()
    for size in (1, 5):
        _same(seeded, "metrics.acc > 0", order_by, page_size=size)
    assert {key[-2] for key in search_plans._plans} == {0, 1}


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        (None, None),
        *SAME_KEY[:3],
        ("metrics.acc != 0.5", ["metrics.acc DESC"]),
        (None, ["tags.team"]),
    ],
)
def test_a_page_with_its_runs_data_reads_as_the_page_then_its_data(
    seeded: sa.Engine, filter_string: str | None, order_by: list[str] | None
) -> None:
    """On PostgreSQL the runs' params, tags and latest metrics (NaN, infinities, the points'
    timestamps and steps) come with the page, as JSON the same statement writes: they must
    equal what reading the page, then its runs' values, gives."""
    from flowml.tracking.store import sql_fast

    token, pages = None, 0
    with seeded.connect() as conn:
        while True:
            args = (["1"], filter_string, ["active"], 3, order_by, token)
            page, data_token = search_plans.select_run_page_with_data(conn, *args)
            rows, token = search_plans.select_run_page(conn, *args)
            assert [row for row, _ in page] == rows and data_token == token
            expected = sql_fast.run_data(conn, [row.run_uuid for row in rows])
            found = [data for _, data in page]
            assert [(d.params, d.tags, d.metric_points) for d in found] == [
                (d.params, d.tags, d.metric_points) for d in expected
            ]
            for got, want in zip(found, expected, strict=True):
                assert got.metrics.keys() == want.metrics.keys()
                for key, value in want.metrics.items():
                    assert type(got.metrics[key]) is float
                    assert (
                        got.metrics[key] == value
                        or math.isnan(value) == math.isnan(got.metrics[key]) is True
                    )
            pages += 1
            if token is None:
                break
    assert pages > 1
