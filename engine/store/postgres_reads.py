"""`PostgresStore`'s reads of the log, entities, timers, duplicates and dead letters.

Lists of ids are bound as one array (``= ANY(%s)``), not spliced in: one
statement whatever their number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from engine.step import EntityState
from engine.store.postgres_base import PostgresBase
from engine.store.postgres_sql import active_clause
from engine.store.rows import (
    COUNTED,
    ENTITY_COLUMNS,
    DeadLetterRow,
    LogRow,
    TimerRow,
    entity_of,
    loads,
    logged_chart_version,
)
from engine.store.sqlite_batch import EVENT_LIST

_HISTORY_KEYS = (
    "seq",
    "event_id",
    "type",
    "source",
    "received_at",
    "outcome",
    "from_state",
    "to_state",
    "reason",
    "payload",
    "chart_version",
)
_TIMER_COLUMNS = "entity, name, due_at, event_type, event_id"
# Equal due times fire by entity, then name (both in byte order).
_TIMER_ORDER = " ORDER BY due_at, entity, name"


class PostgresReads(PostgresBase):
    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        rows = await self.fetchall(
            "SELECT event_id FROM events WHERE event_id = ANY(%s::text[])", (list(event_ids),)
        )
        return {row[0] for row in rows}

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        if not keys:
            return {}
        rows = await self.fetchall(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE key = ANY(%s::text[])", (list(keys),)
        )
        return {row[0]: entity_of(row) for row in rows}

    async def entity(self, key: str) -> EntityState | None:
        rows = await self.fetchall(f"SELECT {ENTITY_COLUMNS} FROM entities WHERE key = %s", (key,))
        return entity_of(rows[0]) if rows else None

    async def entities(
        self, *, chart: str | None = None, state: str | None = None, kind: str | None = None
    ) -> list[EntityState]:
        clauses, params = [], []
        for column, value in (("chart", chart), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if state is not None:  # any active state: atomic, compound or a region
            sql, more = active_clause("state", [state])
            clauses.append(sql)
            params += more
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.fetchall(
            f"SELECT {ENTITY_COLUMNS} FROM entities{where} ORDER BY key", params
        )
        return [entity_of(row) for row in rows]

    async def history(self, entity: str) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            f"SELECT {', '.join(_HISTORY_KEYS)} FROM events WHERE entity = %s ORDER BY seq",
            (entity,),
        )
        history = [dict(zip(_HISTORY_KEYS, row, strict=True)) for row in rows]
        for item in history:
            item["payload"] = loads(item["payload"])
            item["chart_version"] = logged_chart_version(item["chart_version"])
        return history

    async def dead_letters(self, entity: str | None = None) -> list[DeadLetterRow]:
        sql = (
            "SELECT received_at, source, entity, raw, error, id, digest, size, count, last_seen"
            " FROM dead_letters"
        )
        params: tuple[Any, ...] = ()
        if entity is not None:
            sql += " WHERE entity = %s"
            params = (entity,)
        rows = await self.fetchall(sql + " ORDER BY id", params)
        return [DeadLetterRow(*row) for row in rows]

    async def purge_dead_letters(self, before: float) -> int:
        return await self.execute_write(
            "DELETE FROM dead_letters WHERE COALESCE(last_seen, received_at) < %s", (before,)
        )

    async def duplicate_count(self, event_id: str | None = None) -> int:
        if event_id is None:
            rows = await self.fetchall("SELECT COUNT(*) FROM duplicates")
        else:
            rows = await self.fetchall(
                "SELECT COUNT(*) FROM duplicates WHERE event_id = %s", (event_id,)
            )
        return int(rows[0][0])

    async def count(self, table: str) -> int:
        if table not in COUNTED:
            raise ValueError(f"unknown table {table!r}")
        rows = await self.fetchall(f"SELECT COUNT(*) FROM {table}")
        return int(rows[0][0])

    async def due_timers(self, now: float, limit: int = 1000) -> list[TimerRow]:
        rows = await self.fetchall(
            f"SELECT {_TIMER_COLUMNS} FROM timers WHERE due_at <= %s{_TIMER_ORDER} LIMIT %s",
            (now, limit),
        )
        return [TimerRow(*r) for r in rows]

    async def timers(self, entity: str | None = None) -> list[TimerRow]:
        sql = f"SELECT {_TIMER_COLUMNS} FROM timers"
        params: tuple[Any, ...] = ()
        if entity is not None:
            sql += " WHERE entity = %s"
            params = (entity,)
        # Within one due time, the order they were armed in (SQLite's rowid order).
        return [TimerRow(*r) for r in await self.fetchall(sql + _TIMER_ORDER, params)]

    async def save_cursor(self, name: str, value: str, at: float) -> None:
        """Remember how far the pull called ``name`` has come (saved only once
        the events it covers are recorded: a crash repeats, never skips)."""
        await self.execute_write(
            "INSERT INTO cursors (name, value, updated_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (name, value, at),
        )

    async def cursor(self, name: str) -> str | None:
        rows = await self.fetchall("SELECT value FROM cursors WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    async def entities_logged_after(self, seq: int) -> set[str]:
        rows = await self.fetchall("SELECT DISTINCT entity FROM events WHERE seq > %s", (seq,))
        return {row[0] for row in rows}

    async def iter_events(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[LogRow]:
        """Stream the log (or one entity's) in sequence order, in bounded memory."""
        async for rows in self.iter_event_batches(since_seq, batch, entity):
            for row in rows:
                yield row

    async def iter_event_batches(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[list[LogRow]]:
        """The log in sequence order, ``batch`` rows at a time."""
        last = since_seq
        where = " AND entity = %s" if entity is not None else ""
        while True:
            params: tuple[Any, ...] = (last, entity, batch) if entity is not None else (last, batch)
            rows = await self.fetchall(
                f"SELECT {EVENT_LIST} FROM events WHERE seq > %s{where} ORDER BY seq LIMIT %s",
                params,
            )
            if not rows:
                return
            yield rows
            last = rows[-1][0]


__all__ = ["PostgresReads"]
