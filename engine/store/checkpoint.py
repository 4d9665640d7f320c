"""WAL checkpoints in the background, off the commit path.

SQLite's automatic checkpoint runs inside the commit that crosses the
threshold: that commit then copies the WAL's pages into the database file and
fsyncs it, and every publish waiting on it waits too (a 100+ ms stall in the
latency benchmark). Here a second connection, on its own thread, runs PASSIVE
checkpoints shortly after commits: they copy what they can without blocking
the writer, which keeps appending to the WAL meanwhile. The writer keeps a
large automatic threshold only as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time

from engine.logs import get_logger
from engine.store.writer import Writer

log = get_logger("channelsync.checkpoint")

# At most one checkpoint every this many seconds: each copies every page the
# WAL holds, so a page updated by many commits in between is written once.
MIN_INTERVAL = 0.5


class Checkpointer:
    def __init__(self, path: str, synchronous: str) -> None:
        self._thread = Writer(path)
        self._synchronous = synchronous
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._last = 0.0
        self.checkpoints = 0

    async def open(self) -> None:
        await self._thread.open(
            ("PRAGMA busy_timeout=5000", f"PRAGMA synchronous={self._synchronous}")
        )

    def poke(self) -> None:
        """A commit happened: checkpoint soon (at most every `MIN_INTERVAL`)."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._dirty:
            wait = self._last + MIN_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty = False
            self._last = time.monotonic()
            try:
                await self._thread.run(_passive)
                self.checkpoints += 1
            except sqlite3.Error as err:  # the writer's backstop still holds
                log.warning("checkpoint failed", error=str(err))

    async def wait(self) -> None:
        """Until every commit poked so far is checkpointed."""
        if self._task is not None:
            await self._task

    async def close(self) -> None:
        """Stop; closing the last connection checkpoints what is left anyway."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._thread.close()


def _passive(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


__all__ = ["Checkpointer"]
