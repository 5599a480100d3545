"""Rows to registry entities, with one query per child table whatever the page size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Table, func, select, tuple_

from flowml.registry.entities import ModelVersion, RegisteredModel
from flowml.registry.schema import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)

__all__ = ["latest_versions", "registered_models_from_rows", "upsert", "versions_from_rows"]

_mv = model_versions.c
_rm = registered_models.c
_CHUNK = 400


def versions_from_rows(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    """Entities for rows holding every ``model_versions`` column plus the model ``name``."""
    keys = [(r.model_id, r.version) for r in rows]
    tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
    tg, al = model_version_tags.c, registered_model_aliases.c
    for chunk in _chunks(keys):
        for model_id, version, key, value in conn.execute(
            select(tg.model_id, tg.version, tg.key, tg.value).where(
                tuple_(tg.model_id, tg.version).in_(chunk)
            )
        ):
            tags[(model_id, version)][key] = value
        for model_id, version, alias in conn.execute(
            select(al.model_id, al.version, al.alias).where(
                tuple_(al.model_id, al.version).in_(chunk)
            )
        ):
            aliases[(model_id, version)].append(alias)
    return [
        ModelVersion(
            name=r.name,
            version=r.version,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            source=r.source,
            storage_location=r.storage_location,
            run_id=r.run_id,
            run_link=r.run_link,
            user_id=r.user_id,
            current_stage=r.current_stage,
            description=r.description,
            status=r.status,
            status_message=r.status_message,
            tags=tags.get((r.model_id, r.version), {}),
            aliases=sorted(aliases.get((r.model_id, r.version), [])),
        )
        for r in rows
    ]


def latest_versions(conn: Connection, model_ids: Sequence[int]) -> dict[int, list[ModelVersion]]:
    """For each model, its newest version in each stage, ordered by version number."""
    out: dict[int, list[ModelVersion]] = defaultdict(list)
    for chunk in _chunks(list(model_ids)):
        newest = (
            select(_mv.model_id, func.max(_mv.version).label("version"))
            .where(_mv.model_id.in_(chunk))
            .group_by(_mv.model_id, _mv.current_stage)
            .subquery()
        )
        rows = conn.execute(
            select(model_versions, _rm.name)
            .join(registered_models, _rm.id == _mv.model_id)
            .join(newest, (newest.c.model_id == _mv.model_id) & (newest.c.version == _mv.version))
            .order_by(_mv.model_id, _mv.version)
        ).all()
        for row, entity in zip(rows, versions_from_rows(conn, rows), strict=True):
            out[row.model_id].append(entity)
    return out


def registered_models_from_rows(
    conn: Connection, rows: Sequence[Row[Any]]
) -> list[RegisteredModel]:
    """Entities for ``registered_models`` rows, with tags, aliases and latest versions."""
    ids = [r.id for r in rows]
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    aliases: dict[int, dict[str, int]] = defaultdict(dict)
    tg, al = registered_model_tags.c, registered_model_aliases.c
    for chunk in _chunks(ids):
        for model_id, key, value in conn.execute(
            select(tg.model_id, tg.key, tg.value).where(tg.model_id.in_(chunk))
        ):
            tags[model_id][key] = value
        for model_id, alias, version in conn.execute(
            select(al.model_id, al.alias, al.version).where(al.model_id.in_(chunk))
        ):
            aliases[model_id][alias] = version
    latest = latest_versions(conn, ids)
    return [
        RegisteredModel(
            name=r.name,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            description=r.description,
            latest_versions=latest.get(r.id, []),
            tags=tags.get(r.id, {}),
            aliases=dict(sorted(aliases.get(r.id, {}).items())),
        )
        for r in rows
    ]


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    columns: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET columns, on SQLite and PostgreSQL."""
    from sqlalchemy.dialects import postgresql, sqlite

    statement: postgresql.Insert | sqlite.Insert
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table)
    else:
        statement = sqlite.insert(table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: getattr(statement.excluded, c) for c in columns},
        ),
        rows,
    )


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
