"""`Engine.open("postgresql://...")`: the sample parcel chart end to end on a
real PostgreSQL database (events, timers, the outbox), the one-writer lock
(ENG-10) and where the vault's keys go."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from engine import Engine
from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.logs import configure_logging
from engine.outbox import OutboxCommand, OutboxDispatcher, list_commands
from engine.settings import EngineSettings
from engine.store.errors import DatabaseInUse
from engine.store.postgres_lock import PostgresLock
from engine.store.urls import VAULT_VARIABLE, vault_path

pytestmark = pytest.mark.services
QUIET = EngineSettings(run_timers=False, run_outbox=False)


@pytest.fixture(autouse=True)
def _vault_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAULT_VARIABLE, str(tmp_path / "vault.keys"))


async def test_the_parcel_chart_runs_on_postgresql(
    pg_database_url: str, sample_charts: ChartSet, clock: FakeClock
) -> None:
    engine = await Engine.open(pg_database_url, charts=sample_charts, clock=clock, settings=QUIET)
    try:
        pack = engine.make_event("parcel.pack", "parcel:1", {"weight_kg": 2.5}, event_id="p1")
        receipt = await engine.publish(pack)
        assert (receipt.outcome, receipt.to_state) == ("transitioned", "packed")
        assert (await engine.publish(pack)).outcome == "duplicate"
        [timer] = await engine.store.timers("parcel:1")
        assert timer.name == "ship_deadline"
        clock.advance(3601)
        await engine.fire_due_timers()
        overdue = await engine.entity("parcel:1")
        assert overdue is not None and overdue.state == "overdue"
        ship = engine.make_event(
            "parcel.ship", "parcel:1", {"tracking_number": "T1"}, event_id="s1"
        )
        assert (await engine.publish(ship)).to_state == "shipped"
        calls: list[str] = []

        async def notify(command: OutboxCommand) -> None:
            calls.append(command.payload["tracking_number"])

        outbox = OutboxDispatcher(engine.store, {"notify_buyer": notify}, engine.publish, clock)
        assert await outbox.run_until_idle() == 1
        assert await outbox.run_until_idle() == 0
        assert calls == ["T1"]
        [done] = await list_commands(engine.store, status="done")
        assert done.entity == "parcel:1"
        history = await engine.history("parcel:1")
        assert [h["to_state"] for h in history] == ["packed", "overdue", "shipped"]
        assert [h["seq"] for h in history] == sorted(h["seq"] for h in history)
        assert await engine.store.duplicate_count("p1") == 1
    finally:
        await engine.stop()
    # Everything is in the database: a new engine finds it as it was left.
    again = await Engine.open(pg_database_url, charts=sample_charts, clock=clock, settings=QUIET)
    try:
        shipped = await again.entity("parcel:1")
        assert shipped is not None and shipped.data["tracking_number"] == "T1"
    finally:
        await again.stop()


async def test_one_engine_writes_to_a_database_at_a_time(
    pg_database_url: str, sample_charts: ChartSet
) -> None:
    first = await Engine.open(pg_database_url, charts=sample_charts, settings=QUIET)
    try:
        with pytest.raises(DatabaseInUse) as refused:
            await Engine.open(pg_database_url, charts=sample_charts, settings=QUIET)
        assert f"pid {os.getpid()}" in str(refused.value), "the holder is named"
        # Cluster workers fence by lease instead, and skip the lock.
        worker = await Engine.open(
            pg_database_url,
            charts=sample_charts,
            settings=EngineSettings(run_timers=False, run_outbox=False, lock=False),
        )
        await worker.stop()
    finally:
        await first.stop()
    # Stopping let go of the lock.
    second = await Engine.open(pg_database_url, charts=sample_charts, settings=QUIET)
    await second.stop()


def test_a_released_lock_is_free_at_once_for_the_next_engine(pg_database_url: str) -> None:
    # A host restarting its engine opens the next one straight after stopping
    # the last; closing the session alone left the lock held until the server
    # had ended that session, a moment later.
    with psycopg.connect(pg_database_url, autocommit=True) as onlooker:
        for _ in range(20):
            PostgresLock.acquire(pg_database_url).release()
            held = onlooker.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
            assert held == (0,), "the lock is still held after release() returned"


def test_the_vault_keys_of_a_postgresql_database_live_in_a_file_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://app:secret@db.example:6543/shop"
    assert vault_path(url) == str(tmp_path / "vault.keys")
    monkeypatch.delenv(VAULT_VARIABLE)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    chosen = Path(vault_path(url))
    assert chosen == tmp_path / "data" / "channelsync" / "keys" / "db.example-6543-shop.keys"
    assert chosen.parent.is_dir() and "secret" not in str(chosen)
    assert vault_path(tmp_path / "x.db") == str(tmp_path / "x.db") + ".keys"


async def test_a_password_in_the_url_never_reaches_a_log_line(
    pg_database_url: str, sample_charts: ChartSet
) -> None:
    parts = urlsplit(pg_database_url)
    user = parts.username or "postgres"
    # The test server trusts local connections: the password is carried, not checked.
    server = f"{parts.hostname}:{parts.port or 5432}"
    with_password = urlunsplit(parts._replace(netloc=f"{user}:s3cret-pw@{server}"))
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    try:
        engine = await Engine.open(with_password, charts=sample_charts, settings=QUIET)
        await engine.stop()
    finally:
        configure_logging("WARNING", json=True)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    started = [line for line in lines if line["event"] == "engine started"]
    assert started and "***" in started[0]["db"]
    assert "s3cret-pw" not in stream.getvalue()


async def test_a_nul_in_input_is_kept_as_a_replacement_character_not_a_failed_batch(
    pg_database_url: str, sample_charts: ChartSet
) -> None:
    """PostgreSQL's text cannot hold NUL: junk with NUL bytes still becomes a
    dead letter, and an event id with a NUL is logged (as U+FFFD) and known
    again when it comes back, while the events beside it are unharmed."""
    engine = await Engine.open(pg_database_url, charts=sample_charts, settings=QUIET)
    try:
        junk = await engine.publish_raw(b'{"event_id": "x\x00", "type": ', "tiktok")
        assert junk.outcome == "dead_letter"
        [letter] = await engine.dead_letters()
        assert "\x00" not in letter.raw and "\ufffd" in letter.raw
        odd = engine.make_event("parcel.pack", "parcel:1", {}, event_id="odd\x00id")
        fine = engine.make_event("parcel.pack", "parcel:2", {}, event_id="fine")
        receipts = await engine.publish_many([odd, fine])
        assert [r.outcome for r in receipts] == ["transitioned", "transitioned"]
        assert (await engine.publish(odd)).outcome == "duplicate"
        [logged] = await engine.history("parcel:1")
        assert logged["event_id"] == "odd\ufffdid"
    finally:
        await engine.stop()
