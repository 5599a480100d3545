"""The example flows users start from: flows/train.py end to end, and the scheduled deployment
of flows/retrain_scheduled.py (built, not served)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import flowml
from flowml.tasks import tags as ptags
from flowml.tracking.entities import RunStatus

from .helpers import by_name, runs_of

FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(FLOWS))
    return importlib.import_module("train"), importlib.import_module("retrain_scheduled")


@pytest.mark.usefixtures("prefect")
def test_the_training_flow_trains_two_models_and_keeps_the_best(client, examples, capsys):
    train, _ = examples
    best = train.main(["--n-estimators", "5", "--test-size", "0.3"])
    assert best["best_model"] in train.MODELS and 0.5 < best["accuracy"] <= 1.0

    printed = capsys.readouterr().out
    assert "flowml runs list --experiment wine" in printed and "Prefect UI" in printed
    runs = runs_of(client, "wine")
    (flow_run,) = [r for r in runs if r.data.tags[ptags.RUN_KIND] == "flow"]
    assert flow_run.info.status == RunStatus.FINISHED
    assert flow_run.data.params["n_estimators"] == "5"
    assert flow_run.data.tags["best_model"] == best["best_model"]
    tasks = by_name([r for r in runs if r.data.tags[ptags.RUN_KIND] == "task"])
    assert {"train-random_forest", "train-logistic_regression"} <= set(tasks)
    assert {"evaluate-random_forest", "evaluate-logistic_regression"} <= set(tasks)
    assert len(tasks) == 8 and {r.info.status for r in tasks.values()} == {RunStatus.FINISHED}
    rf = tasks["train-random_forest"]
    assert rf.data.params["hyperparams"] == '{"n_estimators": 5, "random_state": 42}'
    assert "data" not in rf.data.params

    (pick,) = [r for name, r in tasks.items() if name.startswith("pick_best")]
    graph = flowml.lineage(pick.info.run_id)
    upstream = {r.info.run_name for r in graph.upstream_runs()}
    assert {"train-random_forest", "evaluate-logistic_regression"} <= upstream
    assert any(n.kind == "dataset" and n.label == "sklearn-wine" for n in graph.upstream())
    models = [n for n in flowml.lineage(rf.info.run_id).downstream() if n.kind == "model"]
    assert [m.uri for m in models] == [f"runs:/{rf.info.run_id}/model"]
    from sklearn.datasets import load_wine

    loaded = flowml.load_model(f"runs:/{rf.info.run_id}/model")
    assert len(loaded.predict(load_wine(as_frame=True).data.head(2))) == 2

    # the best model is registered, and its version serves through a models:/ URI
    assert best["model_version"] == 1 and "Registered as version 1" in printed
    version = flowml.RegistryClient().get_model_version("wine", 1)
    assert version.run_id == tasks[f"train-{best['best_model']}"].info.run_id
    registered = flowml.load_model("models:/wine/1")
    assert len(registered.predict(load_wine(as_frame=True).data.head(2))) == 2
    assert best["holdout_uri"].endswith("/holdout.csv")


@pytest.mark.usefixtures("prefect")
def test_retraining_chains_training_and_champion_challenger(client, examples):
    _, retrain = examples
    first = retrain.retrain_and_promote(n_estimators=5)
    assert first["model_version"] == 1 and first["promoted"] is True
    registry = flowml.RegistryClient()
    assert registry.get_model_version_by_alias("wine", "champion").version == 1
    second = retrain.retrain_and_promote(n_estimators=5, margin=0.5)  # cannot win by 0.5
    assert second["model_version"] == 2 and second["promoted"] is False
    assert "beats_champion" in second["refusal"]
    assert registry.get_model_version_by_alias("wine", "champion").version == 1
    actions = [entry.action for entry in registry.get_audit_log("wine")]
    assert actions == [
        "model_created",
        "version_registered",
        "alias_set",
        "version_registered",
        "promotion_refused",
    ]


def test_the_scheduled_retraining_is_a_cron_deployment_of_the_retraining_flow(examples):
    _, retrain = examples
    deployment = retrain.build_deployment(cron="*/30 * * * *", parameters={"n_estimators": 50})
    assert deployment.name == "retrain-wine"
    assert deployment.flow_name == retrain.retrain_and_promote.name == "retrain-and-promote"
    assert deployment.entrypoint.endswith("retrain_scheduled.py:retrain_and_promote")
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "*/30 * * * *"
    assert deployment.parameters == {"n_estimators": 50}
    assert "retrain" in deployment.tags
    assert deployment.concurrency_limit == 1  # a slow retraining makes the next one wait
