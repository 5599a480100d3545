"""``flowml prompts ...`` run as a real `flowml` process against a real SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_helpers import run_cli

from flowml import genai


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FLOWML_TRACKING_URI", uri)
    return {**os.environ, "FLOWML_HOME": str(tmp_path / "home"), "COLUMNS": "250"}


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "prompts", *args, ok=ok)


def test_list_show_versions_and_alias(env: dict[str, str]):
    genai.register_prompt("qa", "Answer {{question}}", commit_message="first")
    genai.register_prompt("qa", [{"role": "user", "content": "{{question}}"}], "chat form")
    listed = json.loads(cli(env, "list", "-o", "json").stdout)
    assert listed == [{"name": "qa", "latest_version": 2, "aliases": {}, "tags": {}}]
    moved = cli(env, "alias", "qa", "production", "1").stdout
    assert "prompts:/qa@production -> version 1" in moved
    shown = cli(env, "show", "prompts:/qa@production").stdout
    assert "prompts:/qa/1  (text)" in shown and "Answer {{question}}" in shown
    assert "production" in shown
    chat = json.loads(cli(env, "show", "prompts:/qa/2", "-o", "json").stdout)
    assert chat["template"] == [{"role": "user", "content": "{{question}}"}]
    versions = json.loads(cli(env, "versions", "qa", "-o", "json").stdout)
    assert [(v["version"], v["aliases"]) for v in versions] == [(2, []), (1, ["production"])]
    assert "chat form" in cli(env, "versions", "qa").stdout
    cli(env, "alias", "qa", "production", "--delete")
    assert genai.load_prompt("qa", version=1).aliases == []


def test_models_list_leaves_prompts_to_prompts_list(env: dict[str, str]):
    from flowml.registry.client import RegistryClient

    genai.register_prompt("qa", "Answer {{question}}")
    RegistryClient().create_registered_model("churn")
    models = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "models", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert models.returncode == 0, models.stderr
    assert [m["name"] for m in json.loads(models.stdout)] == ["churn"]
    prompts = json.loads(cli(env, "list", "-o", "json").stdout)
    assert [p["name"] for p in prompts] == ["qa"]


def test_errors_are_one_line_and_change_nothing(env: dict[str, str]):
    genai.register_prompt("qa", "{{q}}")
    assert "No prompt named 'nope'" in cli(env, "show", "prompts:/nope/1", ok=False).stderr
    assert "Malformed prompt URI" in cli(env, "show", "prompts:/qa/one", ok=False).stderr
    assert "VERSION" in cli(env, "alias", "qa", "prod", ok=False).stderr
    cli(env, "alias", "qa", "latest", "1", ok=False)
    assert genai.load_prompt("qa").aliases == []
