"""The markdown report of a promotion: the candidate against the champion, the gates, the decision.

The Prefect step publishes it as a markdown artifact; the approval form shows it to
the reviewer. Plain text in, plain text out: no Prefect here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from flowml.exceptions import FlowMLError
from flowml.registry.gates import GateContext, GateResult
from flowml.registry.promotion import PromotionPlan

__all__ = ["metric_table", "promotion_markdown"]

MAX_TABLE_METRICS = 30


def metric_table(ctx: GateContext) -> dict[str, tuple[float | None, float | None]]:
    """metric -> (candidate value, champion value) for the comparison table.

    The candidate's metrics first (at most 30, by name); a metric only the champion
    has is listed too, so a missing candidate metric is visible.
    """
    try:
        mine = ctx.metrics(ctx.candidate)
        theirs = ctx.metrics(ctx.champion) if ctx.champion is not None else {}
    except FlowMLError:  # e.g. a deleted source run: the gates already said so
        return {}
    keys = sorted(set(mine) | set(theirs))[:MAX_TABLE_METRICS]
    return {k: (ctx.metric(ctx.candidate, k), _maybe(ctx, k)) for k in keys}


def _maybe(ctx: GateContext, key: str) -> float | None:
    return None if ctx.champion is None else ctx.metric(ctx.champion, key)


def promotion_markdown(
    plan: PromotionPlan,
    results: Sequence[GateResult],
    decision: str,
    *,
    metrics: dict[str, tuple[float | None, float | None]] | None = None,
    reason: str | None = None,
    approval: str | None = None,
) -> str:
    """A markdown report of one promotion.

    Args:
        plan: the promotion.
        results: the gates' results.
        decision: e.g. ``"promoted"``, ``"refused by gates"``, ``"awaiting approval"``.
        metrics: metric -> (candidate value, champion value), for the comparison table.
        reason: the reason given for the promotion.
        approval: the approval outcome, if approval was required.

    Returns:
        The markdown text.
    """
    candidate, champion = plan.candidate, plan.champion
    lines = [
        f"# Promotion of `{_cell(plan.name)}` version {candidate.version} "
        f"to `{_cell(plan.target)}`",
        "",
        f"**Decision: {decision}**",
        "",
        f"- target: {plan.kind} `{_cell(plan.target)}`",
        f"- candidate: version {candidate.version} (stage {candidate.current_stage}, "
        f"run `{candidate.run_id or '-'}`)",
        "- champion: "
        + (
            f"version {champion.version} (run `{champion.run_id or '-'}`)"
            if champion is not None
            else "none"
        ),
    ]
    if plan.kind == "stage" and plan.archive_existing:
        lines.append(f"- other versions in {plan.target} are archived")
    if reason:
        lines.append(f"- reason: {_cell(reason)}")
    if approval:
        lines.append(f"- approval: {_cell(approval)}")
    if metrics:
        lines += ["", "## Metrics", "", "| metric | candidate | champion |", "|---|---|---|"]
        for key in sorted(metrics):
            mine, theirs = metrics[key]
            lines.append(f"| {_cell(key)} | {_number(mine)} | {_number(theirs)} |")
    lines += ["", "## Gates", ""]
    if results:
        lines += ["| gate | result | detail |", "|---|---|---|"]
        for r in results:
            verdict = "pass" if r.passed else "**fail**"
            lines.append(f"| `{_cell(r.gate)}` | {verdict} | {_cell(r.detail)} |")
    else:
        lines.append("No gates.")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.6g}"


def _cell(text: str) -> str:
    # Pipes and newlines would break the table; backticks would break code spans.
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
