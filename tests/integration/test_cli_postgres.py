"""The read and repair commands against a PostgreSQL database (`--store URL`),
filled by an engine opened on it: state, history, check, export, replay and
commands give what they give for a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.store.urls import VAULT_VARIABLE
from tests.conftest import invoke_cli, opened_sample_engine

pytestmark = pytest.mark.services


@pytest.fixture
async def filled(
    pg_database_url: str,
    sample_charts: ChartSet,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """Three parcels: one shipped (its command pending), one packed, one cancelled."""
    monkeypatch.setenv(VAULT_VARIABLE, str(tmp_path / "vault.keys"))
    async with opened_sample_engine(pg_database_url, sample_charts, clock) as engine:
        for n in (1, 2, 3):
            await engine.publish(
                engine.make_event("parcel.pack", f"parcel:{n}", {"weight_kg": n}, event_id=f"p{n}")
            )
        ship = {"tracking_number": "T1"}
        await engine.publish(engine.make_event("parcel.ship", "parcel:1", ship, event_id="s1"))
        await engine.publish(engine.make_event("parcel.cancel", "parcel:3", event_id="c3"))
    return pg_database_url


async def test_read_commands_read_a_postgresql_database(filled: str, tmp_path: Path) -> None:
    state = await invoke_cli("state", "--store", filled, "--json")
    assert state.exit_code == 0, state.output
    states = {e["key"]: e["state"] for e in json.loads(state.stdout)}
    assert states == {"parcel:1": "shipped", "parcel:2": "packed", "parcel:3": "cancelled"}
    replayed = await invoke_cli("replay", "--store", filled, "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == json.loads(state.stdout), "replay rebuilds the state"
    checked = await invoke_cli("check", "--store", filled)
    assert checked.exit_code == 0 and "5 events replayed, 3 entities match" in checked.stdout
    history = await invoke_cli("history", "parcel:1", "--store", filled, "--json")
    assert history.exit_code == 0, history.output
    story = json.loads(history.stdout)
    assert [e["event_id"] for e in story["events"]] == ["p1", "s1"]
    assert [c["type"] for c in story["events"][1]["commands"]] == ["notify_buyer"]
    exported = tmp_path / "log.jsonl"
    done = await invoke_cli("export", "--store", filled, "--out", str(exported))
    assert done.exit_code == 0, done.output
    from_file = await invoke_cli("replay", str(exported), "--json")
    assert json.loads(from_file.stdout) == json.loads(state.stdout), "the export replays alike"


async def test_commands_are_listed_and_acted_on_in_a_postgresql_database(filled: str) -> None:
    listed = await invoke_cli("commands", "--store", filled, "--json")
    assert listed.exit_code == 0, listed.output
    [command] = json.loads(listed.stdout)
    assert (command["type"], command["entity"], command["status"]) == (
        "notify_buyer",
        "parcel:1",
        "pending",
    )
    discarded = await invoke_cli(
        "commands", "--store", filled, "discard", str(command["id"]), "--reason", "dup", "--json"
    )
    assert discarded.exit_code == 0, discarded.output
    assert json.loads(discarded.stdout)["status"] == "discarded"
    listed = await invoke_cli("commands", "--store", filled, "--status", "all", "--json")
    assert [c["status"] for c in json.loads(listed.stdout)] == ["discarded"]


async def test_a_store_must_be_a_postgresql_url_and_one_database_only(tmp_path: Path) -> None:
    both = await invoke_cli("state", "--db", str(tmp_path / "x.db"), "--store", "postgresql://h/d")
    assert both.exit_code == 2 and "--db FILE or --store" in both.stderr
    wrong = await invoke_cli("state", "--store", "mysql://root:pw@h/d")
    assert wrong.exit_code == 2 and "postgresql://" in wrong.stderr and "pw" not in wrong.stderr
    nowhere = await invoke_cli("check", "--store", "postgresql://127.0.0.1:1/none")
    assert nowhere.exit_code == 1 and "cannot open the database" in nowhere.stderr


async def test_replay_in_processes_is_for_a_sqlite_file_a_store_replays_in_one(filled: str) -> None:
    """The processes read a SQLite file's shares; on PostgreSQL ``--jobs 1`` is
    what runs, and more is refused rather than quietly ignored."""
    state = await invoke_cli("state", "--store", filled, "--json")
    alone = await invoke_cli("replay", "--store", filled, "--json", "--jobs", "1")
    assert alone.exit_code == 0, alone.output
    assert json.loads(alone.stdout) == json.loads(state.stdout)
    checked = await invoke_cli("check", "--store", filled, "--jobs", "1")
    assert checked.exit_code == 0 and "3 entities match" in checked.stdout
    for command in (["check"], ["replay", "--json"]):
        refused = await invoke_cli(*command, "--store", filled, "--jobs", "2")
        assert refused.exit_code == 2 and refused.stdout == ""
        assert "--jobs above 1 needs a SQLite file" in refused.stderr


async def test_serve_opens_on_a_postgresql_store_and_answers_ready(pg_database_url: str) -> None:
    """`serve --store postgresql://...` (no bus): its health checks once took
    the URL for a SQLite file to watch, and the service failed to open."""
    from channelsync.bootstrap import open_service
    from channelsync.settings import ChannelSettings

    settings = ChannelSettings(db=pg_database_url, pull_interval=0, shoplazza_pull_interval=0)
    service = await open_service(settings, run_loops=False, plugins=[])
    try:
        ready, report = await service.health.ready()
        assert ready, report
        assert report["checks"]["store"] == {"status": "ok"}
    finally:
        await service.stop()
