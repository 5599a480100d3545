"""Task arguments as params and task results as metrics.

Scalars are logged as their value. Everything else is summarised — type, shape or length, and
a content digest — so a task that receives a DataFrame records *which* DataFrame it saw
without storing it:

    X      -> "DataFrame(shape=(178, 13), digest=blake2b:3f1c...)"
    labels -> "list(len=178, digest=blake2b:9a0e...)"
    lr     -> "0.01"
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import numbers
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.digest import digest_bytes, digest_value
from flowml.tracking.entities import Metric, Param
from flowml.tracking.validation import MAX_PARAM_VALUE_LENGTH, validate_key

__all__ = [
    "DEFAULT_MAX_VALUE_LENGTH",
    "ParamPolicy",
    "result_metrics",
    "summarize",
]

DEFAULT_MAX_VALUE_LENGTH = 250
_SMALL_COLLECTION = 20


@dataclasses.dataclass(frozen=True)
class ParamPolicy:
    """Which arguments become params, and how.

    Attributes:
        enabled: log arguments at all.
        include: only these argument names (all when ``None``).
        exclude: never these argument names.
        max_value_length: longer text values are summarised instead of stored.
        summarizer: a function ``value -> str | None`` tried first; ``None`` falls back to
            the built-in summary.
    """

    enabled: bool = True
    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    summarizer: Callable[[Any], str | None] | None = None

    @classmethod
    def from_option(
        cls,
        log_params: bool | Sequence[str],
        exclude: Sequence[str] = (),
        max_value_length: int = DEFAULT_MAX_VALUE_LENGTH,
        summarizer: Callable[[Any], str | None] | None = None,
    ) -> ParamPolicy:
        """Build a policy from the decorators' ``log_params`` option (a bool or names)."""
        if isinstance(log_params, bool):
            return cls(log_params, None, frozenset(exclude), max_value_length, summarizer)
        if isinstance(log_params, str):
            log_params = [log_params]
        return cls(True, frozenset(log_params), frozenset(exclude), max_value_length, summarizer)

    def params(self, arguments: Mapping[str, Any]) -> list[Param]:
        """The params for a call's bound arguments (``**kwargs`` are flattened)."""
        if not self.enabled:
            return []
        out: list[Param] = []
        for name, value in _flatten_kwargs(arguments):
            if self.include is not None and name not in self.include:
                continue
            if name in self.exclude or not valid_key(name):
                continue
            text = self.summarizer(value) if self.summarizer is not None else None
            if text is None:
                text = summarize(value, self.max_value_length)
            out.append(Param(name, text[:MAX_PARAM_VALUE_LENGTH]))
        return out


def _flatten_kwargs(arguments: Mapping[str, Any]):
    for name, value in arguments.items():
        # Prefect binds **kwargs as one argument holding a dict; its entries are the params.
        if name == "kwargs" and isinstance(value, dict) and all(isinstance(k, str) for k in value):
            yield from value.items()
        else:
            yield name, value


def summarize(value: Any, max_length: int = DEFAULT_MAX_VALUE_LENGTH) -> str:
    """A param value for ``value``: itself when short and scalar, else a summary.

    Example:
        >>> summarize(0.01)
        '0.01'
        >>> summarize(list(range(1000)))[:22]
        'list(len=1000, digest='
    """
    text = _scalar_text(value)
    if text is not None:
        if len(text) <= max_length:
            return text
        return f"{type(value).__name__}(len={len(text)}, digest={digest_bytes(text.encode())})"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return _with_digest(f"{type(value).__name__}(shape={shape}", value)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        small = _small_collection_text(value)
        if small is not None and len(small) <= max_length:
            return small
        return _with_digest(f"{type(value).__name__}(len={len(value)}", value)
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__}(len={len(value)}, digest={digest_bytes(value)})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return summarize(dataclasses.asdict(value), max_length)
    return _object_text(value, max_length)


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, numbers.Number) and not hasattr(value, "shape"):
        return str(value)
    if hasattr(value, "shape") and getattr(value, "shape", None) == () and hasattr(value, "item"):
        return str(value.item())  # numpy scalars
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, (uuid.UUID, os.PathLike)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return None


def _small_collection_text(value: Any) -> str | None:
    if len(value) > _SMALL_COLLECTION:
        return None
    items = value.values() if isinstance(value, dict) else value
    if not all(_scalar_text(v) is not None for v in items):
        return None
    try:
        if isinstance(value, (set, frozenset)):
            return json.dumps(sorted(value, key=str), default=str)
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None


def _with_digest(prefix: str, value: Any) -> str:
    digest = digest_value(value)
    if digest is None:
        try:
            digest = digest_bytes(json.dumps(value, default=repr, sort_keys=True).encode())
        except (TypeError, ValueError):
            digest = None
    return f"{prefix}, digest={digest})" if digest else f"{prefix})"


def _object_text(value: Any, max_length: int) -> str:
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if type(value).__repr__ is object.__repr__:
        return kind  # the default repr is only an address: no information
    text = repr(value)
    if len(text) > max_length:
        text = text[: max(max_length - 3, 0)] + "..."
    return text


def result_metrics(result: Any, name: str | None = None) -> dict[str, float]:
    """Metrics for a task's return value: a number, or a mapping's numeric entries.

    Args:
        result: the return value.
        name: the metric name for a number (``"result"`` by default), and the prefix
            (``name.key``) for a mapping's entries when given.

    Example:
        >>> result_metrics({"accuracy": 0.97, "model": "rf"})
        {'accuracy': 0.97}
    """
    if _is_number(result):
        return {name or "result": float(result)}
    if isinstance(result, Mapping):
        out = {}
        for key, value in result.items():
            if isinstance(key, str) and _is_number(value):
                full = f"{name}.{key}" if name else key
                if valid_key(full):
                    out[full] = float(value)
        return out
    return {}


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return not hasattr(value, "shape") or value.shape == ()


def to_metrics(values: Mapping[str, float], timestamp: int) -> list[Metric]:
    return [Metric(k, v, timestamp, 0) for k, v in values.items()]


def valid_key(key: str) -> bool:
    """Whether ``key`` is usable as a metric or param name (others are skipped, not fatal:
    a task must not fail because its result dict has a key MLflow's rules refuse)."""
    try:
        validate_key("Key", key)
    except InvalidParameter:
        return False
    return True
