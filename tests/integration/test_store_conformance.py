"""The store conformance suite (engine.testing.store_conformance) against
SQLite, with its writer on a thread and in a process of its own."""

from __future__ import annotations

from pathlib import Path

from engine.store.protocol import Store
from engine.store.sqlite import SQLiteStore
from engine.testing.store_conformance import StoreConformance


async def thread_writer(directory: Path) -> Store:
    return await SQLiteStore.open(directory / "store.db")


async def process_writer(directory: Path) -> Store:
    return await SQLiteStore.open(directory / "store.db", writer="process")


async def read_only(directory: Path) -> Store:
    return await SQLiteStore.open_readonly(directory / "store.db")


class TestSQLiteThreadWriter(StoreConformance):
    factory = staticmethod(thread_writer)
    read_only_factory = staticmethod(read_only)


class TestSQLiteProcessWriter(StoreConformance):
    factory = staticmethod(process_writer)
    read_only_factory = staticmethod(read_only)
    # A writer process takes a moment to start, and every example opens a store.
    examples = 3
