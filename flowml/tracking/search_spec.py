"""What a search may refer to: the identifier kinds and attributes of one entity.

The parser in `flowml.tracking.search` is generic; an `EntitySpec` tells it which
prefixes (``metrics.``, ``tags.``...) and which attributes exist for the entity being
searched, and which operators each accepts. Runs and experiments are defined here;
the model registry builds its own specs from the same classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ATTRIBUTE",
    "EXPERIMENT_SEARCH",
    "LIST_OPERATORS",
    "METADATA",
    "METRIC",
    "NULL_OPERATORS",
    "NUMERIC_OPERATORS",
    "PARAM",
    "RUN_SEARCH",
    "STRING_OPERATORS",
    "TAG",
    "Attribute",
    "EntitySpec",
]

# Identifier kinds, as they appear in the AST.
METRIC = "metric"
PARAM = "param"
TAG = "tag"
ATTRIBUTE = "attribute"
METADATA = "metadata"  # traces' request metadata (flowml.tracing)

NUMERIC_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_OPERATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_OPERATORS = frozenset({"IN", "NOT IN"})
NULL_OPERATORS = frozenset({"IS NULL", "IS NOT NULL"})

# The order operators are listed in error messages.
OPERATOR_ORDER = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
)


@dataclass(frozen=True)
class Attribute:
    """One searchable attribute of an entity (a column of its main table).

    Attributes:
        name: the canonical name, as it appears in the AST (``start_time``).
        numeric: compared with numbers (``< > ...``) instead of quoted strings.
        aliases: other accepted spellings (``created`` for ``start_time``).
        list_ok: whether ``IN (...)`` / ``NOT IN (...)`` is accepted.
        integer_id: a string-typed id stored as an integer (``experiment_id``): only
            ``= != IN NOT IN``, and every value must be a decimal integer string.
        orderable: accepted in ``order_by``.
    """

    name: str
    numeric: bool = False
    aliases: tuple[str, ...] = ()
    list_ok: bool = False
    integer_id: bool = False
    orderable: bool = True

    @property
    def operators(self) -> frozenset[str]:
        if self.numeric:
            return NUMERIC_OPERATORS
        if self.integer_id:
            return frozenset({"=", "!="}) | LIST_OPERATORS
        return STRING_OPERATORS | (LIST_OPERATORS if self.list_ok else frozenset())


@dataclass(frozen=True)
class EntitySpec:
    """The searchable surface of one entity.

    Attributes:
        name: the entity, for messages (``runs``).
        prefixes: accepted identifier prefixes (lower case) mapped to their kind.
        attributes: the entity's searchable attributes.
        kind_operators: the operators accepted for each non-attribute kind.
        order_kinds: the kinds accepted in ``order_by``.
    """

    name: str
    prefixes: Mapping[str, str]
    attributes: tuple[Attribute, ...]
    kind_operators: Mapping[str, frozenset[str]]
    order_kinds: frozenset[str]
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Attribute] = {}
        for attribute in self.attributes:
            for spelling in (attribute.name, *attribute.aliases):
                by_name[spelling.lower()] = attribute
        object.__setattr__(self, "_by_name", by_name)

    def attribute(self, name: str) -> Attribute | None:
        """The attribute spelled ``name`` (any case, any alias), or ``None``."""
        return self._by_name.get(name.lower())

    def kind_of(self, prefix: str) -> str | None:
        """The kind named by an identifier prefix (any case), or ``None``."""
        return self.prefixes.get(prefix.lower())

    def operators_for(self, kind: str, attribute: Attribute | None) -> frozenset[str]:
        if kind == ATTRIBUTE:
            assert attribute is not None
            return attribute.operators
        return self.kind_operators[kind]

    def prefix_names(self) -> str:
        """The canonical prefixes, for messages: the plural spelling of each kind."""
        return ", ".join(sorted({_PLURAL[kind] for kind in self.prefixes.values()}))

    def example_identifier(self) -> str:
        """A typical identifier for this entity, for messages (``metrics.<key>``)."""
        for kind in (METRIC, PARAM, TAG):
            if kind in self.prefixes.values():
                return f"{_PLURAL[kind]}.<key>"
        return self.attributes[0].name

    def attribute_names(self, orderable_only: bool = False) -> str:
        return ", ".join(
            sorted(a.name for a in self.attributes if a.orderable or not orderable_only)
        )


_PLURAL = {
    METRIC: "metrics",
    PARAM: "params",
    TAG: "tags",
    ATTRIBUTE: "attributes",
    METADATA: "metadata",
}


def plural(kind: str) -> str:
    """``metrics`` for ``metric``: how a kind is named in messages."""
    return _PLURAL.get(kind, kind)


def ordered(operators: Iterable[str]) -> str:
    """Operators as a readable, stably ordered list."""
    chosen = set(operators)
    return ", ".join(op for op in OPERATOR_ORDER if op in chosen)


_STRING_KIND_OPERATORS = STRING_OPERATORS | LIST_OPERATORS | NULL_OPERATORS

RUN_SEARCH = EntitySpec(
    name="runs",
    prefixes={
        "metric": METRIC,
        "metrics": METRIC,
        "param": PARAM,
        "params": PARAM,
        "parameter": PARAM,
        "parameters": PARAM,
        "tag": TAG,
        "tags": TAG,
        "attribute": ATTRIBUTE,
        "attributes": ATTRIBUTE,
        "attr": ATTRIBUTE,
        "run": ATTRIBUTE,
    },
    attributes=(
        Attribute("run_id", list_ok=True),
        Attribute("run_name", aliases=("run name",), list_ok=True),
        Attribute("status", list_ok=True),
        Attribute("user_id", list_ok=True),
        Attribute("artifact_uri", list_ok=True),
        Attribute("start_time", numeric=True, aliases=("created",)),
        Attribute("end_time", numeric=True),
    ),
    kind_operators={
        METRIC: NUMERIC_OPERATORS,
        PARAM: _STRING_KIND_OPERATORS,
        TAG: _STRING_KIND_OPERATORS,
    },
    order_kinds=frozenset({METRIC, PARAM, TAG, ATTRIBUTE}),
)

EXPERIMENT_SEARCH = EntitySpec(
    name="experiments",
    prefixes={
        "tag": TAG,
        "tags": TAG,
        "attribute": ATTRIBUTE,
        "attributes": ATTRIBUTE,
        "attr": ATTRIBUTE,
    },
    attributes=(
        Attribute("name", list_ok=True),
        Attribute("experiment_id", integer_id=True),
        Attribute("creation_time", numeric=True),
        Attribute("last_update_time", numeric=True),
    ),
    kind_operators={TAG: _STRING_KIND_OPERATORS},
    order_kinds=frozenset({TAG, ATTRIBUTE}),
)
