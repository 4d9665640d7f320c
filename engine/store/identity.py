"""Whether a file is a channelsync database, decided without writing to it (SEC-4).

A database the engine creates or migrates carries channelsync's
``PRAGMA application_id`` in its header (bytes 68-71 of the file), so most
files are told apart by reading 100 bytes: another application's id is refused
before SQLite ever opens the file. A file whose header has no id (0) is either
a channelsync database from before ids were set, a new one whose first page is
still in the write-ahead log, or someone else's: SQLite is asked, read-only,
for the id and the tables. See docs/read-only.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from urllib.parse import quote

from engine.store.errors import NotChannelsyncDatabase, StoreError

# "csnc" in ASCII: a positive 32-bit number, as PRAGMA application_id reads it.
APPLICATION_ID = 0x63736E63
_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
# Header byte 18 (the file format's write version) is 2 in WAL mode.
_WAL_VERSION = 2
# The tables every channelsync schema has had since its first migration.
REQUIRED_TABLES = ("schema_version", "events")


def read_only_uri(path: str, *, immutable: bool = False) -> str:
    """SQLite's URI for opening ``path`` read-only (``mode=ro``).

    The path is percent-encoded, so a file name with ``?``, ``#`` or ``%``
    in it names that file and not a URI parameter."""
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"file:{quote(os.path.abspath(path))}?{query}"


def _refused(path: str, why: str) -> NotChannelsyncDatabase:
    return NotChannelsyncDatabase(f"cannot open the database {path}: {why}")


def check_identity(path: str, *, allow_new: bool) -> None:
    """Raise `NotChannelsyncDatabase` unless ``path`` is a channelsync database.

    With ``allow_new`` (the engine opening a file to write), a missing file,
    an empty file and a SQLite file without tables pass too: the engine makes
    them channelsync databases. A read never creates one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER_SIZE)
    except FileNotFoundError:
        if allow_new:
            return
        raise _refused(path, "there is no such file") from None
    except IsADirectoryError:
        raise _refused(path, "it is a directory") from None
    except OSError as error:
        raise StoreError(f"cannot open the database {path}: {error.strerror}") from None
    if not header:
        if allow_new:
            return
        raise _refused(path, "the file is empty, not a channelsync database")
    if len(header) < _HEADER_SIZE or not header.startswith(_MAGIC):
        raise _refused(path, "it is not a SQLite database, so not a channelsync database")
    app_id = int.from_bytes(header[68:72], "big", signed=True)
    if app_id == APPLICATION_ID:
        return
    if app_id != 0:
        raise _refused(path, _foreign(app_id))
    _ask_sqlite(path, wal=header[18] == _WAL_VERSION, allow_new=allow_new)


def _foreign(app_id: int) -> str:
    return (
        f"it belongs to another application (SQLite application_id {app_id:#010x};"
        f" channelsync's is {APPLICATION_ID:#010x})"
    )


def _ask_sqlite(path: str, *, wal: bool, allow_new: bool) -> None:
    # A WAL file without its -wal is whole in the main file, and no connection
    # has it open: read it as immutable, so asking leaves no -wal or -shm
    # beside another application's file.
    immutable = wal and not os.path.exists(path + "-wal")
    try:
        with contextlib.closing(
            sqlite3.connect(read_only_uri(path, immutable=immutable), uri=True)
        ) as db:
            app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
            tables = sorted(
                str(row[0])
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            )
    except sqlite3.DatabaseError as error:
        raise unreadable(path, error) from None
    if app_id == APPLICATION_ID:
        return
    if app_id != 0:
        raise _refused(path, _foreign(app_id))
    if not tables:
        if allow_new:
            return
        raise _refused(path, "it is a SQLite database without tables, not a channelsync database")
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise _refused(
            path,
            f"it is not a channelsync database (no {' or '.join(missing)} table;"
            f" its tables: {shown})",
        )


def _in_wal_mode(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER_SIZE)
    except OSError:
        return False
    return len(header) == _HEADER_SIZE and header[18] == _WAL_VERSION


def unreadable(path: str, error: sqlite3.DatabaseError) -> StoreError:
    """A clear error for a database SQLite cannot open read-only."""
    wal, shm = path + "-wal", path + "-shm"
    cannot_open = getattr(error, "sqlite_errorname", "") == "SQLITE_CANTOPEN"
    if cannot_open and not os.path.exists(shm) and _in_wal_mode(path):
        # SQLite reads a WAL database through its -shm index; a read-only
        # connection creates it when the folder lets it, and fails here when not.
        missing = (
            f"its index {shm} is missing and cannot be created there, and without it the"
            f" writes in {wal} cannot be read"
            if os.path.exists(wal)
            else f"its index {shm} and its log {wal} are missing and cannot be created there"
        )
        return StoreError(
            f"cannot open the database {path} read-only: it is in WAL mode and {missing};"
            " open it once with write access (serve), or copy the database (with its -wal"
            " file) to a writable folder and read the copy"
        )
    return StoreError(f"cannot open the database {path}: {error}")
