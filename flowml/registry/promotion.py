"""Promotion as plain registry operations: plan, gate, apply, undo.

The Prefect step (`flowml.tasks.promote_model`) adds human approval, events,
artifacts and transaction rollback on top of these; everything here works without
Prefect and writes its own audit entries.

A promotion moves a candidate version to a *target*: a stage (``Production``,
``Staging``...; the other versions in it are archived when ``archive_existing``) or
an alias (``champion``; moved from whichever version held it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry.audit import AuditAction
from flowml.registry.entities import (
    ACTIVE_STAGES,
    STAGE_ARCHIVED,
    ModelVersion,
    canonical_stage,
    is_stage,
)
from flowml.registry.errors import PromotionRefused
from flowml.registry.gates import Gate, GateContext, GateResult, run_gates
from flowml.registry.validation import validate_alias, validate_model_name, validate_version
from flowml.tracking.search import quote_literal

if TYPE_CHECKING:
    from flowml.registry.client import RegistryClient

__all__ = [
    "PromotionPlan",
    "PromotionRecord",
    "apply_promotion",
    "check_gates",
    "gate_context",
    "plan_promotion",
    "refuse",
    "resolve_candidate",
    "undo_promotion",
]

TargetKind = Literal["stage", "alias"]


@dataclass(frozen=True)
class PromotionPlan:
    """What a promotion is about to do.

    Attributes:
        name: the registered model.
        candidate: the version to promote.
        kind: ``"stage"`` or ``"alias"``.
        target: the canonical stage name or the alias.
        holder: the version holding the target now (newest one for a stage), if any.
        archive_existing: archive the stage's other versions (stages Staging/Production).
    """

    name: str
    candidate: ModelVersion
    kind: TargetKind
    target: str
    holder: ModelVersion | None
    archive_existing: bool

    @property
    def champion(self) -> ModelVersion | None:
        """The holder to compare against: ``None`` when the candidate already holds the target."""
        if self.holder is None or self.holder.version == self.candidate.version:
            return None
        return self.holder


@dataclass
class PromotionRecord:
    """What `apply_promotion` changed, with enough of the previous state to undo it.

    Attributes:
        previous_alias_version: for an alias, the version it pointed at before (or ``None``).
        previous_stage: the candidate's stage before.
        archived: ``(version, stage before)`` of every version the promotion archived.
    """

    name: str
    version: int
    kind: TargetKind
    target: str
    previous_stage: str
    previous_alias_version: int | None = None
    archived: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromotionRecord:
        values = dict(data)
        values["archived"] = [(int(v), str(s)) for v, s in values.get("archived", [])]
        return cls(**values)


def resolve_candidate(client: RegistryClient, name: str, version_or_alias: object) -> ModelVersion:
    """The version named by a number (``7``, ``"7"``) or an alias (``challenger``, ``latest``).

    Raises:
        InvalidParameter: neither a version number nor a valid alias.
        ResourceNotFound: no such model, version or alias.
    """
    validate_model_name(name)
    if isinstance(version_or_alias, int) or (
        isinstance(version_or_alias, str) and version_or_alias.isdigit()
    ):
        return client.get_model_version(name, validate_version(version_or_alias))
    if not isinstance(version_or_alias, str):
        raise InvalidParameter(
            f"version_or_alias must be a version number or an alias, got {version_or_alias!r}"
        )
    return client.get_model_version_by_alias(name, version_or_alias)


def plan_promotion(
    client: RegistryClient,
    name: str,
    version_or_alias: object,
    to: str,
    archive_existing: bool = True,
) -> PromotionPlan:
    """Work out a promotion without changing anything.

    Args:
        client: the registry.
        name: the registered model.
        version_or_alias: the candidate, as a version number or an alias.
        to: a stage (any case) or an alias to move.
        archive_existing: for Staging/Production, archive the versions already there.

    Raises:
        InvalidParameter: a bad target (a reserved alias such as ``latest``) or candidate.
        ResourceNotFound: no such model, version or alias.
    """
    if not isinstance(archive_existing, bool):
        raise InvalidParameter(f"archive_existing must be a bool, got {archive_existing!r}")
    if not isinstance(to, str) or not to:
        raise InvalidParameter(f"'to' must be a stage or an alias, got {to!r}")
    kind: TargetKind = "stage" if is_stage(to) else "alias"
    target = canonical_stage(to) if kind == "stage" else validate_alias(to)
    candidate = resolve_candidate(client, name, version_or_alias)
    holder: ModelVersion | None
    if kind == "stage":
        holders = _versions_in_stage(client, name, target)
        others = [mv for mv in holders if mv.version != candidate.version]
        holder = max(others or holders, key=lambda mv: mv.version) if holders else None
    else:
        try:
            holder = client.get_model_version_by_alias(name, target)
        except ResourceNotFound:
            holder = None
    return PromotionPlan(
        name, candidate, kind, target, holder, archive_existing and target in ACTIVE_STAGES
    )


def gate_context(
    client: RegistryClient,
    plan: PromotionPlan,
    evaluations: Mapping[int | str, Mapping[str, float]] | None = None,
) -> GateContext:
    """What the gates of ``plan`` see: its candidate, its champion, and their metrics.

    Args:
        evaluations: version -> metric values overriding the versions' run metrics; a
            value may also be an evaluation result (anything with a ``metrics`` mapping).

    Raises:
        InvalidParameter: ``evaluations`` is not a mapping of version to numbers.
    """
    if evaluations is not None and not isinstance(evaluations, Mapping):
        raise InvalidParameter(f"evaluations must map versions to metrics, got {evaluations!r}")
    normalised: dict[int, dict[str, float]] = {}
    for version, values in (evaluations or {}).items():
        scores = getattr(values, "metrics", None)
        if not isinstance(values, Mapping) and isinstance(scores, Mapping):
            values = scores
        if not isinstance(values, Mapping):
            raise InvalidParameter(f"evaluations[{version!r}] must map metric names to numbers")
        try:
            normalised[validate_version(version)] = {str(k): float(v) for k, v in values.items()}
        except (TypeError, ValueError):
            raise InvalidParameter(f"evaluations[{version!r}] holds a non-numeric value") from None
    return GateContext(client, plan.name, plan.candidate, plan.champion, plan.target, normalised)


def check_gates(
    client: RegistryClient,
    plan: PromotionPlan,
    gates: Sequence[Gate],
    evaluations: Mapping[int | str, Mapping[str, float]] | None = None,
) -> list[GateResult]:
    """Run the gates against the plan's candidate and champion."""
    return run_gates(gate_context(client, plan, evaluations), gates)


def refuse(
    client: RegistryClient, plan: PromotionPlan, results: list[GateResult], reason: str | None
) -> PromotionRefused:
    """Record a gate refusal in the audit trail; returns the error to raise."""
    failed = [r for r in results if not r.passed]
    client.log_audit_event(
        plan.name,
        AuditAction.PROMOTION_REFUSED,
        version=plan.candidate.version,
        from_value=_state(plan),
        to_value=plan.target,
        reason=reason,
        gates=[r.to_dict() for r in results],
    )
    reasons = "; ".join(f"{r.gate}: {r.detail}" for r in failed)
    return PromotionRefused(
        f"Promotion of {plan.name!r} version {plan.candidate.version} to {plan.target!r} refused "
        f"by {len(failed)} gate(s): {reasons}",
        name=plan.name,
        version=plan.candidate.version,
        target=plan.target,
        results=results,
    )


def apply_promotion(
    client: RegistryClient, plan: PromotionPlan, reason: str | None = None
) -> PromotionRecord:
    """Move the candidate to the target; the store writes the audit entries.

    The state to restore is read again here, not taken from the plan: an approval may
    have kept the plan waiting while others changed the registry.

    Returns:
        What changed, for `undo_promotion`.
    """
    candidate = client.get_model_version(plan.name, plan.candidate.version)
    record = PromotionRecord(
        plan.name, candidate.version, plan.kind, plan.target, candidate.current_stage
    )
    if plan.kind == "alias":
        try:
            holder = client.get_model_version_by_alias(plan.name, plan.target).version
        except ResourceNotFound:
            holder = None
        record.previous_alias_version = holder
        client.set_registered_model_alias(plan.name, plan.target, candidate.version, reason=reason)
        return record
    if plan.archive_existing:
        record.archived = sorted(
            (mv.version, mv.current_stage)
            for mv in _versions_in_stage(client, plan.name, plan.target)
            if mv.version != candidate.version
        )
    client.transition_model_version_stage(
        plan.name, candidate.version, plan.target, plan.archive_existing, reason=reason
    )
    return record


def undo_promotion(
    client: RegistryClient, record: PromotionRecord, reason: str | None = None
) -> dict[str, Any]:
    """Put the target back as it was before `apply_promotion`, as far as nobody changed it since.

    Each restoring change is audited as usual, then one ``promotion_rolled_back`` entry
    sums it up.

    Returns:
        What was restored (``{"alias": ..., "stages": {...}, "skipped": [...]}``).
    """
    restored: dict[str, Any] = {"stages": {}, "skipped": []}
    if record.kind == "alias":
        try:
            current = client.get_model_version_by_alias(record.name, record.target).version
        except ResourceNotFound:
            current = None
        if current != record.version:
            restored["skipped"].append(f"alias {record.target!r} moved since (now {current})")
        elif record.previous_alias_version is None:
            client.delete_registered_model_alias(record.name, record.target, reason=reason)
            restored["alias"] = None
        else:
            client.set_registered_model_alias(
                record.name, record.target, record.previous_alias_version, reason=reason
            )
            restored["alias"] = record.previous_alias_version
    else:
        moves = [
            (record.version, record.target, record.previous_stage),
            *((version, STAGE_ARCHIVED, stage) for version, stage in record.archived),
        ]
        for version, expected, previous in moves:
            try:
                now = client.get_model_version(record.name, version).current_stage
            except ResourceNotFound:
                restored["skipped"].append(f"version {version} was deleted")
                continue
            if now != expected:
                restored["skipped"].append(f"version {version} moved to {now!r} since")
                continue
            if now != previous:
                client.transition_model_version_stage(record.name, version, previous, reason=reason)
                restored["stages"][str(version)] = previous
    client.log_audit_event(
        record.name,
        AuditAction.PROMOTION_ROLLED_BACK,
        version=record.version,
        from_value=record.target,
        to_value=None if record.kind == "stage" else _alias_text(restored.get("alias")),
        reason=reason,
        restored=restored,
    )
    return restored


def _versions_in_stage(client: RegistryClient, name: str, stage: str) -> list[ModelVersion]:
    condition = f"name = {quote_literal(name)} and current_stage = {quote_literal(stage)}"
    return list(client.search_model_versions(condition))


def _state(plan: PromotionPlan) -> str | None:
    if plan.kind == "stage":
        return plan.candidate.current_stage
    return None if plan.holder is None else str(plan.holder.version)


def _alias_text(version: object) -> str | None:
    return None if version is None else str(version)
