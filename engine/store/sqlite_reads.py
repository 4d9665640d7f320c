"""`SQLiteStore`'s reads of the log, entities, timers, duplicates and dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from engine.step import EntityState
from engine.store.dead_letters_sql import SharedDeadLetters
from engine.store.rows import (
    ENTITY_COLUMNS,
    entity_of,
)
from engine.store.sql_reads import SharedLogReads
from engine.store.sqlite_base import SQLiteBase, chunks, marks


class SQLiteReads(SQLiteBase, SharedLogReads, SharedDeadLetters):
    """SQLite's own reads; the rest are `engine.store.sql_reads.SharedLogReads`."""

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(event_ids)):
            rows = await self.fetchall(
                f"SELECT event_id FROM events WHERE event_id IN ({marks(len(chunk))})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        found: dict[str, EntityState] = {}
        for chunk in chunks(list(keys)):
            rows = await self.fetchall(
                f"SELECT {ENTITY_COLUMNS} FROM entities WHERE key IN ({marks(len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row[0]] = entity_of(row)
        return found

    async def entity(self, key: str) -> EntityState | None:
        return (await self.load_entities([key])).get(key)


__all__ = ["SQLiteReads"]
