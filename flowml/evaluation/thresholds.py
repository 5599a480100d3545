"""Validation thresholds: the checks that decide whether an evaluated model is good enough.

A `MetricThreshold` says, for one metric, what value the candidate must reach and how much
better than a baseline it must be. `check_thresholds` runs every check and returns them
all (so a refusal lists every reason); `ModelValidationFailed` carries the failed ones.
The semantics are MLflow's ``MetricThreshold``:

- ``threshold``: the candidate's value is ``>=`` it (``<=`` when lower is better);
- ``min_absolute_change``: ``candidate >= baseline + change`` (``<= baseline - change``);
- ``min_relative_change``: ``candidate >= baseline + change * |baseline|`` (or ``-``).

Example:
    >>> thresholds = {"accuracy_score": MetricThreshold(threshold=0.9, greater_is_better=True)}
    >>> [c.passed for c in check_thresholds(thresholds, {"accuracy_score": 0.93})]
    [True]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flowml.exceptions import InvalidParameter, InvalidState

__all__ = [
    "MetricThreshold",
    "ModelValidationFailed",
    "ThresholdCheck",
    "check_thresholds",
    "raise_for_failures",
]


@dataclass(frozen=True)
class MetricThreshold:
    """What one metric must reach (at least one of the three limits is required).

    Attributes:
        threshold: the absolute floor (ceiling when ``greater_is_better`` is False).
        min_absolute_change: how much better than the baseline, in the metric's unit (> 0).
        min_relative_change: how much better than the baseline, as a fraction of it (0..1).
        greater_is_better: required: ``True`` for scores, ``False`` for errors and losses.

    Raises:
        InvalidParameter: a missing or non-boolean ``greater_is_better``, a non-finite
            limit, a change out of range, or no limit at all.

    Example:
        >>> floor = flowml.MetricThreshold(threshold=0.8, greater_is_better=True)
        >>> result = flowml.evaluate(lambda rows: [1, 0], [{"x": 1.0}, {"x": 0.0}], targets=[1, 0],
        ...                          model_type="classifier", evaluators=["metrics"],
        ...                          validation_thresholds={"accuracy_score": floor})
        >>> [check.passed for check in result.validation]
        [True]
    """

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.greater_is_better, bool):
            raise InvalidParameter(
                f"greater_is_better must be True or False, got {self.greater_is_better!r}"
            )
        for label in ("threshold", "min_absolute_change", "min_relative_change"):
            value = getattr(self, label)
            if value is not None:
                object.__setattr__(self, label, _finite(label, value))
        if self.min_absolute_change is not None and self.min_absolute_change <= 0:
            raise InvalidParameter(
                f"min_absolute_change must be positive, got {self.min_absolute_change!r}"
            )
        if self.min_relative_change is not None and not 0 <= self.min_relative_change <= 1:
            raise InvalidParameter(
                f"min_relative_change must be between 0 and 1, got {self.min_relative_change!r}"
            )
        if (self.threshold, self.min_absolute_change, self.min_relative_change) == (None,) * 3:
            raise InvalidParameter(
                "A MetricThreshold needs threshold, min_absolute_change or min_relative_change"
            )


@dataclass(frozen=True)
class ThresholdCheck:
    """The outcome of one check of one metric.

    Attributes:
        metric: the metric key.
        check: ``threshold``, ``min_absolute_change``, ``min_relative_change`` or ``missing``.
        passed: whether the candidate passed.
        candidate: the candidate's value (``None`` when it has none).
        baseline: the baseline's value, for the change checks.
        required: the value the candidate had to reach.
        detail: the verdict in one sentence.
    """

    metric: str
    check: str
    passed: bool
    candidate: float | None
    baseline: float | None
    required: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelValidationFailed(InvalidState):
    """An evaluated model missed one or more validation thresholds.

    Attributes:
        failures: each failed `ThresholdCheck` (its ``detail`` says why).
        run_id: the run the evaluation was logged to, if any.

    Example:
        >>> impossible = {"accuracy_score": flowml.MetricThreshold(1.01, greater_is_better=True)}
        >>> try:
        ...     flowml.evaluate(lambda rows: [1, 0], [{"x": 1.0}, {"x": 0.0}], targets=[1, 0],
        ...                     model_type="classifier", evaluators=["metrics"],
        ...                     validation_thresholds=impossible)
        ... except flowml.ModelValidationFailed as failed:
        ...     print([check.detail for check in failed.failures])
        ['1 misses the threshold >= 1.01']
    """

    def __init__(
        self, message: str, *, failures: list[ThresholdCheck], run_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.run_id = run_id


def check_thresholds(
    thresholds: Mapping[str, MetricThreshold],
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None = None,
) -> list[ThresholdCheck]:
    """Run every check of ``thresholds`` against ``metrics`` (and ``baseline`` for changes).

    Args:
        thresholds: metric key -> `MetricThreshold`.
        metrics: the candidate's metrics.
        baseline: the baseline's metrics; required when a change limit is set.

    Returns:
        One `ThresholdCheck` per limit, in order; a candidate lacking a metric fails with
        ``check="missing"``.

    Raises:
        InvalidParameter: ``thresholds`` is not a mapping of keys to `MetricThreshold`, or a
            change limit is set without a baseline.
    """
    if not isinstance(thresholds, Mapping):
        raise InvalidParameter(
            f"validation_thresholds must map metric names to MetricThreshold, got "
            f"{type(thresholds).__name__}"
        )
    for key, limit in thresholds.items():
        if not isinstance(key, str) or not isinstance(limit, MetricThreshold):
            raise InvalidParameter(
                f"validation_thresholds[{key!r}] must be a MetricThreshold, got {limit!r}"
            )
        needs_baseline = limit.min_absolute_change is not None or (
            limit.min_relative_change is not None
        )
        if needs_baseline and baseline is None:
            raise InvalidParameter(
                f"The threshold of {key!r} sets a minimum change: pass baseline_model= (or a "
                "baseline result) to compare against"
            )
    checks: list[ThresholdCheck] = []
    for key, limit in thresholds.items():
        checks.extend(_checks_of(key, limit, metrics, baseline or {}))
    return checks


def raise_for_failures(checks: list[ThresholdCheck], run_id: str | None = None) -> None:
    """Raise `ModelValidationFailed` listing every failed check, if any failed."""
    failed = [c for c in checks if not c.passed]
    if failed:
        lines = "; ".join(f"{c.metric}: {c.detail}" for c in failed)
        raise ModelValidationFailed(
            f"Model validation failed {len(failed)} check(s): {lines}",
            failures=failed,
            run_id=run_id,
        )


def _checks_of(
    key: str, limit: MetricThreshold, metrics: Mapping[str, float], baseline: Mapping[str, float]
) -> list[ThresholdCheck]:
    mine = _value(metrics, key)
    if mine is None:
        return [ThresholdCheck(key, "missing", False, None, None, None, f"no metric {key!r}")]
    better = ">=" if limit.greater_is_better else "<="
    sign = 1.0 if limit.greater_is_better else -1.0
    out = []
    if limit.threshold is not None:
        ok = mine >= limit.threshold if limit.greater_is_better else mine <= limit.threshold
        out.append(
            ThresholdCheck(
                key,
                "threshold",
                ok,
                mine,
                None,
                limit.threshold,
                f"{mine:g} {'meets' if ok else 'misses'} the threshold {better} "
                f"{limit.threshold:g}",
            )
        )
    theirs = _value(baseline, key)
    for check, change in (
        ("min_absolute_change", limit.min_absolute_change),
        ("min_relative_change", limit.min_relative_change),
    ):
        if change is None:
            continue
        if theirs is None:
            out.append(
                ThresholdCheck(key, check, False, mine, None, None, f"the baseline has no {key!r}")
            )
            continue
        step = change if check == "min_absolute_change" else change * abs(theirs)
        required = theirs + sign * step
        ok = mine >= required if limit.greater_is_better else mine <= required
        out.append(
            ThresholdCheck(
                key,
                check,
                ok,
                mine,
                theirs,
                required,
                f"{mine:g} {'meets' if ok else 'misses'} {better} {required:g} (baseline "
                f"{theirs:g}, {check.replace('_', ' ')} {change:g})",
            )
        )
    return out


def _value(metrics: Mapping[str, float], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _finite(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParameter(f"{label} must be a finite number, got {value!r}")
    return float(value)
