"""The inspector's reads: a page of entities, counts per state, a page of one
entity's timeline, the log's last sequence number and what came after it.

SQLite answers each with one indexed query (`SQLiteBase.fetchall`). Any other
`Store` is answered through the protocol's own reads, filtered and cut in
Python: the same results, without the indexes (fine for a small store, and
what a new store implementation gets before it writes its own queries).

Entity pages are keyset-paginated by key (``after``: the last key of the page
before), so a page deep in a million entities costs what the first one does:
the key is the primary key, and a prefix becomes a range on it. A timeline
page is by sequence number, newest first (``before``: the lowest seq shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.charts.configuration import is_active
from engine.store.protocol import Store
from engine.store.read_models_sql import ActiveState
from engine.store.rows import loads, logged_chart_version
from engine.store.sql_reads import HISTORY_KEYS
from engine.store.sqlite_base import SQLiteBase


@dataclass(frozen=True, slots=True)
class EntityQuery:
    """What the entity list is filtered by; every field optional."""

    prefix: str = ""
    chart: str | None = None
    state: str | None = None
    updated_from: float | None = None
    updated_to: float | None = None
    after: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class EntitySummary:
    key: str
    chart: str
    state: str
    version: int
    updated_at: float | None


def prefix_range(prefix: str) -> tuple[str, str | None] | None:
    """The keys starting with ``prefix`` as a half-open range [low, high):
    text compares by code point (SQLite compares UTF-8 bytes: the same order),
    so the prefix cut after its last character below U+10FFFF, that character
    bumped by one, is the first key past them all; a prefix of nothing but
    U+10FFFF has no end (None). None for an empty prefix: every key."""
    if not prefix:
        return None
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return prefix, None
    return prefix, stem[:-1] + chr(ord(stem[-1]) + 1)


def _entity_where(query: EntityQuery, *, keyset: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    bounds = prefix_range(query.prefix)
    if bounds is not None:
        clauses.append("key >= ?")
        params.append(bounds[0])
        if bounds[1] is not None:
            clauses.append("key < ?")
            params.append(bounds[1])
    if keyset and query.after is not None:
        clauses.append("key > ?")
        params.append(query.after)
    if query.chart is not None:
        clauses.append("chart = ?")
        params.append(query.chart)
    if query.state is not None:
        sql, more = ActiveState(query.state).clause("state")
        clauses.append(sql)
        params += more
    if query.updated_from is not None:
        clauses.append("updated_at >= ?")
        params.append(query.updated_from)
    if query.updated_to is not None:
        clauses.append("updated_at < ?")
        params.append(query.updated_to)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


async def entity_page(store: Store, query: EntityQuery) -> list[EntitySummary]:
    """Up to ``query.limit`` entities matching ``query``, by key, after ``query.after``."""
    if isinstance(store, SQLiteBase):
        where, params = _entity_where(query, keyset=True)
        rows = await store.fetchall(
            f"SELECT key, chart, state, version, updated_at FROM entities{where}"
            " ORDER BY key LIMIT ?",
            [*params, query.limit],
        )
        return [EntitySummary(*row) for row in rows]
    found = [
        EntitySummary(e.key, e.chart, e.state, e.version, None)
        for e in await store.entities(chart=query.chart, state=query.state)
        if e.key.startswith(query.prefix) and (query.after is None or e.key > query.after)
    ]
    return sorted(found, key=lambda e: e.key)[: query.limit]


async def state_counts(store: Store, query: EntityQuery) -> list[tuple[str, str, int]]:
    """(chart, stored state, entities) for every state matching ``query``
    (its ``after`` and ``limit`` ignored), most entities first."""
    if isinstance(store, SQLiteBase):
        where, params = _entity_where(query, keyset=False)
        rows = await store.fetchall(
            f"SELECT chart, state, COUNT(*) FROM entities{where} GROUP BY chart, state"
            " ORDER BY COUNT(*) DESC, chart, state LIMIT 200",
            params,
        )
        return [(str(c), str(s), int(n)) for c, s, n in rows]
    counts: dict[tuple[str, str], int] = {}
    for entity in await store.entities(chart=query.chart):
        if entity.key.startswith(query.prefix) and (
            query.state is None or is_active(entity.state, query.state)
        ):
            counts[(entity.chart, entity.state)] = counts.get((entity.chart, entity.state), 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(chart, state, n) for (chart, state), n in ordered[:200]]


def _history_item(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(HISTORY_KEYS, row, strict=True))
    item["payload"] = loads(item["payload"])
    item["chart_version"] = logged_chart_version(item["chart_version"])
    return item


async def timeline_page(
    store: Store, entity: str, *, before: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Up to ``limit`` of the entity's logged events with seq below ``before``,
    newest first (the keys of `Store.history`)."""
    if isinstance(store, SQLiteBase):
        clause = " AND seq < ?" if before is not None else ""
        params: list[Any] = [entity, *([before] if before is not None else []), limit]
        rows = await store.fetchall(
            f"SELECT {', '.join(HISTORY_KEYS)} FROM events WHERE entity = ?{clause}"
            " ORDER BY seq DESC LIMIT ?",
            params,
        )
        return [_history_item(row) for row in rows]
    items = [e for e in await store.history(entity) if before is None or e["seq"] < before]
    return list(reversed(items[-limit:])) if limit else []


async def event_count(store: Store, entity: str) -> int:
    if isinstance(store, SQLiteBase):
        rows = await store.fetchall("SELECT COUNT(*) FROM events WHERE entity = ?", (entity,))
        return int(rows[0][0])
    return len(await store.history(entity))


async def last_seq(store: Store) -> int:
    """The highest sequence number logged (0 for an empty log)."""
    if isinstance(store, SQLiteBase):
        rows = await store.fetchall("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(rows[0][0])
    last = 0
    async for rows in store.iter_event_batches(0):
        last = int(rows[-1][0])
    return last


async def events_after(store: Store, seq: int, limit: int = 200) -> list[dict[str, Any]]:
    """Up to ``limit`` logged events after ``seq``, oldest first, with their entity."""
    found: list[dict[str, Any]] = []
    async for rows in store.iter_event_batches(seq, batch=limit):
        for row in rows:
            item = dict(
                seq=row[0],
                event_id=row[1],
                type=row[2],
                source=row[3],
                entity=row[4],
                received_at=row[7],
                payload=loads(row[8]),
                outcome=row[9],
                from_state=row[10],
                to_state=row[11],
                reason=row[12],
                chart_version=logged_chart_version(row[13]),
            )
            found.append(item)
        break  # one batch: the live feed asks again for the rest
    return found


__all__ = [
    "EntityQuery",
    "EntitySummary",
    "entity_page",
    "event_count",
    "events_after",
    "last_seq",
    "prefix_range",
    "state_counts",
    "timeline_page",
]
