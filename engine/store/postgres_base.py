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
from typing import Any, TypeVar

import psycopg
from psycopg.types.string import StrDumperUnknown

from engine.store.errors import StoreError, WriteRefused
from engine.store.urls import without_password as _shown

Connection = psycopg.AsyncConnection[Any]

# PostgreSQL's text cannot hold NUL. A NUL in any string the store is given
# (an event id, an entity key, a dead letter's text, a value looked up) is
# kept and matched as U+FFFD, the replacement character, rather than fail the
# whole statement: bad input must not stop the batch it came with.
NUL, REPLACEMENT = "\x00", "\ufffd"


class NulFreeStr(StrDumperUnknown):
    """Strings as psycopg sends them, NUL replaced (see `NUL`)."""

    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace(NUL, REPLACEMENT) if NUL in obj else obj)


AnyConnection = TypeVar("AnyConnection", psycopg.Connection[Any], psycopg.AsyncConnection[Any])


def nul_free(connection: AnyConnection) -> AnyConnection:
    """``connection``, sending every string parameter through `NulFreeStr`."""
    connection.adapters.register_dumper(str, NulFreeStr)
    return connection


def _options(read_only: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "channelsync"}
    if read_only:
        kwargs["options"] = "-c default_transaction_read_only=on"
    return kwargs


def _refused(url: str, error: psycopg.Error) -> StoreError:
    return StoreError(f"cannot open the database {_shown(url)}: {error}")


async def connect(url: str, *, read_only: bool = False) -> Connection:
    """A new autocommit connection to ``url`` (its session refusing writes
    with ``read_only``); `StoreError` naming the database if there is none."""
    try:
        return nul_free(await psycopg.AsyncConnection.connect(url, **_options(read_only)))
    except psycopg.Error as error:
        raise _refused(url, error) from None


def connect_blocking(url: str) -> psycopg.Connection[Any]:
    """`connect`'s writer, as a blocking connection (for a thread of its own)."""
    try:
        return nul_free(psycopg.Connection.connect(url, **_options(False)))
    except psycopg.Error as error:
        raise _refused(url, error) from None


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

    # A connection the server dropped (a restart, a failover, an idle
    # timeout) fails the statement under way, which is reported as not
    # recorded; the next one opens a new connection instead of failing too.

    async def _live_reader(self) -> Connection:
        if self._reader.closed:
            self._reader = await connect(self.url, read_only=self.read_only)
        return self._reader

    async def _live_writer(self) -> Connection:
        """The writer (the caller holds the write lock); `WriteRefused` if read-only."""
        if self._writer is None:
            raise WriteRefused(f"{self.path} was opened read-only")
        if self._writer.closed:
            self._writer = await connect(self.url)
        return self._writer

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one query on the reader (committed data only); SQL
        written with ``?`` (`engine.store.sql_reads`) reads as ``%s``."""
        async with (await self._live_reader()).cursor() as cursor:
            await cursor.execute(qmarks(sql), params)
            return await cursor.fetchall()

    async def execute_write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One small write in its own transaction; rows changed."""
        async with self._write_lock, (await self._live_writer()).cursor() as cursor:
            await cursor.execute(qmarks(sql), params)
            return cursor.rowcount

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        """The writer inside one transaction, committed when the block ends
        (rolled back if it raises), with no other write in between."""
        async with self._write_lock:
            writer = await self._live_writer()
            async with writer.transaction():
                yield writer


__all__ = [
    "NUL",
    "REPLACEMENT",
    "Connection",
    "PostgresBase",
    "connect",
    "connect_blocking",
    "nul_free",
    "qmarks",
]
