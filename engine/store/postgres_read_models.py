"""`ReadModels` on PostgreSQL: the channel's queries and adapters' records.

The same queries as `engine.store.read_models.SQLiteReadModels`, with the
filters of `engine.store.postgres_sql`. A single-use record is spent under
``SELECT ... FOR UPDATE``: of any number of callers racing for it, in any
number of processes, exactly one sees it live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.store.postgres_base import PostgresBase
from engine.store.postgres_sql import active_clause, where_clause
from engine.store.read_models import SQLReadModels
from engine.store.read_models_records import _COLUMNS, Record, Use, _record
from engine.store.read_models_sql import Where
from engine.store.rows import dumps

_PUT = (
    f"INSERT INTO records ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, NULL)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " stored_at = excluded.stored_at, expires_at = excluded.expires_at, used_at = NULL"
)


class PostgresReadModels(PostgresBase, SQLReadModels):
    """PostgreSQL's SQL for active states, field filters and what differs
    from SQLite; the other queries are `SQLReadModels`'."""

    def _active_sql(self, column: str, states: Sequence[str]) -> tuple[str, list[Any]]:
        return active_clause(column, states)

    def _fields_sql(self, column: str, where: Where | None) -> tuple[str, list[Any]]:
        return where_clause(column, where)

    async def entity_keys(self, chart: str, *, prefix: str = "", suffix: str = "") -> list[str]:
        # starts_with and right(): exact, no wildcard to escape, no case folding.
        rows = await self.fetchall(
            "SELECT key FROM entities WHERE chart = %s AND starts_with(key, %s)"
            " AND right(key, %s) = %s AND length(key) >= %s ORDER BY key",
            (chart, prefix, len(suffix), suffix, len(prefix) + len(suffix)),
        )
        return [key for (key,) in rows if key.endswith(suffix)]

    async def event_outcomes(self, event_ids: Sequence[str]) -> dict[str, str]:
        if not event_ids:
            return {}
        rows = await self.fetchall(
            "SELECT event_id, outcome FROM events WHERE event_id = ANY(%s::text[]) ORDER BY seq",
            (list(event_ids),),
        )
        return {event_id: outcome for event_id, outcome in rows}

    async def put_record(
        self,
        namespace: str,
        key: str,
        value: Mapping[str, Any],
        *,
        at: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        await self.execute_write(_PUT, (namespace, key, dumps(dict(value)), at, expires_at))

    async def use_record(self, namespace: str, key: str, now: float) -> tuple[Use, Record | None]:
        async with self.writing() as db, db.cursor() as cursor:
            await cursor.execute(
                f"SELECT {_COLUMNS} FROM records WHERE namespace = %s AND key = %s FOR UPDATE",
                (namespace, key),
            )
            row = await cursor.fetchone()
            if row is None:
                return "unknown", None
            if row[5] is not None:
                return "used", _record(row)
            if row[4] is not None and row[4] <= now:
                return "expired", _record(row)
            await cursor.execute(
                "UPDATE records SET used_at = %s WHERE namespace = %s AND key = %s",
                (now, namespace, key),
            )
        return "live", _record((*row[:5], now))

    async def move_record(self, namespace: str, key: str, to_namespace: str, to_key: str) -> bool:
        if (to_namespace, to_key) == (namespace, key):
            return await self.get_record(namespace, key) is not None
        # One statement: the DELETE locks the row, so of racing moves the
        # first takes it and the others find nothing left to move.
        moved = await self.execute_write(
            "WITH moved AS (DELETE FROM records WHERE namespace = %s AND key = %s"
            " RETURNING value, stored_at, expires_at, used_at)"
            f" INSERT INTO records ({_COLUMNS})"
            " SELECT %s, %s, value, stored_at, expires_at, used_at FROM moved"
            " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
            " stored_at = excluded.stored_at, expires_at = excluded.expires_at,"
            " used_at = excluded.used_at",
            (namespace, key, to_namespace, to_key),
        )
        return moved > 0


__all__ = ["PostgresReadModels"]
