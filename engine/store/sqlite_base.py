"""The connections every part of `SQLiteStore` reads and writes through.

One writer (a thread or a process, `engine.store.writer`) and one reader
connection: WAL lets the reader see only committed data while a batch is
being written. Writes are serialised by an asyncio lock. ``fetchall``,
``execute_write`` and ``run_write`` are SQLite's own: code outside the store
package goes through the `engine.store.protocol.Store` methods instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite

from engine.store.process_writer import ProcessWriter
from engine.store.readonly import WriteRefused
from engine.store.writer import Writer

T = TypeVar("T")

# SQLite caps bound parameters per statement; stay well under it.
CHUNK = 500
_FETCH = 2000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    """``?,?,...`` for ``count`` parameters."""
    return ",".join("?" * count)


class SQLiteBase:
    """The writer, the reader and the lock that orders writes."""

    def __init__(
        self,
        path: str,
        writer: Writer | ProcessWriter | None,
        reader: aiosqlite.Connection | None,
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader_connection = reader
        self._write_lock = asyncio.Lock()
        # Set (to a reason) by a store that only records: `ingest` into a
        # scratch database. Its commands are written as ``inert`` with this
        # reason and no dispatcher ever picks them up.
        self.inert_commands: str | None = None

    @property
    def _reader(self) -> aiosqlite.Connection:
        if self._reader_connection is None:
            raise RuntimeError(f"the store of {self.path} is not open for reading yet")
        return self._reader_connection

    @property
    def read_only(self) -> bool:
        return self._writer is None

    def _write_target(self) -> Writer | ProcessWriter:
        if self._writer is None:
            raise WriteRefused(f"{self.path} was opened read-only")
        return self._writer

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one query on the reader (committed data only)."""
        rows: list[Any] = []
        async with self._reader.execute(sql, params) as cursor:
            while True:
                chunk = await cursor.fetchmany(_FETCH)
                if not chunk:
                    return rows
                rows.extend(chunk)

    async def execute_write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One small write in its own transaction (bookkeeping); rows changed."""
        async with self._write_lock:
            return await self._write_target().execute(sql, params)

    async def run_write(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` on the writer, for a write of several
        statements that must see and change rows together (an operator's
        action on a command). ``func`` runs its own transaction and must be a
        module-level function (a writer process receives it pickled)."""
        async with self._write_lock:
            return await self._write_target().run(func, *args)


__all__ = ["CHUNK", "SQLiteBase", "chunks", "marks"]
