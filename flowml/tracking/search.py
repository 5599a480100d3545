"""The search filter and ``order_by`` grammar: text in, a small immutable AST out.

MLflow's grammar plus ``OR`` and parentheses (``AND`` binds tighter than ``OR``;
keywords are case-insensitive)::

    filter      := or_expr END
    or_expr     := and_expr ("OR" and_expr)*
    and_expr    := primary ("AND" primary)*
    primary     := "(" or_expr ")" | comparison
    comparison  := identifier ( compare_op value
                              | ["NOT"] "IN" "(" value ("," value)* ")"
                              | "IS" ["NOT"] "NULL" )
    compare_op  := "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
    identifier  := prefix "." key | attribute
    order_item  := identifier ["ASC" | "DESC"]

Every filter and order_by is bounded (`flowml.tracking.search_limits`): its length,
parentheses nesting, number of comparisons and of values; a request past a bound is
refused with `InvalidParameter` before any recursion or SQL.

``prefix`` is ``metrics``, ``params``, ``tags`` or ``attributes`` (and MLflow's other
spellings); a key with spaces or symbols is written in backquotes or double quotes
(``metrics.`my metric```, ``tags."a b"``). Which prefixes and attributes exist, and
the operators each accepts, come from an `EntitySpec` (`RUN_SEARCH`, `EXPERIMENT_SEARCH`).

Type rules (as MLflow): metrics and numeric attributes take numbers; params, tags
and string attributes take quoted strings. LIKE/ILIKE patterns use ``%`` and ``_``,
with backslash as the escape character (``'100\\%'``).

Example:
    >>> parse_filter("metrics.acc > 0.9 and (params.lr = '0.01' or tags.x LIKE 'a%')")
    And(children=(Comparison(kind='metric', key='acc', op='>', value=0.9), Or(...)))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowml.exceptions import InvalidParameter
from flowml.tracking.search_lexer import Token, TokenType, syntax_error, tokenize
from flowml.tracking.search_limits import (
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    MAX_FILTER_VALUES,
    MAX_IN_VALUES,
    MAX_NESTING_DEPTH,
    MAX_ORDER_BY_ITEM_LENGTH,
    MAX_ORDER_BY_ITEMS,
)
from flowml.tracking.search_spec import (
    ATTRIBUTE,
    EXPERIMENT_SEARCH,
    LIST_OPERATORS,
    METRIC,
    NULL_OPERATORS,
    PARAM,
    RUN_SEARCH,
    TAG,
    Attribute,
    EntitySpec,
    ordered,
    plural,
)

__all__ = [
    "ATTRIBUTE",
    "EXPERIMENT_SEARCH",
    "METRIC",
    "PARAM",
    "RUN_SEARCH",
    "TAG",
    "And",
    "Comparison",
    "EntitySpec",
    "Node",
    "Or",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
    "quote_literal",
]

Value = str | int | float | tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """``kind.key op value``.

    ``kind`` is ``metric``, ``param``, ``tag`` or ``attribute``; for attributes ``key`` is
    the canonical name (aliases resolved). ``op`` is upper case (``NOT IN``, ``IS NULL``).
    ``value`` is a float for metrics, an int or float for numeric attributes, a str for
    string comparisons, a tuple of str for ``IN``/``NOT IN`` and ``None`` for ``IS [NOT] NULL``.
    """

    kind: str
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True)
class OrderBy:
    """One ``order_by`` item: sort on ``kind.key``, ascending unless ``DESC``."""

    kind: str
    key: str
    ascending: bool = True


def quote_literal(value: str) -> str:
    """``value`` as a string literal of the filter grammar, so a name with a quote in it
    stays one literal: ``quote_literal("it's")`` is ``'it''s'``."""
    return "'" + value.replace("'", "''") + "'"


def parse_filter(filter_string: str | None, spec: EntitySpec = RUN_SEARCH) -> Node | None:
    """Parse a search filter into an AST.

    Args:
        filter_string: the filter text; ``None``, empty or blank means "no filter".
        spec: which identifiers and operators exist (runs by default).

    Returns:
        The AST root, or ``None`` for an empty filter.

    Raises:
        InvalidParameter: the filter is malformed or exceeds a bound of
            `flowml.tracking.search_limits`; the message names the 1-based position
            and the offending token or the bound.

    Example:
        >>> parse_filter("status = 'FINISHED'")
        Comparison(kind='attribute', key='status', op='=', value='FINISHED')
    """
    if filter_string is None:
        return None
    if not isinstance(filter_string, str):
        raise InvalidParameter(f"A filter must be a string, got {type(filter_string).__name__}")
    if len(filter_string) > MAX_FILTER_LENGTH:
        # Checked before tokenizing: a megabyte of parentheses must cost nothing.
        raise syntax_error(
            "filter",
            filter_string,
            f"it is {len(filter_string):,} characters long, over the limit of "
            f"{MAX_FILTER_LENGTH:,} (position {MAX_FILTER_LENGTH + 1} onwards); "
            "split the search into several, or use IN lists instead of many OR terms",
        )
    if not filter_string.strip():
        return None
    return _Parser(filter_string, spec, "filter").parse_filter()


def parse_order_by(
    items: Sequence[str] | None, spec: EntitySpec = RUN_SEARCH
) -> tuple[OrderBy, ...]:
    """Parse ``order_by`` items such as ``metrics.acc DESC`` or ``tags.`x y```.

    Args:
        items: the order_by strings, most significant first; ``None`` means none.
        spec: which identifiers exist and which kinds may be ordered on.

    Returns:
        One `OrderBy` per item, in the same order.

    Raises:
        InvalidParameter: an item is malformed, names an unknown or unorderable
            field, or a field appears twice; more than `MAX_ORDER_BY_ITEMS` items, or
            an item longer than `MAX_ORDER_BY_ITEM_LENGTH` characters.

    Example:
        >>> parse_order_by(["metrics.acc DESC", "start_time"])
        (OrderBy(kind='metric', key='acc', ascending=False), OrderBy(kind='attribute', ...))
    """
    if items is None:
        return ()
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise InvalidParameter(f"order_by must be a list of strings, got {type(items).__name__}")
    if len(items) > MAX_ORDER_BY_ITEMS:
        raise InvalidParameter(
            f"Invalid order_by: {len(items):,} items, over the limit of {MAX_ORDER_BY_ITEMS} "
            f"(item {MAX_ORDER_BY_ITEMS + 1} onwards); order by fewer fields"
        )
    parsed: list[OrderBy] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidParameter(
                f"order_by items must be strings, got {type(item).__name__}: {item!r}"
            )
        if len(item) > MAX_ORDER_BY_ITEM_LENGTH:
            raise syntax_error(
                "order_by",
                item,
                f"it is {len(item):,} characters long, over the limit of "
                f"{MAX_ORDER_BY_ITEM_LENGTH:,} (position {MAX_ORDER_BY_ITEM_LENGTH + 1} onwards)",
            )
        order = _Parser(item, spec, "order_by").parse_order_item()
        if (order.kind, order.key) in seen:
            raise InvalidParameter(
                f"Invalid order_by {list(items)!r}: {plural(order.kind)}.{order.key} "
                "appears more than once"
            )
        seen.add((order.kind, order.key))
        parsed.append(order)
    return tuple(parsed)


_COMPARE_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
_EXPECT_OPERATOR = "a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS)"


class _Parser:
    """Recursive descent over the token list; one instance per string parsed."""

    def __init__(self, source: str, spec: EntitySpec, label: str) -> None:
        self.source = source
        self.spec = spec
        self.label = label
        self.tokens = tokenize(source, label)
        self.index = 0
        # Counted as the parse goes, so a bound fails before it is passed (not after).
        self.depth = 0
        self.terms = 0
        self.values = 0

    # -- helpers ----------------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.type is not TokenType.END:
            self.index += 1
        return token

    def fail(self, problem: str) -> InvalidParameter:
        return syntax_error(self.label, self.source, problem)

    def unexpected(self, expected: str, token: Token | None = None) -> InvalidParameter:
        token = token or self.current
        return self.fail(
            f"unexpected {token.describe()} at position {token.position}; expected {expected}"
        )

    # -- filter -----------------------------------------------------------------------------

    def parse_filter(self) -> Node:
        node = self.or_expr()
        if self.current.type is not TokenType.END:
            raise self.unexpected("AND, OR or end of filter")
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.current.is_keyword("OR"):
            self.advance()
            children.append(self.and_expr())
        return _combine(Or, children)

    def and_expr(self) -> Node:
        children = [self.primary()]
        while self.current.is_keyword("AND"):
            self.advance()
            children.append(self.primary())
        return _combine(And, children)

    def primary(self) -> Node:
        if self.current.type is TokenType.LPAREN:
            if self.depth >= MAX_NESTING_DEPTH:
                # Before recursing: the depth of the Python stack is what this bounds.
                raise self.fail(
                    f"parentheses nested more than {MAX_NESTING_DEPTH} levels deep at "
                    f"position {self.current.position}; remove redundant parentheses"
                )
            self.depth += 1
            self.advance()
            node = self.or_expr()
            if self.current.type is not TokenType.RPAREN:
                raise self.unexpected("AND, OR or ')'")
            self.advance()
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise self.fail(
                f"more than {MAX_FILTER_TERMS} comparisons (comparison {self.terms} starts at "
                f"position {self.current.position}); use IN lists or split the search"
            )
        kind, key, attribute = self.identifier()
        op_token = self.current
        op = self.operator()
        allowed = self.spec.operators_for(kind, attribute)
        if op not in allowed:
            what = f"attribute {key}" if kind == ATTRIBUTE else plural(kind)
            raise self.fail(
                f"operator '{op}' at position {op_token.position} is not supported for "
                f"{what}; use one of: {ordered(allowed)}"
            )
        if op in NULL_OPERATORS:
            return Comparison(kind, key, op, None)
        if op in LIST_OPERATORS:
            return Comparison(kind, key, op, self.value_list(kind, key, attribute))
        value_token = self.current
        value = self.value(kind, key, attribute)
        if op in ("LIKE", "ILIKE"):
            self.check_pattern(str(value), value_token)
        return Comparison(kind, key, op, value)

    def operator(self) -> str:
        token = self.current
        if token.type is TokenType.OPERATOR and token.value in _COMPARE_OPERATORS:
            self.advance()
            return token.value
        if token.is_keyword("LIKE", "ILIKE", "IN"):
            self.advance()
            return token.value.upper()
        if token.is_keyword("NOT"):
            self.advance()
            if not self.current.is_keyword("IN"):
                raise self.unexpected("IN after NOT")
            self.advance()
            return "NOT IN"
        if token.is_keyword("IS"):
            self.advance()
            negated = self.current.is_keyword("NOT")
            if negated:
                self.advance()
            if not self.current.is_keyword("NULL"):
                raise self.unexpected("NULL" if negated else "NULL or NOT NULL")
            self.advance()
            return "IS NOT NULL" if negated else "IS NULL"
        raise self.unexpected(_EXPECT_OPERATOR)

    def value(self, kind: str, key: str, attribute: Attribute | None) -> str | int | float:
        token = self.current
        self.values += 1
        if self.values > MAX_FILTER_VALUES:
            raise self.fail(
                f"more than {MAX_FILTER_VALUES:,} values in the filter (value "
                f"{self.values:,} at position {token.position}); split the search"
            )
        numeric = kind == METRIC or (attribute is not None and attribute.numeric)
        what = f"attribute {key}" if kind == ATTRIBUTE else f"{plural(kind)}.{key}"
        if token.type is TokenType.NUMBER:
            if not numeric:
                raise self.fail(
                    f"{what} is compared with quoted strings, got the number "
                    f"'{token.text}' at position {token.position}"
                )
            self.advance()
            return _number(token.value, as_float=kind == METRIC)
        if token.type in (TokenType.STRING, TokenType.DOUBLE_QUOTED):
            if numeric:
                raise self.fail(
                    f"{what} is compared with numbers, got the string {token.text} "
                    f"at position {token.position}"
                )
            if attribute is not None and attribute.integer_id and not _is_integer(token.value):
                raise self.fail(
                    f"{what} must be an integer id, got {token.text} at position {token.position}"
                )
            self.advance()
            return token.value
        hint = " (quote string values)" if token.type is TokenType.WORD else ""
        raise self.unexpected("a value" + hint)

    def value_list(self, kind: str, key: str, attribute: Attribute | None) -> tuple[str, ...]:
        if self.current.type is not TokenType.LPAREN:
            raise self.unexpected("'(' starting a list of values")
        self.advance()
        values = [self.value(kind, key, attribute)]
        while self.current.type is TokenType.COMMA:
            self.advance()
            if len(values) >= MAX_IN_VALUES:
                raise self.fail(
                    f"more than {MAX_IN_VALUES:,} values in one IN list (value "
                    f"{len(values) + 1:,} at position {self.current.position}); split the list "
                    "over several searches"
                )
            values.append(self.value(kind, key, attribute))
        if self.current.type is not TokenType.RPAREN:
            raise self.unexpected("',' or ')'")
        self.advance()
        return tuple(str(v) for v in values)

    def check_pattern(self, pattern: str, token: Token) -> None:
        # A pattern ending in a lone escape character is an error on PostgreSQL and
        # undefined on SQLite: reject it here so both behave the same.
        trailing = len(pattern) - len(pattern.rstrip("\\"))
        if trailing % 2:
            raise self.fail(
                f"pattern {token.text} at position {token.position} ends with the escape "
                "character '\\' (write '\\\\' for a literal backslash)"
            )

    # -- identifiers ------------------------------------------------------------------------

    def identifier(self) -> tuple[str, str, Attribute | None]:
        token = self.current
        if token.type in (TokenType.BACKQUOTED, TokenType.DOUBLE_QUOTED):
            # A bare quoted name is an attribute (MLflow's `Run name`).
            self.advance()
            return self.attribute(token.value, token)
        if token.type is not TokenType.WORD or token.value.upper() in _RESERVED:
            raise self.unexpected(f"an identifier such as {self.spec.example_identifier()}")
        self.advance()
        prefix, dot, key = token.value.partition(".")
        if not dot:
            return self.attribute(prefix, token)
        kind = self.spec.kind_of(prefix)
        if kind is None:
            raise self.fail(
                f"unknown identifier type '{prefix}' at position {token.position}; "
                f"expected one of: {self.spec.prefix_names()}"
            )
        if not key:
            quoted = self.current
            if quoted.type not in (TokenType.BACKQUOTED, TokenType.DOUBLE_QUOTED) or (
                quoted.start != token.end
            ):
                raise self.unexpected(f"a key right after '{token.text}'", quoted)
            self.advance()
            key = quoted.value
            if not key:
                raise self.fail(f"empty key at position {quoted.position}")
        if kind == ATTRIBUTE:
            return self.attribute(key, token)
        return kind, key, None

    def attribute(self, name: str, token: Token) -> tuple[str, str, Attribute | None]:
        attribute = self.spec.attribute(name)
        if attribute is None:
            raise self.fail(
                f"unknown attribute '{name}' at position {token.position}; expected one of: "
                f"{self.spec.attribute_names()} (or a prefix: {self.spec.prefix_names()})"
            )
        return ATTRIBUTE, attribute.name, attribute

    # -- order_by ---------------------------------------------------------------------------

    def parse_order_item(self) -> OrderBy:
        start = self.current
        kind, key, attribute = self.identifier()
        if kind not in self.spec.order_kinds:
            raise self.fail(
                f"{self.spec.name} cannot be ordered by {plural(kind)} (position {start.position})"
            )
        if attribute is not None and not attribute.orderable:
            raise self.fail(
                f"attribute {key} at position {start.position} is not orderable; expected "
                f"one of: {self.spec.attribute_names(orderable_only=True)}"
            )
        ascending = True
        if self.current.is_keyword("ASC", "DESC"):
            ascending = self.advance().value.upper() == "ASC"
        if self.current.type is not TokenType.END:
            raise self.unexpected("ASC, DESC or end of order_by")
        return OrderBy(kind, key, ascending)


_RESERVED = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"})


def _combine(cls: type[And] | type[Or], children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        # (a AND b) AND c is a AND b AND c: keep the tree shallow.
        flat.extend(child.children if isinstance(child, cls) else (child,))
    return cls(tuple(flat))


def _number(text: str, *, as_float: bool) -> int | float:
    if not as_float and _is_integer(text):
        return int(text)
    return float(text)


def _is_integer(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit() and digits.isascii()
