"""One commit's rows written to PostgreSQL: a statement per table, not per row.

The rows are those SQLite writes (`engine.store.sqlite_batch.batch_rows`);
each table's rows go as one ``INSERT ... SELECT FROM unnest(...)`` with a
typed array per column, so a batch of a thousand events is a handful of
statements in one round trip each, whatever its size (decision:
docs/decisions/postgres-driver.md). Tables that see few rows a batch
(timers, duplicates, dead letters) use ``executemany``, which psycopg runs in
pipeline mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.store.postgres_base import Connection
from engine.store.sqlite_batch import EVENT_LIST, BatchRows

Row = tuple[Any, ...]

_EVENT_TYPES = (
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int4",
)
_ENTITY_COLUMNS = (
    "key, kind, chart, state, data, version, last_seq, updated_at, chart_version, history"
)
_ENTITY_TYPES = ("text", "text", "text", "text", "text", "int4", "bigint", "float8", "int4", "text")
_UPDATE_DATA = (
    " data = excluded.data, version = excluded.version, last_seq = excluded.last_seq,"
    " updated_at = excluded.updated_at, chart_version = excluded.chart_version,"
    " history = excluded.history"
)
_OUTBOX_COLUMNS = (
    "event_seq, entity, command, payload, idempotency_key, created_at, available_at,"
    " status, last_error"
)
_OUTBOX_TYPES = ("bigint", "text", "text", "text", "text", "float8", "float8", "text", "text")
# ORDER BY ordinality: the outbox's ids follow the batch's order, and of two
# commands under one idempotency key the first is kept.
_ARM = (
    "INSERT INTO timers (entity, name, due_at, event_type, event_id, armed_seq)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (entity, name) DO UPDATE SET"
    " due_at = excluded.due_at, event_type = excluded.event_type,"
    " event_id = excluded.event_id, armed_seq = excluded.armed_seq"
)
# The same input from the same source refused for the same reason again is
# counted, not stored again.
_DEAD_LETTER = (
    "INSERT INTO dead_letters (received_at, last_seen, source, entity, raw, error,"
    " digest, size, count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (source, digest, error) DO UPDATE SET"
    " count = dead_letters.count + excluded.count, last_seen ="
    " GREATEST(COALESCE(dead_letters.last_seen, dead_letters.received_at), excluded.last_seen)"
)


def unnest_insert(table: str, columns: str, types: Sequence[str], tail: str = "") -> str:
    """``INSERT INTO table (columns) SELECT ... FROM unnest(%s::t1[], ...)``, in input order."""
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    names = ", ".join(f"c{n}" for n in range(len(types)))
    return (
        f"INSERT INTO {table} ({columns}) SELECT {names} FROM unnest({arrays})"
        f" WITH ORDINALITY AS t({names}, position) ORDER BY position{tail}"
    )


def as_columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    """Rows as one list per column (what the typed arrays are bound from)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


_EVENTS = unnest_insert("events", EVENT_LIST, _EVENT_TYPES)
_ENTITIES = " ON CONFLICT (key) DO UPDATE SET"
_MOVED = unnest_insert(
    "entities",
    _ENTITY_COLUMNS,
    _ENTITY_TYPES,
    _ENTITIES + " chart = excluded.chart, state = excluded.state," + _UPDATE_DATA,
)
_SAME = unnest_insert("entities", _ENTITY_COLUMNS, _ENTITY_TYPES, _ENTITIES + _UPDATE_DATA)
_OUTBOX = unnest_insert(
    "outbox", _OUTBOX_COLUMNS, _OUTBOX_TYPES, " ON CONFLICT (idempotency_key) DO NOTHING"
)


async def write_rows(db: Connection, rows: BatchRows) -> None:
    """Write `batch_rows` inside the caller's transaction."""
    async with db.cursor() as cursor:
        if rows.events:
            await cursor.execute(_EVENTS, as_columns(rows.events, len(_EVENT_TYPES)))
        # Rows whose state and chart stayed put leave those columns (and the
        # index on them) alone.
        if rows.moved_entities:
            await cursor.execute(_MOVED, as_columns(rows.moved_entities, len(_ENTITY_TYPES)))
        if rows.same_entities:
            await cursor.execute(_SAME, as_columns(rows.same_entities, len(_ENTITY_TYPES)))
        if rows.outbox:
            await cursor.execute(_OUTBOX, as_columns(rows.outbox, len(_OUTBOX_TYPES)))
        if rows.timers_fired:
            await cursor.executemany("DELETE FROM timers WHERE event_id = %s", rows.timers_fired)
        if rows.timer_cancels:
            await cursor.executemany(
                "DELETE FROM timers WHERE entity = %s AND name = %s", rows.timer_cancels
            )
        if rows.timer_arms:
            await cursor.executemany(_ARM, rows.timer_arms)
        if rows.duplicates:
            await cursor.executemany(
                "INSERT INTO duplicates (event_id, entity, received_at) VALUES (%s, %s, %s)",
                rows.duplicates,
            )
        if rows.dead_letters:
            await cursor.executemany(_DEAD_LETTER, rows.dead_letters)


__all__ = ["as_columns", "unnest_insert", "write_rows"]
