"""Opaque page tokens for SQL searches.

A token is URL-safe base64 of a small JSON object holding:

- ``offset``: how many rows earlier pages returned;
- ``hwm``: the high-water mark of the searched table's insertion sequence
  (``runs.id``) taken when the first page was served. Later pages only see rows at
  or below it, so rows inserted meanwhile cannot shift the offset (no duplicates, no
  missed rows); they show up in the next search;
- ``query``: a fingerprint of the search (filter, order_by, experiments, view), so a
  token is refused when reused with a different search;
- ``check``: a checksum of the fields above, so an edited token is refused instead of
  silently returning the wrong page. This is integrity against accidents and casual
  edits, not a security boundary: a token only ever addresses the caller's own query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from flowml.exceptions import InvalidParameter

__all__ = ["PageToken", "decode_page_token", "encode_page_token", "query_fingerprint"]

_VERSION = 1
_FIELDS = ("v", "offset", "hwm", "query", "check")


class PageToken:
    """A decoded page token: where the next page starts and what it may see."""

    __slots__ = ("hwm", "offset")

    def __init__(self, offset: int, hwm: int) -> None:
        self.offset = offset
        self.hwm = hwm


def query_fingerprint(*parts: object) -> str:
    """A short stable digest of a search's defining parts (their ``repr``)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:16]


def _checksum(offset: int, hwm: int, query: str) -> str:
    text = f"flowml-page-token|{_VERSION}|{offset}|{hwm}|{query}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def encode_page_token(offset: int, hwm: int, query: str) -> str:
    """The token for the page starting at ``offset`` of the search ``query``.

    Args:
        offset: rows already returned by earlier pages.
        hwm: the insertion-sequence high-water mark fixed by the first page.
        query: the search's `query_fingerprint`.

    Returns:
        An opaque URL-safe string.
    """
    payload = {
        "v": _VERSION,
        "offset": offset,
        "hwm": hwm,
        "query": query,
        "check": _checksum(offset, hwm, query),
    }
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_page_token(token: object, query: str) -> PageToken:
    """Check and decode a token issued by `encode_page_token` for the same search.

    Args:
        token: the page token the caller sent back.
        query: the current search's `query_fingerprint`.

    Returns:
        The offset and high-water mark to continue from.

    Raises:
        InvalidParameter: the token is not a string, is not ours, was edited, or was
            issued for a different search.
    """
    if not isinstance(token, str):
        raise InvalidParameter(f"Invalid page token: expected a string, got {type(token).__name__}")
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeError, binascii.Error, ValueError):
        raise InvalidParameter(
            f"Invalid page token {_shown(token)}: not a token this server issued"
        ) from None
    if not isinstance(payload, dict) or sorted(payload) != sorted(_FIELDS):
        raise InvalidParameter(f"Invalid page token {_shown(token)}: unexpected content")
    offset, hwm, issued_for = payload["offset"], payload["hwm"], payload["query"]
    if (
        type(payload["v"]) is not int
        or payload["v"] != _VERSION
        or not _is_count(offset)
        or not _is_count(hwm)
        or not isinstance(issued_for, str)
        or payload["check"] != _checksum(offset, hwm, issued_for)
    ):
        raise InvalidParameter(f"Invalid page token {_shown(token)}: it was altered or is corrupt")
    if issued_for != query:
        raise InvalidParameter(
            "Invalid page token: it belongs to a different search (filter, order_by, "
            "experiments or view changed); start again without a page token"
        )
    return PageToken(offset, hwm)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(token: str) -> str:
    # Echo enough of a bad token to recognise it, never an unbounded string.
    return repr(token if len(token) <= 40 else token[:37] + "...")
