"""Errors of the store."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file, disk full...)."""


class WriterProcessDied(StoreError):
    """The writer process is gone; what was in flight was not acknowledged."""


class NotChannelsyncDatabase(StoreError):
    """The file is not a channelsync database (another application's, or not SQLite at all)."""


class SchemaMismatch(StoreError):
    """A channelsync database at a schema version this code cannot read as it is."""
