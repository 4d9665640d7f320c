"""A chart package brings its own tables: `ChartPackage.migrations` are applied
when an engine opens a database with the package, once, in order, all or none."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from engine import Engine
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.store.migrate import Migration, MigrationFailed

QUIET = EngineSettings(run_timers=False, run_outbox=False)
TICKETS = Migration("helpdesk", "tickets", "CREATE TABLE helpdesk_tickets (id TEXT PRIMARY KEY)")
BY_SHOP = Migration(
    "helpdesk",
    "tickets_shop",
    "ALTER TABLE helpdesk_tickets ADD COLUMN shop TEXT;"
    " CREATE INDEX helpdesk_by_shop ON helpdesk_tickets (shop)",
)


def package_with(*steps: Migration):
    return dataclasses.replace(chart_package(), migrations=list(steps))


def columns(db, table: str) -> list[str]:
    with sqlite3.connect(db) as raw:
        return [row[1] for row in raw.execute(f"PRAGMA table_info({table})")]


async def test_a_packages_tables_are_created_when_an_engine_opens_with_it(tmp_path):
    db = tmp_path / "sync.db"
    engine = await Engine.open(db, [package_with(TICKETS)], settings=QUIET)
    await engine.stop()
    assert columns(db, "helpdesk_tickets") == ["id"]
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO helpdesk_tickets VALUES ('t-1')")

    # A later release adds a step: only that one runs, the rows stay.
    engine = await Engine.open(db, [package_with(TICKETS, BY_SHOP)], settings=QUIET)
    await engine.stop()
    assert columns(db, "helpdesk_tickets") == ["id", "shop"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT id FROM helpdesk_tickets").fetchall() == [("t-1",)]


async def test_a_failing_step_keeps_none_and_leaves_the_database_openable(tmp_path):
    db = tmp_path / "sync.db"
    broken = Migration("helpdesk", "broken", "CREATE TABLE helpdesk_x (; nonsense")
    with pytest.raises(MigrationFailed) as raised:
        await Engine.open(db, [package_with(TICKETS, broken)], settings=QUIET)
    assert raised.value.plugin == "helpdesk" and raised.value.name == "broken"
    assert "helpdesk_tickets" not in _tables(db), "a failed open keeps none of the steps"

    # The lock was let go and the engine's own schema is intact.
    engine = await Engine.open(db, [package_with(TICKETS)], settings=QUIET)
    await engine.stop()
    assert "helpdesk_tickets" in _tables(db)


def _tables(db) -> set[str]:
    with sqlite3.connect(db) as raw:
        return {name for (name,) in raw.execute("SELECT name FROM sqlite_master")}
