"""Gates and promotions without Prefect: verdicts, refusals with audit entries, apply and undo."""

from __future__ import annotations

import math

import pytest

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.registry.client import RegistryClient
from flowml.registry.errors import PromotionRefused
from flowml.registry.gates import GateContext, GateResult, beats_champion, metric_at_least
from flowml.registry.promotion import (
    PromotionRecord,
    apply_promotion,
    check_gates,
    plan_promotion,
    refuse,
    undo_promotion,
)
from flowml.registry.report import promotion_markdown


def _version(client: RegistryClient, name: str, **metrics: float) -> int:
    tracking = client.tracking
    run = tracking.create_run("0", run_name=f"{name}-run")
    for key, value in metrics.items():
        tracking.log_metric(run.info.run_id, key, value)
    if not _exists(client, name):
        client.create_registered_model(name)
    return client.create_model_version(name, f"file:///{name}", run_id=run.info.run_id).version


def _exists(client: RegistryClient, name: str) -> bool:
    try:
        client.get_registered_model(name)
    except ResourceNotFound:
        return False
    return True


def test_metric_at_least(client: RegistryClient):
    v1 = _version(client, "churn", auc=0.85)
    v2 = _version(client, "churn", loss=0.1)
    v3 = _version(client, "churn", auc=math.nan)
    gate = metric_at_least("auc", 0.8)
    plan = plan_promotion(client, "churn", v1, "Production")
    [result] = check_gates(client, plan, [gate])
    assert result.passed and result.candidate_value == 0.85 and "reaches" in result.detail
    assert result.gate == "metric_at_least('auc', 0.8)"
    [result] = check_gates(client, plan, [metric_at_least("auc", 0.9)])
    assert not result.passed and "below" in result.detail
    for version in (v2, v3):
        [result] = check_gates(
            client, plan_promotion(client, "churn", version, "Production"), [gate]
        )
        assert not result.passed and "has no metric 'auc'" in result.detail
    # Evaluations (e.g. on held-out data) override the run's metrics.
    [result] = check_gates(client, plan, [gate], evaluations={v1: {"auc": 0.5}})
    assert not result.passed and result.candidate_value == 0.5


def test_beats_champion(client: RegistryClient):
    v1 = _version(client, "churn", auc=0.80, rmse=2.0)
    v2 = _version(client, "churn", auc=0.85, rmse=1.5)
    v3 = _version(client, "churn")
    higher = beats_champion("auc")
    lower = beats_champion("rmse", margin=0.4, higher_is_better=False)
    first = plan_promotion(client, "churn", v1, "champion")
    assert [r.passed for r in check_gates(client, first, [higher, lower])] == [True, True]
    assert "no version holds 'champion'" in check_gates(client, first, [higher])[0].detail
    client.set_registered_model_alias("churn", "champion", v1)
    plan = plan_promotion(client, "churn", v2, "champion")
    assert plan.champion is not None and plan.champion.version == v1
    results = check_gates(client, plan, [higher, lower])
    assert [r.passed for r in results] == [True, True]
    assert (results[0].candidate_value, results[0].champion_value) == (0.85, 0.80)
    tight = beats_champion("rmse", margin=0.6, higher_is_better=False)
    [result] = check_gates(client, plan, [tight])
    assert not result.passed and "does not beat" in result.detail
    # The holder itself is no champion to beat; a candidate without the metric fails.
    assert check_gates(client, plan_promotion(client, "churn", v1, "champion"), [higher])[0].passed
    assert not check_gates(client, plan_promotion(client, "churn", v3, "champion"), [higher])[
        0
    ].passed
    # A champion without the metric has nothing to defend.
    client.set_registered_model_alias("churn", "champion", v3)
    assert check_gates(client, plan_promotion(client, "churn", v2, "champion"), [higher])[0].passed


def test_custom_gates_and_broken_gates(client: RegistryClient):
    v1 = _version(client, "churn", auc=0.9)
    plan = plan_promotion(client, "churn", v1, "Staging")

    def tagged(ctx: GateContext) -> bool:
        return ctx.candidate.tags.get("reviewed") == "yes"

    def explodes(ctx: GateContext) -> GateResult:
        raise RuntimeError("boom")

    def odd(ctx: GateContext) -> str:
        return "yes"

    results = check_gates(client, plan, [tagged, explodes, odd, lambda ctx: True])
    assert [r.passed for r in results] == [False, False, False, True]
    assert "RuntimeError: boom" in results[1].detail
    assert results[0].gate.endswith("tagged")
    with pytest.raises(InvalidParameter):
        check_gates(client, plan, ["not callable"])
    with pytest.raises(InvalidParameter):
        check_gates(client, plan, metric_at_least("auc", 1))  # a gate, not a list
    for bad in (
        lambda: metric_at_least("", 1),
        lambda: metric_at_least("auc", math.inf),
        lambda: metric_at_least("auc", "0.9"),
        lambda: beats_champion("auc", margin=-1),
        lambda: beats_champion("auc", higher_is_better="yes"),
    ):
        with pytest.raises(InvalidParameter):
            bad()


def test_refusal_is_audited_and_typed(client: RegistryClient, store):
    v1 = _version(client, "churn", auc=0.7)
    plan = plan_promotion(client, "churn", v1, "Production")
    results = check_gates(client, plan, [metric_at_least("auc", 0.8), beats_champion("auc")])
    error = refuse(client, plan, results, reason="weekly")
    assert isinstance(error, PromotionRefused) and isinstance(error, InvalidState)
    assert error.error_code == "INVALID_STATE"
    assert (error.name, error.version, error.target) == ("churn", v1, "Production")
    assert "1 gate(s)" in error.message and "metric_at_least('auc', 0.8)" in error.message
    entry = client.get_audit_log("churn")[-1]
    assert (entry.action, entry.version, entry.from_value, entry.to_value, entry.reason) == (
        "promotion_refused",
        v1,
        "None",
        "Production",
        "weekly",
    )
    assert [g["passed"] for g in entry.details["gates"]] == [False, True]
    assert client.get_model_version("churn", v1).current_stage == "None"


def test_plan_targets_and_errors(client: RegistryClient, store, unchanged):
    v1 = _version(client, "churn")
    v2 = _version(client, "churn")
    client.transition_model_version_stage("churn", v1, "Production")
    plan = plan_promotion(client, "churn", str(v2), "production")
    assert (plan.kind, plan.target, plan.holder.version, plan.archive_existing) == (
        "stage",
        "Production",
        v1,
        True,
    )
    assert plan_promotion(client, "churn", v2, "Archived").archive_existing is False
    client.set_registered_model_alias("churn", "challenger", v2)
    assert plan_promotion(client, "churn", "challenger", "champion").candidate.version == v2
    assert plan_promotion(client, "churn", "latest", "champion").candidate.version == v2
    for to in ("latest", "v3", "bad alias", "", None):
        unchanged(InvalidParameter, plan_promotion, client, "churn", v2, to)
    unchanged(
        InvalidParameter, plan_promotion, client, "churn", v2, "champion", archive_existing="no"
    )
    unchanged(InvalidParameter, plan_promotion, client, "churn", 2.5, "champion")
    unchanged(ResourceNotFound, plan_promotion, client, "churn", 9, "champion")
    unchanged(ResourceNotFound, plan_promotion, client, "churn", "nobody", "champion")
    unchanged(ResourceNotFound, plan_promotion, client, "nope", 1, "champion")


def test_apply_and_undo_a_stage_promotion(client: RegistryClient):
    v1, v2, v3 = (_version(client, "churn") for _ in range(3))
    client.transition_model_version_stage("churn", v1, "Production")
    client.transition_model_version_stage("churn", v2, "Production")
    client.transition_model_version_stage("churn", v3, "Staging")
    record = apply_promotion(client, plan_promotion(client, "churn", v3, "Production"), "promote")
    assert record.archived == [(v1, "Production"), (v2, "Production")]
    assert record.previous_stage == "Staging"

    def stages() -> dict[int, str]:
        return {
            mv.version: mv.current_stage for mv in client.search_model_versions("name = 'churn'")
        }

    assert stages() == {v1: "Archived", v2: "Archived", v3: "Production"}
    restored = undo_promotion(client, PromotionRecord.from_dict(record.to_dict()), "rollback")
    assert stages() == {v1: "Production", v2: "Production", v3: "Staging"}
    assert restored["skipped"] == []
    last = client.get_audit_log("churn")[-1]
    assert (last.action, last.version, last.from_value, last.reason) == (
        "promotion_rolled_back",
        v3,
        "Production",
        "rollback",
    )


def test_undo_leaves_later_changes_alone(client: RegistryClient):
    v1, v2, v3 = (_version(client, "churn") for _ in range(3))
    client.set_registered_model_alias("churn", "champion", v1)
    record = apply_promotion(client, plan_promotion(client, "churn", v2, "champion"))
    assert record.previous_alias_version == v1
    client.set_registered_model_alias("churn", "champion", v3)  # someone moved it since
    restored = undo_promotion(client, record)
    assert client.get_model_version_by_alias("churn", "champion").version == v3
    assert restored["skipped"] and "moved since" in restored["skipped"][0]
    fresh = apply_promotion(client, plan_promotion(client, "churn", v2, "challenger"))
    undo_promotion(client, fresh)
    assert "challenger" not in client.get_registered_model("churn").aliases


def test_markdown_report(client: RegistryClient):
    v1 = _version(client, "churn|eu", auc=0.9)
    plan = plan_promotion(client, "churn|eu", v1, "champion")
    results = check_gates(client, plan, [metric_at_least("auc", 0.8)])
    text = promotion_markdown(
        plan,
        results,
        "promoted",
        metrics={"auc": (0.9, None)},
        reason="weekly\nretrain",
        approval="approved by bob",
    )
    assert "**Decision: promoted**" in text
    assert "churn\\|eu" in text and "| auc | 0.9 | - |" in text
    assert "| `metric_at_least('auc', 0.8)` | pass |" in text
    assert "weekly retrain" in text and "approved by bob" in text
    assert "No gates." in promotion_markdown(plan, [], "refused")
