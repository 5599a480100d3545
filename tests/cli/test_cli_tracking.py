"""The tracking CLI, run as a real `flowml` process against a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_helpers import cli_env

from flowml.tracking.client import TrackingClient


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


def flowml_cli(
    env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "flowml.cli", *args], env=env, capture_output=True, text=True
    )
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def test_experiments_lifecycle(env):
    created = json.loads(flowml_cli(env, "experiments", "create", "demo", "-o", "json").stdout)
    listed = json.loads(flowml_cli(env, "experiments", "list", "-o", "json").stdout)
    assert {e["name"] for e in listed} == {"Default", "demo"}
    flowml_cli(env, "experiments", "delete", created["experiment_id"])
    deleted = json.loads(
        flowml_cli(env, "experiments", "list", "--view", "deleted", "-o", "json").stdout
    )
    assert [e["name"] for e in deleted] == ["demo"]
    flowml_cli(env, "experiments", "restore", created["experiment_id"])
    assert "demo" in flowml_cli(env, "experiments", "list").stdout


def test_errors_are_one_line_and_non_zero(env):
    flowml_cli(env, "experiments", "create", "dup")
    out = flowml_cli(env, "experiments", "create", "dup", ok=False)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("Error: An experiment named 'dup' already exists")
    assert len(out.stderr.strip().splitlines()) == 1
    bad = flowml_cli(env, "runs", "list", "--filter", "metrics.acc >> 1", ok=False)
    assert bad.returncode == 1 and "position" in bad.stderr


def test_runs_list_show_delete_and_artifacts(env, tmp_path: Path):
    client = TrackingClient(env["FLOWML_TRACKING_URI"], env["FLOWML_ARTIFACT_ROOT"])
    exp = client.create_experiment("cli")
    ids = []
    for i in range(3):
        run = client.create_run(exp, run_name=f"r{i}")
        client.log_metric(run.info.run_id, "acc", i / 10)
        client.log_param(run.info.run_id, "lr", "0.01" if i else "0.1")
        ids.append(run.info.run_id)
    client.log_text(ids[2], "hello", "notes/a.txt")

    rows = json.loads(
        flowml_cli(
            env,
            "runs",
            "list",
            "--experiment",
            "cli",
            "--filter",
            "metrics.acc > 0 and params.lr = '0.01'",
            "--order-by",
            "metrics.acc DESC",
            "-o",
            "json",
        ).stdout
    )
    assert [r["info"]["run_name"] for r in rows] == ["r2", "r1"]
    shown = json.loads(flowml_cli(env, "runs", "show", ids[0], "-o", "json").stdout)
    assert shown["data"]["params"] == {"lr": "0.1"}
    assert "r0" in flowml_cli(env, "runs", "show", ids[0]).stdout
    flowml_cli(env, "runs", "delete", ids[0])
    rows = json.loads(flowml_cli(env, "runs", "list", "-e", "cli", "-o", "json").stdout)
    assert ids[0] not in {r["info"]["run_id"] for r in rows}

    listed = json.loads(
        flowml_cli(env, "artifacts", "list", "--run-id", ids[2], "-o", "json").stdout
    )
    assert listed == [{"path": "notes", "is_dir": True, "file_size": None}]
    local = flowml_cli(
        env,
        "artifacts",
        "download",
        "--run-id",
        ids[2],
        "--path",
        "notes/a.txt",
        "--dst-path",
        str(tmp_path / "dl"),
    ).stdout.strip()
    assert Path(local).read_text() == "hello"


def test_db_upgrade(env, tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = flowml_cli(env, "db", "upgrade", "--uri", uri).stdout
    assert "Upgraded database from empty" in first
    assert "already at revision" in flowml_cli(env, "db", "upgrade", "--uri", uri).stdout
