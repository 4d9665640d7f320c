"""`PostgresStore`'s reads of the log, entities, timers, duplicates and dead letters.

Lists of ids are bound as one array (``= ANY(%s)``, or ``unnest(%s)`` where
each must be an index lookup), not spliced in: one statement whatever their
number.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.step import EntityState
from engine.store.dead_letters_sql import SharedDeadLetters
from engine.store.postgres_base import NUL, REPLACEMENT, PostgresBase
from engine.store.rows import (
    ENTITY_COLUMNS,
    entity_of,
)
from engine.store.sql_reads import SharedLogReads


def as_stored(texts: Sequence[str]) -> dict[str, str]:
    """Each of ``texts`` by the text the store keeps for it (NUL replaced,
    `engine.store.postgres_base.NUL`), so what is found maps back to what was asked."""
    return {text.replace(NUL, REPLACEMENT): text for text in texts}


# The admission's duplicate check, one index lookup an id. ``event_id =
# ANY(...)`` with a batch's thousand ids was planned as a sequential scan of
# the whole log (a log never analyzed, or one the planner deems small): 11 ms
# a check at 48,000 events and growing with the log, against 1.5-3 ms here.
_KNOWN = (
    "SELECT e.event_id FROM unnest(%s::text[]) AS asked(id) CROSS JOIN LATERAL"
    " (SELECT event_id FROM events WHERE event_id = asked.id LIMIT 1) AS e"
)


class PostgresReads(PostgresBase, SharedLogReads, SharedDeadLetters):
    """PostgreSQL's own reads; the rest are `engine.store.sql_reads.SharedLogReads`."""

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        asked = as_stored(event_ids)
        rows = await self.fetchall(_KNOWN, (list(asked),))
        return {asked[row[0]] for row in rows}

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        if not keys:
            return {}
        asked = as_stored(keys)
        rows = await self.fetchall(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE key = ANY(%s::text[])", (list(asked),)
        )
        found = {}
        for row in rows:
            entity = entity_of(row)
            entity.key = asked[entity.key]  # the key as asked, NUL and all
            found[entity.key] = entity
        return found

    async def entity(self, key: str) -> EntityState | None:
        rows = await self.fetchall(f"SELECT {ENTITY_COLUMNS} FROM entities WHERE key = %s", (key,))
        return entity_of(rows[0]) if rows else None


__all__ = ["PostgresReads"]
