"""Promotion gates: plain callables that say whether a candidate version may be promoted.

A gate takes a `GateContext` (the candidate, the current holder of the target
stage or alias, and their metrics) and returns a `GateResult` or a bool. Two
ready-made gates cover the usual checks:

- ``metric_at_least("accuracy", 0.9)``: the candidate's metric reaches a threshold;
- ``beats_champion("rmse", margin=0.01, higher_is_better=False)``: the candidate is
  better than the current holder by more than ``margin``.

Metrics come from each version's source run (its latest value per key), unless the
promotion passes ``evaluations`` (e.g. scores on held-out data), which take precedence.

An evaluation result (anything with an ``as_gate()`` method, such as
`flowml.evaluation.EvaluationResult`) is a gate too: it passes when the evaluation scored
the candidate and every validation threshold of it passed.

Example:
    >>> def has_signature(ctx: GateContext) -> bool:
    ...     return ctx.candidate.tags.get("signature") == "yes"
    >>> promote_model("churn", 7, to="champion", gates=[metric_at_least("auc", 0.8), has_signature])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameter
from flowml.registry.entities import ModelVersion

if TYPE_CHECKING:
    from flowml.registry.client import RegistryClient

__all__ = [
    "Gate",
    "GateContext",
    "GateResult",
    "as_gate",
    "beats_champion",
    "gate_name",
    "metric_at_least",
    "run_gates",
]


@dataclass(frozen=True, slots=True)
class GateResult:
    """The verdict of one gate.

    Attributes:
        gate: the gate's name, e.g. ``metric_at_least('auc', 0.8)``.
        passed: whether the candidate passed.
        detail: why, in one sentence.
        candidate_value: the candidate's value of the compared metric, if any.
        champion_value: the current holder's value, if any.
    """

    gate: str
    passed: bool
    detail: str = ""
    candidate_value: float | None = None
    champion_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "detail": self.detail,
            "candidate_value": self.candidate_value,
            "champion_value": self.champion_value,
        }


@dataclass
class GateContext:
    """What a gate may look at.

    Attributes:
        client: the registry client (its ``tracking`` client reads runs).
        name: the registered model.
        candidate: the version to promote.
        champion: the version currently holding the target, ``None`` when there is none
            (or when the candidate already holds it).
        target: the stage or alias being promoted to.
        evaluations: version number -> metric values that override the run's metrics.
    """

    client: RegistryClient
    name: str
    candidate: ModelVersion
    champion: ModelVersion | None
    target: str
    evaluations: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    _cache: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)

    def metrics(self, version: ModelVersion) -> dict[str, float]:
        """A version's metrics: its run's latest values overlaid with ``evaluations``."""
        cached = self._cache.get(version.version)
        if cached is None:
            cached = {}
            if version.run_id:
                cached.update(self.client.tracking.get_run(version.run_id).data.metrics)
            cached.update(
                {k: float(val) for k, val in self.evaluations.get(version.version, {}).items()}
            )
            self._cache[version.version] = cached
        return cached

    def metric(self, version: ModelVersion, key: str) -> float | None:
        """One metric of a version, or ``None`` when it has none (NaN counts as none)."""
        value = self.metrics(version).get(key)
        return None if value is None or math.isnan(value) else value


Gate = Callable[[GateContext], GateResult | bool]


def gate_name(gate: Gate) -> str:
    """How a gate is named in results, reports and the audit trail."""
    return getattr(gate, "__qualname__", None) or getattr(gate, "__name__", None) or repr(gate)


def _named(gate: Callable[[GateContext], GateResult], name: str) -> Gate:
    gate.__name__ = gate.__qualname__ = name
    return gate


def metric_at_least(key: str, threshold: float) -> Gate:
    """A gate passing when the candidate's metric ``key`` is at least ``threshold``.

    Args:
        key: the metric name, e.g. ``"accuracy"``.
        threshold: the lowest acceptable value.

    Returns:
        The gate. A candidate without the metric (or with NaN) fails it.

    Raises:
        InvalidParameter: ``key`` is not a string or ``threshold`` not a finite number.

    Example:
        >>> promote_model("churn", 7, to="Production", gates=[metric_at_least("auc", 0.8)])
    """
    _check_key(key)
    limit = _finite("threshold", threshold)
    name = f"metric_at_least({key!r}, {limit:g})"

    def gate(ctx: GateContext) -> GateResult:
        value = ctx.metric(ctx.candidate, key)
        if value is None:
            return GateResult(name, False, f"version {ctx.candidate.version} has no metric {key!r}")
        passed = value >= limit
        verdict = "reaches" if passed else "is below"
        return GateResult(name, passed, f"{key} = {value:g} {verdict} {limit:g}", value)

    return _named(gate, name)


def beats_champion(key: str, margin: float = 0.0, higher_is_better: bool = True) -> Gate:
    """A gate passing when the candidate beats the current holder of the target on ``key``.

    "Beats" means better by more than ``margin``: ``candidate > champion + margin`` when
    higher is better, ``candidate < champion - margin`` otherwise. With no current
    holder (a first promotion) the gate passes; so it does when the holder lacks the
    metric, since there is nothing to defend. A candidate lacking it fails.

    Args:
        key: the metric name, e.g. ``"rmse"``.
        margin: how much better the candidate must be (>= 0).
        higher_is_better: ``False`` for losses and errors.

    Returns:
        The gate.

    Raises:
        InvalidParameter: a bad key, a negative or non-finite margin.

    Example:
        >>> gate = beats_champion("rmse", higher_is_better=False)
        >>> promote_model("churn", 8, to="champion", gates=[gate])
    """
    _check_key(key)
    delta = _finite("margin", margin)
    if delta < 0:
        raise InvalidParameter(f"margin must be 0 or more, got {margin!r}")
    if not isinstance(higher_is_better, bool):
        raise InvalidParameter(f"higher_is_better must be a bool, got {higher_is_better!r}")
    name = f"beats_champion({key!r}, margin={delta:g}, higher_is_better={higher_is_better})"

    def gate(ctx: GateContext) -> GateResult:
        mine = ctx.metric(ctx.candidate, key)
        if mine is None:
            return GateResult(name, False, f"version {ctx.candidate.version} has no metric {key!r}")
        if ctx.champion is None:
            return GateResult(name, True, f"no version holds {ctx.target!r} yet", mine)
        theirs = ctx.metric(ctx.champion, key)
        if theirs is None:
            return GateResult(
                name, True, f"champion version {ctx.champion.version} has no metric {key!r}", mine
            )
        passed = mine > theirs + delta if higher_is_better else mine < theirs - delta
        relation = "beats" if passed else "does not beat"
        return GateResult(
            name,
            passed,
            f"{key}: {mine:g} {relation} champion version {ctx.champion.version}'s {theirs:g}"
            + (f" by more than {delta:g}" if delta else ""),
            mine,
            theirs,
        )

    return _named(gate, name)


def run_gates(ctx: GateContext, gates: Sequence[Gate]) -> list[GateResult]:
    """Every gate's result, in order. All gates run, so a refusal lists every reason.

    A gate that raises fails with the error as its detail: an unexpected error never
    lets a promotion through. An item with an ``as_gate()`` method (an evaluation result)
    is replaced by the gate it gives.

    Raises:
        InvalidParameter: an item of ``gates`` is not callable.
    """
    if isinstance(gates, (str, bytes)) or not isinstance(gates, Sequence):
        raise InvalidParameter(f"gates must be a list of callables, got {type(gates).__name__}")
    gates = [as_gate(gate) for gate in gates]
    for gate in gates:
        if not callable(gate):
            raise InvalidParameter(f"A gate must be callable, got {gate!r}")
    results = []
    for gate in gates:
        name = gate_name(gate)
        try:
            verdict = gate(ctx)
        except Exception as exc:  # refusing is the safe answer to a broken gate
            results.append(GateResult(name, False, f"the gate raised {type(exc).__name__}: {exc}"))
            continue
        if isinstance(verdict, GateResult):
            results.append(verdict)
        elif isinstance(verdict, bool):
            results.append(GateResult(name, verdict, "passed" if verdict else "returned False"))
        else:
            results.append(
                GateResult(name, False, f"the gate returned {verdict!r}, not a bool or GateResult")
            )
    return results


def as_gate(item: Any) -> Any:
    """``item`` itself, or the gate its ``as_gate()`` gives (evaluation results)."""
    convert = getattr(item, "as_gate", None)
    return convert() if callable(convert) and not callable(item) else item


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"A metric key must be a non-empty string, got {key!r}")


def _finite(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParameter(f"{label} must be a finite number, got {value!r}")
    return float(value)
