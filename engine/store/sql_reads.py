"""Reads and small writes whose SQL both stores speak, written once.

SQLite (`engine.store.sqlite.SQLiteStore`) and PostgreSQL
(`engine.store.postgres.PostgresStore`) keep the same tables with the same
columns, so most reads are one SQL statement for both: these mixins hold
them, written with ``?`` placeholders (PostgreSQL's base reads them as its
driver's ``%s``). Each store supplies ``fetchall`` and ``execute_write``, and
keeps its own versions of what differs: lists of ids (SQLite binds them in
chunks, PostgreSQL as one array), upserts, JSON filters, claims.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from engine.step import EntityState
from engine.store.commands import (
    DISCARDABLE,
    RETRYABLE,
    ActionOutcome,
    CommandAction,
    CommandView,
    OutboxCommand,
)
from engine.store.outbox_sql import COMMAND_COLUMNS, VIEW_COLUMNS, status_clause
from engine.store.rows import (
    COUNTED,
    ENTITY_COLUMNS,
    EVENT_COLUMNS,
    LogRow,
    TimerRow,
    entity_of,
    loads,
    logged_chart_version,
)


def command_of(row: Sequence[Any]) -> OutboxCommand:
    """An `OutboxCommand` from a row of `COMMAND_COLUMNS`."""
    return OutboxCommand(
        row[0], row[1], row[2], loads(row[3]), row[4], row[5], row[6], row[7], row[8]
    )


def view_of(row: Sequence[Any], actions: tuple[CommandAction, ...], now: float) -> CommandView:
    claimed_by, claim_until = row[13], row[14]
    status = row[3]
    if status == "pending" and claim_until is not None and claim_until > now:
        status = "running"
    else:  # a claim that ran out is nobody's: the command is plainly pending
        claimed_by = claim_until = None
    (id_, type_, entity, _stored, attempts, last_error, key, created_at, available_at) = row[:9]
    done_at, hold_key, event_seq, payload = row[9:13]
    return CommandView(
        id=id_,
        type=type_,
        entity=entity,
        status=status,
        attempts=attempts,
        last_error=last_error,
        idempotency_key=key,
        created_at=created_at,
        available_at=available_at,
        done_at=done_at,
        hold_key=hold_key,
        event_seq=event_seq,
        payload=loads(payload),
        actions=actions,
        claimed_by=claimed_by,
        claim_until=claim_until,
    )


EVENT_LIST = ", ".join(EVENT_COLUMNS)
HISTORY_KEYS = (
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
# Equal due times fire by entity, then name (the order of the due_at index).
_TIMER_ORDER = " ORDER BY due_at, entity, name"


class SharedSQL:
    """What a mixin here needs of its store."""

    if TYPE_CHECKING:

        async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        async def execute_write(self, sql: str, params: Sequence[Any] = ()) -> int: ...


def where_of(pairs: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND b = ?`` for the pairs whose value is given."""
    given = [(column, value) for column, value in pairs if value is not None]
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{c} = ?" for c, _ in given), [v for _, v in given]


class SharedLogReads(SharedSQL):
    """The log, entities, timers, duplicates and cursors (dead letters:
    `engine.store.dead_letters_sql`)."""

    if TYPE_CHECKING:

        def _active_sql(self, column: str, states: Sequence[str]) -> tuple[str, list[Any]]:
            """The store's SQL for "one of ``states`` is active in ``column``"
            (`engine.store.read_models.SQLReadModels`)."""
            ...

    async def entities(
        self, *, chart: str | None = None, state: str | None = None, kind: str | None = None
    ) -> list[EntityState]:
        where, params = where_of([("chart", chart), ("kind", kind)])
        if state is not None:  # any active state: atomic, compound or a region
            sql, more = self._active_sql("state", [state])
            where += (" AND " if where else " WHERE ") + sql
            params += more
        rows = await self.fetchall(
            f"SELECT {ENTITY_COLUMNS} FROM entities{where} ORDER BY key", params
        )
        return [entity_of(row) for row in rows]

    async def history(self, entity: str) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            f"SELECT {', '.join(HISTORY_KEYS)} FROM events WHERE entity = ? ORDER BY seq",
            (entity,),
        )
        history = [dict(zip(HISTORY_KEYS, row, strict=True)) for row in rows]
        for item in history:
            item["payload"] = loads(item["payload"])
            item["chart_version"] = logged_chart_version(item["chart_version"])
        return history

    async def duplicate_count(self, event_id: str | None = None) -> int:
        where, params = where_of([("event_id", event_id)])
        rows = await self.fetchall(f"SELECT COUNT(*) FROM duplicates{where}", params)
        return int(rows[0][0])

    async def count(self, table: str) -> int:
        if table not in COUNTED:
            raise ValueError(f"unknown table {table!r}")
        rows = await self.fetchall(f"SELECT COUNT(*) FROM {table}")
        return int(rows[0][0])

    async def due_timers(self, now: float, limit: int = 1000) -> list[TimerRow]:
        rows = await self.fetchall(
            f"SELECT {_TIMER_COLUMNS} FROM timers WHERE due_at <= ?{_TIMER_ORDER} LIMIT ?",
            (now, limit),
        )
        return [TimerRow(*r) for r in rows]

    async def timers(self, entity: str | None = None) -> list[TimerRow]:
        where, params = where_of([("entity", entity)])
        rows = await self.fetchall(
            f"SELECT {_TIMER_COLUMNS} FROM timers{where}{_TIMER_ORDER}", params
        )
        return [TimerRow(*r) for r in rows]

    async def save_cursor(self, name: str, value: str, at: float) -> None:
        """Remember how far the pull called ``name`` has come. The caller saves it
        only once the events it covers are durably recorded, so a crash between
        the two repeats some of the pull (its events are then duplicates) and
        never skips any of it."""
        await self.execute_write(
            "INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (name, value, at),
        )

    async def cursor(self, name: str) -> str | None:
        """The value last saved by `save_cursor` under ``name``, or None."""
        rows = await self.fetchall("SELECT value FROM cursors WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def entities_logged_after(self, seq: int) -> set[str]:
        rows = await self.fetchall("SELECT DISTINCT entity FROM events WHERE seq > ?", (seq,))
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
        where = " AND entity = ?" if entity is not None else ""
        while True:
            params: tuple[Any, ...] = (last, entity, batch) if entity is not None else (last, batch)
            rows = await self.fetchall(
                f"SELECT {EVENT_LIST} FROM events WHERE seq > ?{where} ORDER BY seq LIMIT ?",
                params,
            )
            if not rows:
                return
            yield rows
            last = rows[-1][0]


class SharedOutboxReads(SharedSQL):
    """The outbox as operators list it, and held commands' release."""

    if TYPE_CHECKING:

        async def _actions(self, ids: list[int]) -> dict[int, tuple[CommandAction, ...]]: ...

        async def _act(
            self,
            command_id: int,
            action: str,
            allowed: tuple[str, ...],
            actor: str,
            reason: str | None,
            now: float,
        ) -> ActionOutcome:
            """One operator action as one transaction: read the status, refuse
            or change it, record the action (`engine.store.outbox_sql.act`)."""
            ...

    async def retry_command(
        self,
        command_id: int,
        *,
        now: float,
        actor: str,
        reason: str | None = None,
        allowed: tuple[str, ...] = RETRYABLE,
    ) -> ActionOutcome:
        return await self._act(command_id, "retry", allowed, actor, reason, now)

    async def discard_command(
        self, command_id: int, *, now: float, actor: str, reason: str | None = None
    ) -> ActionOutcome:
        return await self._act(command_id, "discard", DISCARDABLE, actor, reason, now)

    async def list_commands(
        self, *, status: str | None = None, entity: str | None = None
    ) -> list[OutboxCommand]:
        where, params = where_of([("status", status), ("entity", entity)])
        rows = await self.fetchall(
            f"SELECT {COMMAND_COLUMNS} FROM outbox{where} ORDER BY id", params
        )
        return [command_of(r) for r in rows]

    async def command_views(
        self, status_filter: str, now: float, *, entity: str | None = None
    ) -> list[CommandView]:
        clause, params = status_clause(status_filter, now)
        clauses = [clause] if clause else []
        if entity is not None:
            clauses.append("entity = ?")
            params.append(entity)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.fetchall(f"SELECT {VIEW_COLUMNS} FROM outbox{where} ORDER BY id", params)
        actions = await self._actions([r[0] for r in rows])
        return [view_of(r, actions.get(r[0], ()), now) for r in rows]

    async def command_view(self, command_id: int, now: float) -> CommandView | None:
        rows = await self.fetchall(f"SELECT {VIEW_COLUMNS} FROM outbox WHERE id = ?", (command_id,))
        if not rows:
            return None
        actions = await self._actions([command_id])
        return view_of(rows[0], actions.get(command_id, ()), now)

    async def release_held(self, now: float, hold_key: str | None = None) -> int:
        sql = (
            "UPDATE outbox SET status = 'pending', available_at = ?, hold_key = NULL"
            " WHERE status = 'held'"
        )
        if hold_key is None:
            return await self.execute_write(sql, (now,))
        return await self.execute_write(sql + " AND hold_key = ?", (now, hold_key))


__all__ = [
    "EVENT_LIST",
    "SharedLogReads",
    "SharedOutboxReads",
    "SharedSQL",
    "command_of",
    "view_of",
    "where_of",
]
