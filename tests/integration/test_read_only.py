"""SEC-4: read commands never write to the database they read, and refuse a
file that is not a channelsync database (docs/read-only.md)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.store.errors import NotChannelsyncDatabase, SchemaMismatch
from engine.store.identity import APPLICATION_ID
from engine.store.readonly import WriteRefused
from engine.store.schema import MIGRATIONS
from engine.store.sqlite import SQLiteStore
from tests.conftest import invoke_cli

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ChartSet.load([chart_package()])


def read_commands(db: Path, out: Path) -> list[list[str]]:
    """Every command that only reads the database, as the CLI is called."""
    d = str(db)
    return [
        ["state", "--db", d],
        ["state", "--db", d, "--entity", "parcel:1", "--json"],
        ["state", "--db", d, "--dead-letters"],
        ["history", "parcel:1", "--db", d],
        ["products", "--db", d],
        ["orders", "--db", d],
        ["shops", "--db", d],
        ["commands", "--db", d, "--status", "all"],
        ["export", "--db", d, "--out", str(out)],
        ["check", "--db", d],
        ["replay", "--db", d, "--json"],
        ["whatif", "parcel:1", "--db", d, "--from", "1"],
    ]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of the folder and the hash of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def data(folder: Path) -> dict[str, str]:
    """`snapshot` less what holds no data of a WAL database: its -shm index
    (SQLite's shared memory) and an empty -wal."""
    return {
        name: digest
        for name, digest in snapshot(folder).items()
        if not name.endswith("-shm")
        and not (name.endswith("-wal") and (folder / name).stat().st_size == 0)
    }


def another_apps_file(path: Path) -> None:
    """A SQLite file of another application: its own tables, rollback journal."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
        db.executemany(
            "INSERT INTO customers (name, phone) VALUES (?, ?)",
            [(f"name {n}", f"+1 555 01{n:02}") for n in range(50)],
        )
    db.close()


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        mode = str(db.execute("PRAGMA journal_mode").fetchone()[0])
    db.close()
    return mode


@pytest.mark.parametrize("index", range(12))
async def test_sec4_a_read_command_refuses_another_applications_file_and_leaves_it_as_it_was(
    tmp_path, index
):
    """SEC-4: pointed at another application's SQLite file, every read command
    says so in one line and exits 2; the file's bytes are unchanged, its journal
    mode is still DELETE and no -wal or -shm appeared beside it."""
    folder = tmp_path / "theirs"
    folder.mkdir()
    db = folder / "app.sqlite"
    another_apps_file(db)
    before = snapshot(folder)
    args = read_commands(db, tmp_path / "out.jsonl")[index]
    result = await invoke_cli(*args)
    assert result.exit_code == 2, (args, result.output)
    message = result.stderr.strip()
    assert "not a channelsync database" in message and str(db) in message, message
    assert "\n" not in message and "Traceback" not in result.output
    assert snapshot(folder) == before, "the file or its folder changed"
    assert _journal_mode(db) == "delete"
    assert not (tmp_path / "out.jsonl").exists()


async def test_sec4_another_applications_id_is_refused_from_the_header_in_wal_mode(tmp_path):
    """SEC-4: a WAL file stamped with another application's id is refused
    without SQLite opening it, so not even an empty -wal or -shm appears."""
    db = tmp_path / "fossil.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA application_id=0x0f055112")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE schema_version (version INTEGER)")
        conn.execute("CREATE TABLE events (seq INTEGER)")
    conn.close()
    before = snapshot(tmp_path)
    result = await invoke_cli("state", "--db", str(db))
    assert result.exit_code == 2 and "another application" in result.stderr
    with pytest.raises(NotChannelsyncDatabase):
        await SQLiteStore.open(db)  # nor does the engine take it over to write
    assert snapshot(tmp_path) == before


async def test_sec4_the_engine_stamps_its_databases_and_older_ones_when_migrated(tmp_path):
    """SEC-4: a database the engine creates carries channelsync's
    application_id; one from before the id existed gets it when migrated."""
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    engine = await Engine.open(
        new, charts=CHARTS, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    await engine.stop()
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    conn.close()
    store = await SQLiteStore.open(old)
    await store.close()
    for path in (new, old):
        header = path.read_bytes()[:100]
        assert int.from_bytes(header[68:72], "big") == APPLICATION_ID, path


def _writer_child(db: Path, acks: int) -> tuple[subprocess.Popen[str], list[str]]:
    """A process that keeps writing events to ``db``, once it acknowledged ``acks``."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child", str(db), "0", "1000000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked: list[str] = []
    started = threading.Event()

    def drain() -> None:  # a full pipe would stall the writer
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ACK "):
                acked.append(line.split()[1])
                if len(acked) >= acks:
                    started.set()
        started.set()

    threading.Thread(target=drain, daemon=True).start()
    assert started.wait(60) and len(acked) >= acks, "the writer child did not start"
    return child, acked


def _exported(result: Any) -> int:
    assert result.exit_code == 0, result.output
    return int(result.stdout.split()[1])  # "exported N events to ..."


async def test_sec4_reads_work_while_a_writer_writes_and_change_nothing_after_it_is_killed(
    tmp_path,
):
    """SEC-4: a read command reads alongside a writing process (WAL readers)
    and sees what it acknowledged; once the writer is killed, its database and
    its write-ahead log (holding its last writes) are exactly as it left them
    after the read commands. (The -shm file is SQLite's shared-memory index,
    not data.)"""
    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "live.db"
    child, acked = _writer_child(db, 100)
    try:
        seen = len(acked)
        exported = await invoke_cli("export", "--db", str(db), "--out", str(tmp_path / "a.jsonl"))
        assert _exported(exported) >= seen
        assert child.poll() is None and len(acked) > seen, "the writer kept writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert (folder / "live.db-wal").stat().st_size > 0
    before = data(folder)
    # One of each module's read paths (all of them: the foreign-file test above).
    for index in (0, 3, 5, 7, 9, 8):
        args = read_commands(db, tmp_path / "b.jsonl")[index]
        result = await invoke_cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert data(folder) == before
    assert _exported(result) >= len(set(acked))


async def _left_by_a_killed_writer(folder: Path) -> Path:
    """A database and its write-ahead log as a writer killed after a commit
    leaves them: copied while the writer still has them open."""
    live = folder.parent / "live"
    live.mkdir()
    engine = await Engine.open(
        live / "k.db",
        charts=CHARTS,
        clock=FakeClock(),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        for n in range(40):
            await engine.publish(
                engine.make_event("parcel.pack", f"parcel:{n}", {}, event_id=f"e{n}")
            )
        await engine.store.fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        for n in range(40, 60):  # writes only the -wal holds
            await engine.publish(
                engine.make_event("parcel.pack", f"parcel:{n}", {}, event_id=f"e{n}")
            )
        folder.mkdir()
        for name in ("k.db", "k.db-wal"):
            shutil.copyfile(live / name, folder / name)
    finally:
        await engine.stop()
    return folder / "k.db"


async def test_sec4_a_wal_database_without_its_shm_index(tmp_path):
    """SEC-4: with its -shm index gone, a read rebuilds it where the folder
    allows (SQLite's own file, no data) and sees every write, those only the
    -wal holds included; where it cannot be created the read says why in one
    line, and nothing changes."""
    folder = tmp_path / "db"
    db = await _left_by_a_killed_writer(folder)
    shm = folder / "k.db-shm"
    assert not shm.exists()
    before = snapshot(folder)
    exported = await invoke_cli("export", "--db", str(db), "--out", str(tmp_path / "x.jsonl"))
    assert _exported(exported) == 60
    assert data(folder) == before
    shm.unlink()
    shm.symlink_to(tmp_path / "no-such-folder" / "shm")  # an index that cannot be created
    before = snapshot(folder)
    result = await invoke_cli("state", "--db", str(db))
    message = result.stderr.strip()
    assert result.exit_code == 1 and "\n" not in message, result.output
    assert f"{shm} is missing and cannot be created there" in message and "WAL" in message
    assert snapshot(folder) == before


async def _channelsync_db(path: Path) -> None:
    engine = await Engine.open(
        path,
        charts=CHARTS,
        clock=FakeClock(),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    await engine.publish(engine.make_event("parcel.pack", "parcel:1", {}, event_id="e1"))
    await engine.stop()


async def test_sec4_a_newer_or_older_schema_is_refused_by_reads_without_a_change(tmp_path):
    """SEC-4: a read command never migrates: a database of a newer channelsync is
    refused as such, an older one is refused with how to upgrade it; exit 2,
    bytes unchanged."""
    newer, older = tmp_path / "newer" / "n.db", tmp_path / "older" / "o.db"
    newer.parent.mkdir()
    older.parent.mkdir()
    await _channelsync_db(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    conn.close()
    with sqlite3.connect(older) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:2], start=1):
            conn.executescript(migration)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    conn.close()
    for db, expected in ((newer, "upgrade channelsync"), (older, "never upgrades")):
        before = data(db.parent)
        result = await invoke_cli("history", "parcel:1", "--db", str(db))
        assert result.exit_code == 2 and expected in result.stderr, result.output
        assert data(db.parent) == before
        with pytest.raises(SchemaMismatch):
            await SQLiteStore.open_readonly(db)


async def test_sec4_a_read_only_store_refuses_writes_and_reads_an_odd_file_name(tmp_path):
    """SEC-4: the store a read command gets cannot write; a file name with URI
    characters in it names that file."""
    db = tmp_path / "odd ?name#1%20.db"
    await _channelsync_db(db)
    before = data(tmp_path)
    store = await SQLiteStore.open_readonly(db)
    try:
        assert store.read_only and await store.count("events") == 1
        with pytest.raises(WriteRefused):
            await store.execute_write("DELETE FROM events")
        with pytest.raises(sqlite3.OperationalError):  # even past the store's own guard
            await store.fetchall("DELETE FROM events")
    finally:
        await store.close()
    assert data(tmp_path) == before
    shown = await invoke_cli("state", "--db", str(db), "--json")
    assert [e["key"] for e in json.loads(shown.stdout)] == ["parcel:1"]
