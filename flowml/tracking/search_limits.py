"""Bounds on a search request, so an abusive one fails at once with `InvalidParameter`.

The parser (`flowml.tracking.search`) checks every bound before it recurses or
builds SQL, so a hostile filter costs milliseconds of CPU and no database time.

| bound | value | why |
|---|---|---|
| filter length | 50,000 characters | room for ``run_id IN (...)`` with 1,000 run ids |
| parentheses nesting | 50 levels | far from Python's recursion limit |
| comparisons in a filter | 200 | each is a subquery per candidate row (1) |
| values in one ``IN`` list | 1,000 | one bind parameter each |
| values in a filter | 10,000 | the filter's bind parameters, all lists together |
| ``order_by`` items | 20 | each metric/param/tag item is one more join |
| ``order_by`` item length | 1,000 characters | a 250-character key, quoted, and a direction |
| experiments in a run search | 10,000 | one bind parameter each |

(1) and SQLite refuses expressions more than 1,000 levels deep: ``a OR b OR ...``
nests one level per term.

Bind parameters of one statement therefore stay near 20,000 at worst, below
SQLite's 32,766 (``SQLITE_MAX_VARIABLE_NUMBER``) and PostgreSQL's 65,535.

Database time is bounded separately: every search runs under a statement timeout
(`DEFAULT_SEARCH_TIMEOUT_SECONDS`, setting ``FLOWML_SEARCH_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SEARCH_TIMEOUT_SECONDS",
    "MAX_FILTER_LENGTH",
    "MAX_FILTER_TERMS",
    "MAX_FILTER_VALUES",
    "MAX_IN_VALUES",
    "MAX_NESTING_DEPTH",
    "MAX_ORDER_BY_ITEMS",
    "MAX_ORDER_BY_ITEM_LENGTH",
    "MAX_SEARCH_EXPERIMENTS",
    "shown",
]

MAX_FILTER_LENGTH = 50_000
MAX_NESTING_DEPTH = 50
MAX_FILTER_TERMS = 200
MAX_IN_VALUES = 1_000
MAX_FILTER_VALUES = 10_000
MAX_ORDER_BY_ITEMS = 20
MAX_ORDER_BY_ITEM_LENGTH = 1_000
MAX_SEARCH_EXPERIMENTS = 10_000

# Longer than any sensible search over a team's database; 0 turns the timeout off.
DEFAULT_SEARCH_TIMEOUT_SECONDS = 60.0

_SHOWN_CHARS = 200


def shown(text: str) -> str:
    """``text`` cut to a readable length for error messages (a filter may be 50 kB)."""
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[: _SHOWN_CHARS - 3]}... ({len(text):,} characters)"
