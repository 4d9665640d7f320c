"""Plugins add tables through `SQLiteStore.open(..., migrations=...)`
(engine.store.migrate): named steps, applied once, in order, all or none."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.store.migrate import Migration, MigrationFailed
from engine.store.sqlite import SQLiteStore

TICKETS = Migration("helpdesk", "tickets", "CREATE TABLE helpdesk_tickets (id TEXT PRIMARY KEY)")
NOTES = Migration(
    "helpdesk",
    "notes",
    "CREATE TABLE helpdesk_notes (ticket TEXT NOT NULL, body TEXT);"
    " CREATE INDEX helpdesk_notes_by_ticket ON helpdesk_notes (ticket)",
)
BROKEN = Migration("helpdesk", "broken", "CREATE TABLE helpdesk_tickets (id TEXT)")


async def applied(store: SQLiteStore) -> list[tuple[str, str]]:
    rows = await store.fetchall("SELECT plugin, name FROM plugin_migrations ORDER BY position")
    return [tuple(row) for row in rows]


async def tables(store: SQLiteStore) -> set[str]:
    rows = await store.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


async def test_plugin_steps_run_once_in_order_and_later_steps_are_added(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path, migrations=[TICKETS])
    try:
        await store.execute_write("INSERT INTO helpdesk_tickets (id) VALUES ('t1')")
        assert await applied(store) == [("helpdesk", "tickets")]
    finally:
        await store.close()
    # Opening again with a step added runs only that step: the table and its row stay.
    store = await SQLiteStore.open(db_path, migrations=[TICKETS, NOTES])
    try:
        assert await applied(store) == [("helpdesk", "tickets"), ("helpdesk", "notes")]
        assert await store.fetchall("SELECT id FROM helpdesk_tickets") == [("t1",)]
        assert {"helpdesk_tickets", "helpdesk_notes"} <= await tables(store)
    finally:
        await store.close()


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_a_failing_step_names_its_plugin_and_keeps_none_of_the_steps(
    db_path: Path, writer: str
) -> None:
    with pytest.raises(MigrationFailed) as failed:
        await SQLiteStore.open(db_path, writer=writer, migrations=[TICKETS, NOTES, BROKEN])
    assert (failed.value.plugin, failed.value.name) == ("helpdesk", "broken")
    assert "'broken' of plugin 'helpdesk'" in str(failed.value)
    assert "already exists" in str(failed.value), "SQLite's own reason is kept"
    store = await SQLiteStore.open(db_path)
    try:
        assert not {"helpdesk_tickets", "helpdesk_notes"} & await tables(store)
        assert await store.count("events") == 0, "the core schema is in place"
    finally:
        await store.close()


async def test_a_step_listed_twice_is_refused_before_the_file_is_touched(db_path: Path) -> None:
    with pytest.raises(ValueError, match="listed twice"):
        await SQLiteStore.open(db_path, migrations=[TICKETS, TICKETS])
    with pytest.raises(ValueError, match="needs a plugin, a name and SQL"):
        await SQLiteStore.open(db_path, migrations=[Migration("helpdesk", "empty", " ")])
    assert not db_path.exists()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=4))
def test_steps_applied_over_several_opens_end_as_if_applied_at_once(cuts: list[int]) -> None:
    """However a plugin's steps arrive (a few more with each release), each
    runs once and they are recorded in their order."""
    steps = [Migration("p", f"s{n}", f"CREATE TABLE p_{n} (x INTEGER)") for n in range(5)]

    async def run() -> list[tuple[str, str]]:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "store.db"
            for cut in [*sorted(cuts), 5]:
                store = await SQLiteStore.open(path, migrations=steps[:cut])
                await store.close()
            store = await SQLiteStore.open(path, migrations=steps)
            try:
                assert {f"p_{n}" for n in range(5)} <= await tables(store)
                return await applied(store)
            finally:
                await store.close()

    assert asyncio.run(run()) == [("p", f"s{n}") for n in range(5)]
