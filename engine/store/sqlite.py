"""The SQLite store: event log, entities, outbox, timers, dead letters.

One writer connection and one reader connection (WAL lets the reader see only
committed data while a batch is being written). Writes happen in explicit
``BEGIN IMMEDIATE`` transactions under an asyncio lock; a whole batch of events
is one transaction, run as one call on the writer (a thread, or a process), with multi-row
INSERTs (see `_insert_many`), so a thread hop is paid per batch, not per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from pydantic_core import from_json, to_json

from engine.step import EntityState
from engine.store.checkpoint import Checkpointer
from engine.store.errors import SchemaMismatch, StoreError
from engine.store.identity import APPLICATION_ID, check_identity
from engine.store.process_writer import ProcessWriter
from engine.store.readonly import WriteRefused, connect_read_only, version_message
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from engine.store.writer import Writer

# SQLite caps bound parameters per statement; stay well under it.
_CHUNK = 500
_FETCH = 2000

T = TypeVar("T")


# SQLite's default page cache is 2 MB: with a million entities, the writer's
# upserts at random keys miss it on most pages; 64 MB keeps a large store's hot
# B-tree pages at hand. The reader keeps the default: its big reads are
# sequential (replay), where a large cache only costs memory (replay's peak RSS
# 77 -> 143 MB, and a little speed). A memory map was tried too: no faster,
# and it counts the file into RSS. Checkpoints run in the background
# (engine.store.checkpoint); the writer's own automatic checkpoint is only a
# backstop for a WAL of 50,000 pages (200 MB).
_WRITER_PRAGMAS = ("PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=50000")


# The event log's columns, in the order rows are written, read and exported.
EVENT_COLUMNS = (
    "seq",
    "event_id",
    "type",
    "source",
    "entity",
    "chart",
    "occurred_at",
    "received_at",
    "payload",
    "outcome",
    "from_state",
    "to_state",
    "reason",
)
_EVENT_LIST = ", ".join(EVENT_COLUMNS)


def dumps(value: Any) -> str:
    return to_json(value).decode()


def loads(text: str | bytes) -> Any:
    return from_json(text)


@dataclass(slots=True)
class EventRow:
    """One event as it will be appended to the log, with its outcome."""

    event_id: str
    type: str
    source: str
    entity: str
    chart: str
    occurred_at: float | None
    received_at: float
    payload: str
    outcome: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    entity_after: EntityState | None = None
    commands: list[Any] = field(default_factory=list)
    timers: list[Any] = field(default_factory=list)
    seq: int = 0
    # Whether the step may have changed the entity's state or chart (columns of
    # an index); False lets the entity's row be updated without touching it.
    moved: bool = True
    # The entity's data and the commands' payloads as JSON, taken by the step
    # (`step_in_place`): ``entity_after.data`` may since have moved on
    # with later steps, so these, not the dicts, are what is written.
    data_json: str | None = None
    command_json: list[str] | None = None


@dataclass(slots=True)
class DuplicateRow:
    event_id: str
    entity: str
    received_at: float


@dataclass(slots=True)
class DeadLetterRow:
    """Input that could not be used, kept once per (source, digest, reason).

    ``received_at`` is when it was first seen, ``last_seen`` the latest time,
    ``count`` how many times it came; ``raw`` is only a prefix of the input
    (``size`` bytes in all) and ``digest`` the sha256 of what was received."""

    received_at: float
    source: str
    entity: str | None
    raw: str
    error: str
    id: int = 0
    digest: str | None = None
    size: int = 0
    count: int = 1
    last_seen: float | None = None


@dataclass(slots=True)
class Batch:
    events: list[EventRow] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.duplicates) + len(self.dead_letters)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLiteStore:
    """Persistence for one engine. Open with `await SQLiteStore.open(path)`, or
    `await SQLiteStore.open_readonly(path)` to read without any writer (SEC-4)."""

    def __init__(
        self,
        path: str,
        writer: Writer | ProcessWriter | None,
        reader: aiosqlite.Connection | None,
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader: aiosqlite.Connection = reader  # type: ignore[assignment]
        self._checkpointer: Checkpointer | None = None
        self._write_lock = asyncio.Lock()
        self._next_seq = 1
        # Set (to a reason) by a store that only records: `ingest` into a
        # scratch database. Its commands are written as ``inert`` with this
        # reason and no dispatcher ever picks them up.
        self.inert_commands: str | None = None

    @classmethod
    async def open(
        cls, path: str | Path, *, synchronous: str = "FULL", writer: str = "thread"
    ) -> SQLiteStore:
        path = str(path)
        if path != ":memory:":
            # Another application's file is refused before a PRAGMA touches it.
            check_identity(path, allow_new=True)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if writer not in ("thread", "process"):
            raise ValueError(f"writer must be 'thread' or 'process', not {writer!r}")
        # An in-memory database lives in one connection: it cannot be another process's.
        store_writer: Writer | ProcessWriter = (
            ProcessWriter(path) if writer == "process" and path != ":memory:" else Writer(path)
        )
        reader: aiosqlite.Connection | None = None
        checkpointer: Checkpointer | None = None
        try:
            await store_writer.open(
                (
                    "PRAGMA journal_mode=WAL",
                    f"PRAGMA synchronous={synchronous}",
                    "PRAGMA busy_timeout=5000",
                    "PRAGMA foreign_keys=ON",
                    *_WRITER_PRAGMAS,
                )
            )
            store = cls(path, store_writer, None)
            await store._migrate()
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=5000")
            store._reader = reader
            if path != ":memory:":
                checkpointer = Checkpointer(path, synchronous)
                await checkpointer.open()
                store._checkpointer = checkpointer
        except BaseException as err:
            # A connection left open keeps its thread, and the host process, alive.
            if checkpointer is not None:
                with contextlib.suppress(Exception):
                    await checkpointer.close()
            with contextlib.suppress(Exception):
                await store_writer.close()
            if reader is not None:
                with contextlib.suppress(Exception):
                    await reader.close()
            if isinstance(err, sqlite3.DatabaseError):
                raise StoreError(f"cannot open the database {path}: {err}") from err
            raise
        async with store._reader.execute("SELECT COALESCE(MAX(seq), 0) FROM events") as cursor:
            row = await cursor.fetchone()
        store._next_seq = int(row[0]) + 1 if row else 1
        return store

    @classmethod
    async def open_readonly(cls, path: str | Path) -> SQLiteStore:
        """The channelsync database at ``path``, for reading only: SQLite's
        ``mode=ro``, no migration, no checkpoints, no writer; every write
        raises `WriteRefused`. Another file raises `NotChannelsyncDatabase`
        (engine.store.readonly)."""
        path = str(path)
        return cls(path, None, await connect_read_only(path))

    @property
    def read_only(self) -> bool:
        return self._writer is None

    def _write_target(self) -> Writer | ProcessWriter:
        if self._writer is None:
            raise WriteRefused(f"{self.path} was opened read-only")
        return self._writer

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id with ``writer="process"``; None with a thread."""
        return self._writer.pid if isinstance(self._writer, ProcessWriter) else None

    @property
    def writer(self) -> Writer | ProcessWriter:
        """The writer (for supervision and health: is it alive, why did it fail)."""
        return self._writer

    async def restart_writer(self) -> None:
        """Start a new writer process after the old one died (ENG-12), then
        read the next sequence number again: a batch whose commit was cut off
        may or may not have landed."""
        if not isinstance(self._writer, ProcessWriter):
            raise StoreError("only a writer process can be restarted")
        async with self._write_lock:
            await self._writer.restart()
            await self._reload_next_seq()

    async def _reload_next_seq(self) -> None:
        rows = await self.fetchall("SELECT COALESCE(MAX(seq), 0) FROM events")
        self._next_seq = int(rows[0][0]) + 1

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._reader.close()
        if self._writer is not None:
            await self._writer.close()

    async def _migrate(self) -> None:
        await self._write_target().run(_migrate, self.path)

    # ------------------------------------------------------------------ writes

    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None:
        """Append a batch atomically: events with outcomes, entity updates,
        outbox commands, timer changes, duplicates and dead letters."""
        async with self._write_lock:
            seq = self._next_seq
            for row in batch.events:
                row.seq = seq
                seq += 1
            try:
                await self._write(batch, timers_fired)
            except BaseException:
                for row in batch.events:
                    row.seq = 0
                # A commit can fail after it landed (a writer process killed
                # before its reply, a file moved under it): the numbers it
                # took must not be handed out again (ENG-12).
                with contextlib.suppress(Exception):
                    await self._reload_next_seq()
                raise
            self._next_seq = seq
        if self._checkpointer is not None:
            self._checkpointer.poke()

    async def _write(self, batch: Batch, timers_fired: Sequence[str]) -> None:
        # Plain rows go to the writer (across the pipe, for a writer process).
        await self._write_target().run(
            _write_rows, batch_rows(batch, timers_fired, self.inert_commands)
        )

    async def execute_write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One small write in its own transaction (outbox bookkeeping); rows changed."""
        async with self._write_lock:
            return await self._write_target().execute(sql, params)

    async def run_write(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` on the writer, for a write of several
        statements that must see and change rows together (an operator's
        action on a command). ``func`` runs its own transaction and must be a
        module-level function (a writer process receives it pickled)."""
        async with self._write_lock:
            return await self._write_target().run(func, *args)

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

    # ------------------------------------------------------------------ reads

    async def cursor(self, name: str) -> str | None:
        """The value last saved by `save_cursor` under ``name``, or None."""
        rows = await self.fetchall("SELECT value FROM cursors WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row | tuple]:
        rows: list[Any] = []
        async with self._reader.execute(sql, params) as cursor:
            while True:
                chunk = await cursor.fetchmany(_FETCH)
                if not chunk:
                    return rows
                rows.extend(chunk)

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(event_ids)):
            marks = ",".join("?" * len(chunk))
            rows = await self.fetchall(
                f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        found: dict[str, EntityState] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = await self.fetchall(
                f"SELECT key, chart, state, data, version FROM entities WHERE key IN ({marks})",
                chunk,
            )
            for key, chart, state, data, version in rows:
                found[key] = EntityState(key, chart, state, loads(data), version)
        return found

    async def entity(self, key: str) -> EntityState | None:
        return (await self.load_entities([key])).get(key)

    async def entities(
        self, *, chart: str | None = None, state: str | None = None, kind: str | None = None
    ) -> list[EntityState]:
        clauses, params = [], []
        for column, value in (("chart", chart), ("state", state), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.fetchall(
            f"SELECT key, chart, state, data, version FROM entities{where} ORDER BY key", params
        )
        return [EntityState(k, c, s, loads(d), v) for k, c, s, d, v in rows]

    async def history(self, entity: str) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            "SELECT seq, event_id, type, source, received_at, outcome, from_state, to_state,"
            " reason, payload FROM events WHERE entity = ? ORDER BY seq",
            (entity,),
        )
        keys = (
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
        )
        history = [dict(zip(keys, row, strict=True)) for row in rows]
        for item in history:
            item["payload"] = loads(item["payload"])
        return history

    async def dead_letters(self, entity: str | None = None) -> list[DeadLetterRow]:
        sql = (
            "SELECT received_at, source, entity, raw, error, id, digest, size, count, last_seen"
            " FROM dead_letters"
        )
        params: tuple[Any, ...] = ()
        if entity is not None:
            sql += " WHERE entity = ?"
            params = (entity,)
        rows = await self.fetchall(sql + " ORDER BY id", params)
        return [DeadLetterRow(*row) for row in rows]

    async def purge_dead_letters(self, before: float) -> int:
        """Delete the dead letters last seen before ``before``; how many went."""
        return await self.execute_write(
            "DELETE FROM dead_letters WHERE COALESCE(last_seen, received_at) < ?", (before,)
        )

    async def duplicate_count(self, event_id: str | None = None) -> int:
        if event_id is None:
            rows = await self.fetchall("SELECT COUNT(*) FROM duplicates")
        else:
            rows = await self.fetchall(
                "SELECT COUNT(*) FROM duplicates WHERE event_id = ?", (event_id,)
            )
        return int(rows[0][0])

    async def count(self, table: str) -> int:
        if table not in {
            "events",
            "entities",
            "outbox",
            "outbox_actions",
            "timers",
            "dead_letters",
            "duplicates",
        }:
            raise ValueError(f"unknown table {table!r}")
        rows = await self.fetchall(f"SELECT COUNT(*) FROM {table}")
        return int(rows[0][0])

    async def due_timers(
        self, now: float, limit: int = 1000
    ) -> list[tuple[str, str, float, str, str]]:
        rows = await self.fetchall(
            "SELECT entity, name, due_at, event_type, event_id FROM timers WHERE due_at <= ?"
            " ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def timers(self, entity: str | None = None) -> list[tuple[str, str, float, str, str]]:
        sql = "SELECT entity, name, due_at, event_type, event_id FROM timers"
        params: tuple[Any, ...] = ()
        if entity is not None:
            sql += " WHERE entity = ?"
            params = (entity,)
        return [tuple(r) for r in await self.fetchall(sql + " ORDER BY due_at", params)]  # type: ignore[misc]

    async def iter_events(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[Sequence[Any]]:
        """Stream the log (or one entity's) in sequence order, in bounded memory."""
        async for rows in self.iter_event_batches(since_seq, batch, entity):
            for row in rows:
                yield row

    async def iter_event_batches(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[list[Any]]:
        """The log in sequence order, ``batch`` rows at a time."""
        last = since_seq
        where = " AND entity = ?" if entity is not None else ""
        while True:
            params: tuple[Any, ...] = (last, entity, batch) if entity is not None else (last, batch)
            rows = await self.fetchall(
                f"SELECT {_EVENT_LIST} FROM events WHERE seq > ?{where} ORDER BY seq LIMIT ?",
                params,
            )
            if not rows:
                return
            yield rows
            last = rows[-1][0]


_INSERT_ENTITY = (
    "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at)"
)
_ON_CONFLICT = " ON CONFLICT(key) DO UPDATE SET"
_UPDATE_DATA = (
    " data=excluded.data, version=excluded.version, last_seq=excluded.last_seq,"
    " updated_at=excluded.updated_at"
)


_EVENT_COLUMNS = operator.attrgetter(*EVENT_COLUMNS)


def _entity_row(row: EventRow) -> tuple[Any, ...]:
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
    )


# Rows per INSERT statement. Python's sqlite3 gives the GIL up around every
# statement it steps and must wait to take it back; while the event loop is
# busy, CPython makes it wait a switch interval (5 ms) each time. Measured here:
# 300,000 rows in 64-row statements took 0.45 s alone and 26 s beside a thread
# spinning in Python; with one statement per row (executemany) it is 64 times
# as many waits. 64 rows of 13 columns stay far below SQLite's limit of bound
# parameters (32,766).
_ROWS_PER_STATEMENT = 64
_statements: dict[tuple[str, str, int, int], str] = {}


def _insert_many(
    db: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> None:
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


def batch_rows(
    batch: Batch, timers_fired: Sequence[str], inert_commands: str | None = None
) -> tuple[Any, ...]:
    """A batch as the plain rows its transaction writes (cheap to pickle).

    With ``inert_commands`` (a reason), commands are recorded as ``inert``:
    kept for reading, never carried out."""
    command_status = "pending" if inert_commands is None else "inert"
    # The event tuples are read off the rows by attrgetter, in C.
    event_rows = list(map(_EVENT_COLUMNS, batch.events))
    last_of: dict[str, EventRow] = {}
    moved: set[str] = set()
    outbox_rows: list[tuple[Any, ...]] = []
    timer_ops: dict[tuple[str, str], tuple[Any, ...] | None] = {}
    for row in batch.events:
        entity = row.entity_after
        if entity is None:
            continue
        # Only an entity's last state in the batch is written.
        if row.moved:
            moved.add(entity.key)
        last_of[entity.key] = row
        for command, payload_json in zip(row.commands, row.command_json or (), strict=True):
            outbox_rows.append(
                (
                    row.seq,
                    row.entity,
                    command.type,
                    payload_json,
                    command.idempotency_key,
                    row.received_at,
                    row.received_at,
                    command_status,
                    inert_commands,
                )
            )
        for timer in row.timers:
            key = (row.entity, timer.name)
            if timer.due_at is None:
                timer_ops[key] = None
            else:
                event_id = f"timer:{row.entity}:{timer.name}:{row.seq}"
                timer_ops[key] = (
                    row.entity,
                    timer.name,
                    timer.due_at,
                    timer.event_type,
                    event_id,
                    row.seq,
                )
    entity_rows = {key: _entity_row(row) for key, row in last_of.items()}
    moved_rows = [r for key, r in entity_rows.items() if key in moved]
    same_rows = [r for key, r in entity_rows.items() if key not in moved]
    cancels = [key for key, op in timer_ops.items() if op is None]
    arms = [op for op in timer_ops.values() if op is not None]
    duplicates = [(d.event_id, d.entity, d.received_at) for d in batch.duplicates]
    dead = [
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
    ]
    fired = [(t,) for t in timers_fired]
    return event_rows, moved_rows, same_rows, outbox_rows, fired, cancels, arms, duplicates, dead


def _write_rows(db: sqlite3.Connection, rows: tuple[Any, ...]) -> None:
    """Write `batch_rows` as one transaction (on the writer's thread or process)."""
    event_rows, moved_rows, same_rows, outbox_rows, fired, cancels, arms, duplicates, dead = rows
    db.execute("BEGIN IMMEDIATE")
    try:
        if event_rows:
            _insert_many(db, f"INSERT INTO events ({_EVENT_LIST})", event_rows)
        # Rows whose state and chart stayed put leave the (chart, state) index
        # alone: SQLite maintains an index whenever the SET names its columns,
        # and with a million entities that is a random page write per event.
        if moved_rows:
            _insert_many(
                db,
                _INSERT_ENTITY,
                moved_rows,
                _ON_CONFLICT + " chart=excluded.chart, state=excluded.state," + _UPDATE_DATA,
            )
        if same_rows:
            _insert_many(db, _INSERT_ENTITY, same_rows, _ON_CONFLICT + _UPDATE_DATA)
        if outbox_rows:
            _insert_many(
                db,
                "INSERT OR IGNORE INTO outbox (event_seq, entity, command, payload,"
                " idempotency_key, created_at, available_at, status, last_error)",
                outbox_rows,
            )
        if fired:
            db.executemany("DELETE FROM timers WHERE event_id = ?", fired)
        if cancels:
            db.executemany("DELETE FROM timers WHERE entity = ? AND name = ?", cancels)
        if arms:
            db.executemany(
                "INSERT OR REPLACE INTO timers (entity, name, due_at, event_type, event_id,"
                " armed_seq) VALUES (?,?,?,?,?,?)",
                arms,
            )
        if duplicates:
            db.executemany(
                "INSERT INTO duplicates (event_id, entity, received_at) VALUES (?,?,?)", duplicates
            )
        if dead:
            # The same input from the same source refused for the same reason
            # again is counted, not stored again.
            db.executemany(
                "INSERT INTO dead_letters (received_at, last_seen, source, entity, raw, error,"
                " digest, size, count) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (source, digest, error) DO UPDATE SET count = count + excluded.count,"
                " last_seen = MAX(COALESCE(last_seen, received_at), excluded.last_seen)",
                dead,
            )
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _migrate(db: sqlite3.Connection, path: str) -> None:
    known = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone() if known else None
    current = int(row[0]) if row and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise SchemaMismatch(version_message(path, current))
    # The mark that lets a read tell this file from another application's
    # (engine.store.identity), set before anything else so a migration that
    # fails part way still leaves a file channelsync recognises.
    if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
