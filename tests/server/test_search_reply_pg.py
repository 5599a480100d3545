"""On PostgreSQL the server sends a search page's params, tags and metrics as JSON the
database writes (`SqlStore.search_runs_json`): the reply must be the one built from the
page's runs read row by row (`wire.run_json`), for awkward values and across pages."""

from __future__ import annotations

import httpx
import orjson
import pytest
from wire_helpers import API, ok, unique

from flowml.server.locations import ArtifactLocations, normalize_destination
from flowml.server.wire import run_json
from flowml.tracking.store import search_plans
from flowml.tracking.store.sql import SqlStore

AWKWARD = [
    'quote " and backslash \\ and slash /',
    "ünïcödé 日本語 🎉",
    "line\nbreak\ttab\x01control",
    "",
    '{"not": ["json"]}',
    "NULL",
]
METRICS = [
    ("nan", "NaN"),
    ("inf", "Infinity"),
    ("minus_inf", "-Infinity"),
    ("big", 1.7976931348623157e308),
    ("tiny", 5e-324),
    ("third", 1 / 3),
    ("whole", 3),
    ("negative_zero", -0.0),
]


def _log(http: httpx.Client, run_id: str, i: int) -> None:
    ok(
        http.post(
            f"{API}/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [
                    {"key": key, "value": value, "timestamp": 2**62 + i, "step": -i}
                    for key, value in METRICS[: 1 + i % len(METRICS)]
                ],
                "params": [{"key": f"p{j}", "value": v} for j, v in enumerate(AWKWARD[: i % 7])],
                "tags": [{"key": f"t{j}", "value": v} for j, v in enumerate(AWKWARD[i % 3 :])],
            },
        )
    )


@pytest.mark.postgres
def test_search_replies_written_by_postgres_equal_the_entities_replies(
    pg_url: str, tmp_path, server_factory
):
    srv = server_factory(pg_url, tmp_path / "pg")
    store = SqlStore(pg_url, str(srv.destination))
    locations = ArtifactLocations(normalize_destination(str(srv.destination)))
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        exp_id = ok(http.post(f"{API}/experiments/create", json={"name": unique("e")}))[
            "experiment_id"
        ]
        for i in range(9):
            run = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp_id}))["run"]
            if i:  # the first run has no values but its name tag
                _log(http, run["info"]["run_id"], i)
        searches = [
            {"max_results": 4},
            {"max_results": 3, "order_by": ["metrics.third DESC"]},
            {"max_results": 2, "filter": "metrics.inf > 0", "order_by": ["params.p0"]},
            {"max_results": 5, "filter": "tags.t0 = 'NULL'"},
        ]
        pages = 0
        for search in searches:
            request, token = {"experiment_ids": [exp_id], **search}, None
            while True:
                if token:
                    request["page_token"] = token
                reply = ok(http.post(f"{API}/runs/search", json=request))
                # Expected: the page, then its runs' values by their own statement.
                with store.engine.connect() as conn:
                    rows, next_token = search_plans.select_run_page(
                        conn,
                        [exp_id],
                        search.get("filter"),
                        ["active"],
                        search["max_results"],
                        search.get("order_by"),
                        token,
                    )
                    runs = store._runs_from_rows(conn, rows)
                expected = {"runs": [run_json(r, locations) for r in runs]}
                if next_token:
                    expected["next_page_token"] = next_token
                assert reply == orjson.loads(orjson.dumps(expected))
                pages += 1
                token = reply.get("next_page_token")
                if not token:
                    break
        assert pages >= 8
        everything = ok(http.post(f"{API}/runs/search", json={"experiment_ids": [exp_id]}))
        metrics = {
            m["key"]: m["value"] for r in everything["runs"] for m in r["data"].get("metrics", [])
        }
        assert metrics["nan"] == "NaN" and metrics["minus_inf"] == "-Infinity"
        assert metrics["big"] == 1.7976931348623157e308 and metrics["tiny"] == 5e-324
        assert metrics["third"] == 1 / 3 and metrics["negative_zero"] == 0
        params = {p["value"] for r in everything["runs"] for p in r["data"].get("params", [])}
        assert params == set(AWKWARD)
        assert sum("metrics" not in r["data"] for r in everything["runs"]) == 1
