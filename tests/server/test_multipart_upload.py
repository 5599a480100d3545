"""Multipart uploads through the artifact proxy: MLflow 3's ``mpu`` endpoints, and abuse refused."""

from __future__ import annotations

import hashlib
import textwrap
import uuid

import httpx
import pytest
from test_artifacts_proxy import _raw, _run

MPU = "/api/2.0/mlflow-artifacts/mpu"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _create(http: httpx.Client, path: str, num_parts: int) -> dict:
    directory, _, name = path.rpartition("/")
    body = {"path": f"/home/me/{name}", "num_parts": num_parts}
    reply = http.post(f"{MPU}/create/{directory}", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _put(http: httpx.Client, credential: dict, data: bytes) -> str:
    reply = http.put(credential["url"], content=data, headers=credential["headers"])
    assert reply.status_code == 200, reply.text
    return reply.headers["ETag"]


def test_parts_in_any_order_become_one_artifact(http: httpx.Client, server) -> None:
    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    parts = [bytes([i]) * (300_000 + i) for i in range(4)]
    created = _create(http, f"{root}/model/big.bin", 4)
    credentials = created["credentials"]
    assert [c["part_number"] for c in credentials] == [1, 2, 3, 4]
    assert credentials[0]["url"].startswith(server.url + MPU + "/part/")
    etags = {}
    for i in (2, 0, 3, 1):  # parallel clients finish in any order
        etags[i + 1] = _put(http, credentials[i], parts[i])
    etags[3] = _put(http, credentials[2], parts[2])  # a retried part replaces the first try
    assert not (server.destination / root / "model" / "big.bin").exists()  # nothing before complete
    body = {
        "path": "C:\\data\\big.bin",  # a Windows client's local path: only its name counts
        "upload_id": created["upload_id"],
        "parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3, 4)],
    }
    assert http.post(f"{MPU}/complete/{root}/model", json=body).json() == {}
    assert (server.destination / root / "model" / "big.bin").read_bytes() == b"".join(parts)
    assert http.get(f"{PROXY}/{root}/model/big.bin").content == b"".join(parts)
    # The upload is gone: completing twice, or sending another part, is refused.
    again = http.post(f"{MPU}/complete/{root}/model", json=body)
    assert again.status_code == 404 and again.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert http.put(credentials[0]["url"], content=b"x").status_code == 404


def test_a_bad_completion_writes_nothing(http: httpx.Client, server) -> None:
    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    created = _create(http, f"{root}/m.bin", 2)
    upload_id, (first, second) = created["upload_id"], created["credentials"]
    etag = _put(http, first, b"a" * 1000)

    def complete(path: str, parts: list[dict]) -> httpx.Response:
        directory, _, name = path.rpartition("/")
        body = {"path": name, "upload_id": upload_id, "parts": parts}
        return http.post(f"{MPU}/complete/{directory}", json=body)

    missing = complete(f"{root}/m.bin", [{"part_number": 1}, {"part_number": 2}])
    assert missing.status_code == 400 and "never arrived" in missing.json()["message"]
    _put(http, second, b"b" * 10)
    forged = complete(f"{root}/m.bin", [{"part_number": 1, "etag": '"00"'}, {"part_number": 2}])
    assert forged.status_code == 400 and "ETag" in forged.json()["message"]
    gaps = complete(f"{root}/m.bin", [{"part_number": 1}, {"part_number": 3}])
    assert gaps.status_code == 400
    elsewhere = complete(f"{root}/other.bin", [{"part_number": 1, "etag": etag}])
    assert elsewhere.status_code == 400 and "another path" in elsewhere.json()["message"]
    assert not (server.destination / root / "m.bin").exists()
    assert not (server.destination / root / "other.bin").exists()
    aborted = http.post(f"{MPU}/abort/{root}", json={"path": "m.bin", "upload_id": upload_id})
    assert aborted.status_code == 200
    assert complete(f"{root}/m.bin", [{"part_number": 1}]).status_code == 404
    assert not (server.destination / root / "m.bin").exists()


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%252e%252e/x",
        "a/..%5c..%5cx",
        "/etc/passwd",
    ],
)
def test_escaping_paths_are_refused(server, path: str) -> None:
    status, _ = _raw(server, "POST", f"{MPU}/create/{path}", b'{"path": "x", "num_parts": 1}')
    assert status in (400, 404)


@pytest.mark.parametrize("name", ["..", "a/..", "%2e%2e", "", "/"])
def test_escaping_file_names_are_refused(http: httpx.Client, name: str) -> None:
    reply = http.post(f"{MPU}/create/dir", json={"path": name, "num_parts": 1})
    assert reply.status_code == 400


def test_bad_ids_counts_and_numbers_are_refused(http: httpx.Client) -> None:
    for count in (0, -1, 10_001, "many"):
        body = {"path": "x.bin", "num_parts": count}
        assert http.post(f"{MPU}/create/d", json=body).status_code == 400
    created = _create(http, "x.bin", 1)
    url = created["credentials"][0]["url"]
    assert http.put(url.rsplit("/", 1)[0] + "/0", content=b"x").status_code == 400
    assert http.put(f"{MPU}/part/../../1", content=b"x").status_code in (400, 404)
    assert http.put(f"{MPU}/part/{'z' * 32}/1", content=b"x").status_code == 400
    assert http.put(f"{MPU}/part/{uuid.uuid4().hex}/1", content=b"x").status_code == 404
    bad = http.post(f"{MPU}/abort/d", json={"path": "x.bin", "upload_id": "../../tmp"})
    assert bad.status_code == 400


@pytest.mark.mlflow
def test_mlflow_client_uploads_large_files_in_parts(server, run_mlflow_against, tmp_path) -> None:
    script = textwrap.dedent(
        """
        import hashlib, os, sys
        import mlflow
        os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = str(1024 * 1024)
        os.environ["MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"] = str(1024 * 1024)
        data = os.urandom(3 * 1024 * 1024 + 123)
        with open("big.bin", "wb") as fh:
            fh.write(data)
        mlflow.set_experiment(sys.argv[1])
        with mlflow.start_run() as run:
            mlflow.log_artifact("big.bin", "blobs")
        down = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="blobs/big.bin", dst_path="down"
        )
        assert open(down, "rb").read() == data
        print(run.info.artifact_uri, hashlib.sha256(data).hexdigest())
        """
    )
    out = run_mlflow_against(server.url, script, f"mpu-{uuid.uuid4().hex[:8]}")
    artifact_uri, digest = out.split()[-2:]
    stored = server.destination / artifact_uri.removeprefix("mlflow-artifacts:/") / "blobs"
    assert hashlib.sha256((stored / "big.bin").read_bytes()).hexdigest() == digest
    assert "/mpu/part/" in server.log.read_text()  # it went in parts, not one PUT


def _proxy_fs(server, **sizes):
    from flowml.tracking.artifacts_proxy import ProxyFileSystem
    from flowml.tracking.store.rest_http import HttpTransport

    return ProxyFileSystem(HttpTransport(server.url), **sizes)


def _mpu_requests(server) -> list[str]:
    return [
        line for line in server.log.read_text().splitlines() if "/mlflow-artifacts/mpu/" in line
    ]


def test_flowml_client_uploads_large_files_in_parts(http: httpx.Client, server, tmp_path) -> None:
    import os

    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    fs = _proxy_fs(server, multipart_threshold=1024 * 1024, part_size=1024 * 1024)
    big = tmp_path / "big.bin"
    data = os.urandom(2 * 1024 * 1024 + 123)  # three parts, the last one short
    big.write_bytes(data)
    before = len(_mpu_requests(server))
    fs.put_file(str(big), f"{root}/model/weights.bin")
    sent = _mpu_requests(server)[before:]
    assert sum("/mpu/create/" in line for line in sent) == 1
    assert sum("/mpu/part/" in line for line in sent) == 3
    assert sum("/mpu/complete/" in line for line in sent) == 1
    assert (server.destination / root / "model" / "weights.bin").read_bytes() == data
    fetched = tmp_path / "back.bin"
    fs.get_file(f"{root}/model/weights.bin", str(fetched))
    assert fetched.read_bytes() == data

    # At or below the threshold: one plain PUT, no multipart request.
    small = tmp_path / "small.bin"
    small.write_bytes(data[: 1024 * 1024])
    before = len(_mpu_requests(server))
    fs.put_file(str(small), f"{root}/small.bin")
    assert len(_mpu_requests(server)) == before
    assert (server.destination / root / "small.bin").read_bytes() == data[: 1024 * 1024]


def test_a_failed_part_aborts_the_upload_and_writes_nothing(
    http: httpx.Client, server, tmp_path
) -> None:
    from flowml.exceptions import InvalidParameter

    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    fs = _proxy_fs(server, multipart_threshold=1024 * 1024, part_size=1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 * 1024 * 1024))
    sent = fs.http.send

    def fail_second_part(method, path, **kwargs):
        if "/mpu/part/" in path and path.endswith("/2"):
            raise InvalidParameter("simulated part failure")
        return sent(method, path, **kwargs)

    fs.http.send = fail_second_part  # type: ignore[method-assign]
    before = len(_mpu_requests(server))
    with pytest.raises(InvalidParameter, match="simulated"):
        fs.put_file(str(big), f"{root}/broken.bin")
    assert any("/mpu/abort/" in line for line in _mpu_requests(server)[before:])
    assert not (server.destination / root / "broken.bin").exists()


def test_part_urls_on_another_host_are_refused_before_any_byte_is_sent(
    http: httpx.Client, server, tmp_path
) -> None:
    from flowml.exceptions import InvalidParameter

    root = _run(http)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    fs = _proxy_fs(server, multipart_threshold=1024 * 1024, part_size=1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    asked, sent = fs.http.json, fs.http.send
    puts: list[str] = []

    def redirect_parts(method, path, body=None, **kwargs):
        reply = asked(method, path, body, **kwargs)
        for credential in reply.get("credentials", []):
            credential["url"] = "http://attacker.invalid:9/collect"  # a hostile server's answer
        return reply

    def record(method, path, **kwargs):
        puts.append(path)
        return sent(method, path, **kwargs)

    fs.http.json = redirect_parts  # type: ignore[method-assign]
    fs.http.send = record  # type: ignore[method-assign]
    before = len(_mpu_requests(server))
    with pytest.raises(InvalidParameter, match="another host"):
        fs.put_file(str(big), f"{root}/stolen.bin")
    assert not any("attacker" in p for p in puts)
    assert any("/mpu/abort/" in line for line in _mpu_requests(server)[before:])
    assert not (server.destination / root / "stolen.bin").exists()
