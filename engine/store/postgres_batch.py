"""One commit's rows written to PostgreSQL: a statement per table, not per row.

The rows are those SQLite writes (`engine.store.sqlite_batch.batch_rows`);
each table's rows go as one ``INSERT ... SELECT FROM json_populate_recordset``
with the rows as one JSON parameter (`RecordSet`), so a batch of a thousand
events is a handful of statements, whatever its size (decision:
docs/decisions/postgres-driver.md). Tables that see few rows a batch
(timers, duplicates, dead letters) use ``executemany``; the commit sends
them all in one pipeline (`engine.store.postgres_commit`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.store.postgres_commit import Repeated, Statement
from engine.store.rows import dumps
from engine.store.sqlite_batch import EVENT_LIST, BatchRows

Row = tuple[Any, ...]

_ENTITY_COLUMNS = (
    "key, kind, chart, state, data, version, last_seq, updated_at, chart_version, history"
)
_UPDATE_DATA = (
    " data = excluded.data, version = excluded.version, last_seq = excluded.last_seq,"
    " updated_at = excluded.updated_at, chart_version = excluded.chart_version,"
    " history = excluded.history"
)
_OUTBOX_COLUMNS = (
    "event_seq, entity, command, payload, idempotency_key, created_at, available_at,"
    " status, last_error"
)
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


class RecordSet:
    """One table's rows as one JSON parameter: ``INSERT ... SELECT FROM
    json_populate_recordset(NULL::table, %s)``. The JSON is made in Rust
    (pydantic-core) and read by PostgreSQL in C; binding a typed array per
    column costs psycopg twice the time in Python (the decision's figures)."""

    def __init__(self, table: str, columns: str, tail: str = "", *, ordered: bool = False):
        self.names = tuple(name.strip() for name in columns.split(","))
        source = f"json_populate_recordset(NULL::{table}, %s::json)"
        if ordered:  # rows go in in the batch's order (ids follow it)
            source += " WITH ORDINALITY AS r ORDER BY ordinality"
        self.sql = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}{tail}"

    def param(self, rows: Sequence[Row]) -> str:
        names = self.names
        text = dumps([dict(zip(names, row, strict=True)) for row in rows])
        # A NUL in a value is the escape \u0000 here (see postgres_base.NUL).
        return _JSON_NUL.sub(_no_nul, text) if "\\u0000" in text else text


# Backslash pairs first, as JSON pairs them: only a real escape of NUL matches.
_JSON_NUL = re.compile(r"\\\\|\\u0000")


def _no_nul(found: re.Match[str]) -> str:
    return found.group() if found.group() == "\\\\" else "\\ufffd"


_EVENTS = RecordSet("events", EVENT_LIST)
_CONFLICT = " ON CONFLICT (key) DO UPDATE SET"
_MOVED = RecordSet(
    "entities",
    _ENTITY_COLUMNS,
    _CONFLICT + " chart = excluded.chart, state = excluded.state," + _UPDATE_DATA,
)
_SAME = RecordSet("entities", _ENTITY_COLUMNS, _CONFLICT + _UPDATE_DATA)
# Of two commands under one idempotency key, the first is kept.
_OUTBOX = RecordSet(
    "outbox", _OUTBOX_COLUMNS, " ON CONFLICT (idempotency_key) DO NOTHING", ordered=True
)


def row_statements(rows: BatchRows) -> tuple[list[Statement], list[Repeated]]:
    """`batch_rows` as the statements that write them, parameters and all
    (built before the transaction opens, so that nothing waits on it): one a
    table for the many-row tables, and the few-row tables' statements to run
    once a row (``executemany``)."""
    # Rows whose state and chart stayed put leave those columns (and the
    # index on them) alone.
    statements: list[Statement] = [
        (table.sql, (table.param(written),))
        for table, written in (
            (_EVENTS, rows.events),
            (_MOVED, rows.moved_entities),
            (_SAME, rows.same_entities),
            (_OUTBOX, rows.outbox),
        )
        if written
    ]
    repeated: list[Repeated] = [
        (sql, many)
        for sql, many in (
            ("DELETE FROM timers WHERE event_id = %s", rows.timers_fired),
            ("DELETE FROM timers WHERE entity = %s AND name = %s", rows.timer_cancels),
            (_ARM, rows.timer_arms),
            (
                "INSERT INTO duplicates (event_id, entity, received_at) VALUES (%s, %s, %s)",
                rows.duplicates,
            ),
            (_DEAD_LETTER, rows.dead_letters),
        )
        if many
    ]
    return statements, repeated


__all__ = ["RecordSet", "row_statements"]
