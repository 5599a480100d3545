"""Search compiled to SQL, on SQLite and PostgreSQL: filters, ordering, pagination.

Rows are inserted directly with SQLAlchemy Core, so these tests pin the compiler
and paginator independently of the store that will call them.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from flowml.exceptions import InvalidParameter
from flowml.tracking.store import schema
from flowml.tracking.store.sql_search import select_experiment_page, select_run_page

PG_URL = os.environ.get("FLOWML_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NAN = math.nan
INF = math.inf


def _sqlite_engine(directory: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{directory / 'search.db'}")
    schema.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _postgres_engine() -> Iterator[sa.Engine]:
    name = f"flowml_search_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    engine = sa.create_engine(f"{PG_URL}?options=-csearch_path%3D{name}")
    try:
        schema.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One database per backend holding `RUNS`, shared by the read-only tests."""
    if request.param == "sqlite":
        engines = _sqlite_engine(tmp_path_factory.mktemp("search"))
    else:
        engines = _postgres_engine()
    engine = next(engines)
    with engine.begin() as conn:
        add_experiments(conn, [1, 2])
        add_runs(conn, RUNS)
    yield engine
    next(engines, None)


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh empty database per test, for tests that write."""
    if request.param == "sqlite":
        yield from _sqlite_engine(tmp_path)
    else:
        yield from _postgres_engine()


@dataclass
class R:
    uuid: str
    start: int
    name: str = "run"
    status: str = "FINISHED"
    end: int | None = None
    experiment: int = 1
    stage: str = "active"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    user: str = "alice"


RUNS = [
    R(
        "r01",
        1000,
        "alpha",
        end=2000,
        metrics={"acc": 0.95, "loss": 0.1},
        params={"lr": "0.01", "opt": "Adam"},
        tags={"team": "Vision", "note": "Hello World"},
    ),
    R(
        "r02",
        1100,
        "beta",
        end=2100,
        metrics={"acc": 0.80, "loss": 0.3},
        params={"lr": "0.1", "opt": "adam"},
        tags={"team": "vision", "path": "axb"},
        user="bob",
    ),
    R(
        "r03",
        1200,
        "gamma",
        "FAILED",
        metrics={"acc": NAN},
        params={"lr": "0.01"},
        tags={"team": "NLP", "my tag": "x y", "pat": "axxb"},
    ),
    R("r04", 1300, "delta", "RUNNING"),
    R(
        "r05",
        1400,
        "Alpha-2",
        "KILLED",
        end=1500,
        metrics={"acc": 0.5, "my metric": 3.0, "loss": INF},
        params={"lr": "0.001", "a%b": "100%"},
        tags={"path": "a_b", "pat": "a*b"},
    ),
    R("r06", 1500, "eps", stage="deleted", end=1600, metrics={"acc": 0.99}, params={"lr": "0.01"}),
    R(
        "r07",
        1600,
        "zeta",
        experiment=2,
        end=1700,
        metrics={"acc": 0.7},
        params={"lr": "0.01"},
        tags={"team": "Vision"},
    ),
    R(
        "r08",
        1000,
        "eta",
        "SCHEDULED",
        metrics={"acc": -1.0},
        params={"lr": "1e-2"},
        tags={"note": "hello world", "lang": "Ünïcødé"},
    ),
]


def add_experiments(conn: sa.Connection, ids: Sequence[int]) -> None:
    conn.execute(
        sa.insert(schema.experiments),
        [
            {
                "experiment_id": i,
                "name": f"exp-{i}",
                "artifact_location": f"/tmp/{i}",
                "lifecycle_stage": "active",
                "creation_time": 100 + i,
                "last_update_time": 100 + i,
            }
            for i in ids
        ],
    )


def add_runs(conn: sa.Connection, runs: Sequence[R]) -> None:
    conn.execute(
        sa.insert(schema.runs),
        [
            {
                "run_uuid": r.uuid,
                "name": r.name,
                "experiment_id": r.experiment,
                "user_id": r.user,
                "status": r.status,
                "start_time": r.start,
                "end_time": r.end,
                "artifact_uri": f"s3://bucket/{r.uuid}",
                "lifecycle_stage": r.stage,
            }
            for r in runs
        ],
    )
    metrics = [
        {
            "run_uuid": r.uuid,
            "key": k,
            "value": None if math.isnan(v) else v,
            "timestamp": 1,
            "step": 0,
        }
        for r in runs
        for k, v in r.metrics.items()
    ]
    params = [{"run_uuid": r.uuid, "key": k, "value": v} for r in runs for k, v in r.params.items()]
    tags = [{"run_uuid": r.uuid, "key": k, "value": v} for r in runs for k, v in r.tags.items()]
    for table, rows in (
        (schema.latest_metrics, metrics),
        (schema.params, params),
        (schema.tags, tags),
    ):
        if rows:
            conn.execute(sa.insert(table), rows)


def search(
    engine: sa.Engine,
    filter_string: str | None = None,
    *,
    experiments: Sequence[str] = ("1",),
    stages: Sequence[str] = ("active",),
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> tuple[list[str], str | None]:
    with engine.connect() as conn:
        rows, token = select_run_page(
            conn, experiments, filter_string, stages, max_results, order_by, page_token
        )
    return [row.run_uuid for row in rows], token


def search_all_pages(engine: sa.Engine, page_size: int, **kwargs: object) -> list[str]:
    found: list[str] = []
    token: str | None = None
    while True:
        page, token = search(engine, max_results=page_size, page_token=token, **kwargs)
        assert len(page) <= page_size
        found.extend(page)
        if token is None:
            return found
        assert len(page) == page_size


FILTERS = [
    # no filter: every active run of experiment 1
    (None, {"r01", "r02", "r03", "r04", "r05", "r08"}),
    # metrics; NaN (r03) fails every comparison but "!="; r04 has no metrics at all
    ("metrics.acc > 0", {"r01", "r02", "r05"}),
    ("metrics.acc >= 0.8", {"r01", "r02"}),
    ("metrics.acc <= 0.8", {"r02", "r05", "r08"}),
    ("metrics.acc = 0.95", {"r01"}),
    ("metrics.acc != 0.8", {"r01", "r03", "r05", "r08"}),
    ("metrics.acc < 1e9", {"r01", "r02", "r05", "r08"}),
    ("metrics.loss > 1e308", {"r05"}),
    ("metrics.`my metric` > 2", {"r05"}),
    ('metrics."my metric" = 3', {"r05"}),
    ("metrics.missing > 0 or metrics.missing <= 0", set()),
    # params and tags: exact, case-sensitive equality; a run without the key never matches
    ("params.lr = '0.01'", {"r01", "r03"}),
    ("params.lr != '0.01'", {"r02", "r05", "r08"}),
    ("params.opt = 'adam'", {"r02"}),
    ("params.lr IN ('0.01', '0.1')", {"r01", "r02", "r03"}),
    ("params.lr NOT IN ('0.01')", {"r02", "r05", "r08"}),
    ("params.`a%b` = '100%'", {"r05"}),
    ("tags.team = 'vision'", {"r02"}),
    ("tags.`my tag` = 'x y'", {"r03"}),
    # LIKE is case-sensitive, ILIKE is not, on both databases
    ("tags.team LIKE 'V%'", {"r01"}),
    ("tags.team LIKE 'v%'", {"r02"}),
    ("tags.team ILIKE 'V%'", {"r01", "r02"}),
    ("tags.note LIKE '%World'", {"r01"}),
    ("tags.note ILIKE '%WORLD'", {"r01", "r08"}),
    ("tags.note LIKE 'hello_world'", {"r08"}),
    ("tags.team LIKE 'VISION'", set()),
    ("tags.team ILIKE 'VISION'", {"r01", "r02"}),
    # wildcards and escapes: _ is one character, \ escapes, GLOB's * ? [ are literal
    ("tags.path LIKE 'a_b'", {"r02", "r05"}),
    ("tags.path LIKE 'a\\_b'", {"r05"}),
    ("tags.path ILIKE 'A\\_B'", {"r05"}),
    ("tags.pat LIKE 'a*b'", {"r05"}),
    ("tags.pat LIKE 'a%b'", {"r03", "r05"}),
    ("params.`a%b` LIKE '100\\%'", {"r05"}),
    ("params.`a%b` LIKE '1[0]%'", set()),
    ("tags.lang = 'Ünïcødé'", {"r08"}),
    ("tags.lang LIKE 'Ün_c%'", {"r08"}),
    ("tags.lang LIKE 'ün%'", set()),
    # IS NULL / IS NOT NULL on keys
    ("tags.team IS NULL", {"r04", "r05", "r08"}),
    ("params.lr IS NOT NULL", {"r01", "r02", "r03", "r05", "r08"}),
    ("tags.team IS NULL and params.lr IS NOT NULL", {"r05", "r08"}),
    # attributes
    ("status = 'FINISHED'", {"r01", "r02"}),
    ("status = 'finished'", set()),
    ("status IN ('FAILED', 'KILLED')", {"r03", "r05"}),
    ("attributes.status NOT IN ('FINISHED', 'FAILED')", {"r04", "r05", "r08"}),
    ("run_id IN ('r01', 'r04', 'r07')", {"r01", "r04"}),
    ("attributes.run_id = 'r03'", {"r03"}),
    ("run_name = 'alpha'", {"r01"}),
    ("run_name LIKE 'alpha%'", {"r01"}),
    ("`Run name` ILIKE 'alpha%'", {"r01", "r05"}),
    ("user_id != 'alice'", {"r02"}),
    ("artifact_uri LIKE 's3://bucket/r0_'", {"r01", "r02", "r03", "r04", "r05", "r08"}),
    ("attributes.start_time >= 1200 and start_time < 1400", {"r03", "r04"}),
    ("created > 1350", {"r05"}),
    ("end_time > 1600", {"r01", "r02"}),
    ("end_time != 2000", {"r02", "r05"}),
    # OR and parentheses; AND binds tighter than OR
    ("metrics.acc > 0.9 OR tags.team = 'NLP'", {"r01", "r03"}),
    ("metrics.acc > 0.9 or params.lr = '0.1' and tags.team = 'NLP'", {"r01"}),
    ("(metrics.acc > 0.9 or params.lr = '0.1') and tags.team ILIKE 'vision'", {"r01", "r02"}),
    (
        "(status = 'RUNNING' or status = 'SCHEDULED') "
        "and (tags.note IS NOT NULL or run_id = 'r04')",
        {"r04", "r08"},
    ),
    (
        "params.lr = '0.01' and (tags.team = 'Vision' or (metrics.acc != 1 and status = 'FAILED'))",
        {"r01", "r03"},
    ),
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filters_select_the_expected_runs(
    seeded: sa.Engine, filter_string: str | None, expected: set[str]
) -> None:
    found, token = search(seeded, filter_string)
    assert token is None
    assert len(found) == len(set(found))
    assert set(found) == expected


# Every child key the filters test: ordered by all of them, each comparison reads the
# order_by's join instead of probing the child table again, and must select the same runs.
ORDERED_KEYS = [
    "metrics.acc",
    "metrics.loss",
    "metrics.`my metric`",
    "metrics.missing",
    "params.lr",
    "params.opt",
    "params.`a%b`",
    "tags.team",
    "tags.`my tag`",
    "tags.note",
    "tags.path",
    "tags.pat",
    "tags.lang",
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_filters_on_ordered_keys_select_the_same_runs(
    seeded: sa.Engine, filter_string: str | None, expected: set[str]
) -> None:
    for order_by in (ORDERED_KEYS, [f"{key} DESC" for key in reversed(ORDERED_KEYS)]):
        found, token = search(seeded, filter_string, order_by=order_by)
        assert token is None
        assert len(found) == len(set(found))
        assert set(found) == expected, order_by


def test_a_filter_on_the_ordered_metric_keeps_the_order(seeded: sa.Engine) -> None:
    found, _ = search(seeded, "metrics.acc > 0.6", order_by=["metrics.acc DESC"])
    assert found == ["r01", "r02"]
    found, _ = search(seeded, "metrics.acc != 0.8", order_by=["metrics.acc"])
    assert found == ["r08", "r05", "r01", "r03"]  # NaN (r03) after the numbers


@pytest.mark.parametrize(
    ("stages", "experiments", "filter_string", "expected"),
    [
        (["deleted"], ["1"], "metrics.acc > 0.9", {"r06"}),
        (["active", "deleted"], ["1"], "metrics.acc > 0.9", {"r01", "r06"}),
        (["active"], ["1", "2"], "tags.team = 'Vision'", {"r01", "r07"}),
        (["active"], ["2"], None, {"r07"}),
        (["active"], [], None, set()),
        (["active"], ["1", "1"], "run_id = 'r01'", {"r01"}),
        ([], ["1"], None, set()),
    ],
)
def test_lifecycle_stages_and_experiments_scope_the_search(
    seeded: sa.Engine,
    stages: list[str],
    experiments: list[str],
    filter_string: str | None,
    expected: set[str],
) -> None:
    found, _ = search(seeded, filter_string, experiments=experiments, stages=stages)
    assert set(found) == expected


ORDERS = [
    # default: start_time DESC, then run_uuid (r01 and r08 share a start time)
    (None, ["r05", "r04", "r03", "r02", "r01", "r08"]),
    (["start_time ASC"], ["r01", "r08", "r02", "r03", "r04", "r05"]),
    # numbers, then NaN (r03), then runs without the metric (r04), in both directions
    (["metrics.acc DESC"], ["r01", "r02", "r05", "r08", "r03", "r04"]),
    (["metrics.acc"], ["r08", "r05", "r02", "r01", "r03", "r04"]),
    (["metrics.loss DESC"], ["r05", "r02", "r01", "r04", "r03", "r08"]),
    # strings by code point; missing keys last; ties by the default order
    (["params.lr ASC"], ["r05", "r03", "r01", "r02", "r08", "r04"]),
    (["params.lr DESC"], ["r08", "r02", "r03", "r01", "r05", "r04"]),
    (["tags.team"], ["r03", "r01", "r02", "r05", "r04", "r08"]),
    (["tags.team DESC"], ["r02", "r01", "r03", "r05", "r04", "r08"]),
    (["tags.`my tag` DESC"], ["r03", "r05", "r04", "r02", "r01", "r08"]),
    # nullable attribute: NULL end times last in both directions
    (["end_time"], ["r05", "r01", "r02", "r04", "r03", "r08"]),
    (["attributes.end_time DESC"], ["r02", "r01", "r05", "r04", "r03", "r08"]),
    (["run_name"], ["r05", "r01", "r02", "r04", "r08", "r03"]),
    (["status", "run_id DESC"], ["r03", "r02", "r01", "r05", "r04", "r08"]),
    (["tags.team DESC", "metrics.acc"], ["r02", "r01", "r03", "r08", "r05", "r04"]),
    (["params.lr", "start_time"], ["r05", "r01", "r03", "r02", "r08", "r04"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=[str(o[0]) for o in ORDERS])
def test_order_by_puts_missing_values_last_in_both_directions(
    seeded: sa.Engine, order_by: list[str] | None, expected: list[str]
) -> None:
    found, _ = search(seeded, order_by=order_by)
    assert found == expected


def test_order_by_combines_with_a_filter(seeded: sa.Engine) -> None:
    found, _ = search(seeded, "params.lr IS NOT NULL", order_by=["metrics.acc DESC"])
    assert found == ["r01", "r02", "r05", "r08", "r03"]


@pytest.mark.parametrize("page_size", [1, 2, 4, 5, 6, 7])
@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        (None, None),
        (None, ["metrics.acc DESC"]),
        ("params.lr IS NOT NULL or status = 'RUNNING'", ["tags.team", "metrics.loss"]),
        ("metrics.acc != 0", ["end_time DESC"]),
    ],
)
def test_pages_concatenate_to_the_unpaginated_result(
    seeded: sa.Engine, page_size: int, filter_string: str | None, order_by: list[str] | None
) -> None:
    whole, token = search(seeded, filter_string, order_by=order_by)
    assert token is None
    paged = search_all_pages(seeded, page_size, filter_string=filter_string, order_by=order_by)
    assert paged == whole


def test_a_full_last_page_has_no_next_token(seeded: sa.Engine) -> None:
    first, token = search(seeded, max_results=3)
    assert token is not None
    second, token = search(seeded, max_results=3, page_token=token)
    assert (len(first), len(second), token) == (3, 3, None)


def test_pagination_stays_exact_while_runs_are_inserted(empty: sa.Engine) -> None:
    with empty.begin() as conn:
        add_experiments(conn, [1])
        add_runs(
            conn,
            [
                R(f"a{i:03d}", 1000 + i % 7, metrics={"acc": (i * 37 % 11) / 10}, params={"k": "v"})
                for i in range(40)
            ],
        )
    inserted = 0
    for order_by in (None, ["metrics.acc DESC"], ["start_time"]):
        expected, _ = search(empty, "params.k = 'v'", order_by=order_by)
        assert len(expected) == 40 + inserted
        seen: list[str] = []
        token: str | None = None
        batch = 0
        while True:
            page, token = search(
                empty, "params.k = 'v'", order_by=order_by, max_results=6, page_token=token
            )
            seen.extend(page)
            if token is None:
                break
            # New matching runs that sort before, among and after the rows already served.
            batch += 1
            with empty.begin() as conn:
                add_runs(
                    conn,
                    [
                        R(
                            f"n{batch:02d}{j}{uuid.uuid4().hex[:6]}",
                            start,
                            metrics={"acc": acc},
                            params={"k": "v"},
                        )
                        for j, (start, acc) in enumerate([(5000, 2.0), (1003, 0.5), (0, -1.0)])
                    ],
                )
            inserted += 3
        assert seen == expected
    # The next search sees everything inserted meanwhile.
    everything, _ = search(empty, "params.k = 'v'")
    assert len(everything) == 40 + inserted > 40


def test_experiment_search_filters_orders_and_pages(empty: sa.Engine) -> None:
    with empty.begin() as conn:
        add_experiments(conn, [0, 1, 2, 3, 4])
        conn.execute(
            sa.update(schema.experiments)
            .where(schema.experiments.c.experiment_id == 3)
            .values(lifecycle_stage="deleted", name="Old")
        )
        conn.execute(
            sa.insert(schema.experiment_tags),
            [
                {"experiment_id": 1, "key": "team", "value": "Vision"},
                {"experiment_id": 2, "key": "team", "value": "vision"},
                {"experiment_id": 4, "key": "team", "value": "NLP"},
                {"experiment_id": 4, "key": "owner", "value": "bob"},
            ],
        )

    def experiments(filter_string=None, order_by=None, stages=("active",), max_results=100):
        with empty.connect() as conn:
            rows, token = select_experiment_page(
                conn, list(stages), filter_string, max_results, order_by, None
            )
        return [row.experiment_id for row in rows], token

    assert experiments() == ([4, 2, 1, 0], None)
    assert experiments(stages=["active", "deleted"])[0] == [4, 3, 2, 1, 0]
    assert experiments("tags.team LIKE 'V%'")[0] == [1]
    assert experiments("tags.team ILIKE 'v%'")[0] == [2, 1]
    assert experiments("tags.team IS NULL")[0] == [0]
    assert experiments("experiment_id IN ('0', '2') or tags.owner = 'bob'")[0] == [4, 2, 0]
    assert experiments("experiment_id != '0' and creation_time <= 102")[0] == [2, 1]
    assert experiments("name LIKE 'exp-_'", order_by=["name DESC"])[0] == [4, 2, 1, 0]
    assert experiments(order_by=["tags.team"])[0] == [4, 1, 2, 0]
    assert experiments(order_by=["tags.team DESC"])[0] == [2, 1, 4, 0]
    assert experiments(order_by=["experiment_id"])[0] == [0, 1, 2, 4]
    page, token = experiments(max_results=3)
    assert page == [4, 2, 1] and token is not None
    with empty.connect() as conn:
        rest, last = select_experiment_page(conn, ["active"], None, 3, None, token)
    assert ([row.experiment_id for row in rest], last) == ([0], None)


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(map(repr, row)) for row in conn.execute(sa.select(table))), key=str
            )
            for table in schema.metadata.sorted_tables
        }


BAD_REQUESTS = [
    ({"filter_string": "metrics.acc >> 1"}, "unexpected token '>' at position 14"),
    ({"order_by": ["metrics.acc DESCC"]}, "unexpected token 'DESCC' at position 13"),
    ({"max_results": 0}, "'max_results'"),
    ({"max_results": -5}, "'max_results'"),
    ({"max_results": 50001}, "integer from 1 to 50000"),
    ({"max_results": "10"}, "'max_results'"),
    ({"max_results": True}, "'max_results'"),
    ({"max_results": 2.0}, "'max_results'"),
    ({"page_token": "not a token!"}, "Invalid page token"),
    ({"page_token": "bm90IGpzb24="}, "Invalid page token"),
    ({"page_token": "WzEsMiwzXQ=="}, "unexpected content"),
    ({"page_token": 12}, "expected a string"),
    ({"experiments": ["one"]}, "Invalid experiment id 'one'"),
    ({"experiments": "1"}, "experiment_ids must be a list"),
    ({"stages": [None]}, "lifecycle_stages must hold strings"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_bad_requests_raise_invalid_parameter_and_change_nothing(
    seeded: sa.Engine, kwargs: dict[str, object], message: str
) -> None:
    before = _snapshot(seeded)
    with pytest.raises(InvalidParameter) as caught:
        search(seeded, **kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert _snapshot(seeded) == before


def test_max_results_limit_is_accepted(seeded: sa.Engine) -> None:
    found, token = search(seeded, max_results=50000)
    assert len(found) == 6 and token is None


def test_a_tampered_token_is_refused(seeded: sa.Engine) -> None:
    import base64
    import json

    _, token = search(seeded, max_results=2)
    assert token is not None
    payload = json.loads(base64.urlsafe_b64decode(token))
    payload["offset"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(InvalidParameter, match="altered or is corrupt"):
        search(seeded, max_results=2, page_token=forged)
    payload["offset"] = -2
    with pytest.raises(InvalidParameter, match="altered or is corrupt"):
        search(
            seeded,
            max_results=2,
            page_token=base64.urlsafe_b64encode(json.dumps(payload).encode()).decode(),
        )
    with pytest.raises(InvalidParameter, match="Invalid page token"):
        search(seeded, max_results=2, page_token=token[:-6])


@pytest.mark.parametrize(
    "changed",
    [
        {"filter_string": "metrics.acc > 0"},
        {"order_by": ["metrics.acc DESC"]},
        {"experiments": ["1", "2"]},
        {"stages": ["active", "deleted"]},
    ],
)
def test_a_token_is_bound_to_its_search(seeded: sa.Engine, changed: dict[str, object]) -> None:
    _, token = search(seeded, max_results=2)
    with pytest.raises(InvalidParameter, match="belongs to a different search"):
        search(seeded, max_results=2, page_token=token, **changed)  # type: ignore[arg-type]


def test_a_token_survives_cosmetic_filter_changes(seeded: sa.Engine) -> None:
    first, token = search(seeded, "metrics.acc>0 AND params.lr  IS NOT NULL", max_results=1)
    rest, _ = search(
        seeded, "metrics.acc > 0 and params.lr is not null", max_results=10, page_token=token
    )
    whole, _ = search(seeded, "metrics.acc > 0 and params.lr is not null")
    assert first + rest == whole


def test_a_token_from_another_entity_is_refused(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        _, token = select_experiment_page(conn, ["active"], None, 1, None, None)
    assert token is not None
    with pytest.raises(InvalidParameter, match="belongs to a different search"):
        search(seeded, page_token=token)


def test_sqlite_plan_probes_child_tables_by_primary_key(tmp_path: Path) -> None:
    """Filters and ordering reach params/tags/metrics through their (run, key) primary
    keys: no full scan of a child table, whatever the query."""
    engine = next(_sqlite_engine(tmp_path))
    with engine.begin() as conn:
        add_experiments(conn, [1])
        add_runs(conn, RUNS)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "LIMIT" in statement:
            captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    search(
        engine,
        "metrics.acc > 0.5 and (params.lr = '0.01' or tags.team LIKE 'V%' or tags.x IS NULL)",
        order_by=["metrics.acc DESC", "params.lr", "tags.team"],
    )
    sa.event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    with engine.connect() as conn:
        plan = [
            row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    engine.dispose()
    children = ("latest_metrics", "params", "tags", "order_")
    scans = [step for step in plan if step.startswith("SCAN") and any(c in step for c in children)]
    assert scans == [], plan
    probes = [step for step in plan if "(run_uuid=? AND key=?)" in step]
    # One per order_by join, whose rows the filter's acc, lr and team comparisons read,
    # and one for tags.x, which is not ordered by; the metric's join may instead drive the
    # query from the (key, value) index, reading only runs with acc > 0.5.
    by_value = [step for step in plan if "ix_latest_metrics_key_value (key=? AND value>?)" in step]
    assert len(probes) + len(by_value) == 4 and len(by_value) <= 1, plan
