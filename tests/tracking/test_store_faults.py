"""Store faults surface as `StoreError` saying what to do, and leave stored data untouched.

Databases flowml must not use (newer flowml, MLflow, another application, random
bytes), a read-only directory, and a full disk. The read-only directory and the full
disk are real: a tmpfs mounted (and remounted read-only) when the tests run as root, a
directory without write permission otherwise; a process-wide file size limit stands in
for the full disk where mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flowml.exceptions import StoreError
from flowml.tracking.artifacts import ArtifactRepository
from flowml.tracking.entities import Metric, RunTag
from flowml.tracking.store import engine as engines
from flowml.tracking.store import schemes
from flowml.tracking.store.sql import SqlStore

ROOT = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(uri: str) -> dict[str, list[tuple]]:
    """Every table's rows, to show that a refused open wrote nothing."""
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            names = sorted(sa.inspect(conn).get_table_names())
            return {n: sorted(conn.execute(sa.text(f'SELECT * FROM "{n}"')).all()) for n in names}
    finally:
        engine.dispose()


def _prepare(uri: str, statements: list[str]) -> None:
    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


_ALEMBIC = "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
# The shape of MLflow's experiments table (MLflow's SQL store, any 2.x release).
_MLFLOW_EXPERIMENTS = (
    "CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256) NOT NULL "
    "UNIQUE, artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), creation_time "
    "BIGINT, last_update_time BIGINT)"
)

REFUSED = {
    "newer flowml": (
        [_ALEMBIC, "INSERT INTO alembic_version VALUES ('0099_from_the_future')"],
        r"written by a newer flowml .*0099_from_the_future.*Upgrade flowml",
    ),
    "mlflow": (
        [
            _ALEMBIC,
            "INSERT INTO alembic_version VALUES ('4465047574b1')",
            _MLFLOW_EXPERIMENTS,
            "INSERT INTO experiments VALUES (0, 'Default', 'mlruns/0', 'active', 0, 0)",
        ],
        r"is an MLflow tracking store .*not a flowml store, and flowml must not open it",
    ),
    "other application": (
        [_ALEMBIC, "INSERT INTO alembic_version VALUES ('somebody_elses')"],
        r"is not a flowml store .*another application",
    ),
    "clashing tables": (
        ["CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY)", "INSERT INTO runs VALUES ('x')"],
        r"tables named like flowml's \(runs\) but no flowml schema version",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_database_flowml_did_not_write_is_refused_untouched(
    store_uri: str, tmp_path: Path, case: str
):
    statements, message = REFUSED[case]
    _prepare(store_uri, statements)
    before = _snapshot(store_uri)
    with pytest.raises(StoreError, match=message):
        SqlStore(store_uri, str(tmp_path / "artifacts"))
    assert _snapshot(store_uri) == before


def test_an_older_flowml_database_is_still_upgraded(tmp_path: Path):
    from alembic import command
    from alembic.config import Config

    from flowml.tracking.store import migrate

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    with engines.write_transaction(engines.get_engine(uri)) as conn:
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "0002_lineage")
    SqlStore(uri, str(tmp_path / "artifacts"))
    assert _snapshot(uri)["alembic_version"] == [(migrate.HEAD_REVISION,)]


def test_random_bytes_are_refused_untouched(tmp_path: Path):
    (tmp_path / "db").mkdir()
    path = tmp_path / "db" / "store.db"
    path.write_bytes(os.urandom(16384))
    digest = _digest(path)
    with pytest.raises(StoreError, match="not a readable database.*Restore it from a backup"):
        SqlStore(f"sqlite:///{path}", str(tmp_path / "artifacts"))
    assert _digest(path) == digest
    assert os.listdir(tmp_path / "db") == ["store.db"]  # no journal files either


# -- real read-only directories and full disks ------------------------------------------------


def _release() -> None:
    schemes.clear_cache()
    engines.dispose_all()


@contextlib.contextmanager
def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of its own at ``mount`` (needs root), unmounted on exit."""
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        _release()  # pooled SQLite connections would keep the mount busy
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB filesystem, easy to fill."""
    with _tmpfs(tmp_path / "mnt", "2m") as mount:
        yield mount


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A directory and the function that makes it really read-only for this process."""
    if os.geteuid() == 0:  # root ignores permission bits: remount a tmpfs read-only instead
        with _tmpfs(tmp_path / "ro", "4m") as mount:
            remount = ["mount", "-o", "remount,ro", str(mount)]
            yield mount, lambda: subprocess.run(remount, check=True)
        return
    folder = tmp_path / "ro"
    folder.mkdir()

    def set_mode(mode: int) -> None:
        for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            path.chmod(mode)

    try:
        yield folder, lambda: set_mode(0o555)
    finally:
        _release()
        set_mode(0o755)


def test_a_read_only_store_reads_and_refuses_writes(
    read_only_dir: tuple[Path, Callable[[], None]],
):
    folder, lock = read_only_dir
    uri = f"sqlite:///{folder / 'store.db'}"
    store = SqlStore(uri, str(folder / "artifacts"))
    run_id = store.create_run("0", "me").info.run_id
    store.log_batch(run_id, metrics=[Metric("acc", 0.9, 1, 0)])
    repo = ArtifactRepository(store.get_run(run_id).info.artifact_uri)
    repo.write_bytes("notes.txt", b"v1")
    _release()
    lock()
    files = {p: _digest(p) for p in folder.rglob("*") if p.is_file()}

    store = SqlStore(uri, str(folder / "artifacts"))
    assert store.get_run(run_id).data.metrics == {"acc": 0.9}
    assert [r.info.run_id for r in store.search_runs(["0"])] == [run_id]
    assert repo.read_bytes("notes.txt") == b"v1"
    with pytest.raises(StoreError, match="read-only, so this write was refused; reads still work"):
        store.log_batch(run_id, tags=[RunTag("k", "v")])
    with pytest.raises(StoreError, match="read-only"):
        store.create_run("0", "me")
    with pytest.raises(StoreError, match="not writable"):
        repo.write_bytes("notes.txt", b"v2")
    assert {p: _digest(p) for p in folder.rglob("*") if p.is_file()} == files


def test_a_write_refused_by_sqlite_is_a_store_error_on_every_write_path(tmp_path: Path):
    """SQLite itself refusing writes (as for a read-only file a non-root user opens), met
    both by SQLAlchemy statements and by the fast path's raw cursor."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    store = SqlStore(uri, str(tmp_path / "artifacts"))
    run_id = store.create_run("0", "me").info.run_id
    # query_only makes SQLite answer every write with SQLITE_READONLY, the code a
    # read-only database file gives: root cannot make a file read-only for itself.
    sa.event.listen(store.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only=ON"))
    store.engine.dispose()
    before = _snapshot(uri)
    writes = [
        lambda: store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)]),  # fast path
        lambda: store.log_batch(run_id, tags=[RunTag("k", "v")]),  # fast path
        lambda: store.create_run("0", "me"),  # fast path
        lambda: store.create_experiment("new"),  # SQLAlchemy Core
        lambda: store.set_experiment_tag("0", "k", "v"),  # SQLAlchemy Core
    ]
    for write in writes:
        with pytest.raises(StoreError, match="is read-only, so this write was refused"):
            write()
    assert store.get_run(run_id).info.run_id == run_id
    assert _snapshot(uri) == before


def _fill(folder: Path) -> Path:
    """Take every free byte of the filesystem holding ``folder``."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            try:
                while fh.write(b"\0" * size):
                    pass
            except OSError:
                continue
    return filler


def test_a_full_disk_rolls_the_database_write_back(tmpfs: Path):
    store = SqlStore(f"sqlite:///{tmpfs / 'store.db'}", str(tmpfs / "artifacts"))
    run_id = store.create_run("0", "me").info.run_id
    store.log_batch(run_id, metrics=[Metric("kept", 1.0, 1, 0)])
    filler = _fill(tmpfs)
    failed = None
    with pytest.raises(StoreError, match="full disk.*rolled back.*Free some space"):
        for batch in range(50):  # the WAL may still have room for the first batches
            failed = f"m{batch}"
            store.log_batch(run_id, metrics=[Metric(failed, float(i), 1, i) for i in range(1000)])
    filler.unlink()
    assert store.get_metric_history(run_id, failed) == []
    assert [m.value for m in store.get_metric_history(run_id, "kept")] == [1.0]
    store.log_batch(run_id, metrics=[Metric("after", 2.0, 1, 0)])  # the store still works
    assert store.get_run(run_id).data.metrics["after"] == 2.0


def test_a_full_disk_leaves_no_partial_artifact(tmpfs: Path, tmp_path: Path):
    repo = ArtifactRepository(str(tmpfs / "artifacts"))
    repo.write_bytes("model.bin", b"v1")
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))  # more than the whole tmpfs
    with pytest.raises(StoreError, match="No space left to write artifact 'model.bin'"):
        repo.log_artifact(big)
    with pytest.raises(StoreError, match="No space left"):
        repo.write_bytes("other.bin", big.read_bytes())
    assert repo.read_bytes("model.bin") == b"v1"
    assert sorted(os.listdir(tmpfs / "artifacts")) == ["model.bin"]


_FSIZE_CHILD = """
import os, resource, signal, sys
from flowml.exceptions import StoreError
from flowml.tracking.artifacts import ArtifactRepository

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
repo = ArtifactRepository(sys.argv[1])
repo.write_bytes("model.bin", b"v1")
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    repo.write_bytes("model.bin", b"x" * 200_000)
except StoreError as exc:
    print("StoreError:", exc)
"""


def test_a_file_size_limit_leaves_no_partial_artifact(tmp_path: Path):
    root = tmp_path / "artifacts"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FSIZE_CHILD), str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("StoreError: No space left to write artifact 'model.bin'")
    assert sorted(os.listdir(root)) == ["model.bin"]
    assert (root / "model.bin").read_bytes() == b"v1"
