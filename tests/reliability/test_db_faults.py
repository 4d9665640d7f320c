"""Disk and database faults: a clear error, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.store.sqlite import StoreError
from tests.conftest import invoke_cli

CHARTS = ChartSet.load([chart_package()])


async def open_engine(db):
    return await Engine.open(
        db,
        charts=CHARTS,
        clock=FakeClock(),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )


async def test_eng2_a_full_disk_refuses_new_events_clearly_and_keeps_acknowledged_ones(tmp_path):
    """ENG-2, ENG-12: when the database cannot grow, publish raises a
    StoreError naming SQLite's 'disk is full' instead of acknowledging; what
    was acknowledged stays, and the engine carries on once there is room again."""
    db = tmp_path / "full.db"
    engine = await open_engine(db)
    acknowledged = []
    for n in range(50):
        receipt = await engine.publish(
            engine.make_event(
                "parcel.note", f"parcel:{n % 5}", {"text": "x" * 200}, event_id=f"ok-{n}"
            )
        )
        acknowledged.append(receipt.event_id)
    pages = (await engine.store.fetchall("PRAGMA page_count"))[0][0]
    await engine.store.execute_write(f"PRAGMA max_page_count = {pages + 2}")
    failures = []
    for n in range(200):
        try:
            await engine.publish(
                engine.make_event(
                    "parcel.note", f"parcel:{n % 5}", {"text": "y" * 4000}, event_id=f"big-{n}"
                )
            )
        except StoreError as error:  # contract: a failed commit is a StoreError (503)
            failures.append(str(error))
            break
    assert failures and "full" in failures[0]
    logged = {row[0] for row in await engine.store.fetchall("SELECT event_id FROM events")}
    assert set(acknowledged) <= logged
    await engine.store.execute_write("PRAGMA max_page_count = 1073741823")
    after = await engine.publish(
        engine.make_event("parcel.note", "parcel:1", {"text": "z"}, event_id="after")
    )
    assert after.outcome == "transitioned", "the engine recovered"
    notes = (await engine.entity("parcel:1")).data["notes"]
    assert notes[-1] == "z" and all(not n.startswith("y") for n in notes[:-1] if n != "x" * 200)
    await engine.stop()


async def test_eng2_a_database_locked_by_another_process_waits_then_commits(tmp_path):
    """A writer holding the lock briefly delays publish; nothing is lost."""
    db = tmp_path / "locked.db"
    engine = await open_engine(db)
    await engine.publish(engine.make_event("parcel.pack", "parcel:1", {}, event_id="a"))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    pending = asyncio.ensure_future(
        engine.publish(
            engine.make_event("parcel.note", "parcel:1", {"text": "waited"}, event_id="b")
        )
    )
    await asyncio.sleep(0.5)
    assert not pending.done(), "no acknowledgement while the database is locked"
    other.execute("COMMIT")
    other.close()
    receipt = await asyncio.wait_for(pending, timeout=10)
    assert receipt.outcome == "transitioned"
    await engine.stop()


async def test_a_corrupt_database_file_is_a_clear_error(tmp_path):
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not a SQLite database" * 100)
    with pytest.raises(StoreError) as caught:
        await open_engine(db)
    assert "cannot open the database" in str(caught.value) and str(db) in str(caught.value)
    shown = await invoke_cli("state", "--db", str(db))
    # SEC-4: a file that is not a channelsync database is bad input (exit 2).
    assert shown.exit_code == 2 and "cannot open the database" in shown.stderr


async def test_a_database_from_a_newer_channelsync_is_refused(tmp_path):
    db = tmp_path / "newer.db"
    engine = await open_engine(db)
    await engine.stop()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(StoreError) as caught:
        await open_engine(db)
    assert "schema version 99" in str(caught.value) and "upgrade channelsync" in str(caught.value)


async def test_a_version_1_database_is_migrated_on_open(tmp_path):
    """The schema moves forward in place: a file from the first release opens."""
    from engine.store.schema import MIGRATIONS

    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    engine = await open_engine(db)
    columns = {row[1] for row in await engine.store.fetchall("PRAGMA table_info(outbox)")}
    assert "hold_key" in columns
    await engine.stop()
