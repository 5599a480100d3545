"""Scorers: functions that judge one row of a GenAI evaluation, and the heuristic built-ins.

A scorer receives what it names among ``inputs``, ``outputs``, ``expectations``, ``trace``
and ``latency`` (seconds the prediction took, flowml's addition until traces carry it) and
returns a bool, a number, a string or a `Feedback`. ``@scorer`` turns a function into one:

    >>> @scorer
    ... def is_short(outputs) -> bool:
    ...     return len(outputs) < 200

Built-ins: `exact_match`, `contains`, `regex_match`, `string_similarity` (against
``expectations["expected_response"]``, MLflow's key), `latency` and `token_count`.
LLM judges (correctness, relevance, groundedness, safety, guidelines) are in
`flowml.genai.judges`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, overload

from flowml.exceptions import InvalidParameter

__all__ = [
    "EXPECTED_RESPONSE",
    "Feedback",
    "Scorer",
    "contains",
    "exact_match",
    "latency",
    "regex_match",
    "scorer",
    "string_similarity",
    "token_count",
]

EXPECTED_RESPONSE = "expected_response"
ARGUMENTS = ("inputs", "outputs", "expectations", "trace", "latency")
MAX_PATTERN_LENGTH = 1000
_NAME = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")


@dataclass(frozen=True)
class Feedback:
    """One scorer's verdict on one row.

    Attributes:
        value: a bool, a number or a string (``None`` when the scorer failed or abstained).
        rationale: why, when the scorer says.
        error: what went wrong, when the scorer raised (the row is kept, never the run lost).

    Example:
        >>> from flowml import genai
        >>> @genai.scorer
        ... def polite(outputs):
        ...     return genai.Feedback(value="please" in outputs, rationale="looked for 'please'")
        >>> result = genai.evaluate([{"inputs": {"q": "?"}, "outputs": "Wait, please"}], [polite])
        >>> result.result_df[["polite/value", "polite/rationale"]].values.tolist()
        [[True, "looked for 'please'"]]
    """

    value: Any = None
    rationale: str | None = None
    error: str | None = None


class Scorer:
    """A named scoring function.

    Args:
        fn: the function; it is called with the arguments it names among ``inputs``,
            ``outputs``, ``expectations``, ``trace`` and ``latency``.
        name: the metric prefix (default: the function's name).

    Raises:
        InvalidParameter: ``fn`` takes an argument that is none of those, or a bad name.

    Example:
        >>> from flowml import genai
        >>> length = genai.Scorer(lambda outputs: len(outputs), name="length")
        >>> genai.evaluate([{"inputs": {"q": "?"}, "outputs": "four"}], [length]).metrics
        {'length/mean': 4.0}
    """

    #: The model of an LLM judge (its assessments' source), ``None`` for code.
    judge_model: str | None = None

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise InvalidParameter(f"A scorer must be callable, got {fn!r}")
        self.fn = fn
        # A default name comes from the function (``<lambda>`` becomes ``_lambda_``); a name
        # given explicitly must already be valid.
        default = re.sub(r"[^A-Za-z0-9_.\- ]", "_", getattr(fn, "__name__", type(fn).__name__))
        self.name = default[:100] if name is None else name
        if not _NAME.match(self.name):
            raise InvalidParameter(
                f"A scorer name holds letters, digits, ' ', '_', '-' and '.', got {self.name!r}"
            )
        parameters = inspect.signature(fn).parameters
        unknown = [p for p in parameters if p not in ARGUMENTS]
        if unknown:
            raise InvalidParameter(
                f"The scorer {self.name!r} takes {', '.join(unknown)}; a scorer may take only "
                f"{', '.join(ARGUMENTS)}"
            )
        self.arguments = tuple(parameters)

    def __call__(self, **row: Any) -> Feedback:
        """Score one row; a scorer that raises gives a `Feedback` with its ``error``."""
        try:
            value = self.fn(**{k: row.get(k) for k in self.arguments})
        except Exception as exc:  # one row's failure is recorded, never the whole evaluation's
            return Feedback(error=f"{type(exc).__name__}: {exc}")
        if isinstance(value, Feedback):
            return value
        if value is None or isinstance(value, (bool, int, float, str)):
            return Feedback(value)
        return Feedback(error=f"returned {type(value).__name__}, not a bool, number or string")

    def __repr__(self) -> str:
        return f"<Scorer {self.name}>"


@overload
def scorer(fn: Callable[..., Any]) -> Scorer: ...


@overload
def scorer(
    fn: None = None, *, name: str | None = None
) -> Callable[[Callable[..., Any]], Scorer]: ...


def scorer(
    fn: Callable[..., Any] | None = None, *, name: str | None = None
) -> Scorer | Callable[[Callable[..., Any]], Scorer]:
    """Make a function a `Scorer` (``@scorer`` or ``@scorer(name="tone")``).

    Example:
        >>> @scorer(name="mentions_price")
        ... def mentions_price(outputs: str) -> bool:
        ...     return "$" in outputs
        >>> rows = [{"inputs": {"q": "cost?"}, "outputs": "$5"}]
        >>> from flowml import genai
        >>> genai.evaluate(rows, scorers=[mentions_price]).metrics
        {'mentions_price/mean': 1.0}
    """
    if fn is not None:
        return Scorer(fn, name)
    return lambda f: Scorer(f, name)


def exact_match() -> Scorer:
    """``True`` when the output equals ``expectations["expected_response"]`` (stripped)."""

    def exact_match(outputs: Any, expectations: Any) -> bool:
        return str(outputs).strip() == str(_expected(expectations)).strip()

    return Scorer(exact_match)


def contains(substring: str | None = None, *, case_sensitive: bool = False) -> Scorer:
    """``True`` when the output contains ``substring`` (default: the expected response)."""
    if substring is not None and not isinstance(substring, str):
        raise InvalidParameter(f"substring must be a string, got {substring!r}")

    def contains(outputs: Any, expectations: Any) -> bool:
        needle = substring if substring is not None else str(_expected(expectations))
        haystack = str(outputs)
        if not case_sensitive:
            needle, haystack = needle.lower(), haystack.lower()
        return needle in haystack

    return Scorer(contains)


def regex_match(pattern: str, *, name: str = "regex_match") -> Scorer:
    """``True`` when ``pattern`` matches somewhere in the output.

    Raises:
        InvalidParameter: a pattern that does not compile, or longer than 1,000 characters.
    """
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidParameter(f"pattern must be a string of at most {MAX_PATTERN_LENGTH} chars")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InvalidParameter(f"pattern {pattern!r} does not compile: {exc}") from None

    def regex_match(outputs: Any) -> bool:
        return compiled.search(str(outputs)) is not None

    return Scorer(regex_match, name)


def string_similarity() -> Scorer:
    """How close the output is to the expected response, 0..1 (difflib's ratio)."""

    def string_similarity(outputs: Any, expectations: Any) -> float:
        return SequenceMatcher(None, str(outputs), str(_expected(expectations))).ratio()

    return Scorer(string_similarity)


def latency() -> Scorer:
    """Seconds the prediction took (no value when outputs were given, not predicted)."""

    def latency(latency: float | None) -> float | None:
        return latency

    return Scorer(latency)


def token_count() -> Scorer:
    """The output's token count, as whitespace-separated words (no tokenizer is downloaded)."""

    def token_count(outputs: Any) -> int:
        return len(str(outputs).split())

    return Scorer(token_count)


def _expected(expectations: Any) -> Any:
    if isinstance(expectations, dict) and EXPECTED_RESPONSE in expectations:
        return expectations[EXPECTED_RESPONSE]
    raise InvalidParameter(f"this scorer needs expectations[{EXPECTED_RESPONSE!r}]")
