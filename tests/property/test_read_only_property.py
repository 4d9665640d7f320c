"""SEC-4 for all files: whatever SQLite file or bytes sit at the path, opening
it to read, or the engine opening it to write, refuses anything that is not a
channelsync database, and leaves it and its folder exactly as they were."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.store.errors import NotChannelsyncDatabase, StoreError
from engine.store.identity import APPLICATION_ID, REQUIRED_TABLES
from engine.store.sqlite import SQLiteStore

MAGIC = b"SQLite format 3\x00"

table_names = st.one_of(
    st.sampled_from(["events", "schema_version", "entities", "outbox", "cursors", "Events", "x y"]),
    st.text(
        st.characters(codec="utf-8", exclude_characters='"\x00'), min_size=1, max_size=12
    ).filter(lambda name: not name.lower().startswith("sqlite_")),  # SQLite's own names
)
application_ids = st.one_of(
    st.just(0),
    st.integers(-(2**31), 2**31 - 1).filter(lambda n: n != APPLICATION_ID),
)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).digest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def assert_refused_and_untouched(path: Path, refusal: type[Exception]) -> None:
    """Both opens refuse ``path``; nothing in its folder changes."""
    before = snapshot(path.parent)
    with pytest.raises(refusal) as caught:
        asyncio.run(SQLiteStore.open_readonly(path))
    assert str(path) in str(caught.value)
    with pytest.raises(refusal):
        asyncio.run(SQLiteStore.open(path))
    assert snapshot(path.parent) == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables=st.lists(table_names, min_size=0, max_size=5, unique_by=str.lower),
    app_id=application_ids,
    journal=st.sampled_from(["DELETE", "TRUNCATE", "PERSIST", "WAL"]),
    rows=st.integers(0, 30),
)
def test_sec4_property_another_sqlite_file_is_refused_and_untouched(tables, app_id, journal, rows):
    """SEC-4: another application's SQLite file (any tables, any id but
    channelsync's, any journal mode; with no id, at least one of channelsync's
    own tables missing) is refused by the read and the write opens alike."""
    assume(app_id != 0 or not set(REQUIRED_TABLES) <= set(tables))
    assume(tables or app_id != 0)  # a SQLite file with nothing in it is the engine's to fill
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "theirs.db"
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA journal_mode={journal}")
            db.execute(f"PRAGMA application_id={app_id}")
            for name in tables:
                db.execute(f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY, value TEXT)')
                db.executemany(
                    f'INSERT INTO "{name}" (value) VALUES (?)', [(f"v{n}",) for n in range(rows)]
                )
        db.close()
        assert_refused_and_untouched(path, NotChannelsyncDatabase)


@settings(max_examples=30, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=600),
    sqlite_like=st.booleans(),
)
def test_sec4_property_any_other_bytes_are_refused_and_untouched(body, sqlite_like):
    """SEC-4: a file of any other bytes, some starting like a SQLite file, is
    refused clearly (StoreError, never a traceback from SQLite) and untouched."""
    content = MAGIC + body if sqlite_like else body
    assume(not content.startswith(MAGIC) or sqlite_like)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bytes.db"
        path.write_bytes(content)
        assert_refused_and_untouched(path, StoreError)
