"""``flowml server --auth token`` over real HTTP: who may read, log, manage and administer."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flowml.server.auth.store import AuthStore
from tests.server.conftest import FlowmlServer, start_server
from tests.server.wire_helpers import API, error, ok, unique

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
RM = f"{API}/registered-models"


@dataclass
class Team:
    server: FlowmlServer
    store: AuthStore
    tokens: dict[str, str]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


def _team(root: Path, *options: str) -> Team:
    srv = start_server(
        f"sqlite:///{root / 'flowml.db'}", root, options=["--auth", "token", *options]
    )
    store = AuthStore.open(srv.store_uri)  # type: ignore[arg-type]
    tokens = {}
    for user in ("admin", "alice", "bob"):
        tokens[user], _ = store.create_token(user, create_user=True)
    store.set_admin("admin", True)
    return Team(srv, store, tokens)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Default permission READ: everyone reads, only granted users write."""
    team = _team(tmp_path_factory.mktemp("auth"))
    yield team
    team.server.stop()


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Default permission NO_PERMISSIONS: users see only what they created or were granted."""
    team = _team(tmp_path_factory.mktemp("private"), "--default-permission", "NO_PERMISSIONS")
    yield team
    team.server.stop()


def _experiment(client: httpx.Client) -> str:
    return ok(client.post(f"{API}/experiments/create", json={"name": unique("exp")}))[
        "experiment_id"
    ]


def _run(client: httpx.Client, experiment_id: str) -> dict:
    reply = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
    return ok(reply)["run"]["info"]


def test_no_credentials_get_401_but_health_answers(team: Team):
    with team.client(None) as anonymous:
        assert anonymous.get("/health").text == "OK"
        reply = anonymous.get(f"{API}/experiments/search")
        message = error(reply, 401, "UNAUTHENTICATED")
        assert "MLFLOW_TRACKING_TOKEN" in message
        assert "Bearer" in reply.headers["www-authenticate"]
        error(anonymous.get(f"{API}/users/current"), 401, "UNAUTHENTICATED")
        error(anonymous.put(f"{PROXY}/1/x.txt", content=b"x"), 401, "UNAUTHENTICATED")
    bad = {"Authorization": "Bearer flowml_0123456789abcdef_" + "x" * 43}
    with httpx.Client(base_url=team.server.url, headers=bad, timeout=30) as forged:
        error(forged.get(f"{API}/experiments/search"), 401, "UNAUTHENTICATED")


def test_basic_auth_takes_the_token_as_password(team: Team):
    def basic(user: str, password: str) -> dict[str, str]:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    url = f"{team.server.url}{API}/users/current"
    got = httpx.get(url, headers=basic("alice", team.tokens["alice"]), timeout=30)
    assert ok(got)["user"]["username"] == "alice"
    wrong_user = httpx.get(url, headers=basic("bob", team.tokens["alice"]), timeout=30)
    error(wrong_user, 401, "UNAUTHENTICATED")


def test_the_ui_asks_the_browser_to_sign_in(team: Team):
    # One challenge per header: Chromium reads only a header's first challenge, and only
    # the Basic one opens the browser's login prompt.
    for path in ("/", "/static/js/main.js", "/static/app.css", "/ui-config.json"):
        reply = httpx.get(team.server.url + path, timeout=30)
        error(reply, 401, "UNAUTHENTICATED")
        challenges = reply.headers.get_list("www-authenticate")
        assert 'Basic realm="flowml", charset="UTF-8"' in challenges, path
        assert 'Bearer realm="flowml"' in challenges, path
        assert "<html" not in reply.text  # the error, not the page
    pair = base64.b64encode(f"alice:{team.tokens['alice']}".encode()).decode()
    page = httpx.get(team.server.url + "/", headers={"Authorization": f"Basic {pair}"}, timeout=30)
    assert page.status_code == 200 and "<title>flowml</title>" in page.text
    forged = base64.b64encode(b"alice:not-her-token").decode()
    reply = httpx.get(
        team.server.url + "/", headers={"Authorization": f"Basic {forged}"}, timeout=30
    )
    error(reply, 401, "UNAUTHENTICATED")


def test_read_user_reads_but_cannot_write(team: Team):
    with team.client("alice") as alice, team.client("bob") as bob:
        exp = _experiment(alice)  # the creator holds MANAGE
        run = _run(alice, exp)
        batch = {"run_id": run["run_id"], "params": [{"key": "lr", "value": "0.1"}]}
        ok(alice.post(f"{API}/runs/log-batch", json=batch))
        # bob holds the default READ: he sees everything and changes nothing.
        assert ok(bob.get(f"{API}/runs/get", params={"run_id": run["run_id"]}))["run"]
        found = ok(bob.post(f"{API}/runs/search", json={"experiment_ids": [exp]}))
        assert [r["info"]["run_id"] for r in found["runs"]] == [run["run_id"]]
        message = error(bob.post(f"{API}/runs/log-batch", json=batch), 403, "PERMISSION_DENIED")
        assert "bob" in message and "EDIT" in message and exp in message
        error(bob.post(f"{API}/runs/create", json={"experiment_id": exp}), 403, "PERMISSION_DENIED")
        error(
            bob.post(f"{API}/experiments/delete", json={"experiment_id": exp}),
            403,
            "PERMISSION_DENIED",
        )
        root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
        assert alice.put(f"{PROXY}/{root}/a.txt", content=b"a").status_code == 200
        assert bob.get(f"{PROXY}/{root}/a.txt").content == b"a"
        error(bob.put(f"{PROXY}/{root}/b.txt", content=b"b"), 403, "PERMISSION_DENIED")
        error(bob.delete(f"{PROXY}/{root}/a.txt"), 403, "PERMISSION_DENIED")
        # Nothing bob tried changed anything.
        params = ok(alice.get(f"{API}/runs/get", params={"run_id": run["run_id"]}))["run"]["data"]
        assert params["params"] == [{"key": "lr", "value": "0.1"}]
        assert not (team.server.destination / root / "b.txt").exists()  # type: ignore[operator]
    log = team.server.log.read_text()
    assert "denied user=bob POST /api/2.0/mlflow/runs/log-batch" in log


def test_edit_logs_and_manage_grants(team: Team):
    with team.client("alice") as alice, team.client("bob") as bob:
        exp = _experiment(alice)
        run = _run(alice, exp)
        grant = {"experiment_id": exp, "username": "bob", "permission": "EDIT"}
        # bob cannot grant himself anything: that takes MANAGE on the experiment.
        error(
            bob.post(f"{API}/experiments/permissions/create", json=grant), 403, "PERMISSION_DENIED"
        )
        created = ok(alice.post(f"{API}/experiments/permissions/create", json=grant))
        assert created["experiment_permission"]["permission"] == "EDIT"
        metric = {"run_id": run["run_id"], "key": "loss", "value": 0.5, "timestamp": 1, "step": 0}
        ok(bob.post(f"{API}/runs/log-metric", json=metric))
        claimed = {"experiment_id": exp, "user_id": "mallory"}
        made = ok(bob.post(f"{API}/runs/create", json=claimed))["run"]["info"]
        assert made["user_id"] == "bob"  # who really created it, not who the client claims
        # EDIT is not MANAGE: no deleting, no granting on.
        error(
            bob.post(f"{API}/runs/delete", json={"run_id": run["run_id"]}), 403, "PERMISSION_DENIED"
        )
        to_admin = {**grant, "username": "admin", "permission": "READ"}
        error(
            bob.post(f"{API}/experiments/permissions/create", json=to_admin),
            403,
            "PERMISSION_DENIED",
        )
        got = ok(
            alice.get(
                f"{API}/experiments/permissions/get",
                params={"experiment_id": exp, "username": "bob"},
            )
        )
        assert got["experiment_permission"]["permission"] == "EDIT"
        ok(
            alice.patch(
                f"{API}/experiments/permissions/update", json={**grant, "permission": "READ"}
            )
        )
        error(bob.post(f"{API}/runs/log-metric", json=metric), 403, "PERMISSION_DENIED")
        ok(
            alice.request(
                "DELETE",
                f"{API}/experiments/permissions/delete",
                json={"experiment_id": exp, "username": "bob"},
            )
        )


def test_registered_model_permissions(team: Team):
    with team.client("alice") as alice, team.client("bob") as bob:
        name = unique("model")
        ok(alice.post(f"{RM}/create", json={"name": name}))
        tag = {"name": name, "key": "k", "value": "v"}
        error(bob.post(f"{RM}/set-tag", json=tag), 403, "PERMISSION_DENIED")
        assert ok(bob.get(f"{RM}/get", params={"name": name}))["registered_model"]["name"] == name
        grant = {"name": name, "username": "bob", "permission": "EDIT"}
        ok(alice.post(f"{RM}/permissions/create", json=grant))
        ok(bob.post(f"{RM}/set-tag", json=tag))
        error(bob.request("DELETE", f"{RM}/delete", json={"name": name}), 403, "PERMISSION_DENIED")
        # A version's files must be readable by who registers it.
        exp = _experiment(alice)
        ok(
            alice.post(
                f"{API}/experiments/permissions/create",
                json={"experiment_id": exp, "username": "bob", "permission": "NO_PERMISSIONS"},
            )
        )
        run = _run(alice, exp)
        proxied = run["artifact_uri"] + "/model"
        local = str(team.server.destination / proxied.removeprefix("mlflow-artifacts:/"))
        for where in (f"runs:/{run['run_id']}/model", proxied, local, f"file://{local}"):
            source = {"name": name, "source": where}
            error(bob.post(f"{API}/model-versions/create", json=source), 403, "PERMISSION_DENIED")
        # alice may read the run: she registers it, and bob may copy a version he can read.
        body = {"name": name, "source": proxied}
        registered = ok(alice.post(f"{API}/model-versions/create", json=body))["model_version"]
        assert registered["user_id"] == "alice"
        ok(alice.post(f"{RM}/alias", json={"name": name, "alias": "champion", "version": "1"}))
        ok(
            bob.post(
                f"{API}/model-versions/create",
                json={"name": name, "source": f"models:/{name}@champion"},
            )
        )
        found = ok(bob.get(f"{API}/model-versions/search", params={"filter": f"name = '{name}'"}))
        assert len(found["model_versions"]) == 2
    from flowml.registry.store import get_registry_store

    trail = get_registry_store(str(team.server.store_uri)).get_audit_log(name)
    assert {e.user_id for e in trail} == {"alice", "bob"}  # never the server's OS user


def test_admin_endpoints_need_admin(team: Team):
    with team.client("alice") as alice, team.client("admin") as admin:
        for method, path, body in [
            ("GET", "/users/list", None),
            ("POST", "/users/create", {"username": unique("u")}),
            ("PATCH", "/users/update-admin", {"username": "alice", "is_admin": True}),
            ("DELETE", "/users/delete", {"username": "bob"}),
            ("GET", "/users/get", {"username": "bob"}),
        ]:
            kwargs = {"params": body} if method == "GET" else {"json": body}
            error(alice.request(method, f"{API}{path}", **kwargs), 403, "PERMISSION_DENIED")
        assert team.store.get_user("alice").is_admin is False  # the refused call changed nothing
        assert (
            ok(alice.get(f"{API}/users/get", params={"username": "alice"}))["user"]["username"]
            == "alice"
        )
        names = [u["username"] for u in ok(admin.get(f"{API}/users/list"))["users"]]
        assert {"admin", "alice", "bob"} <= set(names)
        carol = unique("carol")
        assert (
            ok(admin.post(f"{API}/users/create", json={"username": carol}))["user"]["is_admin"]
            is False
        )
        error(
            admin.post(f"{API}/users/create", json={"username": carol}),
            400,
            "RESOURCE_ALREADY_EXISTS",
        )
        ok(admin.request("DELETE", f"{API}/users/delete", json={"username": carol}))
        error(
            admin.request("DELETE", f"{API}/users/delete", json={"username": "admin"}),
            400,
            "BAD_REQUEST",
        )
        # An admin holds MANAGE everywhere.
        exp = _experiment(alice)
        ok(admin.post(f"{API}/experiments/delete", json={"experiment_id": exp}))


def test_writes_outside_any_experiment_directory_need_admin(team: Team):
    with team.client("alice") as alice, team.client("admin") as admin:
        error(alice.put(f"{PROXY}/shared/x.txt", content=b"x"), 403, "PERMISSION_DENIED")
        assert admin.put(f"{PROXY}/shared/x.txt", content=b"x").status_code == 200
        assert alice.get(f"{PROXY}/shared/x.txt").content == b"x"


def _tokens_cli(team: Team, *args: str) -> subprocess.CompletedProcess[str]:
    """``flowml server tokens ARGS`` on the team server's database."""
    store = ["--backend-store-uri", str(team.server.store_uri)]
    command = [sys.executable, "-m", "flowml.cli", "server", "tokens", *args, *store]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_revoked_token_is_refused_at_once(team: Team):
    made = _tokens_cli(team, "create", "--user", "erin", "--name", "ci")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("flowml_") and "not shown again" in made.stderr
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{team.server.url}{API}/users/current"
    assert ok(httpx.get(url, headers=headers, timeout=30))["user"]["username"] == "erin"
    listed = _tokens_cli(team, "list", "--user", "erin", "-o", "json")
    assert token not in listed.stdout and '"name": "ci"' in listed.stdout
    token_id = token.split("_")[1]
    assert _tokens_cli(team, "revoke", token_id).returncode == 0
    error(httpx.get(url, headers=headers, timeout=30), 401, "UNAUTHENTICATED")
    again = _tokens_cli(team, "revoke", token_id)
    assert again.returncode == 1 and "No active token" in again.stderr
    assert (
        '"revoked_time": null'
        not in _tokens_cli(team, "list", "--user", "erin", "-o", "json").stdout
    )


def test_searches_show_only_readable_resources(private: Team):
    with private.client("alice") as alice, private.client("bob") as bob:
        mine, theirs = _experiment(alice), _experiment(bob)
        run_a, run_b = _run(alice, mine), _run(bob, theirs)
        seen = {
            e["experiment_id"]
            for e in ok(alice.post(f"{API}/experiments/search", json={"max_results": 1000}))[
                "experiments"
            ]
        }
        assert mine in seen and theirs not in seen
        runs = ok(alice.post(f"{API}/runs/search", json={"experiment_ids": [mine, theirs]}))["runs"]
        assert [r["info"]["run_id"] for r in runs] == [run_a["run_id"]]
        assert ok(alice.post(f"{API}/runs/search", json={"experiment_ids": [theirs]})) == {
            "runs": []
        }
        error(
            alice.get(f"{API}/runs/get", params={"run_id": run_b["run_id"]}),
            403,
            "PERMISSION_DENIED",
        )
        error(
            alice.get(f"{API}/experiments/get", params={"experiment_id": theirs}),
            403,
            "PERMISSION_DENIED",
        )
        model_a, model_b = unique("ma"), unique("mb")
        ok(alice.post(f"{RM}/create", json={"name": model_a}))
        ok(bob.post(f"{RM}/create", json={"name": model_b}))
        names = {
            m["name"]
            for m in ok(alice.get(f"{RM}/search", params={"max_results": 1000}))[
                "registered_models"
            ]
        }
        assert model_a in names and model_b not in names
        for client, model in ((alice, model_a), (bob, model_b)):
            version = {"name": model, "source": "s3://bucket/model"}
            ok(client.post(f"{API}/model-versions/create", json=version))
        query = {"filter": f"name IN ('{model_a}', '{model_b}')"}
        found = ok(alice.get(f"{API}/model-versions/search", params=query))["model_versions"]
        assert [v["name"] for v in found] == [model_a]
        error(alice.get(f"{RM}/get", params={"name": model_b}), 403, "PERMISSION_DENIED")
        # Granted READ, alice sees bob's experiment too.
        ok(
            bob.post(
                f"{API}/experiments/permissions/create",
                json={"experiment_id": theirs, "username": "alice", "permission": "READ"},
            )
        )
        runs = ok(alice.post(f"{API}/runs/search", json={"experiment_ids": [mine, theirs]}))["runs"]
        assert {r["info"]["run_id"] for r in runs} == {run_a["run_id"], run_b["run_id"]}


def test_every_route_has_a_permission_rule(tmp_path: Path):
    """The rule table is closed: a route added without a rule would be refused to all."""
    from starlette.routing import Mount, Route

    from flowml.server.app import API_PREFIXES, ServerConfig, create_app
    from flowml.server.auth.config import SecurityConfig
    from flowml.server.auth.rules import RULES

    app = create_app(
        ServerConfig(
            f"sqlite:///{tmp_path / 'r.db'}",
            str(tmp_path / "a"),
            security=SecurityConfig(auth="token"),
        )
    )
    uncovered = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static"  # the UI's assets: the same for every user
            continue
        assert isinstance(route, Route)
        if route.path in ("/health", "/version", "/", "/ui-config.json"):
            continue  # public, or the UI's page (authenticated; its data comes by the API)
        if route.name == "auth-admin":
            continue
        for method in route.methods or ():
            if method == "HEAD":
                continue
            path = route.path
            for prefix in (*API_PREFIXES, "/api/3.0", "/ajax-api/3.0"):
                path = path.removeprefix(prefix)
            keys = [
                ("mlflow", path.removeprefix("/mlflow"), method),
                ("flowml", path.removeprefix("/flowml"), method),
                ("raw", path, method),
            ]
            if not any(k in RULES for k in keys):
                uncovered.append((method, route.path))
    assert uncovered == []


def test_workers_inherit_the_security_settings(tmp_path: Path, server_factory):
    """With several workers each process rebuilds the app: auth and hosts must come along."""
    root = tmp_path / "workers"
    root.mkdir()
    store_uri = f"sqlite:///{root / 'flowml.db'}"
    token, _ = AuthStore.open(store_uri).create_token("wendy", create_user=True)
    srv = server_factory(store_uri, root, workers=2, options=["--auth", "token"])
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        for _ in range(6):  # whichever worker answers
            error(client.get(f"{API}/users/current"), 401, "UNAUTHENTICATED")
            assert (
                ok(client.get(f"{API}/users/current", headers=headers))["user"]["username"]
                == "wendy"
            )
            assert client.get("/health", headers={"Host": "evil.example"}).status_code == 403


def test_trace_intake_needs_edit_on_its_experiment(team: Team):
    """OTLP/HTTP spans and MLflow 3's StartTraceV3 write into an experiment: EDIT on it."""
    from tests.tracing.test_otlp import _json_payload

    payload = _json_payload(
        "1af7651916cd43dd8448eb211c80319c", "c7ad6b7169203331", "10f067aa0ba902b7"
    )
    with team.client("alice") as alice, team.client("bob") as bob, team.client(None) as nobody:
        exp = _experiment(alice)
        headers = {"x-mlflow-experiment-id": exp}
        assert nobody.post("/v1/traces", json=payload, headers=headers).status_code == 401
        message = error(
            bob.post("/v1/traces", json=payload, headers=headers), 403, "PERMISSION_DENIED"
        )
        assert "EDIT" in message and exp in message
        start = {
            "trace": {
                "trace_info": {
                    "trace_id": "tr-2af7651916cd43dd8448eb211c80319c",
                    "trace_location": {
                        "type": "MLFLOW_EXPERIMENT",
                        "mlflow_experiment": {"experiment_id": exp},
                    },
                    "request_time": "2026-12-02T10:00:00Z",
                    "state": "OK",
                }
            }
        }
        error(bob.post("/api/3.0/mlflow/traces", json=start), 403, "PERMISSION_DENIED")
        # Nothing bob sent was stored; alice (MANAGE, the creator) writes and bob reads.
        error(
            bob.get("/api/3.0/mlflow/traces/tr-1af7651916cd43dd8448eb211c80319c"),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert alice.post("/v1/traces", json=payload, headers=headers).status_code == 200
        ok(alice.post("/api/3.0/mlflow/traces", json=start))
        info = ok(bob.get("/api/3.0/mlflow/traces/tr-2af7651916cd43dd8448eb211c80319c"))
        assert info["trace"]["trace_info"]["trace_id"] == "tr-2af7651916cd43dd8448eb211c80319c"


def test_token_expiry_from_the_cli(team: Team):
    made = _tokens_cli(team, "create", "--user", "frank", "--expires-in", "30d")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert "expires" in made.stderr
    url = f"{team.server.url}{API}/users/current"
    assert ok(httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30))
    listed = json.loads(_tokens_cli(team, "list", "--user", "frank", "-o", "json").stdout)
    (entry,) = listed
    month = 30 * 86_400_000
    assert entry["expires_time"] - entry["creation_time"] == month and not entry["expired"]

    # A token whose lifetime has run out is refused with 401, and the denial is logged.
    made = _tokens_cli(team, "create", "--user", "frank", "--expires-in", "1s")
    assert made.returncode == 0, made.stderr
    short = made.stdout.strip()
    headers = {"Authorization": f"Bearer {short}"}
    time.sleep(1.2)
    error(httpx.get(url, headers=headers, timeout=30), 401, "UNAUTHENTICATED")
    token_id = short.split("_")[1]
    assert f"token {token_id} expired at" in team.server.log.read_text()
    listed = json.loads(_tokens_cli(team, "list", "--user", "frank", "-o", "json").stdout)
    assert [t["expired"] for t in listed] == [False, True]

    # Bad lifetimes are refused before anything is written.
    for bad in ("0d", "30", "soon"):
        refused = _tokens_cli(team, "create", "--user", "frank", "--expires-in", bad)
        assert refused.returncode == 1 and "--expires-in" in refused.stderr, bad
    assert len(team.store.list_tokens("frank")) == 2
