"""One writer per PostgreSQL database (ENG-10): a session advisory lock.

`Engine.open("postgresql://...")` takes `ENGINE_LOCK` with
``pg_try_advisory_lock`` on a connection of its own, kept open for the
engine's life. PostgreSQL drops the lock when that session ends, however it
ends (the process killed, the connection cut), so a stale lock never needs
cleaning up. The session names its holder in ``application_name`` (pid and
host); a second engine that finds the lock taken reads the holder from
``pg_stat_activity`` and raises `DatabaseInUse` naming it, as SQLite's lock
file does (`engine.store.lock`).

Cluster workers run with ``EngineSettings(lock=False)``: they write to one
database together, each fenced by its partitions' leases instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import psycopg

from engine.store.errors import DatabaseInUse, StoreError
from engine.store.lock import Holder
from engine.store.urls import without_password as _shown

# Any constant every engine agrees on; advisory locks are per database.
ENGINE_LOCK = 0x6368_616E_656E_67  # "chaneng"
_POLL = 0.05
_PREFIX = "channelsync engine"

_HOLDER = (
    "SELECT a.application_name, extract(epoch FROM a.backend_start),"
    " host(a.client_addr) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
    " (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
)


def holder_of(application_name: str, started_at: float | None, address: str | None) -> Holder:
    """Who holds the lock, from its session's name (``channelsync engine <pid> <host>``)."""
    parts = application_name.split(" ")
    pid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
    host = parts[3] if len(parts) > 3 else (address or "")
    return Holder(pid, "channelsync", started_at, host)


class PostgresLock:
    """The held lock of one PostgreSQL database; `release` gives it up."""

    def __init__(self, url: str, connection: psycopg.Connection[Any]) -> None:
        self.url = url
        self._connection: psycopg.Connection[Any] | None = connection

    @classmethod
    def acquire(cls, url: str, *, wait: float = 0.0) -> PostgresLock:
        """Take the engine lock of the database at ``url``, trying for up to
        ``wait`` seconds; `DatabaseInUse` naming the holder if another keeps it."""
        name = f"{_PREFIX} {os.getpid()} {socket.gethostname()}"[:63]
        try:
            connection = psycopg.connect(url, autocommit=True, application_name=name)
        except psycopg.Error as error:
            raise StoreError(f"cannot open the database {_shown(url)}: {error}") from None
        deadline = time.monotonic() + max(0.0, wait)
        try:
            while True:
                [(taken,)] = connection.execute(
                    "SELECT pg_try_advisory_lock(%s)", (ENGINE_LOCK,)
                ).fetchall()
                if taken:
                    return cls(url, connection)
                if time.monotonic() >= deadline:
                    raise DatabaseInUse(_shown(url), _describe_holder(connection))
                time.sleep(_POLL)
        except BaseException:
            connection.close()
            raise

    @property
    def held(self) -> bool:
        return self._connection is not None and not self._connection.closed

    def release(self) -> None:
        """Give the lock up; calling it again does nothing.

        Unlocks explicitly before closing: the server ends a closed session
        after the client has moved on, so an engine opened right after this
        one stopped could still find the lock held."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.execute("SELECT pg_advisory_unlock(%s)", (ENGINE_LOCK,))
            with contextlib.suppress(psycopg.Error):
                connection.close()


def _describe_holder(connection: psycopg.Connection[Any]) -> str:
    rows = connection.execute(_HOLDER, (ENGINE_LOCK >> 32, ENGINE_LOCK & 0xFFFF_FFFF)).fetchall()
    if not rows:  # let go between our try and this look
        return "another process (it let go just now: try again)"
    name, started, address = rows[0]
    return holder_of(str(name or ""), float(started) if started else None, address).describe()


__all__ = ["ENGINE_LOCK", "PostgresLock", "holder_of"]
