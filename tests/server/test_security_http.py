"""One test per class of attack MLflow's server has had CVEs for, against a real server.

Path traversal in every artifact endpoint (``..``, absolute paths, percent-encoding, double
encoding, backslashes, ``;`` and ``#``), a model version ``source`` pointing at server files,
unpickling in the server process, oversized bodies, DNS rebinding (the ``Host`` header),
cross-origin calls (CORS) and binding a public interface without authentication.
"""

from __future__ import annotations

import http.client
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowml.exceptions import InvalidParameter
from flowml.server.serve import check_host
from tests.server.conftest import FlowmlServer
from tests.server.wire_helpers import API, error, ok, unique

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = b"server-secret"


def _raw(
    server: FlowmlServer,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` byte for byte (httpx would normalise dot segments away)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        skip_host = "Host" in (headers or {})  # the test's own Host header, sent alone
        conn.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


# -- paths ----------------------------------------------------------------------------------

DEEP = "../" * 6
PATH_CLASSES = {
    "dot-dot": ["../outside.txt", f"{DEEP}outside.txt", "a/../../outside.txt"],
    "absolute": ["{absolute}", "/etc/passwd"],
    "percent-encoded": ["%2e%2e/outside.txt", "%2e%2e%2f" * 6 + "outside.txt"],
    "double-encoded": ["%252e%252e/outside.txt", "%252e%252e%252f" * 6 + "outside.txt"],
    "backslash": ["..%5coutside.txt", "..\\" * 6 + "outside.txt", "%5c..%5coutside.txt"],
    "semicolon": ["..;/outside.txt", "..;/" * 6 + "outside.txt", "..%3b/" * 6 + "outside.txt"],
    "hash": [
        "..%23/" * 6 + "outside.txt",
        "%23/" + DEEP + "outside.txt",
        "#/" + DEEP + "outside.txt",
    ],
}


@pytest.fixture(scope="module")
def targets(server: FlowmlServer) -> list[tuple[str, str]]:
    """Every endpoint taking an artifact path: ``(method, target with {p})``."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        exp = ok(client.post(f"{API}/experiments/create", json={"name": unique("sec")}))[
            "experiment_id"
        ]
        run = ok(client.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"]
        model = ok(client.post(f"{API}/logged-models", json={"experiment_id": exp}))["model"]
    run_id, model_id = run["run_id"], model["info"]["model_id"]
    return [
        ("GET", f"{PROXY}/{{p}}"),
        ("PUT", f"{PROXY}/{{p}}"),
        ("DELETE", f"{PROXY}/{{p}}"),
        ("GET", f"{PROXY}?path={{p}}"),
        ("GET", f"{API}/artifacts/list?run_id={run_id}&path={{p}}"),
        (
            "GET",
            f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
            "?artifact_file_path={p}",
        ),
        (
            "GET",
            f"{API}/logged-models/{model_id}/artifacts/directories?artifact_directory_path={{p}}",
        ),
    ]


def _files_outside(root: Path, destination: Path) -> set[Path]:
    return {
        p
        for p in root.rglob("*")
        if p.is_file()
        and destination not in p.parents
        and not p.name.startswith(("flowml.db", "server-"))
    }


@pytest.mark.parametrize("attack", sorted(PATH_CLASSES))
def test_artifact_paths_stay_in_the_destination(
    server: FlowmlServer, targets: list[tuple[str, str]], attack: str
):
    destination = server.destination
    assert destination is not None
    root = destination.parent
    outside = root / "outside.txt"
    outside.write_bytes(SECRET)
    before = _files_outside(root, destination)
    for vector in PATH_CLASSES[attack]:
        vector = vector.replace("{absolute}", str(outside))
        for method, template in targets:
            target = template.replace("{p}", vector)
            status, _, body = _raw(
                server, method, target, b"overwritten" if method == "PUT" else b""
            )
            assert SECRET not in body, (method, target)
            assert status != 500 and not (
                method == "GET"
                and status == 200
                and "files" not in target
                and "path=" not in target
            ), (method, target, status, body)
            assert outside.read_bytes() == SECRET, (method, target)
    assert _files_outside(root, destination) == before


def test_model_version_sources_never_resolve_to_server_files(http: httpx.Client, server):
    destination = server.destination
    name = unique("src")
    ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    for source in [
        f"{destination}/../outside.txt",
        f"file://{destination}/../outside.txt",
        f"file://{destination}/%2e%2e/outside.txt",
        f"{destination}/a/..\\..\\..\\outside.txt",
        f"file://localhost{destination}/x",
        f"{destination}-sibling/model",
    ]:
        reply = http.post(f"{API}/model-versions/create", json={"name": name, "source": source})
        error(reply, 400, "INVALID_PARAMETER_VALUE")
    found = ok(http.get(f"{API}/model-versions/search", params={"filter": f"name = '{name}'"}))
    assert found.get("model_versions", []) == []
    # ``..;`` is an ordinary directory name on POSIX (not Tomcat's path parameter): kept
    # below the destination, and sent back only in the proxied form.
    # The same for a double-encoded dot: one decoding (the proxy's) leaves ``%2e``, refused.
    for source, name_on_disk in [
        (f"{destination}/..;/outside.txt", "..;"),
        ("mlflow-artifacts:/%252e%252e/outside.txt", "%252e%252e"),
    ]:
        body = {"name": name, "source": source}
        version = ok(http.post(f"{API}/model-versions/create", json=body))["model_version"]
        assert version["source"] == f"mlflow-artifacts:/{name_on_disk}/outside.txt"
        assert destination in (destination / name_on_disk / "outside.txt").resolve().parents


# -- unpickling -----------------------------------------------------------------------------


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(self.marker), "w"))


def test_the_server_never_unpickles(http: httpx.Client, server, tmp_path: Path):
    """Every server route touching a model's files hands out bytes, never loads them."""
    marker = tmp_path / "unpickled"
    bomb = pickle.dumps(_Bomb(marker))
    exp = ok(http.post(f"{API}/experiments/create", json={"name": unique("pkl")}))["experiment_id"]
    run = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"]
    root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    mlmodel = (
        b"flavors:\n  python_function:\n    loader_module: flowml.models.flavors.sklearn\n"
        b"    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n"
    )
    for name, data in (("model/model.pkl", bomb), ("model/MLmodel", mlmodel)):
        assert http.put(f"{PROXY}/{root}/{name}", content=data).status_code == 200
    model = unique("pkl-model")
    ok(http.post(f"{API}/registered-models/create", json={"name": model}))
    source = f"runs:/{run['run_id']}/model"
    version = ok(http.post(f"{API}/model-versions/create", json={"name": model, "source": source}))
    number = version["model_version"]["version"]
    ok(http.get(f"{API}/model-versions/get", params={"name": model, "version": number}))
    ok(
        http.get(
            f"{API}/model-versions/get-download-uri", params={"name": model, "version": number}
        )
    )
    assert http.get(f"{PROXY}/{root}/model/model.pkl").content == bomb
    ok(http.get(f"{API}/artifacts/list", params={"run_id": run["run_id"], "path": "model"}))
    logged = ok(
        http.post(
            f"{API}/logged-models", json={"experiment_id": exp, "source_run_id": run["run_id"]}
        )
    )["model"]
    location = logged["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert http.put(f"{PROXY}/{location}/model.pkl", content=bomb).status_code == 200
    files = f"/ajax-api/2.0/mlflow/logged-models/{logged['info']['model_id']}/artifacts/files"
    assert http.get(files, params={"artifact_file_path": "model.pkl"}).content == bomb
    assert not marker.exists()


def test_server_code_has_no_way_to_unpickle():
    """No server module imports a loader: loading models is the client's business."""
    package = Path(__file__).resolve().parents[2] / "flowml" / "server"
    loaders = re.compile(r"\b(c?pickle|joblib|load_pyfunc|load_model|torch\.load|flowml\.models)\b")
    offenders = [
        (str(p.relative_to(package)), found.group(0))
        for p in package.rglob("*.py")
        for found in loaders.finditer(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    probe = (
        "import sys, tempfile; from flowml.server.app import ServerConfig, create_app;"
        "d = tempfile.mkdtemp(); create_app(ServerConfig(f'sqlite:///{d}/x.db', d + '/a'));"
        "loaders = ('flowml.models', 'cloudpickle', 'joblib', 'sklearn');"
        "print(sorted(m for m in sys.modules if m.startswith(loaders)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# -- request size ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_uploads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowmlServer]:
    from tests.server.conftest import start_server

    root = tmp_path_factory.mktemp("limits")
    srv = start_server(
        f"sqlite:///{root / 'flowml.db'}",
        root,
        options=[
            "--max-upload-mb",
            "1",
            "--allowed-hosts",
            "127.0.0.1,*.flowml.test",
            "--cors-allowed-origins",
            "http://ui.flowml.test",
        ],
    )
    yield srv
    srv.stop()


def test_bodies_over_the_limit_get_413(server, small_uploads: FlowmlServer):
    status, _, body = _raw(
        server,
        "POST",
        f"{API}/runs/log-batch",
        headers={"Content-Length": str(17 * 1024 * 1024), "Content-Type": "application/json"},
    )
    assert status == 413 and b"limit" in body
    target = f"{PROXY}/0/big.bin"
    status, _, body = _raw(
        small_uploads, "PUT", target, headers={"Content-Length": str(2 * 1024 * 1024)}
    )
    assert status == 413
    assert b"BAD_REQUEST" in body

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 65536

    with httpx.Client(base_url=small_uploads.url, timeout=60) as client:
        reply = client.put(target, content=chunks())
        error(reply, 413, "BAD_REQUEST")
        assert client.put(f"{PROXY}/0/small.bin", content=b"x" * 1000).status_code == 200
    assert not list(small_uploads.destination.rglob("big.bin*"))  # type: ignore[union-attr]
    log = small_uploads.log.read_text()
    assert "denied user=- PUT" in log and "denied: Upload is larger" in log


# -- Host header, CORS, binding -------------------------------------------------------------


def test_host_header_attack_is_refused(server, small_uploads: FlowmlServer):
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example:5000", ""):
        status, _, body = _raw(server, "GET", f"{API}/experiments/search", headers={"Host": host})
        assert status == 403 and b"PERMISSION_DENIED" in body and b"--allowed-hosts" in body, host
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        assert _raw(server, "GET", "/health", headers={"Host": host})[0] == 200
    # A configured list replaces the loopback names; patterns match subdomains.
    assert _raw(small_uploads, "GET", "/health", headers={"Host": "ml.flowml.test"})[0] == 200
    assert _raw(small_uploads, "GET", "/health", headers={"Host": "localhost"})[0] == 403
    assert "Host header 'evil.example' is not allowed" in server.log.read_text()


def test_cors_is_off_unless_configured(server, small_uploads: FlowmlServer):
    origin = {"Origin": "http://ui.flowml.test"}
    _, headers, _ = _raw(server, "GET", f"{API}/experiments/search", headers=origin)
    assert "access-control-allow-origin" not in headers
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    status, headers, _ = _raw(server, "OPTIONS", f"{API}/runs/create", headers=preflight)
    assert "access-control-allow-origin" not in headers and status != 200
    _, headers, _ = _raw(small_uploads, "GET", f"{API}/experiments/search", headers=origin)
    assert headers["access-control-allow-origin"] == "http://ui.flowml.test"
    status, headers, _ = _raw(small_uploads, "OPTIONS", f"{API}/runs/create", headers=preflight)
    assert status == 200 and headers["access-control-allow-origin"] == "http://ui.flowml.test"
    other = {"Origin": "http://evil.example"}
    _, headers, _ = _raw(small_uploads, "GET", f"{API}/experiments/search", headers=other)
    assert "access-control-allow-origin" not in headers


def test_without_auth_there_are_no_user_endpoints(http: httpx.Client):
    for path in ("/users/list", "/users/current"):
        error(http.get(f"{API}{path}"), 404, "ENDPOINT_NOT_FOUND")


def test_a_public_bind_needs_an_auth_mode():
    with pytest.raises(InvalidParameter, match="--auth token"):
        check_host("0.0.0.0")
    check_host("0.0.0.0", auth="token")
    check_host("127.0.0.1")
