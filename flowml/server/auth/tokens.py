"""Service tokens: generated once, stored only as a salted scrypt hash.

A token reads ``flowml_<token id>_<secret>``. The token id is public and random: it finds
the token's row with one indexed lookup. The secret (256 random bits) is never stored;
the row keeps ``scrypt(secret, salt)`` and a request's secret is hashed the same way and
compared in constant time. scrypt costs milliseconds by design, so `TokenVerifier` keeps,
per process, the digest of secrets it has already verified against the stored hash: a
busy client pays scrypt once, while revocation (read from the row on every request)
still takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

__all__ = ["NewToken", "TokenVerifier", "generate_token", "hash_secret", "split_token"]

TOKEN_PREFIX = "flowml"
# scrypt's interactive-login parameters: ~16 MiB of memory, tens of milliseconds.
_SCRYPT: dict[str, int] = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_TOKEN_RE = re.compile(r"^flowml_([0-9a-f]{16})_([A-Za-z0-9_-]{32,128})$")
_VERIFIED_MAX = 10_000  # bounded: a flood of distinct tokens cannot grow memory forever


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly generated token and what to store for it (the secret is not stored)."""

    token: str
    token_id: str
    salt: str
    secret_hash: str


def hash_secret(secret: str, salt: str) -> str:
    """The hex scrypt hash of ``secret`` under the hex ``salt``."""
    return hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()


def generate_token() -> NewToken:
    """A new random token with its salt and hash.

    Example:
        >>> new = generate_token()
        >>> new.token.startswith("flowml_") and new.secret_hash != new.token
        True
    """
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    token = f"{TOKEN_PREFIX}_{token_id}_{secret}"
    return NewToken(token, token_id, salt, hash_secret(secret, salt))


def split_token(token: str) -> tuple[str, str] | None:
    """``(token id, secret)`` of a well-formed token, else ``None``."""
    match = _TOKEN_RE.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


class TokenVerifier:
    """Checks a secret against a stored hash, remembering secrets already verified."""

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def verify(self, token_id: str, secret: str, salt: str, secret_hash: str) -> bool:
        """Whether ``secret`` hashes to ``secret_hash`` (constant-time comparisons)."""
        fast = hashlib.sha256(secret.encode()).digest()
        key = (token_id, secret_hash)
        with self._lock:
            known = self._verified.get(key)
        if known is not None:
            return hmac.compare_digest(known, fast)
        if not hmac.compare_digest(hash_secret(secret, salt), secret_hash):
            return False
        with self._lock:
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[key] = fast
        return True
