"""``flowml models ...`` registry commands, run as a real `flowml` process against a real store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from subprocess_helpers import cli_env, run_cli

from flowml.registry.client import RegistryClient
from flowml.tracking.client import TrackingClient


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, COLUMNS="250")  # wide tables: no folded cells to search through


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "models", *args, ok=ok)


@pytest.fixture
def logged_run(env: dict[str, str]) -> str:
    """A run holding a model directory (an MLmodel file is what registration checks) and metrics."""
    tracking = TrackingClient(env["FLOWML_TRACKING_URI"], env["FLOWML_ARTIFACT_ROOT"])
    run = tracking.create_run("0", run_name="train")
    tracking.log_text(run.info.run_id, "artifact_path: model\n", "model/MLmodel")
    tracking.log_metric(run.info.run_id, "auc", 0.91)
    tracking.set_tag(run.info.run_id, "flowml.prefect.flow_run_id", "f-123")
    tracking.set_terminated(run.info.run_id)
    return run.info.run_id


def test_register_list_show_versions(env, logged_run):
    created = json.loads(
        cli(
            env,
            "register",
            f"runs:/{logged_run}/model",
            "churn",
            "--tag",
            "team=ml",
            "--reason",
            "first",
            "-o",
            "json",
        ).stdout
    )
    assert created["version"] == "1" and created["run_id"] == logged_run
    cli(env, "register", "file:///elsewhere/model", "churn")
    listed = json.loads(cli(env, "list", "-o", "json").stdout)
    assert [m["name"] for m in listed] == ["churn"]
    assert "churn" in cli(env, "list", "--filter", "name LIKE 'ch%'").stdout
    shown = json.loads(cli(env, "show", "churn", "-o", "json").stdout)
    assert [v["version"] for v in shown["versions"]] == ["2", "1"]
    table = cli(env, "show", "churn").stdout
    assert "Versions" in table and "elsewhere" in table
    found = json.loads(
        cli(env, "versions", "churn", "--filter", "tags.team = 'ml'", "-o", "json").stdout
    )
    assert [v["version"] for v in found] == ["1"]


def test_promote_alias_archive_history(env, logged_run):
    cli(env, "register", f"runs:/{logged_run}/model", "churn")
    cli(env, "register", "file:///other", "churn")
    refused = cli(
        env, "promote", "churn", "1", "--to", "champion", "--min-metric", "auc=0.95", ok=False
    )
    assert "refused" in refused.stderr and "auc" in refused.stderr
    promoted = json.loads(
        cli(
            env,
            "promote",
            "churn",
            "1",
            "--to",
            "champion",
            "--min-metric",
            "auc=0.9",
            "--beats-champion",
            "auc",
            "--reason",
            "good",
            "-o",
            "json",
        ).stdout
    )
    assert promoted["target"] == "champion" and all(g["passed"] for g in promoted["gates"])
    cli(env, "promote", "churn", "2", "--to", "production")
    cli(env, "alias", "churn", "challenger", "2")
    assert "removed" in cli(env, "alias", "churn", "challenger", "--delete").stdout
    cli(env, "archive", "churn", "2", "--reason", "superseded")
    client = RegistryClient(env["FLOWML_TRACKING_URI"], env["FLOWML_TRACKING_URI"])
    assert client.get_model_version_by_alias("churn", "champion").version == 1
    assert client.get_model_version("churn", 2).current_stage == "Archived"
    entries = json.loads(cli(env, "history", "churn", "-o", "json").stdout)
    assert [e["action"] for e in entries] == [
        "model_created",
        "version_registered",
        "version_registered",
        "promotion_refused",
        "alias_set",
        "stage_transitioned",
        "alias_set",
        "alias_deleted",
        "stage_transitioned",
    ]
    assert entries[-1]["reason"] == "superseded" and entries[-1]["to"] == "Archived"
    table = cli(env, "history", "churn").stdout
    assert "alias_set champion" in table


def test_lineage(env, logged_run):
    cli(env, "register", f"runs:/{logged_run}/model", "churn")
    chain = json.loads(cli(env, "lineage", "churn", "1", "-o", "json").stdout)
    assert chain["run"]["info"]["run_id"] == logged_run
    assert chain["model_version"]["version"] == "1"
    uris = {n["uri"] for n in chain["graph"]["nodes"]}
    assert "models:/churn/1" in uris  # registration recorded the version as the run's output
    text = cli(env, "lineage", "churn", "1").stdout
    assert "f-123" in text and logged_run in text
    cli(env, "register", "file:///no-run", "churn")
    assert "not recorded" in cli(env, "lineage", "churn", "2").stdout


@pytest.mark.parametrize(
    "args",
    [
        ("show", "nope"),
        ("versions", "nope"),
        ("history", "nope"),
        ("register", "runs:/0123456789abcdef/model", "churn"),
        ("register", "file:///x", "bad/name"),
        ("register", "file:///x", "churn", "--tag", "no-equals"),
        ("promote", "churn", "7", "--to", "champion"),
        ("promote", "churn", "1", "--to", "latest"),
        ("promote", "churn", "1", "--min-metric", "auc=high"),
        ("alias", "churn", "v1", "1"),
        ("alias", "churn", "champion"),
        ("alias", "churn", "champion", "1", "--delete"),
        ("archive", "churn", "one"),
        ("lineage", "churn", "9"),
        ("list", "--filter", "name = unquoted"),
    ],
)
def test_bad_input_is_a_one_line_error_and_changes_nothing(env, args):
    cli(env, "register", "file:///m", "churn")
    client = RegistryClient(env["FLOWML_TRACKING_URI"], env["FLOWML_TRACKING_URI"])
    before = (
        [mv.to_dict() for mv in client.search_model_versions()],
        client.get_registered_model("churn").to_dict(),
        client.get_audit_log(),
    )
    cli(env, *args, ok=False)
    after = (
        [mv.to_dict() for mv in client.search_model_versions()],
        client.get_registered_model("churn").to_dict(),
        client.get_audit_log(),
    )
    assert after == before
