"""`ReadModels` on PostgreSQL: the channel's queries and adapters' records.

The same queries as `engine.store.read_models.SQLiteReadModels`, with the
filters of `engine.store.postgres_sql`. A single-use record is spent under
``SELECT ... FOR UPDATE``: of any number of callers racing for it, in any
number of processes, exactly one sees it live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.step import EntityState
from engine.store.postgres_base import PostgresBase
from engine.store.postgres_sql import active_clause, where_clause
from engine.store.read_models import _ORDERS, Order, OutboxBacklog
from engine.store.read_models_records import _COLUMNS, Record, Use, _record
from engine.store.read_models_sql import Where
from engine.store.rows import ENTITY_COLUMNS, dumps, entity_of

_PUT = (
    f"INSERT INTO records ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, NULL)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " stored_at = excluded.stored_at, expires_at = excluded.expires_at, used_at = NULL"
)


class PostgresReadModels(PostgresBase):
    async def find_entities(
        self,
        chart: str,
        *,
        states: Sequence[str] = (),
        where: Where | None = None,
        order_by: Order = "key",
        limit: int | None = None,
    ) -> list[EntityState]:
        sql = f"SELECT {ENTITY_COLUMNS} FROM entities WHERE chart = %s"
        params: list[Any] = [chart]
        if states:  # any of them active: atomic, compound or a region
            active, more = active_clause("state", states)
            sql += " AND " + active
            params += more
        fields, more = where_clause("data", where)
        if fields:
            sql += " AND " + fields
            params += more
        if order_by not in _ORDERS:
            raise ValueError(f"order_by is one of {', '.join(_ORDERS)}, not {order_by!r}")
        sql += " ORDER BY " + _ORDERS[order_by]
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be 0 or more, not {limit}")
            sql += " LIMIT %s"
            params.append(limit)
        return [entity_of(row) for row in await self.fetchall(sql, params)]

    async def find_entity(
        self, chart: str, *, states: Sequence[str] = (), where: Where | None = None
    ) -> EntityState | None:
        found = await self.find_entities(chart, states=states, where=where, limit=1)
        return found[0] if found else None

    async def entity_exists(self, key: str) -> bool:
        return bool(await self.fetchall("SELECT 1 FROM entities WHERE key = %s", (key,)))

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

    async def has_command(
        self,
        entity: str,
        command: str,
        *,
        statuses: Sequence[str],
        hold_key: str | None = None,
        excluding: int | None = None,
    ) -> bool:
        if not statuses:
            return False
        sql = "SELECT 1 FROM outbox WHERE entity = %s AND command = %s AND status = ANY(%s::text[])"
        params: list[Any] = [entity, command, list(statuses)]
        if hold_key is not None:
            sql += " AND hold_key = %s"
            params.append(hold_key)
        if excluding is not None:
            sql += " AND id != %s"
            params.append(excluding)
        return bool(await self.fetchall(sql + " LIMIT 1", params))

    async def outbox_backlog(self, now: float) -> OutboxBacklog:
        [(count, oldest)] = await self.fetchall(
            "SELECT COUNT(*), MIN(available_at) FROM outbox"
            " WHERE status = 'pending' AND available_at <= %s",
            (now,),
        )
        return OutboxBacklog(int(count), oldest)

    async def schema_version(self) -> int:
        """PostgreSQL's own step (`engine.store.postgres_schema`)."""
        [(version,)] = await self.fetchall("SELECT MAX(version) FROM schema_version")
        return int(version or 0)

    # ------------------------------------------------------------ records

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

    async def get_record(self, namespace: str, key: str) -> Record | None:
        rows = await self.fetchall(
            f"SELECT {_COLUMNS} FROM records WHERE namespace = %s AND key = %s", (namespace, key)
        )
        return _record(rows[0]) if rows else None

    async def find_records(self, namespace: str, *, where: Where | None = None) -> list[Record]:
        sql = f"SELECT {_COLUMNS} FROM records WHERE namespace = %s"
        params: list[Any] = [namespace]
        fields, more = where_clause("value", where)
        if fields:
            sql += " AND " + fields
            params += more
        return [_record(row) for row in await self.fetchall(sql + " ORDER BY key", params)]

    async def delete_record(self, namespace: str, key: str) -> bool:
        deleted = await self.execute_write(
            "DELETE FROM records WHERE namespace = %s AND key = %s", (namespace, key)
        )
        return deleted > 0

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

    async def purge_records(self, namespace: str, *, expired_before: float) -> int:
        return await self.execute_write(
            "DELETE FROM records WHERE namespace = %s AND expires_at < %s",
            (namespace, expired_before),
        )


__all__ = ["PostgresReadModels"]
