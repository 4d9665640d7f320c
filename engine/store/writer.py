"""The store's single writer: one sqlite3 connection on one dedicated thread.

A batch's whole transaction (BEGIN, one statement per table, COMMIT) runs as
one function call on that thread, so the event loop pays one thread hop per
commit (about 120 us, docs/performance.md) instead of one per statement, and the rows
are bound to SQL on the writer's thread while the loop steps the next batch.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Writer:
    """Runs functions of a private sqlite3 connection, one at a time, in order."""

    def __init__(self, path: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channelsync-writer")
        self._path = path
        self._conn: sqlite3.Connection | None = None

    async def open(self, pragmas: Sequence[str]) -> None:
        await self.run(self._connect, pragmas)

    def _connect(self, _conn: object, pragmas: Sequence[str]) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in pragmas:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, func, args)

    def _call(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        return func(self._conn, *args)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in autocommit; the number of rows it changed."""
        return await self.run(_execute, sql, params)

    async def close(self) -> None:
        if self._conn is not None:
            await self.run(_close)
            self._conn = None
        self._pool.shutdown(wait=True)


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return conn.execute(sql, params).rowcount


def _close(conn: sqlite3.Connection) -> None:
    conn.close()


__all__ = ["Writer"]
