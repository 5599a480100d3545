"""Paged searches of registered models and model versions, compiled to SQL.

The filter grammar and its compiler are tracking's (`flowml.tracking.search`,
`flowml.tracking.store.sql_filter`); this module only declares what a registered
model and a model version expose, and MLflow's default orders:

- registered models: filter on ``name`` and ``tags.<key>`` (and the two timestamps);
  order by ``name``, ``creation_timestamp``, ``last_updated_timestamp`` (alias
  ``timestamp``); ``name ASC`` is always the final tie-breaker;
- model versions: filter on ``name``, ``version_number``, ``run_id``,
  ``source_path``, ``current_stage`` (a flowml addition), the timestamps and
  ``tags.<key>``; default order ``last_updated_timestamp DESC, name ASC,
  version_number DESC``.

Pages are served by tracking's paging routine
(`flowml.tracking.store.paging.select_page`), with the same high-water-mark tokens as
run searches, so rows inserted while a caller pages through results never shift or
repeat a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Row

from flowml.registry.prompt_tags import IS_PROMPT_TAG, PROMPT_TEXT_TAG
from flowml.registry.schema import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from flowml.tracking.search import ATTRIBUTE, TAG, And, Comparison, Node, Or, OrderBy
from flowml.tracking.search_spec import (
    LIST_OPERATORS,
    NULL_OPERATORS,
    STRING_OPERATORS,
    Attribute,
    EntitySpec,
)
from flowml.tracking.store.page_token import query_fingerprint
from flowml.tracking.store.paging import (
    PagedTable,
    parse_search,
    select_page,
    validate_max_results,
    with_tie_breakers,
)
from flowml.tracking.store.sql_filter import ChildTable, SearchTarget

__all__ = [
    "MODEL_VERSION_SEARCH",
    "REGISTERED_MODEL_SEARCH",
    "RegistryEntity",
    "select_registry_page",
    "validate_max_results",
]

_PREFIXES = {
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
}
_TAG_OPERATORS = STRING_OPERATORS | LIST_OPERATORS | NULL_OPERATORS


def _entity_spec(name: str, *attributes: Attribute) -> EntitySpec:
    # Both entities have a name and the two timestamps; tags filter with the same operators.
    return EntitySpec(
        name=name,
        prefixes=_PREFIXES,
        attributes=(
            Attribute("name", list_ok=True),
            *attributes,
            Attribute("creation_timestamp", numeric=True, aliases=("creation_time",)),
            Attribute(
                "last_updated_timestamp",
                numeric=True,
                aliases=("timestamp", "last_updated_time"),
            ),
        ),
        kind_operators={TAG: _TAG_OPERATORS},
        order_kinds=frozenset({ATTRIBUTE}),
    )


REGISTERED_MODEL_SEARCH = _entity_spec("registered models")
MODEL_VERSION_SEARCH = _entity_spec(
    "model versions",
    Attribute("version_number", numeric=True, aliases=("version",)),
    Attribute("run_id", list_ok=True),
    Attribute("source_path", aliases=("source",)),
    Attribute("current_stage", list_ok=True, aliases=("stage",)),
)

_rm = registered_models.c
_mv = model_versions.c

REGISTERED_MODEL_TARGET = SearchTarget(
    table=registered_models,
    attributes={
        "name": _rm.name,
        "creation_timestamp": _rm.creation_time,
        "last_updated_timestamp": _rm.last_updated_time,
    },
    children={TAG: ChildTable(registered_model_tags, (("model_id", _rm.id),))},
)

# A version's name lives on its registered model: searches join that table.
MODEL_VERSION_TARGET = SearchTarget(
    table=model_versions,
    attributes={
        "name": _rm.name,
        "version_number": _mv.version,
        "run_id": _mv.run_id,
        "source_path": _mv.source,
        "current_stage": _mv.current_stage,
        "creation_timestamp": _mv.creation_time,
        "last_updated_timestamp": _mv.last_updated_time,
    },
    children={
        TAG: ChildTable(model_version_tags, (("model_id", _mv.model_id), ("version", _mv.version)))
    },
)

_BY_NAME = OrderBy(ATTRIBUTE, "name", ascending=True)
_BY_VERSION = OrderBy(ATTRIBUTE, "version_number", ascending=False)

RegistryEntity = Literal["registered_models", "model_versions"]


@dataclass(frozen=True)
class _Search:
    spec: EntitySpec
    table: PagedTable
    default_order: tuple[OrderBy, ...]
    # Appended unless the caller ordered by them: they make the order total.
    tie_breakers: tuple[OrderBy, ...]


_SEARCHES: dict[str, _Search] = {
    "registered_models": _Search(
        REGISTERED_MODEL_SEARCH,
        PagedTable(REGISTERED_MODEL_TARGET, sequence=_rm.id),
        default_order=(),
        tie_breakers=(_BY_NAME,),
    ),
    "model_versions": _Search(
        MODEL_VERSION_SEARCH,
        PagedTable(
            MODEL_VERSION_TARGET,
            sequence=_mv.id,
            columns=(model_versions, _rm.name),
            joins=((registered_models, _rm.id == _mv.model_id),),
        ),
        default_order=(
            OrderBy(ATTRIBUTE, "last_updated_timestamp", ascending=False),
            _BY_NAME,
            _BY_VERSION,
        ),
        tie_breakers=(_BY_NAME, _BY_VERSION),
    ),
}


# A registered model that is not a prompt: no prompt tag, or one that is not 'true'.
_NOT_A_PROMPT = Or(
    (
        Comparison(TAG, IS_PROMPT_TAG, "IS NULL", None),
        Comparison(TAG, IS_PROMPT_TAG, "!=", "true"),
    )
)


def asks_for_prompts(node: Node | None) -> bool:
    """Whether a registered-model filter asks for prompts, as MLflow reads one.

    ``tags.`mlflow.prompt.is_prompt` = 'true'`` (or ``!= 'false'``) anywhere in the filter.
    """
    if node is None:
        return False
    if isinstance(node, (And, Or)):
        return any(asks_for_prompts(child) for child in node.children)
    if node.kind != TAG or node.key != IS_PROMPT_TAG or not isinstance(node.value, str):
        return False
    value = node.value.lower()
    return (node.op == "=" and value == "true") or (node.op == "!=" and value == "false")


def without_prompts(node: Node | None) -> Node:
    """A registered-model filter that leaves prompts out, unless it asks for them.

    MLflow's registry search lists models only, and its clients append
    ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every filter. Read literally that clause
    (or ``= 'false'``) would drop every model without the tag: as in MLflow's store, each
    comparison on the prompt tag of a filter that does not ask for prompts stands for "not a
    prompt", and "not a prompt" is added to the filter.
    """
    if node is None:
        return _NOT_A_PROMPT
    if asks_for_prompts(node):
        return node
    return And((_not_a_prompt_clauses(node), _NOT_A_PROMPT))


def _not_a_prompt_clauses(node: Node) -> Node:
    if isinstance(node, And):
        return And(tuple(_not_a_prompt_clauses(child) for child in node.children))
    if isinstance(node, Or):
        return Or(tuple(_not_a_prompt_clauses(child) for child in node.children))
    if node.kind == TAG and node.key == IS_PROMPT_TAG:
        return _NOT_A_PROMPT
    return node


# A model version that is not a prompt version: every prompt version holds its template.
_NOT_A_PROMPT_VERSION = Comparison(TAG, PROMPT_TEXT_TAG, "IS NULL", None)
_PROMPT_TAGS = frozenset({IS_PROMPT_TAG, PROMPT_TEXT_TAG})


def _mentions_prompt_tags(node: Node) -> bool:
    if isinstance(node, (And, Or)):
        return any(_mentions_prompt_tags(child) for child in node.children)
    return node.kind == TAG and node.key in _PROMPT_TAGS


def versions_without_prompts(node: Node | None) -> Node:
    """A model-version filter that leaves prompt versions out, unless it names a prompt tag.

    As registered-model search lists no prompts, version search lists no prompt versions;
    ``tags.`mlflow.prompt.text` IS NOT NULL`` (what `genai.search_prompt_versions` sends)
    asks for them.
    """
    if node is None:
        return _NOT_A_PROMPT_VERSION
    if _mentions_prompt_tags(node):
        return node
    return And((node, _NOT_A_PROMPT_VERSION))


def select_registry_page(
    conn: Connection,
    entity: RegistryEntity,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of matching registered models or model versions, and the next page token.

    Args:
        conn: an open connection.
        entity: ``registered_models`` (rows carry that table's columns) or
            ``model_versions`` (``model_versions`` columns plus the model's ``name``).
        filter_string: e.g. ``name LIKE 'churn%' and tags.team = 'ml'``, or ``None``.
        max_results: page size, 1 to ``limit``.
        order_by: e.g. ``["last_updated_timestamp DESC"]``; without one, versions use
            MLflow's default order.
        page_token: the previous page's token, or ``None``.
        limit: the largest page size allowed.

    Returns:
        ``(rows, next_page_token)``; the token is ``None`` on the last page.

    Raises:
        InvalidParameter: a malformed filter, order_by, token or max_results.
    """
    search = _SEARCHES[entity]
    node, orders = parse_search(search.spec, filter_string, order_by, max_results, limit)
    if entity == "registered_models":
        node = without_prompts(node)
    else:
        node = versions_without_prompts(node)
    orders = with_tie_breakers(orders or search.default_order, *search.tie_breakers)
    return select_page(
        conn,
        search.table,
        node=node,
        orders=orders,
        query=query_fingerprint(entity, node, orders),
        page_token=page_token,
        max_results=max_results,
    )
