"""Errors of the store."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file, disk full...)."""


class WriteRefused(StoreError):
    """A write was asked of a store opened read-only."""


class WriterProcessDied(StoreError):
    """The writer process is gone; what was in flight was not acknowledged."""


class NotChannelsyncDatabase(StoreError):
    """The file is not a channelsync database (another application's, or not SQLite at all)."""


class SchemaMismatch(StoreError):
    """A channelsync database at a schema version this code cannot read as it is."""


class WriteNotAcknowledged(StoreError):
    """A write was not committed (or may not have been): the caller retries.

    A commit that failed for a reason of the database (sqlite3's or the OS's
    error), or a batch stepped before an earlier commit failed."""


class DatabaseMoved(StoreError):
    """The database file was removed or replaced while the store had it open:
    SQLite would go on writing to the unlinked file, so writes are refused."""


class DatabaseInUse(StoreError):
    """Another process (or another open engine) writes to this database (ENG-10)."""

    def __init__(self, db: str, holder: str) -> None:
        super().__init__(
            f"the database {db} is in use by {holder}; one process writes to a database"
            " at a time: stop that one first (read commands such as `state` still work)"
        )
        self.db = db
        self.holder = holder
