"""Registry flow steps: ``register_model`` and ``promote_model`` as Prefect tasks.

Both delegate to `flowml.registry` and add what only Prefect can give:

- the flow and task run ids in every audit entry;
- events that automations can trigger on: ``flowml.model.registered``,
  ``flowml.model.promoted``, ``flowml.model.archived`` (one per version archived by a
  promotion), ``flowml.model.promotion-refused`` and ``flowml.model.promotion-rolled-back``;
- one markdown artifact per promotion decision (comparison table, gates, decision);
- optional human approval: the flow pauses with an approve/reject form in the Prefect UI;
  a rejection or a timeout refuses the promotion (and Prefect fails a flow whose pause
  timed out);
- rollback: inside ``with prefect.transactions.transaction():``, a promotion is undone
  (alias or stages restored, audited) when a later step of the transaction fails.

Example:
    >>> from prefect import flow
    >>> from prefect.transactions import transaction
    >>> from flowml.registry import beats_champion, metric_at_least
    >>> @flow
    ... def release(run_id: str):
    ...     mv = register_model(f"runs:/{run_id}/model", "churn")
    ...     with transaction():
    ...         promote_model("churn", mv.version, to="champion",
    ...                       gates=[metric_at_least("auc", 0.8), beats_champion("auc")],
    ...                       require_approval=True, reason="weekly retrain")
    ...         smoke_test("models:/churn@champion")  # a failure here restores the old champion
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.transactions import Transaction, get_transaction

from flowml.exceptions import InvalidParameter, InvalidState
from flowml.registry.audit import AuditAction, AuditInfo, audit_context
from flowml.registry.client import RegistryClient
from flowml.registry.entities import ModelVersion
from flowml.registry.errors import ApprovalRejected
from flowml.registry.gates import Gate, GateResult, run_gates
from flowml.registry.promotion import (
    PromotionPlan,
    PromotionRecord,
    apply_promotion,
    gate_context,
    plan_promotion,
    refuse,
    undo_promotion,
)
from flowml.registry.report import metric_table, promotion_markdown

__all__ = [
    "EVENT_ARCHIVED",
    "EVENT_PROMOTED",
    "EVENT_PROMOTION_REFUSED",
    "EVENT_PROMOTION_ROLLED_BACK",
    "EVENT_REGISTERED",
    "ApprovalForm",
    "PromotionResult",
    "promote_model",
    "register_model",
]

EVENT_REGISTERED = "flowml.model.registered"
EVENT_PROMOTED = "flowml.model.promoted"
EVENT_ARCHIVED = "flowml.model.archived"
EVENT_PROMOTION_REFUSED = "flowml.model.promotion-refused"
EVENT_PROMOTION_ROLLED_BACK = "flowml.model.promotion-rolled-back"

_TXN_KEY = "flowml.promotion"
DEFAULT_APPROVAL_TIMEOUT_S = 3600


class ApprovalForm(RunInput):
    """The form a reviewer fills in the Prefect UI to resume a paused promotion."""

    approve: bool = False
    comment: str = ""
    reviewer: str = ""


@dataclass
class PromotionResult:
    """What `promote_model` did.

    Attributes:
        name: the registered model.
        version: the promoted version.
        kind: ``"stage"`` or ``"alias"``.
        target: the stage or alias.
        previous: the version that held the target before (``None`` if none).
        archived: versions archived by the promotion.
        gates: each gate's result.
        approval: ``{"reviewer", "comment"}`` when approval was required.
        artifact_key: the key of the Prefect markdown artifact.
    """

    name: str
    version: int
    kind: str
    target: str
    previous: int | None
    archived: list[int] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    approval: dict[str, str] | None = None
    artifact_key: str | None = None


# -- register ----------------------------------------------------------------------------------


@task(name="register-model", task_run_name="register-{name}", cache_policy=NO_CACHE)
def register_model(
    model_uri: str,
    name: str,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    *,
    reason: str | None = None,
    registry_uri: str | None = None,
) -> ModelVersion:
    """Register a model as the next version of ``name`` (created if missing), as a flow step.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, a ``models:/`` URI, a path or an fsspec URL.
        name: the registered model.
        tags: tags of the new version.
        description: description of the new version.
        reason: recorded in the audit trail.
        registry_uri: the registry; ``FLOWML_REGISTRY_URI`` (or the tracking URI) by default.

    Returns:
        The new `ModelVersion`. Emits ``flowml.model.registered``.

    Raises:
        ResourceNotFound: the run or the source version does not exist, or the run has no
            model at that path.
        InvalidParameter: a malformed URI or name.

    Example:
        >>> from prefect import flow
        >>> from flowml.tasks import register_model
        >>> with flowml.start_run() as run:
        ...     _ = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> @flow
        ... def publish(run_id: str):
        ...     return register_model(f"runs:/{run_id}/model", "churn", reason="nightly")
        >>> publish(run.info.run_id).version
        1
    """
    client = RegistryClient(registry_uri)
    with _audit(reason):
        version = client.register_model(model_uri, name, tags, description, reason=reason)
    _emit(EVENT_REGISTERED, version, {"source": version.source, "run_id": version.run_id})
    return version


# -- promote -----------------------------------------------------------------------------------


@task(name="promote-model", task_run_name="promote-{name}-to-{to}", cache_policy=NO_CACHE)
def promote_model(
    name: str,
    version_or_alias: int | str,
    to: str = "Production",
    gates: Sequence[Gate] = (),
    require_approval: bool = False,
    archive_existing: bool = True,
    reason: str | None = None,
    *,
    evaluations: Mapping[int | str, Mapping[str, float]] | None = None,
    approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT_S,
    approval_poll_interval: int = 10,
    registry_uri: str | None = None,
) -> PromotionResult:
    """Promote a version to a stage or an alias, behind gates and an optional human approval.

    Args:
        name: the registered model.
        version_or_alias: the candidate: a version number or an alias (``challenger``).
        to: a stage (``Production``, ``Staging``...) or an alias (``champion``).
        gates: callables judging the candidate (`metric_at_least`, `beats_champion`...).
        require_approval: pause the flow until a reviewer approves in the Prefect UI.
        archive_existing: for Staging/Production, archive the versions already there.
        reason: why; recorded in the audit trail, the artifact and the events.
        evaluations: version -> metrics overriding the run metrics the gates read (e.g.
            scores on held-out data).
        approval_timeout: seconds to wait for a reviewer; no answer rejects.
        approval_poll_interval: seconds between checks for the reviewer's answer.
        registry_uri: the registry; ``FLOWML_REGISTRY_URI`` (or the tracking URI) by default.

    Returns:
        A `PromotionResult`. Emits ``flowml.model.promoted`` (and ``flowml.model.archived``
        per archived version) and publishes a markdown artifact.

    Raises:
        PromotionRefused: a gate failed (audited, with an artifact and an event).
        ApprovalRejected: the reviewer rejected, or nobody answered in time.
        InvalidParameter: a bad target, candidate or argument.
        InvalidState: ``require_approval`` outside a flow run.
        ResourceNotFound: no such model, version or alias.

    Example:
        >>> from prefect import flow
        >>> from flowml.registry import beats_champion
        >>> from flowml.tasks import promote_model
        >>> with flowml.start_run():
        ...     flowml.log_metric("rmse", 0.4)
        ...     _ = flowml.log_model(python_model=lambda rows: rows, name="model",
        ...                          registered_model_name="churn")
        >>> @flow
        ... def weekly():
        ...     return promote_model("churn", 1, to="champion", reason="first model",
        ...                          gates=[beats_champion("rmse", higher_is_better=False)])
        >>> promoted = weekly()
        >>> promoted.version, promoted.kind, promoted.target, promoted.previous
        (1, 'alias', 'champion', None)
    """
    if not isinstance(require_approval, bool):
        raise InvalidParameter(f"require_approval must be a bool, got {require_approval!r}")
    if require_approval:
        _check_positive("approval_timeout", approval_timeout)
        _check_positive("approval_poll_interval", approval_poll_interval)
        if FlowRunContext.get() is None:
            raise InvalidState(
                "require_approval=True needs a flow run to pause: call it from a flow"
            )
    client = RegistryClient(registry_uri)
    with _audit(reason):
        plan = plan_promotion(client, name, version_or_alias, to, archive_existing)
        ctx = gate_context(client, plan, evaluations)
        results = run_gates(ctx, gates)
        metrics = metric_table(ctx)
        report = _Report(plan, results, metrics, reason)
        if not all(r.passed for r in results):
            error = refuse(client, plan, results, reason)
            report.publish("refused by gates")
            _emit(EVENT_PROMOTION_REFUSED, plan.candidate, report.payload("gates"))
            raise error
        approval = None
        if require_approval:
            approval = _ask_approval(client, report, approval_timeout, approval_poll_interval)
        decision: dict[str, Any] = {"gates": [r.to_dict() for r in results]}
        if approval is not None:
            decision["approval"] = approval
        with audit_context(**decision):
            record = apply_promotion(client, plan, reason)
    _remember_for_rollback(client, record)
    try:
        artifact_key: str | None = report.publish("promoted", approval)
    except Exception as exc:  # the promotion happened: a reporting failure must not hide it
        get_run_logger().warning("Could not publish the promotion artifact: %s", exc)
        artifact_key = None
    _emit(
        EVENT_PROMOTED,
        client.get_model_version(name, plan.candidate.version),
        report.payload(None, approval),
    )
    for archived, _ in record.archived:
        _emit(
            EVENT_ARCHIVED,
            client.get_model_version(name, archived),
            {"archived_by": plan.candidate.version, "stage": plan.target, "reason": reason},
        )
    return PromotionResult(
        name=plan.name,
        version=plan.candidate.version,
        kind=plan.kind,
        target=plan.target,
        previous=None if plan.holder is None else plan.holder.version,
        archived=[v for v, _ in record.archived],
        gates=[r.to_dict() for r in results],
        approval=approval,
        artifact_key=artifact_key,
    )


@promote_model.on_rollback
def _rollback_promotion(txn: Transaction) -> None:
    """Undo a promotion when its Prefect transaction rolls back (a later step failed)."""
    saved = txn.get(_TXN_KEY, None)
    if not saved:
        return  # the promotion itself failed: nothing was changed
    client = RegistryClient(saved["registry_uri"], saved["tracking_uri"])
    record = PromotionRecord.from_dict(saved["record"])
    reason = "rolled back: a later step of the Prefect transaction failed"
    with _audit(reason):
        restored = undo_promotion(client, record, reason)
    version = client.get_model_version(record.name, record.version)
    _emit(EVENT_PROMOTION_ROLLED_BACK, version, {"target": record.target, "restored": restored})


# -- helpers -----------------------------------------------------------------------------------


class _Report:
    """The promotion's markdown artifact and event payloads, built from one set of facts."""

    def __init__(
        self,
        plan: PromotionPlan,
        results: list[GateResult],
        metrics: dict[str, tuple[float | None, float | None]],
        reason: str | None,
    ) -> None:
        self.plan, self.results, self.metrics, self.reason = plan, results, metrics, reason
        self.key = _artifact_key(plan.name, plan.target)

    def markdown(self, decision: str, approval: str | None = None) -> str:
        return promotion_markdown(
            self.plan,
            self.results,
            decision,
            metrics=self.metrics,
            reason=self.reason,
            approval=approval,
        )

    def publish(self, decision: str, approval: dict[str, str] | None = None) -> str:
        text = None
        if approval is not None:
            who = approval.get("reviewer") or "a reviewer"
            text = f"approved by {who}" + (
                f": {approval['comment']}" if approval.get("comment") else ""
            )
        create_markdown_artifact(
            self.markdown(decision, text),
            key=self.key,
            description=(
                f"{self.plan.name} v{self.plan.candidate.version} -> {self.plan.target}: {decision}"
            ),
        )
        return self.key

    def payload(
        self, refused_by: str | None, approval: dict[str, str] | None = None
    ) -> dict[str, Any]:
        plan = self.plan
        return {
            "kind": plan.kind,
            "target": plan.target,
            "previous_version": None if plan.holder is None else plan.holder.version,
            "reason": self.reason,
            "gates": [r.to_dict() for r in self.results],
            "refused_by": refused_by,
            "approval": approval,
        }


def _ask_approval(
    client: RegistryClient, report: _Report, timeout: int, poll_interval: int
) -> dict[str, str]:
    plan = report.plan
    version, target = plan.candidate.version, plan.target
    client.log_audit_event(
        plan.name,
        AuditAction.APPROVAL_REQUESTED,
        version=version,
        to_value=target,
        timeout_seconds=timeout,
    )
    form = ApprovalForm.with_initial_data(
        description=report.markdown("awaiting approval"), approve=False
    )
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=poll_interval)
    except FlowPauseTimeout:
        client.log_audit_event(
            plan.name,
            AuditAction.APPROVAL_REJECTED,
            version=version,
            to_value=target,
            timed_out=True,
        )
        report.publish(f"rejected: no approval within {timeout} s")
        _emit(EVENT_PROMOTION_REFUSED, plan.candidate, report.payload("approval timeout"))
        raise ApprovalRejected(
            f"Promotion of {plan.name!r} version {version} to {target!r} rejected: nobody "
            f"approved it within {timeout} s",
            name=plan.name,
            version=version,
            target=target,
            timed_out=True,
            results=report.results,
        ) from None
    decision = {"reviewer": answer.reviewer, "comment": answer.comment}
    with audit_context(user_id=answer.reviewer or None):
        action = AuditAction.APPROVAL_GRANTED if answer.approve else AuditAction.APPROVAL_REJECTED
        client.log_audit_event(plan.name, action, version=version, to_value=target, **decision)
    if not answer.approve:
        report.publish("rejected by the reviewer")
        _emit(EVENT_PROMOTION_REFUSED, plan.candidate, report.payload("reviewer", decision))
        raise ApprovalRejected(
            f"Promotion of {plan.name!r} version {version} to {target!r} rejected by "
            f"{answer.reviewer or 'the reviewer'}"
            + (f": {answer.comment}" if answer.comment else ""),
            name=plan.name,
            version=version,
            target=target,
            comment=answer.comment,
            results=report.results,
        )
    return decision


def _remember_for_rollback(client: RegistryClient, record: PromotionRecord) -> None:
    txn = get_transaction()
    if txn is not None:
        txn.set(
            _TXN_KEY,
            {
                "record": record.to_dict(),
                "registry_uri": client.registry_uri,
                "tracking_uri": client.tracking_uri,
            },
        )


def _audit(reason: str | None) -> AbstractContextManager[AuditInfo]:
    flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
    return audit_context(
        reason=reason,
        flow_run_id=str(flow_ctx.flow_run.id) if flow_ctx and flow_ctx.flow_run else None,
        task_run_id=str(task_ctx.task_run.id) if task_ctx else None,
    )


def _emit(event: str, version: ModelVersion, payload: dict[str, Any]) -> None:
    emit_event(
        event,
        resource={
            "prefect.resource.id": f"flowml.registered-model.{version.name}",
            "prefect.resource.name": version.name,
        },
        related=[
            {
                "prefect.resource.id": f"flowml.model-version.{version.name}.{version.version}",
                "prefect.resource.role": "model-version",
                "prefect.resource.name": f"{version.name} v{version.version}",
            }
        ],
        payload={
            "name": version.name,
            "version": version.version,
            "stage": version.current_stage,
            "aliases": list(version.aliases),
            **payload,
        },
    )


def _artifact_key(name: str, target: str) -> str:
    """``flowml-<model>-<target>-promotion``: one versioned artifact collection per target.

    Prefect keys hold lowercase letters, digits and dashes, at most 100 characters.
    """
    return f"flowml-{_slug(name)[:60].strip('-')}-{_slug(target)[:20].strip('-')}-promotion"


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def _check_positive(label: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameter(f"{label} must be a positive number of seconds, got {value!r}")
