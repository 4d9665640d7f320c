"""The store's single writer: one sqlite3 connection on one dedicated thread.

A batch's whole transaction (BEGIN, one statement per table, COMMIT) runs as
one function call on that thread, so the event loop pays one thread hop per
commit (about 120 us, docs/performance.md) instead of one per statement, and the rows
are bound to SQL on the writer's thread while the loop steps the next batch.

After every write the writer checks that the path still names the file it
opened (one stat, a few microseconds): SQLite goes on writing, without an
error, into a database file that was removed or replaced, and those writes
would be lost with the process. Such a write is refused instead (ENG-12,
docs/health.md).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.store.errors import DatabaseMoved, StoreError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Which file a path named when the database was opened."""

    path: str
    device: int
    inode: int

    @classmethod
    def of(cls, path: str) -> FileIdentity | None:
        """None for an in-memory database (it has no file to lose)."""
        if path == ":memory:" or path.startswith("file:"):
            return None
        stat = os.stat(path)
        return cls(os.path.abspath(path), stat.st_dev, stat.st_ino)

    def check(self) -> None:
        """Raise `DatabaseMoved` unless the path still names the same file."""
        try:
            stat = os.stat(self.path)
        except OSError as err:
            raise DatabaseMoved(f"the database file {self.path} is gone ({err.strerror})") from err
        if (stat.st_dev, stat.st_ino) != (self.device, self.inode):
            raise DatabaseMoved(f"the database file {self.path} was replaced by another file")


def is_store_fault(err: BaseException) -> bool:
    """Whether a failed write says something about the database itself (disk
    full, I/O error, a lock held too long, a moved file), as opposed to a
    refused statement (a constraint) or a bug in the caller."""
    return (
        isinstance(err, sqlite3.OperationalError | StoreError) or type(err) is sqlite3.DatabaseError
    )


class Writer:
    """Runs functions of a private sqlite3 connection, one at a time, in order."""

    def __init__(self, path: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channelsync-writer")
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._identity: FileIdentity | None = None
        # The last write that failed for a reason of the database (disk
        # full, I/O error, a moved file), cleared by the next one that succeeds.
        self.last_failure: str | None = None

    async def open(self, pragmas: Sequence[str]) -> None:
        await self.run(self._connect, pragmas)

    def _connect(self, _conn: object, pragmas: Sequence[str]) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in pragmas:
                conn.execute(pragma)
            self._identity = FileIdentity.of(self._path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` on the writer thread."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, self._call, func, args)
        except Exception as err:
            if is_store_fault(err):
                self.last_failure = f"{type(err).__name__}: {err}"
            raise
        self.last_failure = None
        return result

    def _call(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        # Before: nothing is written into a moved file. After: a move during
        # the write makes it unacknowledged.
        identity = self._identity if self._conn is not None else None
        if identity is not None:
            identity.check()
        result = func(self._conn, *args)
        if identity is not None:
            identity.check()
        return result

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in autocommit; the number of rows it changed."""
        return await self.run(_execute, sql, params)

    async def close(self) -> None:
        if self._conn is not None:
            self._identity = None  # closing a moved database is allowed
            await self.run(_close)
            self._conn = None
        self._pool.shutdown(wait=True)


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return conn.execute(sql, params).rowcount


def _close(conn: sqlite3.Connection) -> None:
    conn.close()


__all__ = ["FileIdentity", "Writer", "is_store_fault"]
