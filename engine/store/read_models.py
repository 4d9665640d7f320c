"""Read models: the queries the channel's views, lookups and adapters ask of a store.

`ReadModels` is what they need, in the engine's own terms (charts, states,
fields of an entity's data, named records) and nothing of SQLite; any store
the engine runs on provides it. `SQLiteReadModels` is SQLite's, a base of
`SQLiteStore`. Field filters are written once, in `engine.store.read_models_sql`.

Adapters keep durable records of their own (tokens, one-time nonces) in the
store's ``records`` table, each under a namespace of the adapter's, so no
adapter creates a table outside the migrations (`engine.store.schema`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from engine.step import EntityState
from engine.store.read_models_records import Record, SharedRecords, SQLiteRecords, Use
from engine.store.read_models_sql import (
    Equals,
    Scalar,
    Where,
    active_in_any,
    placeholders,
)
from engine.store.rows import ENTITY_COLUMNS, entity_of

# Orders a list of entities may be read in; a name, never SQL, crosses the API.
_ORDERS = {
    "key": "key",
    "-key": "key DESC",
    "updated_at": "updated_at, key",
    "-updated_at": "updated_at DESC, key",
}
Order = Literal["key", "-key", "updated_at", "-updated_at"]


@dataclass(frozen=True)
class OutboxBacklog:
    """Commands due to run now: how many, and since when the oldest has waited."""

    count: int
    oldest_available_at: float | None


class ReadModels(Protocol):
    """Queries over a store's entities, commands and records (see the module)."""

    async def find_entities(
        self,
        chart: str,
        *,
        states: Sequence[str] = (),
        where: Where | None = None,
        order_by: Order = "key",
        limit: int | None = None,
    ) -> list[EntityState]:
        """Entities of ``chart`` in which one of ``states`` is active (an atomic
        state or an ancestor of one; any, if empty) and whose data
        matches every filter of ``where`` (`engine.store.read_models_sql`)."""
        ...

    async def find_entity(
        self, chart: str, *, states: Sequence[str] = (), where: Where | None = None
    ) -> EntityState | None:
        """The first (by key) of `find_entities`, or None."""
        ...

    async def entity(self, key: str) -> EntityState | None:
        """The entity of this key (any chart), or None; the store's own lookup."""
        ...

    async def entity_exists(self, key: str) -> bool: ...

    async def entity_keys(self, chart: str, *, prefix: str = "", suffix: str = "") -> list[str]:
        """Keys of ``chart``'s entities that start and end as given, in order."""
        ...

    async def event_outcomes(self, event_ids: Sequence[str]) -> dict[str, str]:
        """The outcome of each of these events the log holds, in log order."""
        ...

    async def has_command(
        self,
        entity: str,
        command: str,
        *,
        statuses: Sequence[str],
        hold_key: str | None = None,
        excluding: int | None = None,
    ) -> bool:
        """Whether the outbox has ``command`` for ``entity`` in one of
        ``statuses`` (held under ``hold_key``, if given), other than the
        command whose id is ``excluding``."""
        ...

    async def outbox_backlog(self, now: float) -> OutboxBacklog: ...

    async def schema_version(self) -> int:
        """How far the store's schema has come; a cheap proof that it answers."""
        ...

    async def put_record(
        self,
        namespace: str,
        key: str,
        value: Mapping[str, Any],
        *,
        at: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Keep ``value`` under (namespace, key), replacing what was there."""
        ...

    async def get_record(self, namespace: str, key: str) -> Record | None: ...

    async def find_records(self, namespace: str, *, where: Where | None = None) -> list[Record]:
        """The namespace's records whose value matches ``where``, by key."""
        ...

    async def delete_record(self, namespace: str, key: str) -> bool: ...

    async def use_record(self, namespace: str, key: str, now: float) -> tuple[Use, Record | None]:
        """Spend a single-use record: "live" (and now used) exactly once, however
        many callers race for it; else "unknown", "used" or "expired"."""
        ...

    async def move_record(self, namespace: str, key: str, to_namespace: str, to_key: str) -> bool:
        """Atomically put the record under (to_namespace, to_key), replacing what
        was there, and delete it where it was; False (nothing changed) if absent."""
        ...

    async def purge_records(self, namespace: str, *, expired_before: float) -> int:
        """Delete the namespace's records that expired before the given time."""
        ...


class SQLReadModels(SharedRecords):
    """The read models' queries both stores speak alike (``?`` SQL), with the
    store's SQL for active states and field filters from `_active_sql` and
    `_fields_sql` (SQLite's here; `engine.store.postgres_read_models` has
    PostgreSQL's)."""

    def _active_sql(self, column: str, states: Sequence[str]) -> tuple[str, list[Any]]:
        return active_in_any(column, states)

    async def find_entities(
        self,
        chart: str,
        *,
        states: Sequence[str] = (),
        where: Where | None = None,
        order_by: Order = "key",
        limit: int | None = None,
    ) -> list[EntityState]:
        sql = f"SELECT {ENTITY_COLUMNS} FROM entities WHERE chart = ?"
        params: list[Any] = [chart]
        if states:  # any of them active: atomic, compound or a region
            active, more = self._active_sql("state", states)
            sql += " AND " + active
            params += more
        fields, more = self._fields_sql("data", where)
        if fields:
            sql += " AND " + fields
            params += more
        if order_by not in _ORDERS:
            raise ValueError(f"order_by is one of {', '.join(_ORDERS)}, not {order_by!r}")
        sql += " ORDER BY " + _ORDERS[order_by]
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be 0 or more, not {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self.fetchall(sql, params)
        return [entity_of(row) for row in rows]

    async def find_entity(
        self, chart: str, *, states: Sequence[str] = (), where: Where | None = None
    ) -> EntityState | None:
        found = await self.find_entities(chart, states=states, where=where, limit=1)
        return found[0] if found else None

    async def entity_exists(self, key: str) -> bool:
        return bool(await self.fetchall("SELECT 1 FROM entities WHERE key = ?", (key,)))

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
        sql = (
            "SELECT 1 FROM outbox WHERE entity = ? AND command = ?"
            f" AND status IN ({placeholders(statuses)})"
        )
        params: list[Any] = [entity, command, *statuses]
        if hold_key is not None:
            sql += " AND hold_key = ?"
            params.append(hold_key)
        if excluding is not None:
            sql += " AND id != ?"
            params.append(excluding)
        return bool(await self.fetchall(sql + " LIMIT 1", params))

    async def outbox_backlog(self, now: float) -> OutboxBacklog:
        [(count, oldest)] = await self.fetchall(
            "SELECT COUNT(*), MIN(available_at) FROM outbox"
            " WHERE status = 'pending' AND available_at <= ?",
            (now,),
        )
        return OutboxBacklog(int(count), oldest)

    async def schema_version(self) -> int:
        [(version,)] = await self.fetchall("SELECT MAX(version) FROM schema_version")
        return int(version or 0)


class SQLiteReadModels(SQLiteRecords, SQLReadModels):
    """`ReadModels` over SQLite's ``entities``, ``events``, ``outbox`` and
    ``records`` tables; mixed into `SQLiteStore`, whose reader it reads with."""

    async def entity_keys(self, chart: str, *, prefix: str = "", suffix: str = "") -> list[str]:
        pattern = _like_escape(prefix) + "%" + _like_escape(suffix)
        rows = await self.fetchall(
            "SELECT key FROM entities WHERE chart = ? AND key LIKE ? ESCAPE '\\' ORDER BY key",
            (chart, pattern),
        )
        # LIKE folds ASCII case; the keys asked for are exact.
        return [k for (k,) in rows if k.startswith(prefix) and k.endswith(suffix)]

    async def event_outcomes(self, event_ids: Sequence[str]) -> dict[str, str]:
        found: list[tuple[int, str, str]] = []
        ids = list(event_ids)
        for start in range(0, len(ids), 500):  # under SQLite's bound-parameter cap
            chunk = ids[start : start + 500]
            rows = await self.fetchall(
                f"SELECT seq, event_id, outcome FROM events WHERE event_id IN"
                f" ({placeholders(chunk)})",
                chunk,
            )
            found += [(int(seq), event_id, outcome) for seq, event_id, outcome in rows]
        return {event_id: outcome for _, event_id, outcome in sorted(found)}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = [
    "Equals",
    "Order",
    "OutboxBacklog",
    "ReadModels",
    "Record",
    "SQLReadModels",
    "SQLiteReadModels",
    "Scalar",
    "Use",
    "Where",
]
