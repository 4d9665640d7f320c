"""The connections every part of `PostgresStore` reads and writes through.

One writer connection and one reader connection, both in autocommit: a write
of several statements opens its own transaction (`writing`), and the reader
sees only what is committed. Writes are serialised by an asyncio lock, so the
writer runs one transaction at a time; psycopg serialises the reader's
queries itself. A store opened read-only has no writer: every write raises
`WriteRefused`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from engine.store.readonly import WriteRefused

Connection = psycopg.AsyncConnection[Any]


def qmarks(sql: str) -> str:
    """SQL written with SQLite's ``?`` placeholders, with psycopg's ``%s``
    instead (for clauses shared with SQLite, which hold no other ``?`` or ``%``)."""
    return sql.replace("?", "%s")


class PostgresBase:
    """The writer, the reader and the lock that orders writes."""

    def __init__(self, url: str, writer: Connection | None, reader: Connection) -> None:
        self.url = url
        # What logs and messages name: the URL without its password.
        self.path = _shown(url)
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        # Set (to a reason) by a store that only records: its commands are
        # written as ``inert`` and no dispatcher ever picks them up.
        self.inert_commands: str | None = None

    @property
    def read_only(self) -> bool:
        return self._writer is None

    def _write_target(self) -> Connection:
        if self._writer is None:
            raise WriteRefused(f"{self.path} was opened read-only")
        return self._writer

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one query on the reader (committed data only)."""
        async with self._reader.cursor() as cursor:
            await cursor.execute(sql, params)
            return await cursor.fetchall()

    async def execute_write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One small write in its own transaction; rows changed."""
        async with self._write_lock, self._write_target().cursor() as cursor:
            await cursor.execute(sql, params)
            return cursor.rowcount

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        """The writer inside one transaction, committed when the block ends
        (rolled back if it raises), with no other write in between."""
        writer = self._write_target()
        async with self._write_lock, writer.transaction():
            yield writer


def _shown(url: str) -> str:
    """``url`` with its password masked (what may appear in a log line)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


__all__ = ["Connection", "PostgresBase", "qmarks"]
