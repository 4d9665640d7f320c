"""The SQLite store: event log, entities, outbox, timers, dead letters.

`SQLiteStore` is the first implementation of `engine.store.protocol.Store`.
One writer connection and one reader connection (WAL lets the reader see only
committed data while a batch is being written). Writes happen in explicit
``BEGIN IMMEDIATE`` transactions under an asyncio lock; a whole batch of events
is one transaction, run as one call on the writer (a thread, or a process), so
a thread hop is paid per batch, not per event (`engine.store.sqlite_batch`).
Reads are in `engine.store.sqlite_reads`, the outbox in
`engine.store.sqlite_outbox`, schema upgrades and plugins' tables in
`engine.store.migrate`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from engine.store.checkpoint import Checkpointer
from engine.store.errors import StoreError
from engine.store.identity import check_identity
from engine.store.migrate import Migration, check_migrations, migrate
from engine.store.process_writer import ProcessWriter
from engine.store.read_models import SQLiteReadModels
from engine.store.readonly import connect_read_only
from engine.store.rows import (
    EVENT_COLUMNS,
    Batch,
    DeadLetterRow,
    DuplicateRow,
    EventRow,
    dumps,
    loads,
)
from engine.store.sqlite_batch import batch_rows, write_rows
from engine.store.sqlite_outbox import SQLiteOutbox
from engine.store.sqlite_reads import SQLiteReads
from engine.store.writer import Writer

# SQLite's default page cache is 2 MB: with a million entities, the writer's
# upserts at random keys miss it on most pages; 64 MB keeps a large store's hot
# B-tree pages at hand. The reader keeps the default: its big reads are
# sequential (replay), where a large cache only costs memory. Checkpoints run
# in the background (engine.store.checkpoint); the writer's own automatic
# checkpoint is only a backstop for a WAL of 50,000 pages (200 MB).
_WRITER_PRAGMAS = ("PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=50000")
# What a writer process imports as it starts: this module imports every module
# whose functions the store runs on its writer (the batch, the outbox, the records).
_WRITER_MODULES = (__name__,)


class SQLiteStore(SQLiteReads, SQLiteOutbox, SQLiteReadModels):
    """Persistence for one engine. Open with `await SQLiteStore.open(path)`, or
    `await SQLiteStore.open_readonly(path)` to read without any writer (SEC-4)."""

    def __init__(
        self,
        path: str,
        writer: Writer | ProcessWriter | None,
        reader: aiosqlite.Connection | None,
    ) -> None:
        super().__init__(path, writer, reader)
        self._checkpointer: Checkpointer | None = None
        self._next_seq = 1

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        writer: str = "thread",
        migrations: Sequence[Migration] = (),
    ) -> SQLiteStore:
        """Open (or create) the database at ``path``, bringing its schema up to
        date, then applying the plugins' ``migrations`` not applied yet
        (`engine.store.migrate`). ``writer="process"`` writes from a child process."""
        path = str(path)
        check_migrations(migrations)
        if path != ":memory:":
            # Another application's file is refused before a PRAGMA touches it.
            check_identity(path, allow_new=True)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if writer not in ("thread", "process"):
            raise ValueError(f"writer must be 'thread' or 'process', not {writer!r}")
        # An in-memory database lives in one connection: it cannot be another process's.
        store_writer: Writer | ProcessWriter = (
            ProcessWriter(path, _WRITER_MODULES)
            if writer == "process" and path != ":memory:"
            else Writer(path)
        )
        store = cls(path, store_writer, None)
        try:
            await store._connect(synchronous, list(migrations))
        except BaseException as err:
            # A connection left open keeps its thread, and the host process, alive.
            await store._close_quietly()
            if isinstance(err, sqlite3.DatabaseError):
                raise StoreError(f"cannot open the database {path}: {err}") from err
            raise
        await store._reload_next_seq()
        return store

    async def _connect(self, synchronous: str, migrations: list[Migration]) -> None:
        writer = self._write_target()
        await writer.open(
            (
                "PRAGMA journal_mode=WAL",
                f"PRAGMA synchronous={synchronous}",
                "PRAGMA busy_timeout=5000",
                "PRAGMA foreign_keys=ON",
                *_WRITER_PRAGMAS,
            )
        )
        await writer.run(migrate, self.path, migrations)
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        self._reader_connection = reader
        await reader.execute("PRAGMA busy_timeout=5000")
        if self.path != ":memory:":
            checkpointer = Checkpointer(self.path, synchronous)
            self._checkpointer = checkpointer
            await checkpointer.open()

    async def _close_quietly(self) -> None:
        if self._checkpointer is not None:
            with contextlib.suppress(Exception):
                await self._checkpointer.close()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer.close()
        if self._reader_connection is not None:
            with contextlib.suppress(Exception):
                await self._reader_connection.close()

    @classmethod
    async def open_readonly(cls, path: str | Path) -> SQLiteStore:
        """The channelsync database at ``path``, for reading only: SQLite's
        ``mode=ro``, no migration, no checkpoints, no writer; every write
        raises `WriteRefused`. Another file raises `NotChannelsyncDatabase`
        (engine.store.readonly)."""
        path = str(path)
        return cls(path, None, await connect_read_only(path))

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id with ``writer="process"``; None with a thread."""
        return self._writer.pid if isinstance(self._writer, ProcessWriter) else None

    @property
    def writer(self) -> Writer | ProcessWriter | None:
        """The writer (for supervision and health: is it alive, why did it fail);
        None when the store was opened read-only."""
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
                # Plain rows go to the writer (across the pipe, for a writer process).
                rows = batch_rows(batch, timers_fired, self.inert_commands)
                await self._write_target().run(write_rows, rows)
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


__all__ = [
    "EVENT_COLUMNS",
    "Batch",
    "DeadLetterRow",
    "DuplicateRow",
    "EventRow",
    "Migration",
    "SQLiteStore",
    "StoreError",
    "dumps",
    "loads",
]
