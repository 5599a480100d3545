"""MLflow's validation rules for names, values and batch sizes.

Every check raises `InvalidParameter` with a message naming the offending
key and the rule, before anything reaches a store. The rules are complete: a value
that passes them can only fail to be written for a fault of the store itself, and
every store gives the same answer (text with NUL, which PostgreSQL refuses, or with
a lone surrogate, which no UTF-8 database can hold, is refused everywhere).
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re
import sys
from collections.abc import Iterable

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import Metric

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTRIES = 1000

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# Names already found valid. A run logs the same few keys over and over (one per metric
# point), and the regex + normpath checks dominated the cost of a batch; the set is
# cleared when it grows past a bound so a stream of unique keys cannot grow it forever.
_valid_keys: set[str] = set()
_VALID_KEYS_BOUND = 10_000


def validate_key(kind: str, key: object) -> str:
    """Check a metric/param/tag name; returns it unchanged.

    Raises:
        InvalidParameter: not a string, too long, bad characters, or not a normal relative path.
    """
    if type(key) is str and key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise InvalidParameter(f"{kind} name must be a string, got {type(key).__name__}: {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameter(
            f"{kind} name {key[:40]!r}... is {len(key)} characters long; "
            f"the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidParameter(
            f"Invalid {kind} name {key!r}: names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)"
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise InvalidParameter(
            f"Invalid {kind} name {key!r}: names are used as file paths and must be normal "
            "relative paths (no '..', no leading '/', no empty or '.' segments)"
        )
    if type(key) is str:  # str subclasses may compare equal yet behave differently: not cached
        if len(_valid_keys) >= _VALID_KEYS_BOUND:
            _valid_keys.clear()
        _valid_keys.add(key)
    return key


def validate_text(what: str, text: str) -> str:
    """Refuse text a store cannot hold as given; returns it unchanged.

    Raises:
        InvalidParameter: ``text`` holds a NUL character or a lone surrogate.
    """
    if not text.isascii():  # the common case skips the encode
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidParameter(
                f"{what} holds the lone surrogate {text[exc.start]!r} at position {exc.start}, "
                "which cannot be stored as UTF-8; decode the source text properly (or drop "
                "the character)"
            ) from None
    at = text.find("\x00")
    if at >= 0:
        raise InvalidParameter(
            f"{what} holds a NUL character at position {at}; "
            "remove it (databases cannot store NUL in text)"
        )
    return text


def validate_param_value(key: str, value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidParameter(
            f"Param {key!r} value is {len(text)} characters long; "
            f"the limit is {MAX_PARAM_VALUE_LENGTH}"
        )
    if text.isascii() and "\x00" not in text:  # the common case: no message to build
        return text
    return validate_text(f"Param {key!r} value", text)


def validate_tag_value(key: str, value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameter(
            f"Tag {key!r} value is {len(text)} characters long; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    if text.isascii() and "\x00" not in text:
        return text
    return validate_text(f"Tag {key!r} value", text)


def validate_run_name(name: object) -> str:
    """A run name is stored in a column and as the ``mlflow.runName`` tag."""
    if not isinstance(name, str):
        raise InvalidParameter(f"Run name must be a string, got {type(name).__name__}: {name!r}")
    if len(name) > MAX_KEY_LENGTH:
        raise InvalidParameter(
            f"Run name is {len(name)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    return validate_text("Run name", name)


class CheckedMetrics(tuple[Metric, ...]):
    """Metric points that passed `validate_metrics`: float values, 64-bit int timestamps
    and steps, valid keys. Checked once, where they enter (queued by the buffer, or given
    to a store), and trusted after: `validate_metrics` returns such a tuple unchanged."""

    __slots__ = ()


def validate_metrics(metrics: Iterable[Metric]) -> CheckedMetrics:
    """Check metric points; returns them with values as floats (NaN and ±inf allowed) and
    timestamps and steps as ints, the points already so unchanged.

    Raises:
        InvalidParameter: a key breaks the key rules, or a point breaks `validate_metric`'s.
    """
    if type(metrics) is CheckedMetrics:
        return metrics
    low, high = INT64_MIN, INT64_MAX
    keys: set[str] = set()
    checked = []
    for m in metrics:
        key, value, timestamp, step = m.key, m.value, m.timestamp, m.step
        if key not in keys:
            validate_key("Metric", key)
            keys.add(key)
        # The common case inline (a float, int timestamp and step in range): this loop runs
        # once per point, so a function call per point is a measurable share of a batch.
        if (
            type(value) is float
            and type(timestamp) is int
            and type(step) is int
            and low <= step <= high
            and low <= timestamp <= high
        ):
            checked.append(m)
        else:
            value = validate_metric(key, value, timestamp, step)
            checked.append(Metric(key, value, int(timestamp), int(step)))
    return CheckedMetrics(checked)


def validate_metric(key: str, value: object, timestamp: object, step: object) -> float:
    """Check one metric point; returns the value as a float (NaN and ±inf allowed).

    Raises:
        InvalidParameter: the value is not a real number or does not fit a float64 (an int
            beyond ±1.8e308), or the step or timestamp is not a 64-bit integer.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameter(
            f"Metric {key!r} value must be a real number, got {type(value).__name__}: {value!r}"
        )
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidParameter(f"Metric {key!r} timestamp must be an integer, got {timestamp!r}")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidParameter(f"Metric {key!r} step must be an integer, got {step!r}")
    if not (INT64_MIN <= int(step) <= INT64_MAX and INT64_MIN <= int(timestamp) <= INT64_MAX):
        raise InvalidParameter(f"Metric {key!r} step and timestamp must fit in 64 bits")
    return value if type(value) is float else _as_float(key, value)


def _as_float(key: str, value: float | numbers.Real) -> float:
    try:
        as_float = float(value)
    except (OverflowError, ValueError, TypeError):
        as_float = None
    # A value too large for a float64 either raises or (numpy's long double) quietly
    # becomes infinite: both are refused, only a value that *is* infinite may be stored so.
    if as_float is None or (as_float in (math.inf, -math.inf) and not _is_infinite(value)):
        text = repr(value)
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise InvalidParameter(
            f"Metric {key!r} value {shown} does not fit a 64-bit float "
            f"(|value| <= {sys.float_info.max:.4g}); scale it or log its logarithm"
        )
    return as_float


def _is_infinite(value: float | numbers.Real) -> bool:
    try:
        return bool(value == math.inf or value == -math.inf)
    except Exception:  # an exotic Real that cannot compare with a float: not infinite
        return False


def validate_batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    if n_metrics > MAX_BATCH_METRICS:
        raise InvalidParameter(
            f"A batch may hold at most {MAX_BATCH_METRICS} metrics, got {n_metrics}"
        )
    if n_params > MAX_BATCH_PARAMS:
        raise InvalidParameter(
            f"A batch may hold at most {MAX_BATCH_PARAMS} params, got {n_params}"
        )
    if n_tags > MAX_BATCH_TAGS:
        raise InvalidParameter(f"A batch may hold at most {MAX_BATCH_TAGS} tags, got {n_tags}")
    total = n_metrics + n_params + n_tags
    if total > MAX_BATCH_ENTRIES:
        raise InvalidParameter(
            f"A batch may hold at most {MAX_BATCH_ENTRIES} entries in all, got {total}"
        )


def validate_unique_params(params: Iterable[tuple[str, str]]) -> None:
    """Within one batch a param key may appear twice only with the same value."""
    seen: dict[str, str] = {}
    for key, value in params:
        if key in seen and seen[key] != value:
            raise InvalidParameter(
                f"Param {key!r} appears twice in one batch with different values "
                f"({seen[key]!r} and {value!r}); params are write-once"
            )
        seen[key] = value


def validate_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"Experiment name must be a non-empty string, got {name!r}")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameter(
            f"Experiment name is {len(name)} characters long; "
            f"the limit is {MAX_EXPERIMENT_NAME_LENGTH}"
        )
    return validate_text("Experiment name", name)


def validate_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not re.fullmatch(r"[a-zA-Z0-9_\-]{1,256}", run_id):
        raise InvalidParameter(f"Invalid run id {run_id!r}")
    return run_id
