"""Opening a channelsync database for reading only (SEC-4, docs/read-only.md).

`connect_read_only` is what `SQLiteStore.open_readonly` reads through: SQLite's
``mode=ro`` URI, no migration, no PRAGMA that writes (``query_only`` and
``busy_timeout`` are settings of the connection, not of the file). It opens
only a channelsync database (engine.store.identity) at the schema version this
code reads; anything else is a clear `StoreError`.
"""

from __future__ import annotations

import contextlib
import sqlite3

import aiosqlite

from engine.store.errors import SchemaMismatch, WriteRefused
from engine.store.identity import check_identity, read_only_uri, unreadable
from engine.store.schema import SCHEMA_VERSION


async def connect_read_only(path: str) -> aiosqlite.Connection:
    """A read-only connection to the channelsync database at ``path``.

    Raises `NotChannelsyncDatabase` for any other file, `SchemaMismatch` for a
    channelsync database of another schema version, `StoreError` when SQLite
    cannot read it (a WAL database whose index cannot be created, say)."""
    check_identity(path, allow_new=False)
    try:
        reader = await aiosqlite.connect(read_only_uri(path), uri=True, isolation_level=None)
    except sqlite3.DatabaseError as error:
        raise unreadable(path, error) from None
    try:
        # Belt and braces: even a statement that slipped through could not write.
        await reader.execute("PRAGMA query_only=1")
        await reader.execute("PRAGMA busy_timeout=5000")
        async with reader.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
    except BaseException as error:
        with contextlib.suppress(Exception):
            await reader.close()
        if isinstance(error, sqlite3.DatabaseError):
            raise unreadable(path, error) from None
        raise
    version = int(row[0]) if row and row[0] is not None else 0
    if version != SCHEMA_VERSION:
        await reader.close()
        raise SchemaMismatch(version_message(path, version))
    return reader


def version_message(path: str, version: int) -> str:
    if version > SCHEMA_VERSION:
        return (
            f"{path} has schema version {version}; this channelsync knows up to"
            f" {SCHEMA_VERSION}: upgrade channelsync"
        )
    return (
        f"{path} has schema version {version}; this channelsync reads version"
        f" {SCHEMA_VERSION}, and a read command never upgrades a database: run a command"
        " that writes to it (channelsync serve) once with this version, then read it"
    )


__all__ = ["WriteRefused", "connect_read_only", "version_message"]
