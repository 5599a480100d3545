"""Symlinks cannot carry artifacts in or out of their confinement.

Source side: a symlink inside a directory being logged that leads outside it.
Destination side: a symlink planted inside a run's artifact root. Every attack is
refused with `ArtifactPathError`, and the test checks that nothing was copied,
written or read across the link.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from flowml.exceptions import ArtifactPathError
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.client import TrackingClient


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_text("keep me")
    return path


def _tree_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- source side: log_artifacts ------------------------------------------------------------


@pytest.mark.parametrize("root_kind", ["local", "memory"])
def test_log_artifacts_refuses_a_symlink_leading_out_before_copying(
    tmp_path: Path, secret: Path, root_kind: str
):
    root = str(tmp_path / "art") if root_kind == "local" else f"memory://l-{uuid.uuid4().hex}"
    repo = ArtifactRepository(root)
    src = tmp_path / "model"
    src.mkdir()
    (src / "a.txt").write_text("A")
    (src / "b.txt").write_text("B")
    (src / "z_link.txt").symlink_to(secret)
    with pytest.raises(ArtifactPathError, match="z_link.txt"):
        repo.log_artifacts(src, "model")
    assert repo.list_artifacts() == []  # not even a.txt and b.txt


def test_log_artifacts_refuses_a_symlinked_directory_leading_out(tmp_path: Path, secret: Path):
    repo = ArtifactRepository(str(tmp_path / "art"))
    src = tmp_path / "model"
    src.mkdir()
    (src / "a.txt").write_text("A")
    (src / "data").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(ArtifactPathError, match="data"):
        repo.log_artifacts(src)
    assert repo.list_artifacts() == []


def test_log_artifacts_checks_every_name_before_copying(tmp_path: Path):
    repo = ArtifactRepository(str(tmp_path / "art"))
    src = tmp_path / "model"
    src.mkdir()
    (src / "a.txt").write_text("A")
    (src / "b.txt").write_text("B")
    (src / "c\\..\\d.txt").write_text("a backslash is a legal Linux file name")
    with pytest.raises(ArtifactPathError):
        repo.log_artifacts(src)
    assert repo.list_artifacts() == []


def test_symlinks_staying_inside_the_logged_directory_are_followed(tmp_path: Path):
    repo = ArtifactRepository(str(tmp_path / "art"))
    src = tmp_path / "model"
    (src / "weights").mkdir(parents=True)
    (src / "weights" / "w.bin").write_bytes(b"\x01")
    (src / "latest.bin").symlink_to(src / "weights" / "w.bin")
    (src / "weights" / "again").symlink_to(src, target_is_directory=True)  # a cycle
    (src / "dangling").symlink_to(src / "nowhere")
    repo.log_artifacts(src)
    assert _tree_files(tmp_path / "art") == ["latest.bin", "weights/w.bin"]
    assert repo.read_bytes("latest.bin") == b"\x01"


# -- destination side: a symlink planted in the artifact root -------------------------------


@pytest.fixture
def client(tmp_path: Path) -> TrackingClient:
    return TrackingClient(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))


def _run_root(client: TrackingClient) -> tuple[str, Path]:
    run = client.create_run("0")
    root = Path(run.info.artifact_uri)
    root.mkdir(parents=True)
    return run.info.run_id, root


def test_writes_do_not_follow_a_planted_directory_symlink(
    client: TrackingClient, tmp_path: Path, secret: Path
):
    rid, root = _run_root(client)
    (root / "notes").symlink_to(secret.parent, target_is_directory=True)
    (tmp_path / "f.txt").write_text("payload")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "g.txt").write_text("payload")
    with pytest.raises(ArtifactPathError, match="symlink"):
        client.log_text(rid, "payload", "notes/secret.txt")
    with pytest.raises(ArtifactPathError, match="symlink"):
        client.log_artifact(rid, tmp_path / "f.txt", "notes")
    with pytest.raises(ArtifactPathError, match="symlink"):
        client.log_artifacts(rid, tmp_path / "dir", "notes")
    assert sorted(os.listdir(secret.parent)) == ["secret.txt"]
    assert secret.read_text() == "keep me"


def test_a_planted_file_symlink_is_replaced_not_written_through(
    client: TrackingClient, secret: Path
):
    rid, root = _run_root(client)
    (root / "readme.md").symlink_to(secret)
    client.log_text(rid, "new text", "readme.md")
    assert secret.read_text() == "keep me"
    assert not (root / "readme.md").is_symlink()
    assert (root / "readme.md").read_text() == "new text"


def test_reads_do_not_follow_a_symlink_leading_out(
    client: TrackingClient, tmp_path: Path, secret: Path
):
    rid, root = _run_root(client)
    (root / "ok.txt").write_text("fine")
    (root / "leak").symlink_to(secret.parent, target_is_directory=True)
    (root / "leak.txt").symlink_to(secret)
    repo = client.artifact_repo(rid)
    for path in ("leak/secret.txt", "leak.txt", "leak", ""):
        with pytest.raises(ArtifactPathError):
            client.download_artifacts(rid, path, tmp_path / "dl")
    assert not (tmp_path / "dl").exists() or _tree_files(tmp_path / "dl") == []
    with pytest.raises(ArtifactPathError):
        repo.read_bytes("leak.txt")
    with pytest.raises(ArtifactPathError):
        client.list_artifacts(rid, "leak")
    with pytest.raises(ArtifactPathError):
        repo.exists("leak/secret.txt")
    assert repo.read_bytes("ok.txt") == b"fine"
    assert [f.path for f in client.list_artifacts(rid)] == ["leak", "leak.txt", "ok.txt"]


def test_delete_removes_a_planted_link_never_its_target(client: TrackingClient, secret: Path):
    rid, root = _run_root(client)
    (root / "leak").symlink_to(secret.parent, target_is_directory=True)
    repo = client.artifact_repo(rid)
    with pytest.raises(ArtifactPathError):
        repo.delete_artifacts("leak/secret.txt")
    repo.delete_artifacts("leak")
    assert not (root / "leak").is_symlink()
    assert secret.read_text() == "keep me"


def test_symlinks_inside_the_root_that_stay_inside_can_be_read(
    client: TrackingClient, tmp_path: Path
):
    rid, root = _run_root(client)
    client.log_text(rid, "v1", "model/weights.txt")
    (root / "latest").symlink_to(root / "model", target_is_directory=True)
    assert client.artifact_repo(rid).read_bytes("latest/weights.txt") == b"v1"
    got = Path(client.download_artifacts(rid, "", tmp_path / "dl"))
    assert _tree_files(got) == ["latest/weights.txt", "model/weights.txt"]
