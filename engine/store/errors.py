"""Errors of the store."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file, disk full...)."""


class WriterProcessDied(StoreError):
    """The writer process is gone; what was in flight was not acknowledged."""


class WriteNotAcknowledged(StoreError):
    """A write was not committed (or may not have been): the caller retries.

    A batch stepped before an earlier commit failed, or a commit that raised
    something other than a StoreError, is refused with this."""


class DatabaseMoved(StoreError):
    """The database file was removed or replaced while the store had it open:
    SQLite would go on writing to the unlinked file, so writes are refused."""
