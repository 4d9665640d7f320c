"""ENG-10: one writing process per database, by a lock beside the file."""

from __future__ import annotations

import os
import threading
import time

import pytest

from engine import Engine
from engine.settings import EngineSettings
from engine.store.errors import DatabaseInUse, StoreError
from engine.store.lock import DatabaseLock, lock_path, read_holder
from engine.store.sqlite import SQLiteStore


def test_eng10_a_second_lock_is_refused_naming_the_holder(tmp_path):
    """ENG-10: the refusal names the holder's pid and command line; once the
    lock is released the next process gets it, and the file no longer names
    anyone."""
    db = tmp_path / "sync.db"
    held = DatabaseLock.acquire(db)
    try:
        with pytest.raises(DatabaseInUse) as refused:
            DatabaseLock.acquire(db)
        assert isinstance(refused.value, StoreError)
        message = str(refused.value)
        assert f"is in use by pid {os.getpid()}" in message
        assert str(db) in message and "started " in message
        assert read_holder(lock_path(db)).pid == os.getpid()
    finally:
        held.release()
    assert read_holder(lock_path(db)).pid is None, "a released lock names nobody"
    DatabaseLock.acquire(db).release()
    held.release()  # a second release does nothing


def test_eng10_a_waiting_process_gets_the_lock_once_the_holder_leaves(tmp_path):
    """ENG-10: with ``wait`` the lock is taken as soon as the holder lets go."""
    db = tmp_path / "sync.db"
    held = DatabaseLock.acquire(db)
    threading.Timer(0.2, held.release).start()
    started = time.monotonic()
    DatabaseLock.acquire(db, wait=5.0).release()
    assert time.monotonic() - started < 4.0


async def test_eng10_engine_open_takes_the_lock_and_stop_gives_it_back(tmp_path, sample_charts):
    """ENG-10: a second engine on one file is refused (lock=False is for tests
    only); a store opened for reading still works; after stop the next opens."""
    db = tmp_path / "sync.db"
    first = await Engine.open(
        db, charts=sample_charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        with pytest.raises(DatabaseInUse, match="is in use by pid"):
            await Engine.open(
                db,
                charts=sample_charts,
                settings=EngineSettings(run_timers=False, run_outbox=False),
            )
        second = await Engine.open(
            db,
            charts=sample_charts,
            settings=EngineSettings(run_timers=False, run_outbox=False, lock=False),
        )
        await second.stop()
        reader = await SQLiteStore.open(db)
        assert await reader.count("events") == 0
        await reader.close()
    finally:
        await first.stop()
    again = await Engine.open(
        db, charts=sample_charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    await again.stop()


async def test_eng10_the_writer_process_does_not_inherit_the_lock(tmp_path, sample_charts):
    """ENG-10: with ``writer="process"`` only the engine's own process holds the
    lock file open, so the lock goes with it (the writer child may outlive it
    for a moment)."""
    db = tmp_path / "sync.db"
    engine = await Engine.open(
        db,
        charts=sample_charts,
        settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
    )
    try:
        pid = engine.store.writer_pid
        assert pid is not None
        opened = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert os.path.realpath(db) in opened, "the child has the database open"
        assert os.path.realpath(lock_path(db)) not in opened
    finally:
        await engine.stop()
