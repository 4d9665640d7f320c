"""A batch as SQLite rows, and the one transaction that writes them.

`batch_rows` turns a `Batch` into plain tuples (cheap to pickle to a writer
process); `write_rows` runs on the writer and writes them all, or none, with
multi-row INSERTs (see `_insert_many`).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from engine.store.rows import EVENT_COLUMNS, Batch, EventRow, history_json
from engine.store.transaction import in_transaction

Row = tuple[Any, ...]
EVENT_LIST = ", ".join(EVENT_COLUMNS)


class BatchRows(NamedTuple):
    """What one commit writes, table by table."""

    events: list[Row]
    # Entities whose state or chart may have changed, and those whose did not.
    moved_entities: list[Row]
    same_entities: list[Row]
    outbox: list[Row]
    # Timers that fired (by event id), were cancelled (entity, name) or armed.
    timers_fired: list[Row]
    timer_cancels: list[tuple[str, str]]
    timer_arms: list[Row]
    duplicates: list[Row]
    dead_letters: list[Row]


_EVENT_VALUES = operator.attrgetter(*EVENT_COLUMNS)


def _entity_row(row: EventRow) -> Row:
    entity, data_json = row.entity_after, row.data_json
    assert entity is not None and data_json is not None
    return (
        entity.key,
        entity.key.partition(":")[0],
        entity.chart,
        entity.state,
        data_json,
        entity.version,
        row.seq,
        row.received_at,
        entity.chart_version,
        history_json(entity.history),
    )


def _outbox_rows(row: EventRow, status: str, inert_reason: str | None) -> list[Row]:
    return [
        (
            row.seq,
            row.entity,
            command.type,
            payload_json,
            command.idempotency_key,
            row.received_at,
            row.received_at,
            status,
            inert_reason,
        )
        for command, payload_json in zip(row.commands, row.command_json or (), strict=True)
    ]


def _timer_ops(row: EventRow, ops: dict[tuple[str, str], Row | None]) -> None:
    """The row's timer changes into ``ops``: a later change of one timer wins."""
    for timer in row.timers:
        key = (row.entity, timer.name)
        if timer.due_at is None:
            ops[key] = None
        else:
            event_id = f"timer:{row.entity}:{timer.name}:{row.seq}"
            ops[key] = (row.entity, timer.name, timer.due_at, timer.event_type, event_id, row.seq)


def batch_rows(
    batch: Batch, timers_fired: Sequence[str], inert_commands: str | None = None
) -> BatchRows:
    """A batch as the plain rows its transaction writes (cheap to pickle).

    With ``inert_commands`` (a reason), commands are recorded as ``inert``:
    kept for reading, never carried out."""
    command_status = "pending" if inert_commands is None else "inert"
    last_of: dict[str, EventRow] = {}
    moved: set[str] = set()
    outbox: list[Row] = []
    timer_ops: dict[tuple[str, str], Row | None] = {}
    for row in batch.events:
        entity = row.entity_after
        if entity is None:
            continue
        # Only an entity's last state in the batch is written.
        if row.moved:
            moved.add(entity.key)
        last_of[entity.key] = row
        if row.commands:
            outbox.extend(_outbox_rows(row, command_status, inert_commands))
        if row.timers:
            _timer_ops(row, timer_ops)
    entity_rows = {key: _entity_row(row) for key, row in last_of.items()}
    return BatchRows(
        # The event tuples are read off the rows by attrgetter, in C.
        events=list(map(_EVENT_VALUES, batch.events)),
        moved_entities=[r for key, r in entity_rows.items() if key in moved],
        same_entities=[r for key, r in entity_rows.items() if key not in moved],
        outbox=outbox,
        timers_fired=[(t,) for t in timers_fired],
        timer_cancels=[key for key, op in timer_ops.items() if op is None],
        timer_arms=[op for op in timer_ops.values() if op is not None],
        duplicates=[(d.event_id, d.entity, d.received_at) for d in batch.duplicates],
        dead_letters=[
            (
                d.received_at,
                d.last_seen or d.received_at,
                d.source,
                d.entity,
                d.raw,
                d.error,
                d.digest,
                d.size,
                d.count,
            )
            for d in batch.dead_letters
        ],
    )


# Rows per INSERT statement. Python's sqlite3 gives the GIL up around every
# statement it steps and must wait to take it back; while the event loop is
# busy, CPython makes it wait a switch interval (5 ms) each time, so fewer,
# larger statements keep the writer from queueing behind the loop. 64 rows of
# 14 columns stay far below SQLite's limit of bound parameters (32,766).
_ROWS_PER_STATEMENT = 64
_statements: dict[tuple[str, str, int, int], str] = {}


def _insert_many(db: sqlite3.Connection, head: str, rows: Sequence[Row], tail: str = "") -> None:
    """``head`` VALUES (...),(...)... ``tail`` for all ``rows``, 64 a statement."""
    width = len(rows[0])
    placeholder = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        key = (head, tail, width, len(chunk))
        sql = _statements.get(key)
        if sql is None:
            sql = _statements[key] = f"{head} VALUES {','.join([placeholder] * len(chunk))}{tail}"
        db.execute(sql, [value for row in chunk for value in row])


_INSERT_ENTITY = (
    "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at,"
    " chart_version, history)"
)
_ON_CONFLICT = " ON CONFLICT(key) DO UPDATE SET"
_UPDATE_DATA = (
    " data=excluded.data, version=excluded.version, last_seq=excluded.last_seq,"
    " updated_at=excluded.updated_at, chart_version=excluded.chart_version,"
    " history=excluded.history"
)
_ARM = (
    "INSERT OR REPLACE INTO timers (entity, name, due_at, event_type, event_id, armed_seq)"
    " VALUES (?,?,?,?,?,?)"
)
# The same input from the same source refused for the same reason again is
# counted, not stored again.
_DEAD_LETTER = (
    "INSERT INTO dead_letters (received_at, last_seen, source, entity, raw, error,"
    " digest, size, count) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (source, digest, error) DO UPDATE SET count = count + excluded.count,"
    " last_seen = MAX(COALESCE(last_seen, received_at), excluded.last_seen)"
)


def _write_all(db: sqlite3.Connection, rows: BatchRows) -> None:
    if rows.events:
        _insert_many(db, f"INSERT INTO events ({EVENT_LIST})", rows.events)
    # Rows whose state and chart stayed put leave the (chart, state) index
    # alone: SQLite maintains an index whenever the SET names its columns,
    # and with a million entities that is a random page write per event.
    if rows.moved_entities:
        moved_set = _ON_CONFLICT + " chart=excluded.chart, state=excluded.state," + _UPDATE_DATA
        _insert_many(db, _INSERT_ENTITY, rows.moved_entities, moved_set)
    if rows.same_entities:
        _insert_many(db, _INSERT_ENTITY, rows.same_entities, _ON_CONFLICT + _UPDATE_DATA)
    if rows.outbox:
        _insert_many(
            db,
            "INSERT OR IGNORE INTO outbox (event_seq, entity, command, payload,"
            " idempotency_key, created_at, available_at, status, last_error)",
            rows.outbox,
        )
    if rows.timers_fired:
        db.executemany("DELETE FROM timers WHERE event_id = ?", rows.timers_fired)
    if rows.timer_cancels:
        db.executemany("DELETE FROM timers WHERE entity = ? AND name = ?", rows.timer_cancels)
    if rows.timer_arms:
        db.executemany(_ARM, rows.timer_arms)
    if rows.duplicates:
        db.executemany(
            "INSERT INTO duplicates (event_id, entity, received_at) VALUES (?,?,?)",
            rows.duplicates,
        )
    if rows.dead_letters:
        db.executemany(_DEAD_LETTER, rows.dead_letters)


def write_rows(db: sqlite3.Connection, rows: BatchRows) -> None:
    """Write `batch_rows` as one transaction (on the writer's thread or process)."""
    in_transaction(db, lambda: _write_all(db, rows))


__all__ = ["EVENT_LIST", "BatchRows", "batch_rows", "write_rows"]
