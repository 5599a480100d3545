"""Lineage in the SQL store: the rows a run's lineage becomes, and the search over them.

A run created with a run key (a Prefect flow or task run) stands for that key: the key is an
implicit output entry, read from ``runs``, never stored a second time in ``run_lineage``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import now_ms
from flowml.tracking.lineage import DIRECTIONS, OUTPUT, LineageEntry, validate_entries
from flowml.tracking.store import sql_fast
from flowml.tracking.store.engine import write_transaction
from flowml.tracking.store.schema import run_lineage, runs

__all__ = ["SqlLineage", "lineage_rows", "search"]


class SqlLineage:
    """The lineage methods of `SqlStore`."""

    engine: Engine

    def log_lineage(self, run_id: str, entries: Sequence[LineageEntry]) -> None:
        rows = lineage_rows(run_id, validate_entries(entries))
        if not rows:
            return
        with write_transaction(self.engine) as conn:
            sql_fast.require_active_run(conn, run_id)
            sql_fast.run_many(conn, "insert_lineage", rows)

    def search_lineage(
        self,
        run_ids: Sequence[str] = (),
        uris: Sequence[str] = (),
        direction: str | None = None,
    ) -> list[LineageEntry]:
        if direction is not None and direction not in DIRECTIONS:
            raise InvalidParameter(
                f"Lineage direction must be 'input' or 'output', got {direction!r}"
            )
        run_ids, uris = list(run_ids), list(uris)
        if not run_ids and not uris:
            return []
        with self.engine.connect() as conn:
            return search(conn, run_ids, uris, direction)


# Chunked so a wide graph never exceeds a driver's bound-parameter limit.
CHUNK = 400


def search(
    conn: Connection, run_ids: list[str], uris: list[str], direction: str | None
) -> list[LineageEntry]:
    """Entries of ``run_ids`` or about ``uris`` (either may be empty), in insertion order."""
    found: list[LineageEntry] = []
    for ids_chunk, uris_chunk in _paired_chunks(run_ids, uris, CHUNK):
        if direction in (None, OUTPUT):
            found.extend(_key_entries(conn, ids_chunk, uris_chunk))
        where = []
        if ids_chunk:
            where.append(run_lineage.c.run_uuid.in_(ids_chunk))
        if uris_chunk:
            where.append(run_lineage.c.uri.in_(uris_chunk))
        query = select(run_lineage).where(or_(*where))
        if direction is not None:
            query = query.where(run_lineage.c.direction == direction)
        for r in conn.execute(query.order_by(run_lineage.c.id)):
            found.append(
                LineageEntry(
                    direction=r.direction,
                    kind=r.kind,
                    uri=r.uri,
                    name=r.name,
                    digest=r.digest,
                    run_id=r.run_uuid,
                    timestamp=r.timestamp,
                )
            )
    if len(run_ids) > CHUNK or len(uris) > CHUNK:
        # Chunks may overlap in what they match: keep each row once, in insertion order.
        found = list(dict.fromkeys(found))
    return found


def _key_entries(conn: Connection, run_ids: list[str], uris: list[str]) -> list[LineageEntry]:
    """A run created with a run key stands for that key: an implicit output entry, so the
    key is not stored a second time as lineage (kind: the key's prefix, up to ':')."""
    where = []
    if run_ids:
        where.append(runs.c.run_uuid.in_(run_ids))
    if uris:
        where.append(runs.c.run_key.in_(uris))
    rows = conn.execute(
        select(runs.c.run_uuid, runs.c.run_key, runs.c.name, runs.c.start_time)
        .where(runs.c.run_key.is_not(None), or_(*where))
        .order_by(runs.c.id)
    )
    return [
        LineageEntry(
            direction=OUTPUT,
            kind=r.run_key.split(":", 1)[0],
            uri=r.run_key,
            name=r.name,
            run_id=r.run_uuid,
            timestamp=r.start_time,
        )
        for r in rows
    ]


def lineage_rows(run_id: str, entries: Sequence[LineageEntry]) -> list[dict[str, Any]]:
    """One row per (direction, kind, uri): the first mention of a fact wins."""
    now = now_ms()
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in entries:
        rows.setdefault(
            (e.direction, e.kind, e.uri),
            {
                "run_uuid": run_id,
                "direction": e.direction,
                "kind": e.kind,
                "uri": e.uri,
                "name": e.name,
                "digest": e.digest,
                "timestamp": now,
            },
        )
    return list(rows.values())


def _paired_chunks(
    first: list[str], second: list[str], size: int
) -> Iterator[tuple[list[str], list[str]]]:
    """Chunks of two lists walked side by side (a shorter list yields empty chunks)."""
    for i in range(0, max(len(first), len(second), 1), size):
        yield first[i : i + size], second[i : i + size]
