"""``flowml server``: loopback only without auth, defaults from settings, several workers."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flowml.exceptions import InvalidParameter
from flowml.server.serve import check_host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_accepted(host: str):
    check_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_other_hosts_are_refused(host: str):
    with pytest.raises(InvalidParameter, match="without authentication"):
        check_host(host)


def test_cli_refuses_a_public_bind_before_opening_anything(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "never.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowml.cli",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--auth token" in done.stderr
    assert not db.exists()  # refused before the store was opened


def test_defaults_come_from_settings_and_workers_share_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_factory
):
    """No options: the SQLite store and artifact root under FLOWML_HOME; two workers."""
    home = tmp_path / "home"
    monkeypatch.setenv("FLOWML_HOME", str(home))
    srv = server_factory(None, tmp_path / "cwd", workers=2, defaults=True)
    api = f"{srv.url}/api/2.0/mlflow"
    with httpx.Client(timeout=30) as http:
        exp_id = http.post(f"{api}/experiments/create", json={"name": "via-server"}).json()[
            "experiment_id"
        ]
        run = http.post(f"{api}/runs/create", json={"experiment_id": exp_id}).json()["run"]
        root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
        assert (
            http.put(
                f"{srv.url}/api/2.0/mlflow-artifacts/artifacts/{root}/a.txt", content=b"a"
            ).status_code
            == 200
        )
        # Every request, whichever worker answers it, sees the same store.
        for _ in range(6):
            got = http.get(
                f"{api}/experiments/get-by-name", params={"experiment_name": "via-server"}
            )
            assert got.json()["experiment"]["experiment_id"] == exp_id
    assert (home / "flowml.db").exists()
    assert (home / "artifacts" / root / "a.txt").read_bytes() == b"a"

    # The library sees what the server wrote, at the real location.
    from flowml.tracking.client import TrackingClient

    client = TrackingClient()
    stored = client.get_run(run["info"]["run_id"])
    assert stored.info.artifact_uri == str(home / "artifacts" / root)
    client.close()


def test_the_server_runs_on_the_c_http_parser_and_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """httptools and uvloop are dependencies, and `serve` leaves uvicorn to pick them:
    the pure-Python h11 parser costs about three times the CPU per uploaded byte."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from flowml.server.app import ServerConfig
    from flowml.server.serve import serve

    calls: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    serve(ServerConfig(f"sqlite:///{tmp_path / 'c.db'}", str(tmp_path / "artifacts")), port=0)
    ((app, options),) = calls
    config = uvicorn.Config(app, **options)  # type: ignore[arg-type]
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_a_starting_server_freezes_what_it_has_loaded(tmp_path: Path):
    """A worker's startup moves what it has loaded out of the collector's reach
    (`gc.freeze`): full collections during a burst of searches no longer rescan Prefect's
    and SQLAlchemy's modules. In a child process: frozen objects would outlive this test."""
    probe = (
        "import gc, sys; from starlette.testclient import TestClient;"
        "from flowml.server.app import ServerConfig, create_app;"
        "app = create_app(ServerConfig(f'sqlite:///{sys.argv[1]}/x.db', sys.argv[1] + '/a'));"
        "before = gc.get_freeze_count();"
        "client = TestClient(app, base_url='http://127.0.0.1'); client.__enter__();"
        "print(before, gc.get_freeze_count(), client.get('/health').text)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after, health = done.stdout.split()
    assert (int(before), health) == (0, "OK")
    assert int(after) > 50_000  # the modules, classes and functions loaded at startup
