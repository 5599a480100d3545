"""The artifact proxy and ``artifacts/list``: round trips, and every escape attempt refused."""

from __future__ import annotations

import http.client
import uuid
from pathlib import Path

import httpx
import pytest

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _run(http: httpx.Client) -> dict:
    reply = http.post(f"{API}/experiments/create", json={"name": f"art-{uuid.uuid4().hex[:8]}"})
    exp_id = reply.json()["experiment_id"]
    return http.post(f"{API}/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"]


def _raw(server, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send ``path`` byte for byte (httpx would normalise dot segments away)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or b"")
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_upload_download_and_list_round_trip(http: httpx.Client, server):
    info = _run(http)
    root = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    payload = bytes(range(256)) * 5000  # 1.28 MB, several chunks each way
    assert http.put(f"{PROXY}/{root}/model/weights.bin", content=payload).json() == {}
    assert http.put(f"{PROXY}/{root}/notes.txt", content=b"hello").status_code == 200

    got = http.get(f"{PROXY}/{root}/model/weights.bin")
    assert got.status_code == 200 and got.content == payload
    stored = server.destination / root / "model" / "weights.bin"
    assert stored.read_bytes() == payload  # under the destination, at the run's real location

    listed = http.get(PROXY, params={"path": root}).json()["files"]
    assert listed == [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]
    run_listing = http.get(
        f"{API}/artifacts/list", params={"run_id": info["run_id"], "path": "model"}
    ).json()
    assert run_listing["root_uri"] == info["artifact_uri"]
    assert run_listing["files"] == [
        {"path": "model/weights.bin", "is_dir": False, "file_size": len(payload)}
    ]

    missing = http.get(f"{PROXY}/{root}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert http.get(f"{PROXY}/{root}/model").status_code == 404  # a directory is not a file

    assert http.delete(f"{PROXY}/{root}/notes.txt").status_code == 200
    assert not (server.destination / root / "notes.txt").exists()
    refused = http.delete(f"{PROXY}/")
    assert refused.status_code == 400 and server.destination.exists()


TRAVERSALS = [
    "../outside.txt",
    "%2e%2e/outside.txt",
    "%2E%2E%2Foutside.txt",
    "%252e%252e/outside.txt",
    "%252e%252e%252foutside.txt",
    "..%5coutside.txt",
    "%5c..%5coutside.txt",
    "/outside.txt",  # absolute: //outside.txt after the prefix
    "%2foutside.txt",
    "a/../../outside.txt",
    "a/%2e%2e/%2e%2e/outside.txt",
    "C:%5coutside.txt",
    "..%00/outside.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_proxy_refuses_paths_leaving_the_destination(server, path: str):
    outside = server.destination.parent / "outside.txt"
    outside.write_text("secret")
    status, body = _raw(server, "GET", f"{PROXY}/{path}")
    assert status == 400 and b"secret" not in body
    assert b"INVALID_PARAMETER_VALUE" in body
    status, body = _raw(server, "PUT", f"{PROXY}/{path}", b"overwritten")
    assert status == 400, body
    assert outside.read_text() == "secret"
    status, _ = _raw(server, "DELETE", f"{PROXY}/{path}")
    assert status == 400 and outside.exists()
    assert not list(server.destination.rglob("outside.txt*"))


@pytest.mark.parametrize("path", ["..", "../", "a/../..", "%2e%2e", "/etc", "..\\x"])
def test_listings_refuse_paths_leaving_the_destination(http: httpx.Client, path: str):
    reply = http.get(PROXY, params={"path": path})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    run_id = _run(http)["run_id"]
    reply = http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": path})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_symlink_out_of_the_destination_is_not_followed(http: httpx.Client, server):
    secret_dir = server.destination.parent / "secret-dir"
    secret_dir.mkdir(exist_ok=True)
    (secret_dir / "key.txt").write_text("secret")
    server.destination.mkdir(parents=True, exist_ok=True)
    link = server.destination / f"link-{uuid.uuid4().hex[:6]}"
    link.symlink_to(secret_dir, target_is_directory=True)
    got = http.get(f"{PROXY}/{link.name}/key.txt")
    assert got.status_code == 400 and b"secret" not in got.content
    assert http.put(f"{PROXY}/{link.name}/new.txt", content=b"x").status_code == 400
    assert not (secret_dir / "new.txt").exists()
    assert http.get(PROXY, params={"path": link.name}).status_code == 400


def test_experiment_location_confined_to_the_destination(http: httpx.Client, tmp_path: Path):
    for location in ("mlflow-artifacts:/../escape", "mlflow-artifacts://evil.example/x"):
        reply = http.post(
            f"{API}/experiments/create",
            json={"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": location},
        )
        assert reply.status_code == 400, location
        assert reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # A location elsewhere is stored as given, as MLflow does, but the server never lists it.
    elsewhere = tmp_path / "elsewhere"
    reply = http.post(
        f"{API}/experiments/create",
        json={"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": str(elsewhere)},
    )
    exp_id = reply.json()["experiment_id"]
    run = http.post(f"{API}/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"]
    assert run["artifact_uri"].startswith(str(elsewhere))
    listing = http.get(f"{API}/artifacts/list", params={"run_id": run["run_id"]})
    assert listing.status_code == 400
    assert "outside this server's artifact destination" in listing.json()["message"]


def test_an_upload_cut_off_midway_leaves_nothing(http: httpx.Client, server):
    import socket
    import time

    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    path = f"{PROXY}/{root}/cut/weights.bin"
    declared = 20 * 1024 * 1024  # above the in-memory size: streamed to disk
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n\r\n"
        sock.sendall(head.encode() + b"x" * (2 * 1024 * 1024))
    folder = server.destination / root / "cut"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and folder.exists() and any(folder.iterdir()):
        time.sleep(0.2)  # the server notices the disconnect and removes its temporary file
    assert not folder.exists() or not any(folder.iterdir())
    assert http.get(path).status_code == 404
