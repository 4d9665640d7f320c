"""What-if for one entity (engine.whatif, `channelsync whatif`) on real SQLite
files: the same chart changes nothing, a changed guard shows up first at the
event it decides, the state before N is the logged one, and bad requests are
one clear error. The store is opened read-only: the what-if cannot write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from engine.whatif import WhatIf, WhatIfError, what_if
from tests.fixtures.versioned_parcel import V1, package

V1_ONLY = ChartSet.load([package(V1)])
BOTH = ChartSet.load([package()])
QUIET = EngineSettings(run_timers=False, run_outbox=False)


async def publish(engine: Engine, entity: str, event_type: str, **payload: Any) -> int:
    number = len(await engine.history(entity))
    receipt = await engine.publish(
        {
            "event_id": f"{entity}:{event_type}:{number}",
            "type": event_type,
            "source": "test",
            "entity": entity,
            "payload": payload,
        }
    )
    assert receipt.seq is not None, receipt  # logged: every event here is new
    return receipt.seq


async def write_log(db: Path, clock: FakeClock) -> dict[str, int]:
    """parcel:1 on version 1: a note, packed, a ship refused for want of a
    tracking number, shipped, delivered; parcel:2's events in between. The
    seqs of parcel:1's events by name."""
    seqs: dict[str, int] = {}
    engine = await Engine.open(db, charts=V1_ONLY, clock=clock, settings=QUIET)
    try:
        seqs["note"] = await publish(engine, "parcel:1", "parcel.note", text="fragile")
        await publish(engine, "parcel:2", "parcel.pack", weight_kg=0.5)
        seqs["pack"] = await publish(engine, "parcel:1", "parcel.pack", weight_kg=1.25)
        seqs["refused"] = await publish(engine, "parcel:1", "parcel.ship", tracking_number="")
        await publish(engine, "parcel:2", "parcel.cancel")
        seqs["ship"] = await publish(engine, "parcel:1", "parcel.ship", tracking_number="TN1")
        seqs["deliver"] = await publish(engine, "parcel:1", "parcel.deliver")
    finally:
        await engine.stop()
    return seqs


async def run(db: Path, charts: ChartSet, entity: str, **how: Any) -> WhatIf:
    store = await SQLiteStore.open_readonly(db)
    try:
        return await what_if(store, charts, entity, **how)
    finally:
        await store.close()


def without_tracking_guard(tmp_path: Path) -> Path:
    """Version 1 edited: a parcel ships without a tracking number."""
    text = V1.read_text()
    assert text.count("    guards: [has_tracking]\n") == 1
    edited = tmp_path / "parcel_no_guard.yaml"
    edited.write_text(text.replace("    guards: [has_tracking]\n", ""))
    return edited


async def test_the_same_version_from_any_event_changes_nothing(
    db_path: Path, clock: FakeClock
) -> None:
    seqs = await write_log(db_path, clock)
    for from_seq in range(1, seqs["deliver"] + 1):
        result = await run(db_path, BOTH, "parcel:1", from_seq=from_seq, version=1)
        assert result.first_difference is None, (from_seq, result.rows)
        assert [row.seq for row in result.rows] == [s for s in seqs.values() if s >= from_seq]
        assert (result.final_logged, result.final_replayed) == ("delivered", "delivered")


async def test_a_removed_guard_differs_first_at_the_event_it_refused(
    db_path: Path, clock: FakeClock, tmp_path: Path
) -> None:
    seqs = await write_log(db_path, clock)
    unguarded = without_tracking_guard(tmp_path)
    result = await run(db_path, BOTH, "parcel:1", from_seq=seqs["note"], chart_file=unguarded)
    assert result.first_difference == seqs["refused"]
    refused = next(row for row in result.rows if row.seq == seqs["refused"])
    assert (refused.logged.outcome, refused.logged.reason) == ("ignored", "no tracking number")
    assert (refused.replayed.outcome, refused.replayed.to_state) == ("transitioned", "shipped")
    # The real ship then finds the parcel shipped already; delivery agrees again.
    assert [row.seq for row in result.rows if row.differs] == [seqs["refused"], seqs["ship"]]
    assert result.final_replayed == "delivered"
    # From after the refused ship, the removed guard decides nothing.
    later = await run(db_path, BOTH, "parcel:1", from_seq=seqs["ship"], chart_file=unguarded)
    assert later.first_difference is None and later.state_before == "packed"


async def test_a_newer_version_starts_from_the_logged_state_moved_by_its_upgrade(
    db_path: Path, clock: FakeClock
) -> None:
    """Version 2 renames packed to boxed: from the refused ship on, the entity
    starts boxed, so every transition out of it names another state."""
    seqs = await write_log(db_path, clock)
    result = await run(db_path, BOTH, "parcel:1", from_seq=seqs["refused"])
    assert (result.version, result.state_before) == (2, "boxed")
    refused, ship = result.rows[0], result.rows[1]
    assert result.first_difference == refused.seq == seqs["refused"]
    # Refused alike, only from a state of another name.
    assert (refused.logged.reason, refused.replayed.reason) == ("no tracking number",) * 2
    assert (refused.logged.from_state, refused.replayed.from_state) == ("packed", "boxed")
    assert (ship.replayed.from_state, ship.replayed.to_state) == ("boxed", "shipped")


async def test_bad_requests_are_one_clear_error(
    db_path: Path, clock: FakeClock, tmp_path: Path
) -> None:
    seqs = await write_log(db_path, clock)
    other_chart = tmp_path / "other.yaml"
    other_chart.write_text(V1.read_text().replace("name: parcel", "name: box", 1))
    broken = tmp_path / "broken.yaml"
    broken.write_text(V1.read_text().replace("record_weight]", "no_such_action]"))
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("parcel:1", {"from_seq": 0}, "1 or more"),
        ("parcel:1", {"from_seq": seqs["deliver"] + 1}, f"..{seqs['deliver']}: nothing"),
        ("parcel:404", {"from_seq": 1}, "no events logged for entity 'parcel:404'"),
        ("box:1", {"from_seq": 1}, "no installed chart serves entity kind 'box'"),
        ("parcel:1", {"from_seq": 1, "version": 7}, "version 7 of chart 'parcel' is not"),
        ("parcel:1", {"from_seq": 1, "chart_file": other_chart}, "is chart 'box'"),
        ("parcel:1", {"from_seq": 1, "chart_file": broken}, "no_such_action"),
        ("parcel:1", {"from_seq": 1, "chart_file": tmp_path / "none.yaml"}, "none.yaml"),
        ("parcel:1", {"from_seq": 1, "version": 1, "chart_file": broken}, "not both"),
    ]
    for entity, how, message in cases:
        with pytest.raises(WhatIfError) as raised:
            await run(db_path, BOTH, entity, **how)
        assert message in str(raised.value), (how, str(raised.value))


async def test_an_older_version_cannot_take_back_an_entity_on_a_newer_one(
    db_path: Path, clock: FakeClock
) -> None:
    engine = await Engine.open(db_path, charts=BOTH, clock=clock, settings=QUIET)
    try:
        await publish(engine, "parcel:9", "parcel.pack", weight_kg=2.0)
        ship = await publish(engine, "parcel:9", "parcel.ship", tracking_number="TN9")
    finally:
        await engine.stop()
    with pytest.raises(WhatIfError, match="version 1 cannot take it back"):
        await run(db_path, BOTH, "parcel:9", from_seq=ship, version=1)
    # From its first event it was never on version 2: version 1 replays it.
    whole = await run(db_path, BOTH, "parcel:9", from_seq=1, version=1)
    assert [row.replayed.to_state for row in whole.rows] == ["packed", "shipped"]


async def test_the_command_prints_the_differences_and_json(
    db_path: Path, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.cli.whatif_cmd
    from tests.conftest import invoke_cli

    seqs = await write_log(db_path, clock)
    before = db_path.read_bytes()
    monkeypatch.setattr(engine.cli.whatif_cmd, "load_charts", lambda *_: BOTH)
    chart = str(without_tracking_guard(tmp_path))
    table = await invoke_cli(
        "whatif", "parcel:1", "--db", str(db_path), "--from", "1", "--chart", chart
    )
    assert table.exit_code == 0, table.output
    assert f"2 differ, first at seq {seqs['refused']}" in table.stdout
    # One row per event; the table wraps long phrases, so look for their words.
    assert "no tracking" in table.stdout and "packed -> shipped" in table.stdout
    assert table.stdout.count("differs") == 2

    as_json = await invoke_cli(
        "whatif",
        "parcel:1",
        "--db",
        str(db_path),
        "--from",
        str(seqs["ship"]),
        "--version",
        "1",
        "--json",
    )
    assert as_json.exit_code == 0, as_json.output
    value = json.loads(as_json.stdout)
    assert (value["first_difference"], value["state_before"]) == (None, "packed")
    assert [row["type"] for row in value["rows"]] == ["parcel.ship", "parcel.deliver"]
    assert value["rows"][0]["logged"]["to_state"] == "shipped"

    wrong = await invoke_cli(
        "whatif", "parcel:1", "--db", str(db_path), "--from", "1", "--version", "5"
    )
    assert wrong.exit_code == 2 and "version 5 of chart 'parcel' is not installed" in wrong.output
    missing = await invoke_cli("whatif", "parcel:1", "--db", str(tmp_path / "no.db"), "--from", "1")
    assert missing.exit_code == 1 and "no database at" in missing.output
    assert db_path.read_bytes() == before
