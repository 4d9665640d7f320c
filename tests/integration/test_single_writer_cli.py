"""ENG-10 from the command line: writing commands refuse a database in use;
the operator's `commands` works beside a running engine and shows claims."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from engine import Engine, SystemClock
from engine.outbox import OutboxCommand, OutboxDispatcher
from engine.settings import EngineSettings
from tests.conftest import invoke_cli


async def ship(engine: Engine, parcel: str) -> None:
    await engine.publish(engine.make_event("parcel.pack", parcel, {}, event_id=f"{parcel}-pack"))
    await engine.publish(
        engine.make_event(
            "parcel.ship", parcel, {"tracking_number": "T1"}, event_id=f"{parcel}-ship"
        )
    )


@pytest.mark.parametrize(
    "command",
    [
        ("shop", "disconnect", "shop:demo-store"),
        ("products", "set", "1001", "--category", "600001"),
        ("ingest", "{log}"),
    ],
    ids=["shop disconnect", "products set", "ingest"],
)
async def test_eng10_writing_commands_refuse_a_database_in_use_in_one_line(
    tmp_path, sample_charts, monkeypatch, command
):
    """ENG-10: while an engine (a `serve`) holds the database, the merchant's
    and the operator's writing commands stop with one line naming the holder
    and exit 1, no traceback; the merchant's wait a moment first."""
    monkeypatch.setattr("engine.cli.in_use.MERCHANT_WAIT", 0.2)
    db = tmp_path / "busy.db"
    engine = await Engine.open(
        db, charts=sample_charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        await ship(engine, "parcel:1")
        log = tmp_path / "busy.jsonl"
        exported = await invoke_cli("export", "--db", str(db), "--out", str(log))
        assert exported.exit_code == 0, "reading works beside the writer"
        args = [part.format(log=log) for part in command]
        result = await invoke_cli(*args, "--db", str(db))
        assert result.exit_code == 1, result.output
        assert f"is in use by pid {os.getpid()} " in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert await engine.store.count("events") == 2, "nothing was written"
    finally:
        await engine.stop()


async def test_eng10_commands_shows_a_claimed_command_as_running(tmp_path, sample_charts):
    """ENG-10, OPS-1, OPS-2: beside the engine that runs it, `channelsync
    commands` shows the command as running, with the claimant and the end of
    its lease; a retry is refused (exit 1); a discard is recorded, and the
    call in flight, which succeeds, leaves it done."""
    db = tmp_path / "live.db"
    clock = SystemClock()  # the CLI reads the leases against the wall clock
    engine = await Engine.open(
        db,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        await ship(engine, "parcel:1")
        started, release = asyncio.Event(), asyncio.Event()

        async def slow_call(command: OutboxCommand) -> None:
            started.set()
            await release.wait()

        dispatcher = OutboxDispatcher(
            engine.store, {"notify_buyer": slow_call}, engine.publish, clock
        )
        running = asyncio.create_task(dispatcher.run_once())
        await asyncio.wait_for(started.wait(), timeout=10)

        listed = await invoke_cli("commands", "--db", str(db))
        assert listed.exit_code == 0, listed.output
        assert "running" in listed.stdout
        assert f"running: claimed by {dispatcher.token} until " in listed.stdout
        [record] = json.loads((await invoke_cli("commands", "--db", str(db), "--json")).stdout)
        assert record["status"] == "running" and record["claimed_by"] == dispatcher.token
        assert record["claim_until"].endswith("Z")
        pending = await invoke_cli("commands", "--db", str(db), "--status", "pending")
        assert "no pending commands" in pending.stdout
        only = await invoke_cli("commands", "--db", str(db), "--status", "running", "--json")
        assert [r["id"] for r in json.loads(only.stdout)] == [record["id"]]

        retried = await invoke_cli("commands", "retry", str(record["id"]), "--db", str(db))
        assert retried.exit_code == 1
        assert "it is running now" in retried.stderr
        discarded = await invoke_cli("commands", "discard", str(record["id"]), "--db", str(db))
        assert discarded.exit_code == 0, discarded.output

        release.set()
        assert await running == 1
        view = await engine.commands.get(record["id"])
        assert view.status == "done" and view.claimed_by is None
        assert [a.action for a in view.actions] == ["discard"]
    finally:
        await engine.stop()
