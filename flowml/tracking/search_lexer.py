"""The tokenizer behind the search filter and ``order_by`` grammar.

Pure Python: it turns a filter string into `Token` s that remember where they
start, so every error can name a 1-based position and the offending text.

Lexical rules:
- words: ``[A-Za-z_]`` then letters, digits, ``_ . - / :`` (``metrics.val-loss``,
  ``tags.mlflow.runName``); keywords are words, matched case-insensitively;
- backquoted keys: ```my metric```; double-quoted text is a key or a string
  depending on where it stands; single-quoted text is a string. Inside any
  quoted text the quote character is written twice (``'it''s'``) and a
  backslash is kept as-is (it is the LIKE escape character);
- numbers: an optional sign, digits with an optional fraction and exponent
  (``1``, ``-0.5``, ``.5``, ``1e-3``);
- operators ``= != < <= > >=`` and the punctuation ``( ) ,``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from flowml.exceptions import InvalidParameter
from flowml.tracking.search_limits import shown

__all__ = ["KEYWORDS", "Token", "TokenType", "describe_source", "syntax_error", "tokenize"]

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"})


class TokenType(Enum):
    WORD = "word"
    BACKQUOTED = "backquoted"
    DOUBLE_QUOTED = "double-quoted"
    STRING = "string"
    NUMBER = "number"
    OPERATOR = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit: its type, decoded value, raw source text and 0-based offset."""

    type: TokenType
    value: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def position(self) -> int:
        """The 1-based character position users see in error messages."""
        return self.start + 1

    def is_keyword(self, *names: str) -> bool:
        return self.type is TokenType.WORD and self.value.upper() in names

    def describe(self) -> str:
        if self.type is TokenType.END:
            return "end of input"
        return f"token '{self.text}'"


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][\w.\-/:]*")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_PUNCTUATION = {"(": TokenType.LPAREN, ")": TokenType.RPAREN, ",": TokenType.COMMA}
_QUOTES = {"'": TokenType.STRING, '"': TokenType.DOUBLE_QUOTED, "`": TokenType.BACKQUOTED}


def describe_source(label: str, source: str) -> str:
    """The common message prefix, e.g. ``Invalid filter 'metrics.acc >> 1'``.

    A long source is cut short: the message names a position anyway.
    """
    return f"Invalid {label} '{shown(source)}'"


def syntax_error(label: str, source: str, problem: str) -> InvalidParameter:
    """An `InvalidParameter` for a malformed ``label`` (``filter`` or ``order_by``)."""
    return InvalidParameter(f"{describe_source(label, source)}: {problem}")


def tokenize(source: str, label: str = "filter") -> list[Token]:
    """Split ``source`` into tokens, ending with one `TokenType.END` token.

    Args:
        source: the filter or order_by text.
        label: what ``source`` is, for error messages.

    Returns:
        The tokens in order; the last one has type ``END`` and starts at ``len(source)``.

    Raises:
        InvalidParameter: an unterminated quote or a character outside the grammar.
    """
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _QUOTES:
            token = _quoted(source, i, label)
        elif ch in _PUNCTUATION:
            token = Token(_PUNCTUATION[ch], ch, ch, i)
        elif (match := _NUMBER.match(source, i)) is not None:
            token = Token(TokenType.NUMBER, match.group(), match.group(), i)
        elif (match := _WORD.match(source, i)) is not None:
            token = Token(TokenType.WORD, match.group(), match.group(), i)
        else:
            op = next((op for op in _OPERATORS if source.startswith(op, i)), None)
            if op is None:
                problem = f"unexpected character '{ch}' at position {i + 1}"
                raise syntax_error(label, source, problem)
            token = Token(TokenType.OPERATOR, op, op, i)
        tokens.append(token)
        i = token.end
    tokens.append(Token(TokenType.END, "", "", n))
    return tokens


def _quoted(source: str, start: int, label: str) -> Token:
    quote = source[start]
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == quote:
            # A doubled quote stands for one quote character inside the text.
            if source.startswith(quote, i + 1):
                chars.append(quote)
                i += 2
                continue
            text = source[start : i + 1]
            return Token(_QUOTES[quote], "".join(chars), text, start)
        chars.append(ch)
        i += 1
    raise syntax_error(label, source, f"unterminated quoted text starting at position {start + 1}")
