"""The PostgreSQL store: the engine's tables in a PostgreSQL 15 database.

`PostgresStore` implements `engine.store.protocol.Store` and passes the same
conformance suite as SQLite (`engine.testing.store_conformance`). Open it
with ``await PostgresStore.open("postgresql://...")``: the schema is created
or brought up to date (`engine.store.postgres_schema`), then the plugins'
migrations not applied yet. Reads are in `engine.store.postgres_reads`, the
outbox in `engine.store.postgres_outbox`, read models in
`engine.store.postgres_read_models`, a commit's statements in
`engine.store.postgres_batch`, and its round trips, on a thread of their own,
in `engine.store.postgres_commit`; docs/postgres.md says how it differs from
SQLite.

Commit guards: ``store.commit_guards`` is a list of `CommitGuard`. Each one's
statements go inside the commit's transaction, before the batch's rows, in
list order; a guard that refuses (in Python, or by a statement that raises
in the database) rolls the whole commit back and its exception reaches the
caller. A cluster's fence is one: it checks the lease of the batch's
partitions and records how far their streams were consumed, in the same
transaction as the state it guards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg

from engine.store.errors import (
    NotChannelsyncDatabase,
    SchemaMismatch,
    WriteNotAcknowledged,
)
from engine.store.migrate import Migration, MigrationFailed, check_migrations
from engine.store.postgres_base import Connection, connect
from engine.store.postgres_batch import row_statements
from engine.store.postgres_commit import (
    CommitGuard,
    CommitThread,
    Statement,
    refusal_of,
    run_transaction,
    take_numbers,
)
from engine.store.postgres_outbox import PostgresOutbox
from engine.store.postgres_read_models import PostgresReadModels
from engine.store.postgres_reads import PostgresReads
from engine.store.postgres_schema import (
    MIGRATIONS,
    PLUGIN_TABLE,
    SCHEMA_VERSION,
    statements,
    translate,
)
from engine.store.rows import Batch
from engine.store.sqlite_batch import batch_rows

# Taken (per transaction) by whoever migrates: processes opening one database
# at once apply each step once.
MIGRATE_LOCK = 0x6368_616E_6D69_67  # "chanmig"


class PostgresStore(PostgresReads, PostgresOutbox, PostgresReadModels):
    """Persistence for one engine (or one worker of many) in PostgreSQL. Open
    with `await PostgresStore.open(url)`, or `open_readonly(url)` to read only."""

    def __init__(self, url: str, writer: Connection | None, reader: Connection) -> None:
        super().__init__(url, writer, reader)
        self.commit_guards: list[CommitGuard] = []
        # Commits run their round trips off the event loop (postgres_commit).
        self._commits = CommitThread(url)
        self._commit_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, migrations: Sequence[Migration] = ()) -> PostgresStore:
        """Open the database at ``url`` (it must exist), creating or upgrading
        its schema, then applying the plugins' ``migrations`` not applied yet."""
        check_migrations(migrations)
        writer = await connect(url)
        try:
            reader = await connect(url)
        except BaseException:
            await writer.close()
            raise
        store = cls(url, writer, reader)
        try:
            await store._migrate(list(migrations))
        except BaseException:
            await store.close()
            raise
        return store

    @classmethod
    async def open_readonly(cls, url: str) -> PostgresStore:
        """The channelsync database at ``url``, for reading only: its session
        refuses writes, no migration runs, every write method raises
        `WriteRefused`."""
        reader = await connect(url, read_only=True)
        store = cls(url, None, reader)
        try:
            version = await store._version(reader)
            if version is None:
                raise NotChannelsyncDatabase(f"{store.path} holds no channelsync tables")
            if version != SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"{store.path} has PostgreSQL schema step {version}; this channelsync"
                    f" reads step {SCHEMA_VERSION}: open it once for writing to upgrade it"
                )
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._commits.close()
        for connection in (self._writer, self._reader):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    # ------------------------------------------------------------ schema

    @staticmethod
    async def _version(db: Connection) -> int | None:
        """The schema step reached; None if the database has no channelsync tables."""
        [(known,)] = await (await db.execute("SELECT to_regclass('schema_version')")).fetchall()
        if known is None:
            return None
        [(version,)] = await (
            await db.execute("SELECT MAX(version) FROM schema_version")
        ).fetchall()
        return int(version or 0)

    async def _migrate(self, migrations: list[Migration]) -> None:
        async with self.writing() as db:
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            current = await self._version(db)
            if current is None:
                await self._refuse_foreign(db)
                await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                current = 0
            if current > SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"{self.path} has PostgreSQL schema step {current}; this channelsync"
                    f" knows up to {SCHEMA_VERSION}: upgrade channelsync"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in statements(MIGRATIONS[version - 1]):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        if migrations:
            await self._migrate_plugins(migrations)

    async def _refuse_foreign(self, db: Connection) -> None:
        """Another application's tables are never mixed with ours."""
        cursor = await db.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() ORDER BY table_name LIMIT 5"
        )
        tables = [row[0] for row in await cursor.fetchall()]
        if tables:
            raise NotChannelsyncDatabase(
                f"{self.path} is not a channelsync database (it holds {', '.join(tables)});"
                " give channelsync an empty database of its own"
            )

    async def _migrate_plugins(self, migrations: list[Migration]) -> None:
        """The plugins' steps not applied yet, all in one transaction."""
        async with self.writing() as db:
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            await db.execute(PLUGIN_TABLE)
            cursor = await db.execute("SELECT plugin, name FROM plugin_migrations")
            done = {(plugin, name) for plugin, name in await cursor.fetchall()}
            position = len(done)
            for step in migrations:
                if (step.plugin, step.name) in done:
                    continue
                sql = translate(step)
                try:
                    async with db.transaction():  # a savepoint: the error names the step
                        for statement in statements(sql):
                            await db.execute(statement)
                except psycopg.Error as error:
                    raise MigrationFailed(step.plugin, step.name, str(error)) from error
                position += 1
                await db.execute(
                    "INSERT INTO plugin_migrations (plugin, name, position) VALUES (%s, %s, %s)",
                    (step.plugin, step.name, position),
                )

    # ------------------------------------------------------------ writes

    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None:
        """Append a batch atomically: events numbered from the log's sequence,
        entity updates, outbox commands, timer changes, duplicates and dead
        letters, after the commit guards' statements, in one transaction."""
        if self.read_only:
            await self._live_writer()  # raises WriteRefused
        # Not the write lock: commits have a connection of their own, so the
        # outbox's transactions (on the writer) no longer hold them up. One
        # commit at a time keeps the log's numbers in commit order.
        async with self._commit_lock:
            try:
                # A guard refusing here (before any statement) is raised as it is.
                guarded = [s for guard in self.commit_guards for s in guard.statements(batch)]
                inert = self.inert_commands
                await self._commits.run(
                    lambda conn: _write(conn, batch, timers_fired, inert, guarded)
                )
            except BaseException as error:
                for row in batch.events:
                    row.seq = 0
                if isinstance(error, psycopg.Error):
                    refused = refusal_of(self.commit_guards, error)
                    if refused is not None:
                        raise refused from error
                    # "Not recorded, try again later", as SQLite's failures read.
                    raise WriteNotAcknowledged(f"{type(error).__name__}: {error}") from error
                raise


def _write(
    conn: psycopg.Connection[Any],
    batch: Batch,
    timers_fired: Sequence[str],
    inert: str | None,
    guarded: list[Statement],
) -> None:
    """On the commit thread: number the batch's events, build its rows and
    their JSON, send it all after the guards' statements in one transaction.
    What it reads of the batch was fixed when its events were stepped (a step
    makes new entity states; data and payloads were taken as JSON then)."""
    if batch.events:
        numbers = take_numbers(conn, len(batch.events))
        for row, seq in zip(batch.events, numbers, strict=True):
            row.seq = seq
    statements, repeated = row_statements(batch_rows(batch, timers_fired, inert))
    run_transaction(conn, [*guarded, *statements], repeated)


__all__ = ["CommitGuard", "PostgresStore"]
