"""Errors of the store."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file, disk full...)."""


class WriterProcessDied(StoreError):
    """The writer process is gone; what was in flight was not acknowledged."""
