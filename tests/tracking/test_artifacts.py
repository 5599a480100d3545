"""Artifacts through fsspec: local paths, file://, memory:// and a real S3 server on loopback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from flowml.exceptions import ArtifactPathError, ResourceNotFound
from flowml.tracking.artifacts import ArtifactRepository, download_uri, safe_artifact_path
from flowml.tracking.client import TrackingClient


@pytest.fixture(params=["local", "file", "memory", "s3"])
def artifact_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = request.param
    if kind == "local":
        return str(tmp_path / "art")
    if kind == "file":
        return f"file://{tmp_path / 'art'}"
    if kind == "memory":
        return f"memory://flowml-{uuid.uuid4().hex}"
    request.getfixturevalue("s3_env")
    import s3fs

    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem().mkdir(bucket)
    return f"s3://{bucket}/artifacts"


@pytest.fixture
def client(tmp_path: Path, artifact_root: str) -> TrackingClient:
    return TrackingClient(f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_root)


def _tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("A")
    (root / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (root / "sub" / "deeper" / "c.json").write_text('{"c": 1}')
    return root


def test_log_list_download_round_trip(client: TrackingClient, tmp_path: Path, artifact_root: str):
    run = client.create_run("0")
    rid = run.info.run_id
    assert run.info.artifact_uri == f"{artifact_root}/0/{rid}/artifacts"
    local = _tree(tmp_path / "src")
    client.log_artifact(rid, local / "a.txt")
    client.log_artifact(rid, local / "a.txt", "copies")
    client.log_artifacts(rid, local / "sub", "tree")
    assert [(f.path, f.is_dir) for f in client.list_artifacts(rid)] == [
        ("a.txt", False),
        ("copies", True),
        ("tree", True),
    ]
    assert [f.path for f in client.list_artifacts(rid, "tree")] == ["tree/b.bin", "tree/deeper"]
    sizes = {f.path: f.file_size for f in client.list_artifacts(rid, "copies")}
    assert sizes == {"copies/a.txt": 1}
    dst = Path(client.download_artifacts(rid, "tree", tmp_path / "dl"))
    assert (dst / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((dst / "deeper" / "c.json").read_text()) == {"c": 1}
    single = Path(client.download_artifacts(rid, "copies/a.txt", tmp_path / "dl2"))
    assert single.read_text() == "A"
    assert client.list_artifacts(rid, "missing") == []
    with pytest.raises(ResourceNotFound):
        client.download_artifacts(rid, "missing", tmp_path / "dl3")


def test_log_text_and_dict(client: TrackingClient, tmp_path: Path):
    rid = client.create_run("0").info.run_id
    client.log_text(rid, "héllo", "notes/readme.md")
    client.log_dict(rid, {"a": [1, 2]}, "conf/params.json")
    client.log_dict(rid, {"b": {"c": 3}}, "conf/params.yaml")
    repo = client.artifact_repo(rid)
    assert repo.read_bytes("notes/readme.md").decode() == "héllo"
    assert json.loads(repo.read_bytes("conf/params.json")) == {"a": [1, 2]}
    assert yaml.safe_load(repo.read_bytes("conf/params.yaml")) == {"b": {"c": 3}}


ESCAPES = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "..",
    "a\\..\\b",
    "%2e%2e/x",
    "a/%2E%2E/b",
    "a%2fb",
    "C:/windows",
    "s3://other/bucket",
    "a/\x00b",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_escaping_the_root_are_refused(client: TrackingClient, tmp_path: Path, path: str):
    rid = client.create_run("0").info.run_id
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ArtifactPathError):
        client.log_artifact(rid, tmp_path / "f.txt", path)
    with pytest.raises(ArtifactPathError):
        client.log_text(rid, "x", path)
    with pytest.raises(ArtifactPathError):
        client.download_artifacts(rid, path, tmp_path / "dl")
    with pytest.raises(ArtifactPathError):
        client.list_artifacts(rid, path)
    assert client.list_artifacts(rid) == []  # nothing was written anywhere in the run


def test_outside_the_root_stays_untouched(tmp_path: Path):
    root = tmp_path / "root"
    secret = tmp_path / "secret.txt"
    secret.write_text("keep")
    repo = ArtifactRepository(str(root))
    with pytest.raises(ArtifactPathError):
        repo.write_bytes("../secret.txt", b"overwritten")
    assert secret.read_text() == "keep"


@pytest.mark.parametrize(
    "path,expected", [("", ""), (".", ""), ("a/b", "a/b"), ("a//b/", "a/b"), ("./a", "a")]
)
def test_safe_artifact_path_normalises(path: str, expected: str):
    assert safe_artifact_path(path) == expected


def test_missing_local_inputs(client: TrackingClient, tmp_path: Path):
    rid = client.create_run("0").info.run_id
    with pytest.raises(ResourceNotFound):
        client.log_artifact(rid, tmp_path / "nope.txt")
    with pytest.raises(ResourceNotFound):
        client.log_artifacts(rid, tmp_path / "nodir")


def test_download_uri(tmp_path: Path):
    local = _tree(tmp_path / "src")
    assert download_uri(str(local)) == str(local)
    repo = ArtifactRepository(f"memory://dl-{uuid.uuid4().hex}")
    repo.log_artifacts(local, "model")
    got = Path(download_uri(repo.uri_for("model"), tmp_path / "out"))
    assert (got / "a.txt").read_text() == "A"
    with pytest.raises(ResourceNotFound):
        download_uri(str(tmp_path / "missing"))
